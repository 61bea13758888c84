package httpnats_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/switchyard/switchyard/internal/httpnats"
	"github.com/switchyard/switchyard/subjects"
)

func FuzzDecodeRequest(f *testing.F) {
	f.Add("Switchyard-Method", "post", "switchyard-path", "/a/b", "X-A", "1", []byte("body"))
	f.Add("switchyard-path", "relative", "Connection", "close", "nats-msg-id", "x", []byte(nil))
	f.Add("Switchyard-Query", "a=1&b", "Switchyard-Method", "", "", "", []byte{0xff})
	f.Add("Switchyard-Deadline", "-5", "switchyard-deadline", "1764262800123", "Switchyard-Deadline", "x", []byte(nil))
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2, k3, v3 string, body []byte) {
		m := &nats.Msg{Header: nats.Header{}, Data: body}
		m.Header[k1] = append(m.Header[k1], v1)
		m.Header[k2] = append(m.Header[k2], v2)
		m.Header[k3] = append(m.Header[k3], v3)
		r := httpnats.DecodeRequest(m)
		if !strings.HasPrefix(r.Path, "/") {
			t.Fatalf("path %q does not start with /", r.Path)
		}
		if r.Method == "" || r.Method != strings.ToUpper(r.Method) {
			t.Fatalf("method %q", r.Method)
		}
		if string(r.Body) != string(body) {
			t.Fatal("body changed")
		}
		for k := range r.Header {
			ck := http.CanonicalHeaderKey(k)
			if ck == subjects.HeaderMethod || ck == subjects.HeaderPath || ck == subjects.HeaderStatus ||
				strings.HasPrefix(ck, "Nats-") || ck == "Connection" || ck == "Transfer-Encoding" {
				t.Fatalf("header %q passed through", k)
			}
		}
	})
}

func FuzzDecodeResponse(f *testing.F) {
	f.Add("Switchyard-Status", "201", "X-A", "1", "", "", []byte("body"))
	f.Add("switchyard-status", "abc", "Nats-Service-Error-Code", "503", "Nats-Service-Error", "x", []byte(nil))
	f.Add("Nats-Service-Error-Code", "-1", "Switchyard-Error-Code", "", "", "", []byte("{}"))
	f.Add("Switchyard-Status", "99999999999999999999", "", "", "", "", []byte(nil))
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2, k3, v3 string, body []byte) {
		m := &nats.Msg{Header: nats.Header{}, Data: body}
		m.Header[k1] = append(m.Header[k1], v1)
		m.Header[k2] = append(m.Header[k2], v2)
		m.Header[k3] = append(m.Header[k3], v3)
		r := httpnats.DecodeResponse(m)
		if r.Status < 100 || r.Status > 599 {
			t.Fatalf("status %d", r.Status)
		}
		if r.Header == nil {
			t.Fatal("nil header")
		}
		for k := range r.Header {
			ck := http.CanonicalHeaderKey(k)
			if ck == subjects.HeaderStatus || strings.HasPrefix(ck, "Nats-") || ck == "Connection" {
				t.Fatalf("header %q passed through", k)
			}
		}
	})
}
