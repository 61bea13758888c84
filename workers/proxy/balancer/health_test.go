package balancer

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard/switchyard/config"
)

// healthServer is a real loopback server whose /hz answers status (and
// counts the checks), and 404 on any other path.
type healthServer struct {
	*httptest.Server
	status atomic.Int32
	hits   atomic.Int64
}

func newHealthServer(t *testing.T, status int) *healthServer {
	t.Helper()
	h := &healthServer{}
	h.status.Store(int32(status))
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/hz" && r.URL.Path != "/base/hz" || r.Method != http.MethodGet {
			http.NotFound(w, r)
			return
		}
		h.hits.Add(1)
		w.WriteHeader(int(h.status.Load()))
		_, _ = w.Write([]byte("ok\n"))
	}))
	t.Cleanup(h.Close)
	return h
}

func newClient(t *testing.T) *http.Client {
	t.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: 4}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// runChecks starts RunHealthChecks and returns a func that cancels it and
// waits, failing the test if it does not return within a deadline.
func runChecks(t *testing.T, p *Pool, client *http.Client, interval time.Duration) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.RunHealthChecks(ctx, client, interval)
	}()
	var stopped bool
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("RunHealthChecks did not return after cancel")
		}
	}
	t.Cleanup(stop)
	return stop
}

func TestRunHealthChecks(t *testing.T) {
	ok := newHealthServer(t, http.StatusOK)
	bad := newHealthServer(t, http.StatusInternalServerError)
	flip := newHealthServer(t, http.StatusOK)
	reg := prometheus.NewRegistry()
	log, logs := newLog()
	p, err := New(config.ResolvedService{Name: "hc", Service: config.Service{
		Policy: config.PolicyWeighted, HealthPath: "/hz", HealthyThreshold: 2, UnhealthyThreshold: 2,
		Upstreams: []config.Upstream{{URL: ok.URL + "/base/"}, {URL: bad.URL}, {URL: flip.URL}},
	}}, NewMetrics(reg), log)
	if err != nil {
		t.Fatal(err)
	}
	healthy := func() [3]bool {
		var h [3]bool
		for i, s := range p.Snapshot() {
			h[i] = s.Healthy
		}
		return h
	}
	if healthy() != [3]bool{true, true, true} {
		t.Fatalf("upstreams do not start healthy: %v", healthy())
	}
	stop := runChecks(t, p, newClient(t), 10*time.Millisecond)

	eventually(t, 10*time.Second, "500 upstream marked unhealthy", func() bool {
		return healthy() == [3]bool{true, false, true} && ok.hits.Load() > 0
	})
	if ok.hits.Load() == 0 {
		t.Fatal("the base path was not joined: /base/hz never checked")
	}
	for range 100 {
		if u := mustPick(t, p); u.URL.Host != ok.Listener.Addr().String() && u.URL.Host != flip.Listener.Addr().String() {
			t.Fatalf("picked unhealthy upstream %s", u)
		}
	}

	flip.status.Store(http.StatusServiceUnavailable)
	eventually(t, 10*time.Second, "flipped upstream marked unhealthy", func() bool {
		return healthy() == [3]bool{true, false, false}
	})
	for range 100 {
		if u := mustPick(t, p); u != p.Upstreams()[0] {
			t.Fatalf("picked unhealthy upstream %s", u)
		}
	}
	if !logs.Contains(`"msg":"upstream unhealthy"`) || !logs.Contains(`health check answered 503`) {
		t.Fatal("health change not logged with its reason")
	}

	flip.status.Store(http.StatusNoContent)
	eventually(t, 10*time.Second, "flipped upstream healthy again", func() bool {
		return healthy() == [3]bool{true, false, true}
	})

	stop()
	if v := gaugeValue(t, reg, "switchyard_proxy_upstream_healthy", "upstream", bad.Listener.Addr().String()); v != 0 {
		t.Fatalf("healthy gauge of the 500 upstream = %v, want 0", v)
	}
	if v := counterValue(t, reg, "switchyard_proxy_health_checks_total", map[string]string{
		"upstream": ok.Listener.Addr().String(), "result": "pass"}); v < 1 {
		t.Fatalf("no passing checks counted")
	}
}

// The first check decides at once: an upstream that is down at start is
// unhealthy after one probe, not after UnhealthyThreshold intervals (and
// one that is up stays healthy with HealthyThreshold above 1).
func TestFirstHealthCheckDecidesAtOnce(t *testing.T) {
	up := newHealthServer(t, http.StatusOK)
	down := newHealthServer(t, http.StatusServiceUnavailable)
	log, logs := newLog()
	p, err := New(config.ResolvedService{Name: "first", Service: config.Service{
		HealthPath: "/hz", HealthyThreshold: 3, UnhealthyThreshold: 3,
		Upstreams: []config.Upstream{{URL: up.URL}, {URL: down.URL}},
	}}, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	// An interval far longer than the test: only the first check runs.
	runChecks(t, p, newClient(t), time.Hour)
	eventually(t, 10*time.Second, "the down upstream unhealthy after the first probe", func() bool {
		s := p.Snapshot()
		return s[0].Healthy && !s[1].Healthy && up.hits.Load() > 0
	})
	if up.hits.Load() != 1 || down.hits.Load() != 1 {
		t.Errorf("checks: up %d, down %d; want one each", up.hits.Load(), down.hits.Load())
	}
	if !logs.Contains(`health check answered 503`) {
		t.Error("the first verdict is not logged with its reason")
	}
}

func TestHealthCheckUnreachableAndTimeout(t *testing.T) {
	// A server that never answers within the check's timeout, and an
	// address nothing listens on.
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(release) })
	gone := httptest.NewServer(http.NotFoundHandler())
	goneURL := gone.URL
	gone.Close()

	p, err := New(config.ResolvedService{Name: "hc", Service: config.Service{
		HealthPath: "/health", UnhealthyThreshold: 1,
		Upstreams: []config.Upstream{{URL: slow.URL}, {URL: goneURL}},
	}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	runChecks(t, p, newClient(t), 20*time.Millisecond)
	eventually(t, 10*time.Second, "timed-out and refused upstreams marked unhealthy", func() bool {
		s := p.Snapshot()
		return !s[0].Healthy && !s[1].Healthy
	})
}

func TestHealthPassDoesNotEndEjection(t *testing.T) {
	a := newHealthServer(t, http.StatusOK)
	b := newHealthServer(t, http.StatusOK)
	clk := new(fakeClock)
	p, err := New(config.ResolvedService{Name: "hc", Service: config.Service{
		HealthPath: "/hz", EjectAfter: 2, EjectBase: config.Duration(time.Hour),
		Upstreams: []config.Upstream{{URL: a.URL}, {URL: b.URL}},
	}}, nil, nil, WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	ua := p.Upstreams()[0]
	fail(ua, 2)
	runChecks(t, p, newClient(t), 10*time.Millisecond)
	eventually(t, 10*time.Second, "several checks of the ejected upstream", func() bool { return a.hits.Load() >= 3 })
	if s := p.Snapshot()[0]; !s.Healthy || s.EjectedUntil == nil {
		t.Fatalf("ejected upstream after passing checks: healthy %v ejected_until %v, want healthy and still ejected", s.Healthy, s.EjectedUntil)
	}
	for range 50 {
		if mustPick(t, p) == ua {
			t.Fatal("picked the ejected upstream")
		}
	}
}
