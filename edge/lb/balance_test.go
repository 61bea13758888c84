package lb_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/edge/lb"
	"github.com/switchyard/switchyard/workers/proxy"
)

// load sends n GET requests from c concurrent clients and returns the
// failures (any non-200 answer or transport error).
func load(t *testing.T, url string, n, c int, during func(i int64)) (failures []string) {
	t.Helper()
	var next atomic.Int64
	var mu sync.Mutex
	var wg sync.WaitGroup
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: c}}
	defer client.CloseIdleConnections()
	for w := 0; w < c; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				if during != nil {
					during(i)
				}
				resp, err := client.Get(url)
				if err != nil {
					mu.Lock()
					failures = append(failures, err.Error())
					mu.Unlock()
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					mu.Lock()
					failures = append(failures, resp.Status+" "+string(b))
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return failures
}

func TestWeightsHonouredOver10000Requests(t *testing.T) {
	a, hitsA := echoUpstream(t, "a")
	b, hitsB := echoUpstream(t, "b")
	cfg := baseConfig(t)
	cfg.Services["vision"] = config.Service{Upstreams: []config.Upstream{{URL: a.URL, Weight: 3}, {URL: b.URL, Weight: 1}}}
	s := startSys(t, cfg)
	if f := load(t, s.url+"/vision/x", 10000, 16, nil); len(f) > 0 {
		t.Fatalf("%d failures, first: %s", len(f), f[0])
	}
	ra := float64(hitsA.Load()) / 10000
	if ra < 0.75*0.95 || ra > 0.75*1.05 || hitsA.Load()+hitsB.Load() != 10000 {
		t.Fatalf("split a=%d b=%d, want 7500:2500 within 5%%", hitsA.Load(), hitsB.Load())
	}
}

// killable is an upstream whose listener and connections can be cut mid-run.
type killable struct {
	*httptest.Server
	hits atomic.Int64
}

func newKillable(t *testing.T) *killable {
	k := &killable{}
	k.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/health" {
			k.hits.Add(1)
		}
		_, _ = w.Write([]byte("ok"))
	}))
	t.Cleanup(k.Close)
	return k
}

func (k *killable) kill() {
	k.Listener.Close()
	k.CloseClientConnections()
	k.Config.SetKeepAlivesEnabled(false)
	_ = k.Config.Shutdown(context.Background())
}

func TestNoFailedIdempotentRequestWhileAnUpstreamDies(t *testing.T) {
	a, b := newKillable(t), newKillable(t)
	cfg := baseConfig(t)
	cfg.Services["vision"] = config.Service{Upstreams: []config.Upstream{{URL: a.URL}, {URL: b.URL}}}
	s := startSys(t, cfg)
	var once sync.Once
	f := load(t, s.url+"/vision/x", 4000, 16, func(i int64) {
		if i == 1000 {
			once.Do(a.kill)
		}
	})
	if len(f) > 0 {
		t.Fatalf("%d failed requests while one of two upstreams died; first: %s", len(f), f[0])
	}
	if a.hits.Load() == 0 || b.hits.Load() < 3000 {
		t.Fatalf("hits a=%d b=%d", a.hits.Load(), b.hits.Load())
	}

}

// A 503 from one upstream is retried on the other for idempotent methods
// only; a POST gets the 503 as the upstream sent it.
func TestStatusRetriesOnlyForIdempotentMethods(t *testing.T) {
	var failing, healthy atomic.Int64
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			return
		}
		failing.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("overloaded"))
	}))
	t.Cleanup(bad.Close)
	good := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			return
		}
		healthy.Add(1)
		_, _ = w.Write([]byte("fine"))
	}))
	t.Cleanup(good.Close)
	cfg := baseConfig(t)
	// Never eject the failing upstream, and let every failure be retried.
	cfg.Services["vision"] = config.Service{EjectAfter: 1000, RetryBudgetPercent: 100,
		Upstreams: []config.Upstream{{URL: bad.URL, Weight: 1}, {URL: good.URL, Weight: 1}}}
	s := startSys(t, cfg)
	for i := 0; i < 20; i++ {
		resp := do(t, "GET", s.url+"/vision/x", nil)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "fine" {
			t.Fatalf("GET %d: %d %q", i, resp.StatusCode, b)
		}
	}
	if failing.Load() == 0 {
		t.Fatal("the failing upstream was never tried")
	}
	var posts503 int
	for i := 0; i < 20; i++ {
		resp := do(t, "POST", s.url+"/vision/x", []byte("{}"))
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 503 {
			if string(b) != "overloaded" {
				t.Fatalf("POST 503 body %q: not the upstream's own answer", b)
			}
			posts503++
		}
	}
	if posts503 == 0 {
		t.Fatal("POSTs were retried on 503")
	}
}

// The edge and the proxy workers scale apart: separate processes (here,
// separate runs with their own connections) on one NATS server, two proxy
// workers sharing the queue group.
func TestEdgeAndWorkersAsSeparateProcesses(t *testing.T) {
	up, hits := echoUpstream(t, "one")
	cfg := baseConfig(t)
	cfg.Rust.VisionServiceURL = up.URL
	edgeOnly := startSys(t, cfg, lb.Part)
	startOn(t, edgeOnly.nats, cfg, proxy.Part)
	startOn(t, edgeOnly.nats, cfg, proxy.Part)
	if f := load(t, edgeOnly.url+"/vision/x", 200, 8, nil); len(f) > 0 {
		t.Fatalf("%d failures, first: %s", len(f), f[0])
	}
	if hits.Load() != 200 {
		t.Fatalf("upstream saw %d of 200 requests", hits.Load())
	}
	resp := do(t, "GET", edgeOnly.url+"/services", nil)
	var out struct {
		Services []struct {
			Name         string `json:"name"`
			ProxyWorkers int    `json:"proxy_workers"`
			Upstreams    []struct {
				Requests uint64 `json:"requests"`
			} `json:"upstreams"`
		} `json:"services"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	resp.Body.Close()
	for _, s := range out.Services {
		if s.Name == "vision" {
			if s.ProxyWorkers != 2 || len(s.Upstreams) != 1 || s.Upstreams[0].Requests != 200 {
				t.Fatalf("vision: %+v", s)
			}
			return
		}
	}
	t.Fatalf("no vision in %+v", out.Services)
}
