package balancer

import (
	"fmt"
	"math"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// Upstream is one HTTP server of a service. Its URL and Weight are
// read-only; the rest of its state is updated atomically by Begin, the
// outcome func, the pool's ejection logic and the health checker.
type Upstream struct {
	// URL is the upstream's base URL (scheme, host and optional base path).
	URL *url.URL
	// Weight is the upstream's share under the weighted policy, at least 1.
	Weight int

	pool      *Pool
	host      string // host:port, the metrics and log label
	healthURL string
	done      func(Outcome) // u.end, built once so Begin does not allocate
	met       *upstreamMetrics

	healthy  atomic.Bool  // the active checks' verdict
	checked  atomic.Bool  // a check has given its result
	hcPasses atomic.Int32 // consecutive passing checks
	hcFails  atomic.Int32 // consecutive failing checks

	consecFails  atomic.Int64 // consecutive failed outcomes
	ejectedUntil atomic.Int64 // pool-clock nanos; 0 when not ejected
	ejections    int          // times ejected; guarded by pool.ejectMu
	lastEjectEnd int64        // end of the last ejection; guarded by pool.ejectMu

	inFlight atomic.Int64
	requests atomic.Uint64
	errors   atomic.Uint64

	ewmaMu sync.Mutex    // serialises writers of ewma and ewmaAt
	ewma   atomic.Uint64 // math.Float64bits of the peak EWMA latency in ns; 0 until measured
	ewmaAt atomic.Int64  // pool-clock nanos of the last sample
}

// Host returns the upstream's host:port (the scheme's port when the URL
// names none), the label of its metrics and logs.
func (u *Upstream) Host() string { return u.host }

// Healthy reports the active health checks' verdict (true until a check
// says otherwise). An ejected upstream may still be healthy.
func (u *Upstream) Healthy() bool { return u.healthy.Load() }

// InFlight returns the number of requests begun and not yet ended.
func (u *Upstream) InFlight() int64 { return u.inFlight.Load() }

// String returns the upstream's URL.
func (u *Upstream) String() string { return u.URL.String() }

// Outcome is the result of one attempt on an upstream.
type Outcome struct {
	// ConnectErr is set when the connection failed (dial refused, reset)
	// before any response byte.
	ConnectErr bool
	// Status is the response's status code, 0 when no response came.
	Status int
	// Latency is the attempt's duration, to the end of the response.
	Latency time.Duration
}

// failed reports whether o counts towards ejection.
func (o Outcome) failed() bool { return o.ConnectErr || o.Status >= 500 }

// Begin marks the start of a request to u (in-flight +1) and returns the
// func to call exactly once with the request's Outcome. Begin does not
// allocate; calling the func more than once corrupts the in-flight count.
//
// The outcome func updates the counters and metrics; feeds the latency
// estimate (except after a connect error, which says nothing of the
// upstream's speed); and counts consecutive failures: ConnectErr or a
// Status >= 500 adds one, any other response resets the count, and an
// outcome with neither (Status 0 without ConnectErr: a timeout or a
// cancelled request) leaves it as it is. EjectAfter consecutive failures
// eject the upstream.
func (u *Upstream) Begin() func(Outcome) {
	u.inFlight.Add(1)
	if u.met != nil {
		u.met.inFlight.Inc()
	}
	return u.done
}

func (u *Upstream) end(o Outcome) {
	u.inFlight.Add(-1)
	u.requests.Add(1)
	failed := o.failed()
	class := outcomeClass(o)
	if failed || class == classError {
		u.errors.Add(1)
	}
	if m := u.met; m != nil {
		m.inFlight.Dec()
		m.class[class].Inc()
		m.duration.Observe(o.Latency.Seconds())
	}
	p := u.pool
	var now int64 = -1
	if !o.ConnectErr && o.Latency > 0 {
		now = p.nanos()
		u.observe(float64(o.Latency), now)
	}
	switch {
	case failed:
		if n := u.consecFails.Add(1); n >= p.ejectAfter {
			if now < 0 {
				now = p.nanos()
			}
			p.maybeEject(u, now)
		}
	case o.Status != 0:
		if u.consecFails.Load() != 0 {
			u.consecFails.Store(0)
		}
	}
}

// decayTau is the peak EWMA's time constant.
const decayTau = float64(10 * time.Second)

// observe feeds one latency sample (ns) at pool time now: above the
// estimate it becomes the estimate (the peak); below, the estimate decays
// toward it with time constant decayTau.
func (u *Upstream) observe(sample float64, now int64) {
	u.ewmaMu.Lock()
	cur := math.Float64frombits(u.ewma.Load())
	if cur == 0 || sample >= cur {
		cur = sample
	} else {
		td := max(now-u.ewmaAt.Load(), 0)
		w := math.Exp(-float64(td) / decayTau)
		cur = cur*w + sample*(1-w)
	}
	u.ewma.Store(math.Float64bits(cur))
	u.ewmaAt.Store(now)
	u.ewmaMu.Unlock()
}

// latency is the estimate (ns) at pool time now: the stored peak EWMA
// decayed toward 0 for the time since its last sample, so an upstream that
// gets no traffic (because it was slow) is tried again in time. It is 0
// until measured.
func (u *Upstream) latency(now int64) float64 {
	cur := math.Float64frombits(u.ewma.Load())
	if cur == 0 {
		return 0
	}
	if td := now - u.ewmaAt.Load(); td > 0 {
		x := float64(td) / decayTau
		if x < 1e-3 {
			cur *= 1 - x // exp(-x) to within x²/2, without the call
		} else {
			cur *= math.Exp(-x)
		}
	}
	return cur
}

// maybeEject ejects u, which has just reached EjectAfter consecutive
// failures, unless it is already ejected or the cap on ejected upstreams
// forbids it (then a later failure tries again).
func (p *Pool) maybeEject(u *Upstream, now int64) {
	p.ejectMu.Lock()
	defer p.ejectMu.Unlock()
	if u.ejectedUntil.Load() > now || u.consecFails.Load() < p.ejectAfter {
		return // ejected, or a success came in between
	}
	ejected := 0
	for _, o := range p.ups {
		if o != u && o.ejectedUntil.Load() > now {
			ejected++
		}
	}
	if ejected+1 > p.maxEjected {
		p.log.Debug("upstream ejection refused", "service", p.name, "upstream", u.host,
			"reason", fmt.Sprintf("%d of %d upstreams already ejected", ejected, len(p.ups)))
		return
	}
	if u.lastEjectEnd != 0 && now-u.lastEjectEnd > int64(maxEjection) {
		u.ejections = 0
	}
	d := backoff(p.ejectBase, u.ejections)
	u.ejections++
	until := now + int64(d)
	u.lastEjectEnd = until
	u.consecFails.Store(0)
	u.ejectedUntil.Store(until)
	if u.met != nil {
		u.met.ejections.Inc()
	}
	p.log.Warn("upstream ejected", "service", p.name, "upstream", u.host,
		"reason", fmt.Sprintf("%d consecutive failures", p.ejectAfter), "duration", d.String(), "ejections", u.ejections)
}

// backoff is base * 2^n, capped at maxEjection.
func backoff(base time.Duration, n int) time.Duration {
	d := base
	for range n {
		if d >= maxEjection/2 {
			return maxEjection
		}
		d *= 2
	}
	return min(d, maxEjection)
}

// unEject ends u's ejection if it has expired at pool time now.
func (p *Pool) unEject(u *Upstream, now int64) {
	p.ejectMu.Lock()
	defer p.ejectMu.Unlock()
	until := u.ejectedUntil.Load()
	if until == 0 || until > now {
		return
	}
	u.ejectedUntil.Store(0)
	u.consecFails.Store(0)
	p.log.Info("upstream returned", "service", p.name, "upstream", u.host, "reason", "ejection expired")
}

// setHealthy records the active checks' verdict and logs a change.
func (p *Pool) setHealthy(u *Upstream, healthy bool, reason string) {
	if u.healthy.Swap(healthy) == healthy {
		return
	}
	if u.met != nil {
		if healthy {
			u.met.healthy.Set(1)
		} else {
			u.met.healthy.Set(0)
		}
	}
	if healthy {
		p.log.Info("upstream healthy", "service", p.name, "upstream", u.host, "reason", reason)
	} else {
		p.log.Warn("upstream unhealthy", "service", p.name, "upstream", u.host, "reason", reason)
	}
}
