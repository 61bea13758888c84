package lb_test

// Tests of the request path's safety rules, against real upstreams that
// misbehave on purpose: a request runs once unless retrying is safe, a full
// service answers at once, an expired request is not sent.

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/subjects"
)

// resetUpstream reads every request in full, counts it, then resets the
// connection (SetLinger(0) and Close): the request ran and no answer came.
// GET /health is answered 200, so health checks keep it in the pool.
type resetUpstream struct {
	URL      string
	executed atomic.Int64
}

func newResetUpstream(t *testing.T) *resetUpstream {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &resetUpstream{URL: "http://" + l.Addr().String()}
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	serve := func(c net.Conn) {
		defer wg.Done()
		defer func() { mu.Lock(); delete(conns, c); mu.Unlock() }()
		br := bufio.NewReader(c)
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				_ = c.Close()
				return
			}
			_, _ = io.Copy(io.Discard, req.Body)
			if req.URL.Path == "/health" {
				_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
				continue
			}
			u.executed.Add(1)
			_ = c.(*net.TCPConn).SetLinger(0)
			_ = c.Close()
			return
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Add(1)
			go serve(c)
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		mu.Lock()
		for c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return u
}

// countingUpstream answers "ok" and counts the requests it executed.
func countingUpstream(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.URL.Path != "/health" {
			n.Add(1)
		}
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

// metric returns the value of the sample line of /metrics starting with
// name{labels} (labels in Prometheus' sorted order), 0 when absent.
func metric(t *testing.T, base, series string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return string(b)
}

// A POST that the upstream read in full before resetting the connection
// ran: it is not sent again, and the client gets 502 with the upstream's
// error (the reported bug: 6 POSTs ran 11 times and the client got 503).
func TestPOSTResetAfterReadRunsOnceAnd502(t *testing.T) {
	reset := newResetUpstream(t)
	cfg := baseConfig(t)
	cfg.Services["vision"] = config.Service{EjectAfter: 1000, Upstreams: []config.Upstream{{URL: reset.URL}}}
	s := startSys(t, cfg)
	for i := 0; i < 6; i++ {
		resp := do(t, "POST", s.url+"/vision/run", []byte(`{"n":1}`), "Content-Type", "application/json")
		if resp.StatusCode != http.StatusBadGateway {
			t.Fatalf("POST %d: %d %s, want 502", i, resp.StatusCode, readAll(t, resp))
		}
		if code := apiError(t, resp); code != "bad_gateway" {
			t.Fatalf("POST %d: code %s, want bad_gateway", i, code)
		}
	}
	if n := reset.executed.Load(); n != 6 {
		t.Fatalf("6 POSTs executed %d times, want 6", n)
	}
	if v := metric(t, s.url, `switchyard_proxy_retries_refused_total{reason="no_upstream_left",service="vision"}`) +
		metric(t, s.url, `switchyard_proxy_retries_refused_total{reason="not_replayable",service="vision"}`); v != 6 {
		t.Errorf("retries refused = %v, want 6", v)
	}
}

// With a second, healthy upstream: POSTs still run exactly once each (a
// POST that hit the resetting upstream gets 502, never a second run);
// GETs fail over through the reset and all succeed; a POST with an
// Idempotency-Key may be retried, and succeeds.
func TestResetFailoverOnlyWhenSafe(t *testing.T) {
	reset := newResetUpstream(t)
	good, goodRuns := countingUpstream(t)
	cfg := baseConfig(t)
	cfg.Services["vision"] = config.Service{EjectAfter: 1000, RetryBudgetPercent: 100,
		Upstreams: []config.Upstream{{URL: reset.URL}, {URL: good.URL}}}
	s := startSys(t, cfg)

	var posts502, posts200 int
	for i := 0; i < 6; i++ {
		resp := do(t, "POST", s.url+"/vision/run", []byte(`{"n":1}`))
		body := readAll(t, resp)
		switch resp.StatusCode {
		case http.StatusBadGateway:
			posts502++
		case http.StatusOK:
			posts200++
		default:
			t.Fatalf("POST %d: %d %s", i, resp.StatusCode, body)
		}
	}
	if runs := reset.executed.Load() + goodRuns.Load(); runs != 6 {
		t.Fatalf("6 POSTs executed %d times (reset %d, good %d), want 6", runs, reset.executed.Load(), goodRuns.Load())
	}
	if posts502 != int(reset.executed.Load()) || posts502 == 0 || posts200 == 0 {
		t.Fatalf("POSTs: %d got 502, %d got 200; the resetting upstream ran %d", posts502, posts200, reset.executed.Load())
	}

	resetBefore, goodBefore := reset.executed.Load(), goodRuns.Load()
	for i := 0; i < 6; i++ {
		resp := do(t, "GET", s.url+"/vision/item", nil)
		if body := readAll(t, resp); resp.StatusCode != http.StatusOK || body != "ok" {
			t.Fatalf("GET %d: %d %q, want 200 from the healthy upstream", i, resp.StatusCode, body)
		}
	}
	resetGETs := reset.executed.Load() - resetBefore
	if goodRuns.Load()-goodBefore != 6 || resetGETs == 0 {
		t.Fatalf("GETs: healthy upstream ran %d (want 6), resetting one %d (want > 0)", goodRuns.Load()-goodBefore, resetGETs)
	}
	if v := metric(t, s.url, `switchyard_proxy_retries_total{reason="broken",service="vision"}`); v != float64(resetGETs) {
		t.Errorf("broken retries = %v, want %d", v, resetGETs)
	}
	if v := metric(t, s.url, `switchyard_proxy_failovers_total{service="vision"}`); v != float64(resetGETs) {
		t.Errorf("failovers = %v, want %d", v, resetGETs)
	}

	for i := 0; i < 4; i++ {
		resp := do(t, "POST", s.url+"/vision/run", []byte(`{}`), "Idempotency-Key", fmt.Sprintf("order-%d", i))
		if body := readAll(t, resp); resp.StatusCode != http.StatusOK {
			t.Fatalf("POST with Idempotency-Key %d: %d %s, want 200", i, resp.StatusCode, body)
		}
	}
}

// Every upstream refusing connections: the request reached none, so every
// one is tried, and the answer says so (503 with Retry-After), for a POST
// too.
func TestDialFailuresFailOverForEveryMethod(t *testing.T) {
	// The upstream passes the health probe at start, then goes away: the
	// pool still counts it healthy (no further probe in this test), so
	// requests are sent to it and fail to connect.
	dead, _ := countingUpstream(t)
	deadURL := dead.URL
	good, goodRuns := countingUpstream(t)
	cfg := baseConfig(t)
	cfg.Rust.HealthCheckInterval = config.Duration(time.Hour)
	cfg.Services["vision"] = config.Service{EjectAfter: 1000,
		Upstreams: []config.Upstream{{URL: deadURL}, {URL: good.URL}}}
	s := startSys(t, cfg)
	passed := `switchyard_proxy_health_checks_total{result="pass",service="vision",upstream="` + strings.TrimPrefix(deadURL, "http://") + `"}`
	waitFor(t, "the first probe of the upstream that goes away", func() bool { return metric(t, s.url, passed) == 1 })
	dead.Close()
	for i := 0; i < 6; i++ {
		resp := do(t, "POST", s.url+"/vision/run", []byte(`{}`))
		if body := readAll(t, resp); resp.StatusCode != http.StatusOK {
			t.Fatalf("POST %d: %d %s, want 200 from the upstream that accepts connections", i, resp.StatusCode, body)
		}
	}
	if n := goodRuns.Load(); n != 6 {
		t.Fatalf("executed %d, want 6", n)
	}
	if v := metric(t, s.url, `switchyard_proxy_retries_total{reason="not_sent",service="vision"}`); v == 0 {
		t.Error("no not_sent retry counted")
	}
}

// hungUpstream holds every request but /health until released, and counts
// how many it holds.
type hungUpstream struct {
	*httptest.Server
	inside  atomic.Int64
	release chan struct{}
	once    sync.Once
}

func newHungUpstream(t *testing.T) *hungUpstream {
	t.Helper()
	h := &hungUpstream{release: make(chan struct{})}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			return
		}
		_, _ = io.Copy(io.Discard, r.Body)
		h.inside.Add(1)
		select {
		case <-h.release:
		case <-r.Context().Done():
		}
		_, _ = io.WriteString(w, "late")
	}))
	t.Cleanup(h.Close)
	t.Cleanup(h.free) // runs first
	return h
}

func (h *hungUpstream) free() { h.once.Do(func() { close(h.release) }) }

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// result of one request sent in the background.
type result struct {
	status int
	err    error
}

func background(url string, body []byte, n int) chan result {
	out := make(chan result, n)
	for i := 0; i < n; i++ {
		go func() {
			resp, err := http.Post(url, "text/plain", bytes.NewReader(body))
			if err != nil {
				out <- result{err: err}
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			out <- result{status: resp.StatusCode}
		}()
	}
	return out
}

// LB_MAX_IN_FLIGHT=4 and 8 requests hung at the upstream: 4 reach it, the
// rest and the next request get 503 overloaded with Retry-After after at
// most lb.queue_wait, long before the request timeout.
func TestOverloadAnswers503Fast(t *testing.T) {
	up := newHungUpstream(t)
	cfg := baseConfig(t)
	cfg.Rust.RequestTimeout = config.Duration(30 * time.Second)
	cfg.Rust.VisionServiceURL = up.URL
	cfg.LB.MaxInFlight = 4
	cfg.LB.QueueWait = config.Duration(50 * time.Millisecond)
	s := startSys(t, cfg)

	first := background(s.url+"/vision/hang", nil, 8)
	waitFor(t, "4 requests at the upstream", func() bool { return up.inside.Load() == 4 })
	// The 4 beyond the bound are answered without waiting for the upstream.
	for i := 0; i < 4; i++ {
		select {
		case r := <-first:
			if r.err != nil || r.status != http.StatusServiceUnavailable {
				t.Fatalf("request beyond the bound: %+v, want 503", r)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a request beyond the in-flight bound waited (request timeout 30s)")
		}
	}

	client := &http.Client{Timeout: 10 * time.Second} // well below the 30s request timeout
	resp, err := client.Get(s.url + "/vision/next")
	if err != nil {
		t.Fatalf("next request: %v (it should be answered at once)", err)
	}
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("next request: %d Retry-After %q, want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if code := apiError(t, resp); code != "overloaded" {
		t.Fatalf("code %s, want overloaded", code)
	}
	if n := up.inside.Load(); n != 4 {
		t.Fatalf("%d requests reached the upstream, want 4", n)
	}
	if v := metric(t, s.url, `switchyard_proxy_dropped_total{reason="overloaded",service="vision"}`); v != 5 {
		t.Errorf("overloaded drops = %v, want 5", v)
	}
	up.free()
	for i := 0; i < 4; i++ {
		if r := <-first; r.err != nil || r.status != http.StatusOK {
			t.Fatalf("held request: %+v, want 200 once released", r)
		}
	}
}

// The edge's own bounds: lb.edge_max_in_flight requests at once, and
// lb.edge_max_body_memory bytes of bodies; beyond, 503 with Retry-After.
func TestEdgeBoundsInFlightAndBodyMemory(t *testing.T) {
	up := newHungUpstream(t)
	cfg := baseConfig(t)
	cfg.Rust.RequestTimeout = config.Duration(30 * time.Second)
	cfg.Rust.VisionServiceURL = up.URL
	cfg.Server.MaxBodyBytes = 4096
	cfg.LB.EdgeMaxInFlight = 3
	cfg.LB.EdgeMaxBodyMemory = 4096
	s := startSys(t, cfg)

	held := background(s.url+"/vision/hang", bytes.Repeat([]byte("b"), 3000), 1)
	waitFor(t, "the first request at the upstream", func() bool { return up.inside.Load() == 1 })
	resp := do(t, "POST", s.url+"/vision/more", bytes.Repeat([]byte("b"), 2000))
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("body over the memory bound: %d, want 503 with Retry-After", resp.StatusCode)
	}
	if code := apiError(t, resp); code != "overloaded" {
		t.Fatalf("code %s", code)
	}
	more := background(s.url+"/vision/hang", []byte("x"), 2)
	waitFor(t, "3 requests at the upstream", func() bool { return up.inside.Load() == 3 })
	resp = do(t, "GET", s.url+"/vision/one-too-many", nil)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("request over the in-flight bound: %d, want 503 with Retry-After", resp.StatusCode)
	}
	_ = apiError(t, resp)
	if v := metric(t, s.url, `switchyard_lb_rejected_total{reason="in_flight"}`); v != 1 {
		t.Errorf("in_flight rejections %v, want 1", v)
	}
	if v := metric(t, s.url, `switchyard_lb_rejected_total{reason="body_memory"}`); v != 1 {
		t.Errorf("body_memory rejections %v, want 1", v)
	}
	up.free()
	for _, ch := range []chan result{held, more, more} {
		if r := <-ch; r.err != nil || r.status != http.StatusOK {
			t.Fatalf("held request: %+v", r)
		}
	}
	// Everything was given back.
	resp = do(t, "POST", s.url+"/vision/after", bytes.Repeat([]byte("b"), 4000))
	if body := readAll(t, resp); resp.StatusCode != http.StatusOK {
		t.Fatalf("after the others ended: %d %s", resp.StatusCode, body)
	}
}

// A request whose Switchyard-Deadline has passed is answered 504 by the
// proxy worker and never sent to the upstream.
func TestExpiredRequestIsDropped(t *testing.T) {
	up, runs := countingUpstream(t)
	cfg := baseConfig(t)
	cfg.Rust.VisionServiceURL = up.URL
	s := startSys(t, cfg)
	nc := s.nats.Conn(t)
	send := func(deadline time.Time) *nats.Msg {
		m := nats.NewMsg("svc.vision.x")
		m.Header.Set(subjects.HeaderPath, "/x")
		m.Header.Set(subjects.HeaderDeadline, strconv.FormatInt(deadline.UnixMilli(), 10))
		reply, err := nc.RequestMsg(m, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return reply
	}
	before := runs.Load()
	reply := send(time.Now().Add(-time.Second))
	if st, code := reply.Header.Get(subjects.HeaderStatus), reply.Header.Get(subjects.HeaderErrorCode); st != "504" || code != "timeout" {
		t.Fatalf("expired request: status %q code %q, want 504 timeout", st, code)
	}
	if reply := send(time.Now().Add(5 * time.Second)); reply.Header.Get(subjects.HeaderStatus) != "" || string(reply.Data) != "ok" {
		t.Fatalf("live request: %v %q", reply.Header, reply.Data)
	}
	if n := runs.Load() - before; n != 1 {
		t.Fatalf("upstream ran %d requests, want 1 (the expired one never)", n)
	}
	if v := metric(t, s.url, `switchyard_proxy_dropped_total{reason="expired",service="vision"}`); v != 1 {
		t.Errorf("expired drops = %v, want 1", v)
	}
}

// A request's Switchyard-Deadline, shorter than the worker's own timeout,
// ends the upstream I/O: the worker answers 504 and closes the connection
// the hung upstream was holding.
func TestDeadlineHeaderStopsUpstreamIO(t *testing.T) {
	var ended atomic.Int64
	entered := make(chan struct{}, 1)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			return
		}
		entered <- struct{}{}
		<-r.Context().Done() // the worker closed the connection
		ended.Add(1)
	}))
	t.Cleanup(up.Close)
	cfg := baseConfig(t)
	cfg.Rust.RequestTimeout = config.Duration(60 * time.Second)
	cfg.Rust.VisionServiceURL = up.URL
	s := startSys(t, cfg)
	nc := s.nats.Conn(t)
	m := nats.NewMsg("svc.vision.hang")
	m.Header.Set(subjects.HeaderPath, "/hang")
	m.Header.Set(subjects.HeaderDeadline, strconv.FormatInt(time.Now().Add(time.Second).UnixMilli(), 10))
	reply, err := nc.RequestMsg(m, 30*time.Second) // far beyond the header's deadline
	if err != nil {
		t.Fatal(err)
	}
	if st, code := reply.Header.Get(subjects.HeaderStatus), reply.Header.Get(subjects.HeaderErrorCode); st != "504" || code != "timeout" {
		t.Fatalf("reply %q %q %s, want 504 timeout", st, code, reply.Data)
	}
	<-entered
	waitFor(t, "the upstream to see its connection closed", func() bool { return ended.Load() == 1 })
}

// An async job whose request reached the upstream and broke off (502
// bad_gateway) runs again only when it is replayable: an unkeyed POST is
// failed after one run; a POST with an Idempotency-Key is retried.
func TestAsyncJobSentAndBrokenRunsAgainOnlyWhenReplayable(t *testing.T) {
	reset := newResetUpstream(t)
	cfg := baseConfig(t)
	cfg.LB.JobMaxDeliver = 3
	cfg.Services["vision"] = config.Service{EjectAfter: 1000, Upstreams: []config.Upstream{{URL: reset.URL}}}
	s := startSys(t, cfg, withJobs...)

	v, resp := submit(t, s.url+"/vision/run", `{"n":1}`, "Content-Type", "application/json")
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("submit: %d", resp.StatusCode)
	}
	failed := waitJob(t, s.url, v.ID, "failed")
	if failed.ErrorCode != "bad_gateway" || failed.Attempts != 1 {
		t.Fatalf("unkeyed POST job: %+v, want failed with bad_gateway after 1 attempt", failed)
	}
	if n := reset.executed.Load(); n != 1 {
		t.Fatalf("unkeyed POST job executed %d times, want 1", n)
	}

	v, resp = submit(t, s.url+"/vision/run", `{"n":2}`, "Content-Type", "application/json", "Idempotency-Key", "replay-me")
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("keyed submit: %d", resp.StatusCode)
	}
	failed = waitJob(t, s.url, v.ID, "failed")
	if failed.ErrorCode != "attempts_exhausted" || failed.Attempts != 3 {
		t.Fatalf("keyed POST job: %+v, want attempts_exhausted after 3 attempts", failed)
	}
	if n := reset.executed.Load(); n != 1+3 {
		t.Fatalf("keyed POST job executed %d times, want 3", n-1)
	}
}
