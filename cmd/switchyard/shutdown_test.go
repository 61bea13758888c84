package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"syscall"
	"testing"
	"time"
)

// SIGTERM while an upstream hangs: the process still exits 0 within
// SHUTDOWN_TIMEOUT, and the request in flight at the deadline gets a 503
// answer rather than a dropped connection.
func TestBinarySIGTERMWithHungUpstream(t *testing.T) {
	entered := make(chan struct{})
	release := make(chan struct{})
	var enterOnce, releaseOnce sync.Once
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hang" {
			enterOnce.Do(func() { close(entered) })
			select {
			case <-release: // never, while the test runs
			case <-r.Context().Done():
			}
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(upstream.Close)
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })

	const shutdownTimeout = 3 * time.Second
	e := newInstanceEnv(t).with("RUST_VISION_SERVICE_URL", upstream.URL, "SHUTDOWN_TIMEOUT", shutdownTimeout.String())
	c := httpClient(t)
	p := startBinary(t, e, "run")
	waitHealthy(t, p, e, c, 60*time.Second)
	waitRouted(t, p, e, c, "/vision/ping")

	type result struct {
		status int
		code   string
		retry  string
		err    error
	}
	res := make(chan result, 1)
	go func() {
		resp, err := c.Get(e.url("lb", "/vision/hang"))
		if err != nil {
			res <- result{err: err}
			return
		}
		defer resp.Body.Close()
		var body struct {
			Error struct{ Code string } `json:"error"`
		}
		err = json.NewDecoder(resp.Body).Decode(&body)
		res <- result{resp.StatusCode, body.Error.Code, resp.Header.Get("Retry-After"), err}
	}()
	select {
	case <-entered:
	case r := <-res:
		t.Fatalf("GET /vision/hang answered before reaching the upstream: %+v", r)
	case <-time.After(30 * time.Second):
		t.Fatalf("upstream never got /hang; stderr:\n%s", p.stderr)
	}
	p.signal(syscall.SIGTERM)
	sent := time.Now()

	// Generous bounds: the point is that it ends, not how fast.
	select {
	case r := <-res:
		if r.err != nil || r.status != http.StatusServiceUnavailable || r.code != "shutting_down" || r.retry == "" {
			t.Errorf("in-flight request at the deadline = %+v, want 503 shutting_down with Retry-After", r)
		}
	case <-time.After(shutdownTimeout + 20*time.Second):
		t.Fatalf("in-flight request never answered; stderr:\n%s", p.stderr)
	}
	if code := p.wait(shutdownTimeout + 20*time.Second); code != 0 {
		t.Errorf("exit code after SIGTERM = %d, want 0; stderr:\n%s", code, p.stderr)
	}
	t.Logf("exited %s after SIGTERM (SHUTDOWN_TIMEOUT %s)", time.Since(sent).Round(time.Millisecond), shutdownTimeout)
	p.noErrors()
}
