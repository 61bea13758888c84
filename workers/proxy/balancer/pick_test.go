package balancer

import (
	"errors"
	"testing"

	"github.com/switchyard/switchyard/config"
)

func TestExcludeAndFailover(t *testing.T) {
	for _, policy := range []string{config.PolicyWeighted, config.PolicyLatency} {
		t.Run(policy, func(t *testing.T) {
			p := mustNew(t, service(policy, 1, 1, 1))
			var tried []*Upstream
			for range 3 {
				u := mustPick(t, p, tried...)
				for _, x := range tried {
					if x == u {
						t.Fatalf("Pick returned excluded upstream %s", u)
					}
				}
				tried = append(tried, u)
			}
			if _, err := p.Pick(tried); !errors.Is(err, ErrNoHealthyUpstream) {
				t.Fatalf("Pick with every upstream excluded: err = %v, want ErrNoHealthyUpstream", err)
			}
			// Excluding two always yields the third.
			for range 50 {
				if u := mustPick(t, p, tried[0], tried[2]); u != tried[1] {
					t.Fatalf("Pick = %s, want the only one not excluded, %s", u, tried[1])
				}
			}
		})
	}
}

func TestPanicMode(t *testing.T) {
	for _, policy := range []string{config.PolicyWeighted, config.PolicyLatency} {
		for _, panicMode := range []bool{false, true} {
			name := policy + "/panic-off"
			if panicMode {
				name = policy + "/panic-on"
			}
			t.Run(name, func(t *testing.T) {
				s := service(policy, 1, 1)
				s.PanicMode = panicMode
				s.MaxEjectedPercent = 100
				p := mustNew(t, s, WithClock(new(fakeClock).Now))
				a, b := p.Upstreams()[0], p.Upstreams()[1]

				// One healthy, excluded: failover is exhausted, panic or not.
				p.setHealthy(a, false, "test")
				if _, err := p.Pick([]*Upstream{b}); !errors.Is(err, ErrNoHealthyUpstream) {
					t.Fatalf("healthy one excluded: err = %v, want ErrNoHealthyUpstream", err)
				}

				// None healthy: only panic mode picks, and honours exclude.
				p.setHealthy(b, false, "test")
				u, err := p.Pick(nil)
				if !panicMode {
					if !errors.Is(err, ErrNoHealthyUpstream) {
						t.Fatalf("none healthy, panic off: (%v, %v), want ErrNoHealthyUpstream", u, err)
					}
				} else {
					if err != nil {
						t.Fatalf("none healthy, panic on: err = %v, want an upstream", err)
					}
					if u := mustPick(t, p, a); u != b {
						t.Fatalf("panic pick with a excluded = %s, want b", u)
					}
					if _, err := p.Pick([]*Upstream{a, b}); !errors.Is(err, ErrNoHealthyUpstream) {
						t.Fatalf("panic with all excluded: err = %v, want ErrNoHealthyUpstream", err)
					}
				}

				// Healthy but all ejected counts as none available too.
				p.setHealthy(a, true, "test")
				p.setHealthy(b, true, "test")
				fail(a, 3)
				fail(b, 3)
				_, err = p.Pick(nil)
				if panicMode != (err == nil) {
					t.Fatalf("all ejected, panic=%v: err = %v", panicMode, err)
				}
			})
		}
	}
}

func TestNewErrors(t *testing.T) {
	ok := service(config.PolicyWeighted, 1)
	tests := []struct {
		name   string
		mutate func(*config.ResolvedService)
	}{
		{"no upstreams", func(s *config.ResolvedService) { s.Upstreams = nil }},
		{"bad scheme", func(s *config.ResolvedService) { s.Upstreams[0].URL = "ftp://x:1" }},
		{"no host", func(s *config.ResolvedService) { s.Upstreams[0].URL = "http:///path" }},
		{"not a URL", func(s *config.ResolvedService) { s.Upstreams[0].URL = "http://[::1" }},
		{"duplicate", func(s *config.ResolvedService) { s.Upstreams = append(s.Upstreams, s.Upstreams[0]) }},
		{"policy", func(s *config.ResolvedService) { s.Policy = "random" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := ok
			s.Upstreams = append([]config.Upstream(nil), ok.Upstreams...)
			tt.mutate(&s)
			if _, err := New(s, nil, nil); !errors.Is(err, ErrInvalidService) {
				t.Fatalf("New: err = %v, want ErrInvalidService", err)
			}
		})
	}
}

func TestNewDefaultsAndURLs(t *testing.T) {
	p, err := New(config.ResolvedService{Name: "svc", Service: config.Service{Upstreams: []config.Upstream{
		{URL: "http://a.example/base/"}, {URL: "https://b.example"}, {URL: "http://[::1]:9000/x?q=1", Weight: 4},
	}}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.Policy() != config.PolicyWeighted || p.Len() != 3 || p.Name() != "svc" {
		t.Fatalf("policy %q len %d name %q", p.Policy(), p.Len(), p.Name())
	}
	want := []struct {
		host, health string
		weight       int
	}{
		{"a.example:80", "http://a.example/base/health", 1},
		{"b.example:443", "https://b.example/health", 1},
		{"[::1]:9000", "http://[::1]:9000/x/health", 4},
	}
	for i, u := range p.Upstreams() {
		if u.Host() != want[i].host || u.healthURL != want[i].health || u.Weight != want[i].weight {
			t.Errorf("upstream %d: host %q health %q weight %d, want %+v", i, u.Host(), u.healthURL, u.Weight, want[i])
		}
		if !u.Healthy() {
			t.Errorf("upstream %d starts unhealthy", i)
		}
	}
	if p.ejectAfter != 5 || p.ejectBase.Seconds() != 10 || p.maxEjected != 1 || p.budget.percent != 20 ||
		p.healthyThreshold != 1 || p.unhealthyThreshold != 2 {
		t.Fatalf("defaults not applied: %+v", p)
	}
}

func FuzzParseUpstreamURL(f *testing.F) {
	for _, s := range []string{"http://a:1", "https://b.example/x", "ftp://x", "http://[::1]:80", "", "http://", "http://%zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := parseUpstreamURL(s)
		if err != nil {
			return
		}
		if u.Scheme != "http" && u.Scheme != "https" || u.Hostname() == "" {
			t.Fatalf("accepted %q: scheme %q host %q", s, u.Scheme, u.Hostname())
		}
		if hostPort(u) == "" || healthURL(u, "/health") == "" {
			t.Fatalf("empty label or health URL for %q", s)
		}
	})
}
