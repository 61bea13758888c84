package lb_test

import (
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/jetstream/jstest"
)

// TestInFlightFailAtOnceWhenConnectionDrops: requests a worker received
// and never answered are answered 502 outcome_unknown as soon as the
// edge's NATS connection drops, not at their 60 s timeout; a request while
// the connection is down gets 503 with Retry-After; requests work again
// after the server is back.
func TestInFlightFailAtOnceWhenConnectionDrops(t *testing.T) {
	cfg := baseConfig(t)
	cfg.Rust.RequestTimeout = config.Duration(60 * time.Second)
	cfg.Services["hang"] = config.Service{}
	dir := t.TempDir()
	ns := jstest.StartIn(t, dir)
	s := startOn(t, ns, cfg)

	worker, err := nats.Connect(ns.URL, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer worker.Close()
	var got atomic.Int64
	answer := atomic.Bool{}
	if _, err := worker.QueueSubscribe("svc.hang.>", "svc.hang", func(m *nats.Msg) {
		if answer.Load() {
			r := nats.NewMsg("")
			r.Header.Set("Switchyard-Status", "200")
			_ = m.RespondMsg(r)
			return
		}
		got.Add(1) // never answers
	}); err != nil {
		t.Fatal(err)
	}
	_ = worker.Flush()

	const n = 4
	type result struct {
		status int
		code   string
	}
	results := make(chan result, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Post(s.url+"/hang/x", "text/plain", strings.NewReader("q"))
			if err != nil {
				results <- result{status: -1, code: err.Error()}
				return
			}
			var body struct {
				Error struct{ Code string } `json:"error"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			results <- result{status: resp.StatusCode, code: body.Error.Code}
		}()
	}
	for deadline := time.Now().Add(20 * time.Second); got.Load() < n; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the worker received %d of %d requests", got.Load(), n)
		}
	}
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(ns.URL, "nats://"))
	killed := time.Now()
	ns.Shutdown()
	wg.Wait()
	close(results)
	for r := range results {
		if r.status != http.StatusBadGateway || r.code != "outcome_unknown" {
			t.Errorf("in flight at the drop: %d %s, want 502 outcome_unknown", r.status, r.code)
		}
	}
	// A generous bound, far below the 60 s timeout they would otherwise wait.
	if took := time.Since(killed); took > 20*time.Second {
		t.Errorf("in-flight requests answered %s after the drop", took)
	}
	resp, err := http.Post(s.url+"/hang/x", "text/plain", strings.NewReader("q"))
	if err != nil {
		t.Fatal(err)
	}
	if code := apiError(t, resp); resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("while disconnected: %d %s Retry-After %q, want 503 with Retry-After", resp.StatusCode, code, resp.Header.Get("Retry-After"))
	}
	answer.Store(true)
	p, _ := strconv.Atoi(port)
	jstest.StartAt(t, dir, p)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err := http.Post(s.url+"/hang/x", "text/plain", strings.NewReader("q"))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("requests did not work again after the server came back")
		}
	}
}
