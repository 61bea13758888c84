package httpnats_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/switchyard/switchyard/internal/apierr"
	"github.com/switchyard/switchyard/internal/httpnats"
	"github.com/switchyard/switchyard/jetstream/jstest"
	"github.com/switchyard/switchyard/subjects"
)

// overNATS sends m through a real server and returns it as a subscriber
// receives it, so header encoding on the wire is part of every round trip.
func overNATS(t *testing.T, nc *nats.Conn, m *nats.Msg) *nats.Msg {
	t.Helper()
	subj := "t." + nats.NewInbox()[len("_INBOX."):]
	sub, err := nc.SubscribeSync(subj)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	m.Subject = subj
	if err := nc.PublishMsg(m); err != nil {
		t.Fatal(err)
	}
	got, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestRequestRoundTrip(t *testing.T) {
	nc := jstest.Start(t).Conn(t)
	h := http.Header{
		"X-Multi":       {"a", "b"},
		"Accept":        {"application/json"},
		"Authorization": {"Bearer tok"},
		"Content-Type":  {"text/plain; charset=utf-8"},
	}
	tests := []struct {
		name, method, path, query string
		body                      []byte
		wantMethodHeader          bool
	}{
		{"get", http.MethodGet, "/items/42", "", nil, false},
		{"post with query", http.MethodPost, "/a%2Fb/c", "x=1&x=2&y=%20", []byte("hello\x00world"), true},
		{"delete", http.MethodDelete, "/", "q", nil, true},
		{"patch empty body", http.MethodPatch, "/p", "", []byte{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := httpnats.NewRequestMsg("svc.x", tt.method, tt.path, tt.query, h, tt.body)
			if _, ok := m.Header[subjects.HeaderMethod]; ok != tt.wantMethodHeader {
				t.Errorf("method header present %v, want %v", ok, tt.wantMethodHeader)
			}
			if _, ok := m.Header[subjects.HeaderQuery]; ok != (tt.query != "") {
				t.Errorf("query header present %v with query %q", ok, tt.query)
			}
			r := httpnats.DecodeRequest(overNATS(t, nc, m))
			if r.Method != tt.method || r.Path != tt.path || r.Query != tt.query {
				t.Errorf("decoded %s %s ?%s, want %s %s ?%s", r.Method, r.Path, r.Query, tt.method, tt.path, tt.query)
			}
			if string(r.Body) != string(tt.body) {
				t.Errorf("body %q, want %q", r.Body, tt.body)
			}
			if !reflect.DeepEqual(r.Header, h) {
				t.Errorf("headers\n got %v\nwant %v", r.Header, h)
			}
		})
	}
}

func TestRequestDropsHopByHopAndControl(t *testing.T) {
	h := http.Header{
		"Connection":           {"keep-alive, X-Secret-Hop", "x-other-hop"},
		"X-Secret-Hop":         {"1"},
		"X-Other-Hop":          {"1"},
		"Keep-Alive":           {"timeout=5"},
		"Proxy-Connection":     {"keep-alive"},
		"Proxy-Authorization":  {"Basic x"},
		"Proxy-Authenticate":   {"Basic"},
		"Te":                   {"trailers"},
		"Trailer":              {"X-T"},
		"Transfer-Encoding":    {"chunked"},
		"Upgrade":              {"websocket"},
		"Switchyard-Status":    {"500"},
		"Switchyard-Path":      {"/evil"},
		"Switchyard-Method":    {"DELETE"},
		"Switchyard-Job-Id":    {"forged"},
		"Nats-Msg-Id":          {"dedupe-spoof"},
		"Nats-Expected-Stream": {"X"},
		"X-Kept":               {"yes"},
		"Switchyard":           {"not ours: no dash"},
	}
	m := httpnats.NewRequestMsg("svc.x", http.MethodGet, "/real", "", h, nil)
	want := nats.Header{
		subjects.HeaderPath: {"/real"},
		"X-Kept":            {"yes"},
		"Switchyard":        {"not ours: no dash"},
	}
	if !reflect.DeepEqual(m.Header, want) {
		t.Fatalf("NATS headers\n got %v\nwant %v", m.Header, want)
	}
	r := httpnats.DecodeRequest(m)
	if r.Method != http.MethodGet || r.Path != "/real" {
		t.Errorf("client headers changed the request to %s %s", r.Method, r.Path)
	}
}

func TestCopyEndToEnd(t *testing.T) {
	src := http.Header{"Connection": {"X-A"}, "X-A": {"1"}, "X-B": {"2", "3"}, "Switchyard-Error-Code": {"x"}}
	dst := map[string][]string{}
	httpnats.CopyEndToEnd(dst, src)
	if want := map[string][]string{"X-B": {"2", "3"}}; !reflect.DeepEqual(dst, want) {
		t.Fatalf("got %v, want %v", dst, want)
	}
	// dst owns its slices.
	dst["X-B"][0] = "changed"
	if src["X-B"][0] != "2" {
		t.Error("CopyEndToEnd aliases the source's values")
	}
}

// A client on NATS (Rust, Node) may send header names in any case.
func TestDecodeRequestLowercase(t *testing.T) {
	nc := jstest.Start(t).Conn(t)
	m := &nats.Msg{Header: nats.Header{
		"switchyard-method": {"post"},
		"switchyard-path":   {"/lower"},
		"switchyard-query":  {"a=1"},
		"content-type":      {"application/json"},
		"x-request-id":      {"r1"},
		"x-multi":           {"a"},
		"X-MULTI":           {"b"},
		"connection":        {"close"},
		"nats-msg-id":       {"spoof"},
		"switchyard-status": {"200"},
	}, Data: []byte("{}")}
	r := httpnats.DecodeRequest(overNATS(t, nc, m))
	if r.Method != http.MethodPost || r.Path != "/lower" || r.Query != "a=1" {
		t.Errorf("decoded %s %s ?%s", r.Method, r.Path, r.Query)
	}
	if got := r.Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type %q", got)
	}
	if got := r.Header.Get("X-Request-Id"); got != "r1" {
		t.Errorf("X-Request-Id %q", got)
	}
	if got := r.Header.Values("X-Multi"); len(got) != 2 {
		t.Errorf("X-Multi %q, want both values", got)
	}
	for k := range r.Header {
		if k != http.CanonicalHeaderKey(k) {
			t.Errorf("header %q is not canonical", k)
		}
	}
	for _, k := range []string{"Connection", "Nats-Msg-Id", "Switchyard-Status"} {
		if _, ok := r.Header[k]; ok {
			t.Errorf("header %s was not dropped", k)
		}
	}
}

func TestDecodeRequestDefaults(t *testing.T) {
	tests := []struct {
		name       string
		h          nats.Header
		wantMethod string
		wantPath   string
	}{
		{"no headers", nil, http.MethodGet, "/"},
		{"empty method", nats.Header{subjects.HeaderMethod: {""}}, http.MethodGet, "/"},
		{"relative path", nats.Header{subjects.HeaderPath: {"evil"}}, http.MethodGet, "/"},
		{"absolute URL path", nats.Header{subjects.HeaderPath: {"http://x/y"}}, http.MethodGet, "/"},
		{"no values", nats.Header{subjects.HeaderPath: {}, subjects.HeaderMethod: {}}, http.MethodGet, "/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httpnats.DecodeRequest(&nats.Msg{Header: tt.h})
			if r.Method != tt.wantMethod || r.Path != tt.wantPath {
				t.Errorf("got %s %s, want %s %s", r.Method, r.Path, tt.wantMethod, tt.wantPath)
			}
			if r.Header == nil {
				t.Error("nil Header")
			}
		})
	}
}

type errBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func decodeErrBody(t *testing.T, b []byte) errBody {
	t.Helper()
	var e errBody
	if err := json.Unmarshal(b, &e); err != nil || e.Error.Code == "" {
		t.Fatalf("body %q is not the JSON error shape (%v)", b, err)
	}
	return e
}

func TestResponseRoundTrip(t *testing.T) {
	nc := jstest.Start(t).Conn(t)
	h := http.Header{"Content-Type": {"application/json"}, "Set-Cookie": {"a=1", "b=2"}, "Connection": {"close"}}
	tests := []struct {
		name       string
		status     int
		wantHeader bool
	}{
		{"200 sends no status header", http.StatusOK, false},
		{"201 kept", http.StatusCreated, true},
		{"404 kept", http.StatusNotFound, true},
		{"503 kept", http.StatusServiceUnavailable, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := httpnats.NewResponseMsg(tt.status, h, []byte("body"))
			if _, ok := m.Header[subjects.HeaderStatus]; ok != tt.wantHeader {
				t.Errorf("status header present %v, want %v", ok, tt.wantHeader)
			}
			r := httpnats.DecodeResponse(overNATS(t, nc, m))
			if r.Status != tt.status || string(r.Body) != "body" || r.ErrorCode != "" {
				t.Errorf("decoded status %d body %q code %q", r.Status, r.Body, r.ErrorCode)
			}
			want := http.Header{"Content-Type": {"application/json"}, "Set-Cookie": {"a=1", "b=2"}}
			if !reflect.DeepEqual(r.Header, want) {
				t.Errorf("headers %v, want %v", r.Header, want)
			}
		})
	}
}

func TestDecodeResponseStatus(t *testing.T) {
	tests := []struct {
		name     string
		h        nats.Header
		status   int
		code     string
		jsonBody bool
	}{
		{"absent means 200", nil, 200, "", false},
		{"201", nats.Header{subjects.HeaderStatus: {"201"}}, 201, "", false},
		{"lowercase name", nats.Header{"switchyard-status": {"418"}}, 418, "", false},
		{"not a number", nats.Header{subjects.HeaderStatus: {"abc"}}, 502, apierr.CodeBadGateway, false},
		{"too small", nats.Header{subjects.HeaderStatus: {"99"}}, 502, apierr.CodeBadGateway, false},
		{"1xx is not a final status", nats.Header{subjects.HeaderStatus: {"103"}}, 502, apierr.CodeBadGateway, false},
		{"too large", nats.Header{subjects.HeaderStatus: {"600"}}, 502, apierr.CodeBadGateway, false},
		{"empty", nats.Header{subjects.HeaderStatus: {""}}, 502, apierr.CodeBadGateway, false},
		{"switchyard error code", nats.Header{subjects.HeaderStatus: {"429"}, subjects.HeaderErrorCode: {"too_many_requests"}}, 429, "too_many_requests", false},
		{"micro 503", nats.Header{subjects.HeaderMicroErrorCode: {"503"}, subjects.HeaderMicroError: {"x"}}, 503, apierr.CodeUnavailable, true},
		{"micro 400", nats.Header{subjects.HeaderMicroErrorCode: {"400"}, subjects.HeaderMicroError: {"bad"}}, 400, apierr.CodeBadRequest, true},
		{"micro lowercase", nats.Header{"nats-service-error-code": {"404"}, "nats-service-error": {"gone"}}, 404, apierr.CodeNotFound, true},
		{"micro non-numeric", nats.Header{subjects.HeaderMicroErrorCode: {"boom"}, subjects.HeaderMicroError: {"x"}}, 502, apierr.CodeBadGateway, true},
		{"micro 200 is not an error status", nats.Header{subjects.HeaderMicroErrorCode: {"200"}}, 502, apierr.CodeBadGateway, true},
		{"micro 600", nats.Header{subjects.HeaderMicroErrorCode: {"600"}}, 502, apierr.CodeBadGateway, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httpnats.DecodeResponse(&nats.Msg{Header: tt.h, Data: []byte("raw")})
			if r.Status != tt.status || r.ErrorCode != tt.code {
				t.Fatalf("status %d code %q, want %d %q", r.Status, r.ErrorCode, tt.status, tt.code)
			}
			if !tt.jsonBody {
				if string(r.Body) != "raw" {
					t.Errorf("body %q, want the payload", r.Body)
				}
				return
			}
			e := decodeErrBody(t, r.Body)
			if e.Error.Code != tt.code {
				t.Errorf("body code %q, want %q", e.Error.Code, tt.code)
			}
			if msg := tt.h.Get(subjects.HeaderMicroError); msg == "" {
				msg = tt.h.Get("nats-service-error")
				if msg != "" && e.Error.Message != msg || msg == "" && e.Error.Message != http.StatusText(tt.status) {
					t.Errorf("message %q", e.Error.Message)
				}
			} else if e.Error.Message != msg {
				t.Errorf("message %q, want %q", e.Error.Message, msg)
			}
			if ct := r.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
}

func TestNewErrorMsg(t *testing.T) {
	nc := jstest.Start(t).Conn(t)
	tests := []struct {
		name       string
		err        *apierr.Error
		retryAfter string
	}{
		{"plain", apierr.New(http.StatusNotFound, apierr.CodeUnknownService, "no such service"), ""},
		{"retry", apierr.New(http.StatusServiceUnavailable, apierr.CodeNoResponders, "busy").WithRetry(1500 * time.Millisecond), "2"},
		{"sub-second retry", apierr.New(http.StatusTooManyRequests, apierr.CodeTooManyRequests, "slow down").WithRetry(time.Millisecond), "1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := httpnats.NewErrorMsg(tt.err)
			if got := m.Header.Get(subjects.HeaderRetryAfter); got != tt.retryAfter {
				t.Errorf("Retry-After %q, want %q", got, tt.retryAfter)
			}
			r := httpnats.DecodeResponse(overNATS(t, nc, m))
			if r.Status != tt.err.Status || r.ErrorCode != tt.err.Code {
				t.Errorf("decoded %d %q, want %d %q", r.Status, r.ErrorCode, tt.err.Status, tt.err.Code)
			}
			if got := r.Header.Get("Retry-After"); got != tt.retryAfter {
				t.Errorf("decoded Retry-After %q, want %q", got, tt.retryAfter)
			}
			e := decodeErrBody(t, r.Body)
			if e.Error.Code != tt.err.Code || e.Error.Message != tt.err.Message {
				t.Errorf("body %+v", e)
			}
		})
	}
}

func TestWriteResponse(t *testing.T) {
	tests := []struct {
		name     string
		r        httpnats.Response
		head     bool
		wantBody string
		wantLen  string
	}{
		{"200 body", httpnats.Response{Status: 200, Header: http.Header{"X-A": {"1", "2"}}, Body: []byte("hello")}, false, "hello", "5"},
		{"201 empty", httpnats.Response{Status: 201, Header: http.Header{}}, false, "", "0"},
		{"HEAD writes no body", httpnats.Response{Status: 200, Header: http.Header{}, Body: []byte("hello")}, true, "", ""},
		// RFC 9110 8.6: no Content-Length on a 204; on a 304 only the
		// representation's, never the length of an empty reply.
		{"204 no body", httpnats.Response{Status: 204, Header: http.Header{}}, false, "", "-"},
		{"204 stray body", httpnats.Response{Status: 204, Header: http.Header{}, Body: []byte("x")}, false, "", "-"},
		{"304 no body", httpnats.Response{Status: 304, Header: http.Header{}, Body: []byte("x")}, false, "", "-"},
		{"304 keeps upstream length", httpnats.Response{Status: 304, Header: http.Header{"Content-Length": {"1234"}}}, false, "", "1234"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			httpnats.WriteResponse(rec, tt.r, tt.head)
			if rec.Code != tt.r.Status {
				t.Errorf("status %d, want %d", rec.Code, tt.r.Status)
			}
			if rec.Body.String() != tt.wantBody {
				t.Errorf("body %q, want %q", rec.Body.String(), tt.wantBody)
			}
			switch got, ok := rec.Header()["Content-Length"]; {
			case tt.wantLen == "-" && ok:
				t.Errorf("Content-Length %q sent, want none", got)
			case tt.wantLen != "-" && tt.wantLen != "" && (len(got) != 1 || got[0] != tt.wantLen):
				t.Errorf("Content-Length %q, want %q", got, tt.wantLen)
			}
			for k, vs := range tt.r.Header {
				if !reflect.DeepEqual(rec.Header()[k], vs) {
					t.Errorf("header %s %v, want %v", k, rec.Header()[k], vs)
				}
			}
		})
	}
}

// Over a real HTTP connection the client sees what WriteResponse meant.
func TestWriteResponseHTTP(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r := httpnats.DecodeResponse(httpnats.NewResponseMsg(http.StatusAccepted,
			http.Header{"Content-Type": {"text/plain"}}, []byte("accepted")))
		httpnats.WriteResponse(w, r, req.Method == http.MethodHead)
	}))
	defer srv.Close()
	client := srv.Client()
	defer client.CloseIdleConnections()
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		req, _ := http.NewRequest(method, srv.URL, nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var buf [64]byte
		n, _ := resp.Body.Read(buf[:])
		resp.Body.Close()
		want := "accepted"
		if method == http.MethodHead {
			want = ""
		}
		if resp.StatusCode != http.StatusAccepted || string(buf[:n]) != want || resp.Header.Get("Content-Type") != "text/plain" {
			t.Errorf("%s: %d %q %v", method, resp.StatusCode, buf[:n], resp.Header)
		}
	}
}

func TestDeadlineRoundTrip(t *testing.T) {
	m := httpnats.NewRequestMsg("svc.a.b", "GET", "/b", "", http.Header{}, nil)
	d := time.UnixMilli(time.Now().Add(3 * time.Second).UnixMilli())
	httpnats.SetDeadline(m, d)
	if got := httpnats.DecodeRequest(m).Deadline; !got.Equal(d) {
		t.Fatalf("deadline %v, want %v", got, d)
	}
	if _, ok := httpnats.DecodeRequest(m).Header[subjects.HeaderDeadline]; ok {
		t.Fatal("the deadline header passed through as an HTTP header")
	}
	for _, bad := range []string{"", "soon", "-1", "0"} {
		m.Header.Set(subjects.HeaderDeadline, bad)
		if got := httpnats.DecodeRequest(m).Deadline; !got.IsZero() {
			t.Errorf("deadline %q decoded as %v, want none", bad, got)
		}
	}
}

// DecodeResponseTo decodes what DecodeResponse does; a plain reply's
// headers land in the writer's header (replacing what was set there), an
// error reply's never do.
func TestDecodeResponseTo(t *testing.T) {
	nc := jstest.Start(t).Conn(t)
	plain := httpnats.NewResponseMsg(201, http.Header{"Content-Type": {"text/plain"}, "Set-Cookie": {"a=1", "b=2"},
		"X-Request-Id": {"upstream"}, "Connection": {"close"}}, []byte("body"))
	plain.Header[subjects.HeaderUpstream] = []string{"10.0.0.1:80"}
	lower := &nats.Msg{Header: nats.Header{"x-a": {"1"}, "X-A": {"2"}}, Data: []byte("x")}
	tests := []struct {
		name  string
		m     *nats.Msg
		error bool
	}{
		{"plain", plain, false},
		{"names to merge", lower, false},
		{"worker error", httpnats.NewErrorMsg(apierr.New(503, apierr.CodeOverloaded, "busy").WithRetry(time.Second)), true},
		{"micro error", &nats.Msg{Header: nats.Header{subjects.HeaderMicroErrorCode: {"404"}, subjects.HeaderMicroError: {"no"}}}, true},
		{"bad status", &nats.Msg{Header: nats.Header{subjects.HeaderStatus: {"101"}, "X-A": {"1"}}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := overNATS(t, nc, tt.m)
			want := httpnats.DecodeResponse(m)
			rec := httptest.NewRecorder()
			rec.Header().Set("X-Request-Id", "edge")
			got := httpnats.DecodeResponseTo(m, rec.Header())
			if got.Status != want.Status || got.ErrorCode != want.ErrorCode || got.Upstream != want.Upstream || string(got.Body) != string(want.Body) {
				t.Errorf("got %+v, want %+v", got, want)
			}
			if tt.error {
				if rec.Header().Get("X-Request-Id") != "edge" || len(rec.Header()) != 1 {
					t.Errorf("an error reply wrote headers: %v", rec.Header())
				}
				if !reflect.DeepEqual(got.Header, want.Header) {
					t.Errorf("headers %v, want %v", got.Header, want.Header)
				}
				return
			}
			httpnats.WriteResponse(rec, got, false)
			wrec := httptest.NewRecorder()
			wrec.Header().Set("X-Request-Id", "edge")
			httpnats.WriteResponse(wrec, want, false)
			// Names that differ only in case merge in map order, on both paths.
			for _, h := range []http.Header{rec.Header(), wrec.Header()} {
				for _, vs := range h {
					slices.Sort(vs)
				}
			}
			if !reflect.DeepEqual(rec.Header(), wrec.Header()) || rec.Code != wrec.Code || rec.Body.String() != wrec.Body.String() {
				t.Errorf("wrote %d %v %q, DecodeResponse path %d %v %q", rec.Code, rec.Header(), rec.Body, wrec.Code, wrec.Header(), wrec.Body)
			}
		})
	}
}

// BenchmarkDecodeWrite compares the edge's reply path before (DecodeResponse,
// then WriteResponse copying the headers) and after (DecodeResponseTo into
// the writer's header), in one run:
//
//	go test -run '^$' -bench DecodeWrite -benchmem ./internal/httpnats/
func BenchmarkDecodeWrite(b *testing.B) {
	m := httpnats.NewResponseMsg(200, http.Header{"Content-Type": {"application/json"}, "Date": {"Fri, 27 Nov 2026 18:00:00 GMT"},
		"Content-Length": {"56"}, "X-Upstream": {"one"}}, []byte(`{"ok":true,"payload":"0123456789abcdef0123456789abcdef"}`))
	m.Header[subjects.HeaderUpstream] = []string{"127.0.0.1:19101"}
	w := &discardWriter{h: http.Header{}}
	var base float64
	for _, tc := range []struct {
		name string
		fn   func()
	}{
		{"DecodeResponse", func() { httpnats.WriteResponse(w, httpnats.DecodeResponse(m), false) }},
		{"DecodeResponseTo", func() { httpnats.WriteResponse(w, httpnats.DecodeResponseTo(m, w.h), false) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				clear(w.h)
				tc.fn()
			}
			ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			if tc.name == "DecodeResponse" {
				base = ns
			}
			b.ReportMetric(base/ns, "speedup")
		})
	}
}

type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}
