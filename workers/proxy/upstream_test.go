package proxy

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// counting serves "ok" and counts the connections it accepted.
func counting(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &conns
}

func get(t *testing.T, p *connPool, path string, deadline time.Time) (int, string, error) {
	t.Helper()
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(path)
	req.Header.SetHost(p.addr)
	err := p.do(req, resp, deadline, true)
	return resp.StatusCode(), string(resp.Body()), err
}

func TestPoolKeepsConnectionsAlive(t *testing.T) {
	srv, conns := counting(t, func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok " + r.URL.Path)) })
	p := newConnPool(strings.TrimPrefix(srv.URL, "http://"), false, 4, 1<<20)
	defer p.close()
	for i := 0; i < 50; i++ {
		st, body, err := get(t, p, "/a", time.Now().Add(5*time.Second))
		if err != nil || st != 200 || body != "ok /a" {
			t.Fatalf("request %d: %d %q %v", i, st, body, err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("50 sequential requests opened %d connections, want 1", n)
	}
}

func TestPoolBoundsConnectionsAndWaits(t *testing.T) {
	release := make(chan struct{})
	var inside atomic.Int64
	srv, conns := counting(t, func(w http.ResponseWriter, r *http.Request) {
		inside.Add(1)
		<-release
		_, _ = w.Write([]byte("ok"))
	})
	p := newConnPool(strings.TrimPrefix(srv.URL, "http://"), false, 2, 1<<20)
	defer p.close()
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, err := get(t, p, "/", time.Now().Add(10*time.Second))
			errs <- err
		}()
	}
	deadline := time.Now().Add(5 * time.Second)
	for inside.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	// Two are at the upstream; the third waits for a connection. One more
	// with a deadline already near gives up with errNoFreeConn.
	if _, _, err := get(t, p, "/", time.Now().Add(50*time.Millisecond)); !errors.Is(err, errNoFreeConn) {
		t.Fatalf("with every connection busy: %v, want errNoFreeConn", err)
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := conns.Load(); n != 2 {
		t.Fatalf("opened %d connections, want at most 2", n)
	}
}

// An upstream that closes a kept-alive connection between requests (the
// keep-alive race) costs no failed request: the pool retries once on a new
// connection.
func TestPoolRetriesStaleConnection(t *testing.T) {
	srv, conns := counting(t, func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) })
	p := newConnPool(strings.TrimPrefix(srv.URL, "http://"), false, 4, 1<<20)
	defer p.close()
	if _, _, err := get(t, p, "/", time.Now().Add(5*time.Second)); err != nil {
		t.Fatal(err)
	}
	srv.CloseClientConnections() // the server drops the idle connection
	st, body, err := get(t, p, "/", time.Now().Add(5*time.Second))
	if err != nil || st != 200 || body != "ok" {
		t.Fatalf("after the upstream closed the idle connection: %d %q %v", st, body, err)
	}
	if n := conns.Load(); n != 2 {
		t.Fatalf("connections %d, want 2", n)
	}
}

func TestPoolLimitsResponseBodyAndRefusesAfterClose(t *testing.T) {
	srv, _ := counting(t, func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(make([]byte, 4096)) })
	p := newConnPool(strings.TrimPrefix(srv.URL, "http://"), false, 4, 1024)
	if _, _, err := get(t, p, "/", time.Now().Add(5*time.Second)); !errors.Is(err, fasthttp.ErrBodyTooLarge) {
		t.Fatalf("4 KiB body with a 1 KiB limit: %v", err)
	}
	p.close()
	if _, _, err := get(t, p, "/", time.Now().Add(5*time.Second)); !errors.Is(err, errPoolClosed) {
		t.Fatalf("after close: %v", err)
	}
}

func TestPoolDialErrors(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	p := newConnPool(addr, false, 4, 1024)
	defer p.close()
	if _, _, err := get(t, p, "/", time.Now().Add(5*time.Second)); err == nil {
		t.Fatal("no error from a closed port")
	}
	if len(p.slots) != 0 {
		t.Fatalf("a failed dial kept its slot: %d", len(p.slots))
	}
}
