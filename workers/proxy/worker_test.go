package proxy

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/jetstream/jstest"
	"github.com/switchyard/switchyard/subjects"
)

// gatedUpstream holds every request but /health until its gate opens.
func gatedUpstream(t *testing.T) (url string, inside *atomic.Int64, open func()) {
	t.Helper()
	inside = &atomic.Int64{}
	gate := make(chan struct{})
	opened := atomic.Bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			return
		}
		inside.Add(1)
		select {
		case <-gate:
			_, _ = io.WriteString(w, "done")
		case <-r.Context().Done():
		}
	}))
	open = func() {
		if opened.CompareAndSwap(false, true) {
			close(gate)
		}
	}
	t.Cleanup(srv.Close)
	t.Cleanup(open)
	return srv.URL, inside, open
}

func startWorker(t *testing.T, nc *nats.Conn, upstream string, maxInFlight int, queueWait time.Duration) *Worker {
	t.Helper()
	w, err := New(Options{
		NC:             nc,
		Services:       []config.ResolvedService{{Name: "vision", Service: config.Service{Upstreams: []config.Upstream{{URL: upstream}}}}},
		RequestTimeout: 30 * time.Second, HealthInterval: time.Hour,
		MaxInFlight: maxInFlight, QueueWait: queueWait,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Shutdown(context.Background()) })
	return w
}

// request sends a GET for path to the vision service and delivers the reply.
func request(nc *nats.Conn, path string) chan *nats.Msg {
	out := make(chan *nats.Msg, 1)
	go func() {
		m := nats.NewMsg("svc.vision.x")
		m.Header.Set(subjects.HeaderPath, path)
		reply, err := nc.RequestMsg(m, 30*time.Second)
		if err != nil {
			reply = &nats.Msg{Header: nats.Header{subjects.HeaderStatus: {"client: " + err.Error()}}}
		}
		out <- reply
	}()
	return out
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A request that finds every slot busy waits for one, up to QueueWait, and
// is served when a slot frees in time.
func TestQueuedRequestIsServedWhenASlotFrees(t *testing.T) {
	ns := jstest.Start(t)
	nc := ns.Conn(t)
	url, inside, open := gatedUpstream(t)
	w := startWorker(t, nc, url, 1, 20*time.Second)
	first := request(nc, "/first")
	waitUntil(t, "the first request at the upstream", func() bool { return inside.Load() == 1 })
	second := request(nc, "/second")
	waitUntil(t, "the second request to wait", func() bool { return len(w.services["vision"].waiting) == 1 })
	open()
	for _, ch := range []chan *nats.Msg{first, second} {
		if r := <-ch; r.Header.Get(subjects.HeaderStatus) != "" || string(r.Data) != "done" {
			t.Fatalf("reply %v %q, want 200 done", r.Header, r.Data)
		}
	}
	if n := inside.Load(); n != 2 {
		t.Fatalf("upstream served %d, want 2", n)
	}
}

// Shutdown with a hung upstream: the request in flight is cut off shortly
// before the deadline and answered 503 shutting_down, and Shutdown returns
// without error.
func TestShutdownCutsOffHungRequests(t *testing.T) {
	ns := jstest.Start(t)
	nc := ns.Conn(t)
	url, inside, _ := gatedUpstream(t)
	w := startWorker(t, nc, url, 4, 0)
	reply := request(nc, "/hang")
	waitUntil(t, "the request at the upstream", func() bool { return inside.Load() == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := w.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	r := <-reply
	if st, code := r.Header.Get(subjects.HeaderStatus), r.Header.Get(subjects.HeaderErrorCode); st != "503" || code != "shutting_down" || r.Header.Get("Retry-After") == "" {
		t.Fatalf("reply %q %q %v, want 503 shutting_down with Retry-After", st, code, r.Header)
	}
}

// Every connection to the only upstream busy (LB_MAX_CONNS_PER_UPSTREAM=1)
// while in-flight slots are free: the next request waits at most the
// queue wait for a connection, then gets 503 overloaded; it was not sent.
func TestBusyConnectionsAnswerOverloaded(t *testing.T) {
	ns := jstest.Start(t)
	nc := ns.Conn(t)
	url, inside, open := gatedUpstream(t)
	w, err := New(Options{
		NC:             nc,
		Services:       []config.ResolvedService{{Name: "vision", Service: config.Service{Upstreams: []config.Upstream{{URL: url}}}}},
		RequestTimeout: 30 * time.Second, HealthInterval: time.Hour,
		MaxInFlight: 4, MaxConnsPerUpstream: 1, QueueWait: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Shutdown(context.Background()) })
	first := request(nc, "/first")
	waitUntil(t, "the first request at the upstream", func() bool { return inside.Load() == 1 })
	select {
	case r := <-request(nc, "/second"):
		if st, code := r.Header.Get(subjects.HeaderStatus), r.Header.Get(subjects.HeaderErrorCode); st != "503" || code != "overloaded" || r.Header.Get("Retry-After") == "" {
			t.Fatalf("second request: %q %q, want 503 overloaded with Retry-After", st, code)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the second request waited for a connection (request timeout 30s)")
	}
	if n := inside.Load(); n != 1 {
		t.Fatalf("upstream got %d requests, want 1", n)
	}
	open()
	if r := <-first; string(r.Data) != "done" {
		t.Fatalf("first request: %v %q", r.Header, r.Data)
	}
}
