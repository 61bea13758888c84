package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
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
	_, err := p.do(context.Background(), req, resp, deadline, true)
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

// resetServer is an upstream that reads each request in full, counts it,
// and then resets the connection (SetLinger(0) and Close): the request ran,
// and no answer came back.
func resetServer(t *testing.T) (addr string, executed *atomic.Int64) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	executed = &atomic.Int64{}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err == nil {
					_, _ = io.Copy(io.Discard, req.Body)
					executed.Add(1)
				}
				_ = c.(*net.TCPConn).SetLinger(0)
				_ = c.Close()
			}()
		}
	}()
	t.Cleanup(func() { _ = l.Close(); wg.Wait() })
	return l.Addr().String(), executed
}

func post(p *connPool, ctx context.Context, replayable bool) (result, error) {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.Header.SetMethod(http.MethodPost)
	req.SetRequestURI("/run")
	req.Header.SetHost(p.addr)
	req.SetBodyString(`{"n":1}`)
	return p.do(ctx, req, resp, time.Now().Add(5*time.Second), replayable)
}

// A request that was written and then reset is reported as sent, and is
// not replayed by the pool even when the connection was a kept-alive one.
func TestPoolResetAfterReadIsSentAndNotReplayed(t *testing.T) {
	addr, executed := resetServer(t)
	p := newConnPool(addr, false, 4, 1<<20)
	defer p.close()
	r, err := post(p, context.Background(), false)
	var ns *NotSentError
	if err == nil || errors.As(err, &ns) || !r.sent {
		t.Fatalf("POST to a resetting upstream: result %+v, err %v; want a sent request and an error", r, err)
	}
	if n := executed.Load(); n != 1 {
		t.Fatalf("upstream executed the POST %d times, want 1", n)
	}
}

// An idle connection the upstream closed is noticed before anything is
// written to it: a POST then runs exactly once, on a new connection.
func TestPoolSkipsClosedIdleConnectionBeforeWriting(t *testing.T) {
	var executed atomic.Int64
	srv, conns := counting(t, func(w http.ResponseWriter, r *http.Request) {
		executed.Add(1)
		_, _ = w.Write([]byte("ok"))
	})
	p := newConnPool(strings.TrimPrefix(srv.URL, "http://"), false, 4, 1<<20)
	defer p.close()
	if _, err := post(p, context.Background(), false); err != nil {
		t.Fatal(err)
	}
	srv.CloseClientConnections()
	// Wait until the close reached our side of the idle connection.
	deadline := time.Now().Add(5 * time.Second)
	for {
		pc := <-p.idle
		open := pc.peek.alive()
		p.idle <- pc
		if !open {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the idle connection never showed as closed")
		}
		time.Sleep(5 * time.Millisecond)
	}
	r, err := post(p, context.Background(), false)
	if err != nil || r.staleRetries != 0 {
		t.Fatalf("POST after the upstream closed the idle connection: %+v %v", r, err)
	}
	if n := executed.Load(); n != 2 {
		t.Fatalf("executed %d, want 2", n)
	}
	if n := conns.Load(); n != 2 {
		t.Fatalf("connections %d, want 2", n)
	}
}

func TestPoolDialFailureIsNotSent(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	p := newConnPool(addr, false, 4, 1024)
	defer p.close()
	r, err := post(p, context.Background(), false)
	var ns *NotSentError
	if !errors.As(err, &ns) || !ns.Dial || r.sent {
		t.Fatalf("dial to a closed port: %+v %v, want a NotSentError from the dial", r, err)
	}
}

// A hung upstream does not hold the request past its context: cancelling
// it (as the worker's shutdown does) ends the blocked read at once.
func TestPoolStopsWhenContextEnds(t *testing.T) {
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	srv, _ := counting(t, func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
	})
	defer close(release)
	p := newConnPool(strings.TrimPrefix(srv.URL, "http://"), false, 4, 1024)
	defer p.close()
	cause := errors.New("stop now")
	ctx, cancel := context.WithCancelCause(context.Background())
	errc := make(chan error, 1)
	go func() { _, err := post(p, ctx, true); errc <- err }()
	<-entered
	cancel(cause)
	select {
	case err := <-errc:
		if !errors.Is(err, cause) {
			t.Fatalf("err %v, want the context's cause", err)
		}
	case <-time.After(4 * time.Second):
		t.Fatal("the request did not stop when its context ended")
	}
}
