package edge_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard/switchyard/edge"
	"github.com/switchyard/switchyard/internal/apierr"
	"github.com/switchyard/switchyard/jetstream/jstest"
)

// harness is a running edge on loopback with a real NATS server behind it.
type harness struct {
	s      *edge.Server
	url    string
	reg    *prometheus.Registry
	ns     *jstest.Server
	nc     *nats.Conn
	checks *edge.Checks
	client *http.Client
	runErr chan error
}

type options struct {
	maxBody int64
	routes  func(e *echo.Echo)
}

func start(t *testing.T, o options) *harness {
	t.Helper()
	ns := jstest.Start(t)
	nc := ns.Conn(t)
	js, err := natsjs.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	checks := edge.NewChecks()
	checks.Add("nats", edge.NATSCheck(nc))
	checks.Add("jetstream", edge.JetStreamCheck(js))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	s := edge.New(edge.Options{
		Name: "t", Listener: l, Log: slog.New(slog.DiscardHandler), Version: "v-test",
		Metrics: edge.NewMetrics(reg), Gatherer: reg, NC: nc, Checks: checks, MaxBodyBytes: o.maxBody,
	})
	if o.routes != nil {
		o.routes(s.Echo)
	}
	h := &harness{s: s, url: "http://" + l.Addr().String(), reg: reg, ns: ns, nc: nc, checks: checks,
		client: &http.Client{Transport: &http.Transport{}, Timeout: 20 * time.Second}, runErr: make(chan error, 1)}
	go func() { h.runErr <- s.Run(context.Background()) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-h.runErr; err != nil {
			t.Errorf("Run: %v", err)
		}
		h.client.CloseIdleConnections()
	})
	return h
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (h *harness) do(t *testing.T, method, path string, body io.Reader, hdr ...string) reply {
	t.Helper()
	req, err := http.NewRequest(method, h.url+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := body.(chunked); ok {
		req.ContentLength = -1
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return reply{resp.StatusCode, resp.Header, b}
}

// chunked hides the length of a body, so the client sends it chunked.
type chunked struct{ io.Reader }

type errorBody struct {
	Error struct {
		Code      string `json:"code"`
		Message   string `json:"message"`
		RequestID string `json:"request_id"`
	} `json:"error"`
}

// apiError checks r is the JSON error shape and returns it.
func apiError(t *testing.T, r reply) errorBody {
	t.Helper()
	var e errorBody
	if err := json.Unmarshal(r.body, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" || e.Error.RequestID == "" {
		t.Fatalf("status %d: body %q is not the JSON error shape", r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("error Content-Type %q", ct)
	}
	if rid := r.header.Get(echo.HeaderXRequestID); rid != e.Error.RequestID {
		t.Errorf("X-Request-Id %q, body request_id %q", rid, e.Error.RequestID)
	}
	return e
}

type healthReply struct {
	Status  string            `json:"status"`
	Service string            `json:"service"`
	Version string            `json:"version"`
	Checks  map[string]string `json:"checks"`
	Reason  string            `json:"reason"`
	NATS    *struct {
		Connected bool   `json:"connected"`
		Status    string `json:"status"`
	} `json:"nats"`
}

func health(t *testing.T, r reply) healthReply {
	t.Helper()
	var hb healthReply
	if err := json.Unmarshal(r.body, &hb); err != nil {
		t.Fatalf("health body %q: %v", r.body, err)
	}
	return hb
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestHealth(t *testing.T) {
	h := start(t, options{})
	r := h.do(t, http.MethodGet, "/health", nil)
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	hb := health(t, r)
	if hb.Status != "ok" || hb.Service != "t" || hb.Version != "v-test" || hb.Reason != "" {
		t.Errorf("health %+v", hb)
	}
	if hb.Checks["nats"] != "ok" || hb.Checks["jetstream"] != "ok" || len(hb.Checks) != 2 {
		t.Errorf("checks %v", hb.Checks)
	}
	if hb.NATS == nil || !hb.NATS.Connected || hb.NATS.Status != "CONNECTED" {
		t.Errorf("nats %+v", hb.NATS)
	}
}

func TestHealthChecks(t *testing.T) {
	h := start(t, options{})
	h.checks.Add("workers", func(context.Context) error { return errors.New("pool down") })
	r := h.do(t, http.MethodGet, "/health", nil)
	hb := health(t, r)
	if r.status != http.StatusServiceUnavailable || hb.Status != "unavailable" || hb.Reason != "workers: pool down" {
		t.Errorf("with a failing check: %d %+v", r.status, hb)
	}
	if hb.Checks["workers"] != "pool down" || hb.Checks["nats"] != "ok" {
		t.Errorf("checks %v", hb.Checks)
	}
	h.checks.Remove("workers")
	if r := h.do(t, http.MethodGet, "/health", nil); r.status != http.StatusOK {
		t.Errorf("after removing the check: %d %s", r.status, r.body)
	}
}

func TestHealthNATSDown(t *testing.T) {
	h := start(t, options{})
	h.ns.Shutdown()
	var hb healthReply
	eventually(t, "/health to fail", func() bool {
		r := h.do(t, http.MethodGet, "/health", nil)
		hb = health(t, r)
		return r.status == http.StatusServiceUnavailable
	})
	if hb.Status != "unavailable" || hb.Reason == "" {
		t.Errorf("health %+v, want unavailable with a reason", hb)
	}
	if hb.Checks["nats"] == "ok" {
		t.Errorf("nats check %q while the server is down", hb.Checks["nats"])
	}
	if hb.NATS == nil || hb.NATS.Connected {
		t.Errorf("nats %+v, want disconnected", hb.NATS)
	}
}

func itemRoutes(e *echo.Echo) {
	e.GET("/items/:id", func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]string{"id": c.Param("id")})
	})
	e.GET("/panic", func(c echo.Context) error { panic("boom") })
	e.POST("/ignore", func(c echo.Context) error { return c.NoContent(http.StatusNoContent) })
	e.POST("/echo", func(c echo.Context) error {
		b, err := io.ReadAll(c.Request().Body)
		if err != nil {
			return err
		}
		return c.Blob(http.StatusOK, "application/octet-stream", b)
	})
	e.POST("/json", func(c echo.Context) error {
		var in struct {
			Name string `json:"name"`
		}
		if err := edge.DecodeJSON(c, &in); err != nil {
			return err
		}
		return c.String(http.StatusOK, in.Name)
	})
}

func TestErrorShape(t *testing.T) {
	h := start(t, options{routes: itemRoutes})
	long := strings.Repeat("r", 129)
	tests := []struct {
		name, method, path string
		rid                string // sent X-Request-Id
		status             int
		code               string
		wantRID            string // "" means generated
	}{
		{"unknown route", http.MethodGet, "/nope", "rid-404", http.StatusNotFound, "not_found", "rid-404"},
		{"unknown route, generated id", http.MethodGet, "/nope/deeper", "", http.StatusNotFound, "not_found", ""},
		{"wrong method", http.MethodDelete, "/items/1", "rid-405", http.StatusMethodNotAllowed, "method_not_allowed", "rid-405"},
		{"wrong method on /health", http.MethodPost, "/health", "rid-h", http.StatusMethodNotAllowed, "method_not_allowed", "rid-h"},
		{"overlong id is replaced", http.MethodGet, "/nope", long, http.StatusNotFound, "not_found", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hdr []string
			if tt.rid != "" {
				hdr = []string{echo.HeaderXRequestID, tt.rid}
			}
			r := h.do(t, tt.method, tt.path, nil, hdr...)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			e := apiError(t, r)
			if e.Error.Code != tt.code {
				t.Errorf("code %q, want %q", e.Error.Code, tt.code)
			}
			switch got := e.Error.RequestID; {
			case tt.wantRID != "" && got != tt.wantRID:
				t.Errorf("request id %q, want %q echoed", got, tt.wantRID)
			case tt.wantRID == "" && (got == tt.rid || len(got) > 128):
				t.Errorf("request id %q, want a generated one", got)
			}
		})
	}
	// HEAD of an unknown route: the status and id, no body.
	r := h.do(t, http.MethodHead, "/nope", nil, echo.HeaderXRequestID, "rid-head")
	if r.status != http.StatusNotFound || len(r.body) != 0 || r.header.Get(echo.HeaderXRequestID) != "rid-head" {
		t.Errorf("HEAD /nope: %d %q %v", r.status, r.body, r.header)
	}
	// A request id is set on successes too.
	r = h.do(t, http.MethodGet, "/items/7", nil, echo.HeaderXRequestID, "rid-ok")
	if r.status != http.StatusOK || r.header.Get(echo.HeaderXRequestID) != "rid-ok" {
		t.Errorf("GET /items/7: %d, X-Request-Id %q", r.status, r.header.Get(echo.HeaderXRequestID))
	}
}

func TestPanicRecovered(t *testing.T) {
	h := start(t, options{routes: itemRoutes})
	for i := 0; i < 3; i++ {
		r := h.do(t, http.MethodGet, "/panic", nil)
		if r.status != http.StatusInternalServerError {
			t.Fatalf("status %d, want 500: %s", r.status, r.body)
		}
		if e := apiError(t, r); e.Error.Code != "internal" || strings.Contains(string(r.body), "boom") {
			t.Errorf("body %s: want code internal and no panic value", r.body)
		}
		if r := h.do(t, http.MethodGet, "/items/1", nil); r.status != http.StatusOK {
			t.Fatalf("after a panic: status %d", r.status)
		}
	}
}

func TestBodyLimit(t *testing.T) {
	const limit = 1024
	h := start(t, options{maxBody: limit, routes: itemRoutes})
	if got := h.s.MaxBodyBytes(); got != limit {
		t.Fatalf("MaxBodyBytes %d", got)
	}
	tests := []struct {
		name   string
		body   io.Reader
		status int
		n      int
	}{
		{"at the limit", bytes.NewReader(make([]byte, limit)), http.StatusOK, limit},
		{"over, with Content-Length", bytes.NewReader(make([]byte, limit+1)), http.StatusRequestEntityTooLarge, 0},
		{"far over, with Content-Length", bytes.NewReader(make([]byte, 64*limit)), http.StatusRequestEntityTooLarge, 0},
		{"at the limit, chunked", chunked{bytes.NewReader(make([]byte, limit))}, http.StatusOK, limit},
		{"over, chunked", chunked{bytes.NewReader(make([]byte, limit+1))}, http.StatusRequestEntityTooLarge, 0},
		{"far over, chunked", chunked{bytes.NewReader(make([]byte, 64*limit))}, http.StatusRequestEntityTooLarge, 0},
	}
	// A declared length over the limit is refused before the handler runs,
	// even one that never reads the body.
	if r := h.do(t, http.MethodPost, "/ignore", bytes.NewReader(make([]byte, limit+1))); r.status != http.StatusRequestEntityTooLarge {
		t.Errorf("over the limit to a handler that does not read: %d", r.status)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.do(t, http.MethodPost, "/echo", tt.body)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %.200s", r.status, tt.status, r.body)
			}
			if tt.status == http.StatusOK {
				if len(r.body) != tt.n {
					t.Errorf("echoed %d bytes, want %d", len(r.body), tt.n)
				}
				return
			}
			if e := apiError(t, r); e.Error.Code != "payload_too_large" {
				t.Errorf("code %q", e.Error.Code)
			}
		})
	}
}

func TestDecodeJSON(t *testing.T) {
	const limit = 1024
	h := start(t, options{maxBody: limit, routes: itemRoutes})
	big := `{"name":"` + strings.Repeat("x", 2*limit) + `"}`
	tests := []struct {
		name   string
		ct     string
		body   io.Reader
		status int
		code   string
	}{
		{"ok", "application/json", strings.NewReader(`{"name":"ann"}`), 200, ""},
		{"ok without content type", "", strings.NewReader(`{"name":"ann"}`), 200, ""},
		{"ok with charset", "application/json; charset=utf-8", strings.NewReader(`{"name":"ann"}`), 200, ""},
		{"ok +json", "application/merge-patch+json", strings.NewReader(`{"name":"ann"}`), 200, ""},
		{"ok, media type case-insensitive", "Application/JSON", strings.NewReader(`{"name":"ann"}`), 200, ""},
		{"ok, space before parameters", "application/json ; charset=utf-8", strings.NewReader(`{"name":"ann"}`), 200, ""},
		{"wrong content type", "text/plain", strings.NewReader(`{"name":"ann"}`), 415, "unsupported_media_type"},
		{"form", "application/x-www-form-urlencoded", strings.NewReader(`name=ann`), 415, "unsupported_media_type"},
		{"bad JSON", "application/json", strings.NewReader(`{"name":`), 400, "bad_request"},
		{"empty body", "application/json", strings.NewReader(``), 400, "bad_request"},
		{"wrong type", "application/json", strings.NewReader(`{"name":3}`), 400, "bad_request"},
		{"unknown field", "application/json", strings.NewReader(`{"nom":"ann"}`), 400, "bad_request"},
		{"data after the value", "application/json", strings.NewReader(`{"name":"ann"} {"name":"bob"}`), 400, "bad_request"},
		{"too large, chunked", "application/json", chunked{strings.NewReader(big)}, 413, "payload_too_large"},
		{"too large, with Content-Length", "application/json", strings.NewReader(big), 413, "payload_too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hdr []string
			if tt.ct != "" {
				hdr = []string{"Content-Type", tt.ct}
			}
			r := h.do(t, http.MethodPost, "/json", tt.body, hdr...)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %.300s", r.status, tt.status, r.body)
			}
			if tt.status == 200 {
				if string(r.body) != "ann" {
					t.Errorf("body %q", r.body)
				}
				return
			}
			if e := apiError(t, r); e.Error.Code != tt.code {
				t.Errorf("code %q, want %q", e.Error.Code, tt.code)
			}
		})
	}
}

func TestMetrics(t *testing.T) {
	h := start(t, options{routes: itemRoutes})
	h.do(t, http.MethodGet, "/items/secret-abc", nil)
	h.do(t, http.MethodGet, "/items/secret-def", nil)
	h.do(t, http.MethodGet, "/nope/secret-ghi", nil)
	h.do(t, http.MethodDelete, "/items/secret-jkl", nil)
	h.do(t, "BREW", "/items/secret-mno", nil)
	h.do(t, http.MethodGet, "/panic", nil)

	type key struct{ route, method, status string }
	want := map[key]float64{
		{"/items/:id", "GET", "200"}:    2,
		{"unmatched", "GET", "404"}:     1,
		{"/items/:id", "DELETE", "405"}: 1,
		{"/items/:id", "OTHER", "405"}:  1,
		{"/panic", "GET", "500"}:        1,
	}
	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[key]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			lbl := map[string]string{}
			for _, lp := range m.GetLabel() {
				lbl[lp.GetName()] = lp.GetValue()
				if strings.Contains(lp.GetValue(), "secret") {
					t.Errorf("%s: label %s=%q holds a raw path", mf.GetName(), lp.GetName(), lp.GetValue())
				}
			}
			if mf.GetName() != "switchyard_http_requests_total" {
				continue
			}
			if lbl["edge"] != "t" || len(lbl) != 4 {
				t.Errorf("labels %v, want edge, route, method, status", lbl)
			}
			got[key{lbl["route"], lbl["method"], lbl["status"]}] = m.GetCounter().GetValue()
		}
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("requests_total%+v = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}

	// /metrics serves the same registry over HTTP.
	r := h.do(t, http.MethodGet, "/metrics", nil)
	if r.status != http.StatusOK {
		t.Fatalf("/metrics status %d", r.status)
	}
	for _, s := range []string{
		`switchyard_http_requests_total{edge="t",method="GET",route="/items/:id",status="200"} 2`,
		`switchyard_http_requests_total{edge="t",method="GET",route="unmatched",status="404"} 1`,
		`switchyard_http_request_duration_seconds_bucket{edge="t",method="GET",route="/items/:id",status="200",le="+Inf"} 2`,
		`switchyard_http_in_flight_requests{edge="t"} 1`, // this scrape
	} {
		if !strings.Contains(string(r.body), s) {
			t.Errorf("/metrics lacks %s", s)
		}
	}
}

// slowRoute blocks GET /slow until release is closed.
type slowRoute struct {
	entered chan struct{}
	release chan struct{}
	once    sync.Once
	done    atomic.Bool
}

// free lets the handler return; safe to call twice.
func (s *slowRoute) free() { s.once.Do(func() { close(s.release) }) }

func newSlow() *slowRoute {
	return &slowRoute{entered: make(chan struct{}, 1), release: make(chan struct{})}
}

func (s *slowRoute) add(e *echo.Echo) {
	e.GET("/slow", func(c echo.Context) error {
		s.entered <- struct{}{}
		<-s.release
		s.done.Store(true)
		return c.String(http.StatusOK, "done")
	})
}

func (s *slowRoute) call(t *testing.T, h *harness) <-chan reply {
	out := make(chan reply, 1)
	go func() {
		resp, err := h.client.Get(h.url + "/slow")
		if err != nil {
			out <- reply{status: -1, body: []byte(err.Error())}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		out <- reply{resp.StatusCode, resp.Header, b}
	}()
	select {
	case <-s.entered:
	case r := <-out:
		t.Fatalf("slow request ended early: %d %s", r.status, r.body)
	case <-time.After(20 * time.Second):
		t.Fatal("slow request never reached the handler")
	}
	return out
}

func refused(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return true
	}
	c.Close()
	return false
}

func TestShutdownDrains(t *testing.T) {
	slow := newSlow()
	h := start(t, options{routes: slow.add})
	t.Cleanup(slow.free) // runs before the edge's shutdown
	addr := strings.TrimPrefix(h.url, "http://")

	type seen struct {
		draining, slowDone bool
		health             reply
		err                error
	}
	hook := make(chan seen, 1)
	h.s.OnShutdown(func(ctx context.Context) {
		o := seen{draining: h.s.Draining(), slowDone: slow.done.Load()}
		// The listener is still open while hooks run: a probe gets through
		// and is told the edge is going away.
		c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
		resp, err := c.Get(h.url + "/health")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			o.health = reply{resp.StatusCode, resp.Header, b}
		}
		o.err = err
		hook <- o
	})

	inflight := slow.call(t, h)
	if h.s.Draining() {
		t.Fatal("draining before Shutdown")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- h.s.Shutdown(ctx) }()

	var o seen
	select {
	case o = <-hook:
	case <-time.After(20 * time.Second):
		t.Fatal("OnShutdown hook did not run")
	}
	if !o.draining {
		t.Error("hook ran before readiness failed")
	}
	if o.slowDone {
		t.Error("hook ran after the in-flight request drained")
	}
	if o.err != nil {
		t.Fatalf("/health during the hook: %v", o.err)
	}
	if o.health.status != http.StatusServiceUnavailable {
		t.Errorf("/health while draining: %d %s", o.health.status, o.health.body)
	}
	if hb := health(t, o.health); hb.Status != "unavailable" || hb.Reason != "shutting down" {
		t.Errorf("/health while draining: %+v", hb)
	}

	eventually(t, "new connections to be refused", func() bool { return refused(addr) })
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with a request in flight", err)
	default:
	}

	slow.free()
	select {
	case r := <-inflight:
		if r.status != http.StatusOK || string(r.body) != "done" {
			t.Errorf("in-flight request: %d %s", r.status, r.body)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("in-flight request did not complete")
	}
	select {
	case err := <-shut:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Shutdown did not return after the drain")
	}
	if err := h.s.Shutdown(ctx); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
	select {
	case err := <-h.runErr:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
		h.runErr <- nil // for the cleanup
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return")
	}
}

// A Shutdown whose deadline ends before the drain reports it, and every
// later or concurrent call reports the same.
func TestShutdownTwice(t *testing.T) {
	slow := newSlow()
	h := start(t, options{routes: slow.add})
	t.Cleanup(slow.free) // runs before the edge's shutdown
	addr := strings.TrimPrefix(h.url, "http://")
	var hooks atomic.Int32
	h.s.OnShutdown(func(context.Context) { hooks.Add(1) })
	inflight := slow.call(t, h)
	defer func() {
		slow.free()
		if r := <-inflight; r.status != http.StatusOK {
			t.Errorf("in-flight request after a failed drain: %d %s", r.status, r.body)
		}
	}()

	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() { first <- h.s.Shutdown(ctx) }()
	eventually(t, "new connections to be refused", func() bool { return refused(addr) })
	cancel()
	err := <-first
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Shutdown with a canceled context: %v, want %v", err, context.Canceled)
	}

	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = h.s.Shutdown(context.Background())
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Error("a later Shutdown blocked instead of returning the first result")
		slow.free()
		<-done
	}
	for i, e := range errs {
		if e != err {
			t.Errorf("call %d: %v, want the first result %v", i+2, e, err)
		}
	}
	if n := hooks.Load(); n != 1 {
		t.Errorf("hooks ran %d times, want once", n)
	}
}

// Run honours its context: when ctx ends it returns without Shutdown.
func TestRunReturnsWhenContextEnds(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := edge.New(edge.Options{Name: "ctx", Listener: l, Log: slog.New(slog.DiscardHandler)})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

// Requests net/http refuses before any handler runs still get the JSON
// error shape: a garbage request line (400), a header block over the
// limit (431), an unknown transfer encoding (501).
func TestProtocolErrorsAnswerJSON(t *testing.T) {
	h := start(t, options{})
	addr := strings.TrimPrefix(h.url, "http://")
	cases := []struct {
		name, req string
		status    int
		code      string
	}{
		{"garbage request line", "GARBAGE\r\n\r\n", 400, apierr.CodeBadRequest},
		{"header over the limit", "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 70<<10) + "\r\n\r\n", 431, apierr.CodeHeaderTooLarge},
		{"unknown transfer encoding", "POST /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: rot13\r\n\r\n", 501, apierr.CodeNotImplemented},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			go func() { _, _ = io.WriteString(c, tc.req) }()
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body apierr.Body
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatalf("body is not JSON: %v", err)
			}
			if resp.StatusCode != tc.status || resp.Header.Get("Content-Type") != "application/json" ||
				body.Error.Code != tc.code || body.Error.Message == "" {
				t.Errorf("got %d %q %+v, want %d %s", resp.StatusCode, resp.Header.Get("Content-Type"), body, tc.status, tc.code)
			}
		})
	}
	// A normal answer passes untouched.
	resp, err := h.client.Get(h.url + "/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("/health = %d after the protocol errors", resp.StatusCode)
	}
}

func FuzzRewriteProtocolError(f *testing.F) {
	f.Add([]byte("HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n400 Bad Request"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nDate: x\r\n\r\nhello"))
	f.Fuzz(func(t *testing.T, p []byte) {
		out, ok := edge.RewriteProtocolError(p)
		if !ok {
			return
		}
		resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(out)), nil)
		if err != nil {
			t.Fatalf("rewritten answer does not parse: %v\n%q", err, out)
		}
		var body apierr.Body
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode < 400 {
			t.Fatalf("rewritten answer %d, body error %v", resp.StatusCode, err)
		}
	})
}
