package balancer

import "math/rand/v2"

// pickLatency is the power of two choices: it draws two distinct upstreams
// at random among those not in exclude that are available (or all of them
// when all is set) and returns the one of lower cost, the latency estimate
// times (in-flight + 1). An unmeasured upstream costs 0, so new upstreams
// get traffic at once; on equal cost the one with fewer requests in flight
// wins. It takes no lock.
func (p *Pool) pickLatency(exclude []*Upstream, all bool) *Upstream {
	now := p.nanos()
	var buf [16]*Upstream
	cand := buf[:0]
	for _, u := range p.ups {
		if excluded(u, exclude) || !all && !p.available(u, &now) {
			continue
		}
		cand = append(cand, u)
	}
	switch n := len(cand); n {
	case 0:
		return nil
	case 1:
		return cand[0]
	default:
		i := rand.IntN(n)
		j := rand.IntN(n - 1)
		if j >= i {
			j++
		}
		a, b := cand[i], cand[j]
		if cheaper(b, a, now) {
			return b
		}
		return a
	}
}

// cheaper reports whether a costs less than b at pool time now.
func cheaper(a, b *Upstream, now int64) bool {
	fa, fb := a.inFlight.Load(), b.inFlight.Load()
	ca := a.latency(now) * float64(fa+1)
	cb := b.latency(now) * float64(fb+1)
	if ca != cb {
		return ca < cb
	}
	return fa < fb
}
