package lb_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/subjects"
)

// addGeo starts micro service "geo" on svc.geo.> and returns it.
func addGeo(t *testing.T, nc *nats.Conn) micro.Service {
	t.Helper()
	svc, err := micro.AddService(nc, micro.Config{Name: "geo", Version: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
	err = svc.AddEndpoint("lookup", micro.HandlerFunc(func(r micro.Request) {
		_ = r.Respond([]byte("geo"))
	}), micro.WithEndpointSubject("svc.geo.>"), micro.WithEndpointQueueGroup("svc.geo"))
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// status GETs url and returns the status and the error code ("" for a 2xx).
func status(t *testing.T, url string) (int, string, string) {
	t.Helper()
	resp := do(t, "GET", url, nil)
	if resp.StatusCode < 300 {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, "", ""
	}
	return resp.StatusCode, apiError(t, resp), resp.Header.Get("Retry-After")
}

// discoveryRounds counts the lb's discovery requests ($SRV.INFO).
func discoveryRounds(t *testing.T, nc *nats.Conn) *atomic.Int64 {
	t.Helper()
	var n atomic.Int64
	sub, err := nc.Subscribe(subjects.DiscoveryInfo, func(*nats.Msg) { n.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return &n
}

// A micro service that restarts stays known for the grace period: its
// requests answer 503 no_responders with Retry-After, never 404, over many
// discovery rounds that do not see it, and it serves again once back.
func TestRestartingServiceStaysKnownForGrace(t *testing.T) {
	cfg := baseConfig(t) // discovery every 200ms, grace 1m (the default)
	s := startSys(t, cfg)
	nc := s.nats.Conn(t)
	svc := addGeo(t, nc)
	waitFor(t, "geo routable", func() bool { st, _, _ := status(t, s.url+"/geo/x"); return st == 200 })

	rounds := discoveryRounds(t, nc)
	if err := svc.Stop(); err != nil {
		t.Fatal(err)
	}
	// Ten rounds that do not see geo: it is still known.
	waitFor(t, "ten discovery rounds", func() bool { return rounds.Load() >= 10 })
	if st, code, ra := status(t, s.url+"/geo/x"); st != 503 || code != "no_responders" || ra == "" {
		t.Fatalf("stopped geo: %d %s Retry-After %q, want 503 no_responders with Retry-After", st, code, ra)
	}
	addGeo(t, nc)
	waitFor(t, "geo routable again", func() bool { st, _, _ := status(t, s.url+"/geo/x"); return st == 200 })
}

// Past the grace period a service discovery no longer sees is unknown.
func TestServiceUnknownAfterGrace(t *testing.T) {
	cfg := baseConfig(t)
	cfg.LB.DiscoveryGrace = config.Duration(time.Second)
	s := startSys(t, cfg)
	nc := s.nats.Conn(t)
	svc := addGeo(t, nc)
	waitFor(t, "geo routable", func() bool { st, _, _ := status(t, s.url+"/geo/x"); return st == 200 })
	if err := svc.Stop(); err != nil {
		t.Fatal(err)
	}
	var last string
	waitFor(t, "geo unknown", func() bool {
		st, code, _ := status(t, s.url+"/geo/x")
		last = code
		if st != 404 && code != "no_responders" {
			t.Fatalf("stopped geo answered %d %s", st, code)
		}
		return st == 404
	})
	if !strings.Contains(last, "unknown_service") {
		t.Errorf("code %q, want unknown_service", last)
	}
}

// /services shows a dead single upstream as unhealthy after the first
// probe, which runs at start, not after UnhealthyThreshold intervals.
func TestServicesShowsDeadUpstreamAfterFirstProbe(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	cfg := baseConfig(t)
	cfg.Rust.HealthCheckInterval = config.Duration(time.Hour) // only the probe at start runs
	cfg.Rust.VisionServiceURL = deadURL
	s := startSys(t, cfg)
	waitFor(t, "vision's upstream unhealthy in /services", func() bool {
		resp := do(t, "GET", s.url+"/services", nil)
		defer resp.Body.Close()
		var out struct {
			Services []struct {
				Name      string `json:"name"`
				Upstreams []struct {
					URL     string `json:"url"`
					Healthy bool   `json:"healthy"`
				} `json:"upstreams"`
				ProxyWorkers int `json:"proxy_workers"`
			} `json:"services"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatal(err)
		}
		for _, sv := range out.Services {
			if sv.Name == "vision" && sv.ProxyWorkers == 1 && len(sv.Upstreams) == 1 {
				return sv.Upstreams[0].URL == deadURL && !sv.Upstreams[0].Healthy
			}
		}
		return false
	})
}
