package balancer

import (
	"math"
	"testing"
	"time"

	"github.com/switchyard/switchyard/config"
)

func TestLatencyPrefersFast(t *testing.T) {
	clk := new(fakeClock)
	p := mustNew(t, service(config.PolicyLatency, 1, 1, 1), WithClock(clk.Now))
	ups := p.Upstreams()
	lat := map[*Upstream]time.Duration{ups[0]: 100 * time.Millisecond, ups[1]: time.Millisecond, ups[2]: 10 * time.Millisecond}
	c := map[*Upstream]int{}
	const n = 3000
	for range n {
		u := mustPick(t, p)
		c[u]++
		u.Begin()(Outcome{Status: 200, Latency: lat[u]})
		clk.Advance(time.Millisecond)
	}
	slow, fast, mid := c[ups[0]], c[ups[1]], c[ups[2]]
	// Once measured, the slow one loses every pair it is drawn in and the
	// fast one wins every pair: about 2/3 of picks.
	if slow > 3 || fast < n*6/10 || fast <= mid {
		t.Fatalf("picks slow/fast/mid = %d/%d/%d, want the fast one ~2/3 and the slow one only until measured", slow, fast, mid)
	}
	if s := p.Snapshot()[1]; math.Abs(s.LatencyEWMAMs-1) > 0.01 {
		t.Fatalf("fast upstream's latency estimate %.3fms, want 1ms", s.LatencyEWMAMs)
	}
}

func TestLatencySpreadsByInFlight(t *testing.T) {
	clk := new(fakeClock)
	p := mustNew(t, service(config.PolicyLatency, 1, 1), WithClock(clk.Now))
	a, b := p.Upstreams()[0], p.Upstreams()[1]
	a.Begin()(Outcome{Status: 200, Latency: 10 * time.Millisecond})
	b.Begin()(Outcome{Status: 200, Latency: 10 * time.Millisecond})
	var dones []func(Outcome)
	for range 100 {
		dones = append(dones, mustPick(t, p).Begin())
		if d := a.InFlight() - b.InFlight(); d < -1 || d > 1 {
			t.Fatalf("in flight %d vs %d: not spread", a.InFlight(), b.InFlight())
		}
	}
	for _, d := range dones {
		d(Outcome{Status: 200, Latency: 10 * time.Millisecond})
	}

	// A fast upstream that is busy loses to a slower idle one.
	a.Begin()(Outcome{Status: 200, Latency: 100 * time.Millisecond})
	for range 20 {
		defer b.Begin()(Outcome{Status: 200, Latency: 10 * time.Millisecond})
	}
	if u := mustPick(t, p); u != a {
		t.Fatalf("picked the busy upstream (cost 10ms*21) over the idle one (100ms*1)")
	}
}

func TestLatencyUnmeasuredGetsTraffic(t *testing.T) {
	p := mustNew(t, service(config.PolicyLatency, 1, 1), WithClock(new(fakeClock).Now))
	a, b := p.Upstreams()[0], p.Upstreams()[1]
	a.Begin()(Outcome{Status: 200, Latency: time.Millisecond})
	if u := mustPick(t, p); u != b {
		t.Fatalf("picked the measured upstream over the unmeasured one")
	}
	// A connect error gives no latency sample.
	b.Begin()(Outcome{ConnectErr: true, Latency: time.Microsecond})
	if s := p.Snapshot()[1]; s.LatencyEWMAMs != 0 || s.Errors != 1 {
		t.Fatalf("after a connect error: latency %v errors %d", s.LatencyEWMAMs, s.Errors)
	}
}

func TestPeakEWMA(t *testing.T) {
	clk := new(fakeClock)
	p := mustNew(t, service(config.PolicyLatency, 1), WithClock(clk.Now))
	u := p.Upstreams()[0]
	ms := func() float64 { return p.Snapshot()[0].LatencyEWMAMs }
	near := func(got, want float64) bool { return math.Abs(got-want) < 1e-6*want }

	u.Begin()(Outcome{Status: 200, Latency: 10 * time.Millisecond})
	if !near(ms(), 10) {
		t.Fatalf("first sample: %v, want 10", ms())
	}
	u.Begin()(Outcome{Status: 200, Latency: 100 * time.Millisecond})
	if !near(ms(), 100) {
		t.Fatalf("a higher sample is taken at once: %v, want 100", ms())
	}
	clk.Advance(10 * time.Second)
	u.Begin()(Outcome{Status: 200, Latency: 10 * time.Millisecond})
	want := 100*math.Exp(-1) + 10*(1-math.Exp(-1))
	if !near(ms(), want) {
		t.Fatalf("a lower sample 10s (one time constant) later: %v, want %v", ms(), want)
	}
	clk.Advance(10 * time.Second)
	if !near(ms(), want*math.Exp(-1)) {
		t.Fatalf("without samples the estimate decays: %v, want %v", ms(), want*math.Exp(-1))
	}
}
