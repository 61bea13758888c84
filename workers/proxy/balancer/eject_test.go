package balancer

import (
	"testing"
	"time"

	"github.com/switchyard/switchyard/config"
)

func TestEjectAfterFailuresAndReturn(t *testing.T) {
	log, logs := newLog()
	p, err := New(service(config.PolicyWeighted, 1, 1), nil, log)
	if err != nil {
		t.Fatal(err)
	}
	a, b := p.Upstreams()[0], p.Upstreams()[1]

	fail(a, 2)
	if s := p.Snapshot()[0]; s.EjectedUntil != nil {
		t.Fatalf("ejected after 2 of 3 failures")
	}
	fail(a, 1)
	if s := p.Snapshot()[0]; s.EjectedUntil == nil || !s.Healthy {
		t.Fatalf("after 3 failures: ejected_until %v healthy %v, want ejected and still healthy", s.EjectedUntil, s.Healthy)
	}
	if !logs.Contains(`"msg":"upstream ejected"`) || !logs.Contains(`"upstream":"127.0.0.1:8000"`) {
		t.Fatalf("ejection not logged")
	}
	// Ejected: the next picks all go to b, until the 50ms are up; then a
	// comes back by itself.
	if u := mustPick(t, p); u != b {
		// The ejection can only have expired if 50ms passed already.
		if p.Snapshot()[0].EjectedUntil != nil {
			t.Fatalf("picked the ejected upstream")
		}
	}
	eventually(t, 5*time.Second, "ejected upstream returns", func() bool {
		return mustPick(t, p) == a
	})
	if s := p.Snapshot()[0]; s.EjectedUntil != nil {
		t.Fatalf("returned upstream still shows ejected_until %v", s.EjectedUntil)
	}
	if !logs.Contains(`"msg":"upstream returned"`) {
		t.Fatalf("return not logged")
	}
}

func TestEjectionBackoff(t *testing.T) {
	clk := new(fakeClock)
	p := mustNew(t, service(config.PolicyWeighted, 1, 1), WithClock(clk.Now))
	a, b := p.Upstreams()[0], p.Upstreams()[1]
	ejectedFor := func() time.Duration {
		t.Helper()
		s := p.Snapshot()[0]
		if s.EjectedUntil == nil {
			t.Fatal("not ejected")
		}
		return s.EjectedUntil.Sub(clk.Now())
	}
	for _, want := range []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond} {
		fail(a, 3)
		if got := ejectedFor(); got != want {
			t.Fatalf("ejected for %s, want %s", got, want)
		}
		for range 10 {
			if mustPick(t, p) != b {
				t.Fatal("picked the ejected upstream")
			}
		}
		// A passing health check does not end the ejection.
		p.recordCheck(a, true, "test")
		if mustPick(t, p) != b {
			t.Fatal("a health check pass ended the ejection")
		}
		clk.Advance(want - time.Nanosecond)
		if mustPick(t, p) != b || mustPick(t, p) != b {
			t.Fatal("returned before the ejection ended")
		}
		clk.Advance(time.Nanosecond)
		if p.Snapshot()[0].EjectedUntil != nil {
			t.Fatal("still ejected after its time")
		}
	}
	// Failures while ejected do not extend it; after 5 quiet minutes the
	// backoff starts over.
	clk.Advance(maxEjection + time.Second)
	fail(a, 3)
	if got := ejectedFor(); got != 50*time.Millisecond {
		t.Fatalf("after a quiet period ejected for %s, want 50ms again", got)
	}
	fail(a, 10)
	if got := ejectedFor(); got != 50*time.Millisecond {
		t.Fatalf("failures during an ejection changed it to %s", got)
	}
}

func TestBackoffCap(t *testing.T) {
	for n, want := range map[int]time.Duration{
		0: 10 * time.Second, 1: 20 * time.Second, 4: 160 * time.Second, 5: 5 * time.Minute, 60: 5 * time.Minute, 1000: 5 * time.Minute,
	} {
		if got := backoff(10*time.Second, n); got != want {
			t.Errorf("backoff(10s, %d) = %s, want %s", n, got, want)
		}
	}
}

func TestConsecutiveFailures(t *testing.T) {
	tests := []struct {
		name     string
		outcomes []Outcome
		ejected  bool
	}{
		{"three 5xx", []Outcome{{Status: 500}, {Status: 502}, {Status: 503}}, true},
		{"connect errors", []Outcome{{ConnectErr: true}, {ConnectErr: true}, {ConnectErr: true}}, true},
		{"2xx resets", []Outcome{{Status: 500}, {Status: 500}, {Status: 200}, {Status: 500}, {Status: 500}}, false},
		{"4xx resets", []Outcome{{Status: 500}, {Status: 500}, {Status: 404}, {Status: 500}, {Status: 500}}, false},
		{"no status is neutral", []Outcome{{Status: 500}, {Status: 500}, {Status: 0}, {Status: 500}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustNew(t, service(config.PolicyWeighted, 1, 1), WithClock(new(fakeClock).Now))
			a := p.Upstreams()[0]
			for _, o := range tt.outcomes {
				a.Begin()(o)
			}
			s := p.Snapshot()[0]
			if (s.EjectedUntil != nil) != tt.ejected {
				t.Fatalf("ejected = %v, want %v", s.EjectedUntil != nil, tt.ejected)
			}
			if !s.Healthy {
				t.Fatal("request outcomes changed the active health flag")
			}
			if s.InFlight != 0 || s.Requests != uint64(len(tt.outcomes)) {
				t.Fatalf("in flight %d requests %d", s.InFlight, s.Requests)
			}
		})
	}
}

func TestMaxEjected(t *testing.T) {
	tests := []struct{ n, percent, want int }{
		{1, 50, 0}, {1, 100, 1}, {2, 50, 1}, {2, 10, 1}, {3, 50, 1}, {4, 50, 2}, {4, 10, 1},
		{10, 30, 3}, {2, 100, 2}, {5, 0, 0},
	}
	for _, tt := range tests {
		if got := maxEjected(tt.n, tt.percent); got != tt.want {
			t.Errorf("maxEjected(%d, %d%%) = %d, want %d", tt.n, tt.percent, got, tt.want)
		}
	}
	for _, tt := range []struct{ n, percent, want int }{{2, 50, 1}, {4, 50, 2}, {5, 40, 2}, {3, 100, 3}, {1, 50, 0}} {
		weights := make([]int, tt.n)
		for i := range weights {
			weights[i] = 1
		}
		s := service(config.PolicyWeighted, weights...)
		s.MaxEjectedPercent = tt.percent
		p := mustNew(t, s, WithClock(new(fakeClock).Now))
		for _, u := range p.Upstreams() {
			fail(u, 3)
		}
		got := 0
		for _, s := range p.Snapshot() {
			if s.EjectedUntil != nil {
				got++
			}
		}
		if got != tt.want {
			t.Errorf("%d upstreams, %d%%: %d ejected after all failed, want %d", tt.n, tt.percent, got, tt.want)
		}
	}
}

func TestEjectionRetriedWhenCapAllows(t *testing.T) {
	clk := new(fakeClock)
	p := mustNew(t, service(config.PolicyWeighted, 1, 1), WithClock(clk.Now))
	a, b := p.Upstreams()[0], p.Upstreams()[1]
	fail(a, 3)
	fail(b, 3) // refused: a is ejected and the cap is one
	if p.Snapshot()[1].EjectedUntil != nil {
		t.Fatal("cap exceeded")
	}
	clk.Advance(50 * time.Millisecond)
	fail(b, 1) // still failing, and now the cap allows it
	if p.Snapshot()[1].EjectedUntil == nil {
		t.Fatal("b not ejected once a returned")
	}
}
