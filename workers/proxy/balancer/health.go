package balancer

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime/debug"
	"sync"
	"time"
)

// Health check parameters.
const (
	defaultHealthInterval = 30 * time.Second
	maxHealthTimeout      = 5 * time.Second
	healthBodyLimit       = 64 << 10 // bytes read from a check's body so the connection is reused
)

// RunHealthChecks checks every upstream with GET <url><HealthPath> every
// interval, the first time at once, until ctx is done, and returns when
// every check has stopped. Each check times out after min(interval, 5s).
// A 2xx answer passes; anything else, or no answer, fails.
// The first check's result is the upstream's health at once; after it,
// HealthyThreshold consecutive passes mark an upstream healthy,
// UnhealthyThreshold consecutive failures mark it unhealthy. Health does
// not end an ejection: an ejected upstream that passes stays ejected until
// its time is up. A nil client uses http.DefaultClient; interval <= 0
// means 30s. Run it at most once at a time per Pool.
func (p *Pool) RunHealthChecks(ctx context.Context, client *http.Client, interval time.Duration) {
	if client == nil {
		client = http.DefaultClient
	}
	if interval <= 0 {
		interval = defaultHealthInterval
	}
	timeout := min(interval, maxHealthTimeout)
	var wg sync.WaitGroup
	for _, u := range p.ups {
		wg.Go(func() { p.healthLoop(ctx, client, u, interval, timeout) })
	}
	wg.Wait()
}

func (p *Pool) healthLoop(ctx context.Context, client *http.Client, u *Upstream, interval, timeout time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		p.checkOnce(ctx, client, u, timeout)
		// Also end an expired ejection here, so its return is logged even
		// when no request comes.
		now := p.nanos()
		if until := u.ejectedUntil.Load(); until != 0 && until <= now {
			p.unEject(u, now)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// checkOnce runs one check of u and records its result. A panic (in a
// custom transport, say) is logged and counts as a failed check.
func (p *Pool) checkOnce(ctx context.Context, client *http.Client, u *Upstream, timeout time.Duration) {
	var pass bool
	var reason string
	func() {
		defer func() {
			if r := recover(); r != nil {
				p.log.Error("health check panic", "service", p.name, "upstream", u.host,
					"panic", fmt.Sprint(r), "stack", string(debug.Stack()))
				pass, reason = false, fmt.Sprintf("health check panic: %v", r)
			}
		}()
		pass, reason = p.probe(ctx, client, u, timeout)
	}()
	if ctx.Err() != nil {
		return // shutting down: the result says nothing of the upstream
	}
	p.recordCheck(u, pass, reason)
}

// probe sends one health request to u.
func (p *Pool) probe(ctx context.Context, client *http.Client, u *Upstream, timeout time.Duration) (pass bool, reason string) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.healthURL, nil)
	if err != nil {
		return false, "health check request: " + err.Error()
	}
	req.Header.Set("User-Agent", "switchyard-health-check")
	resp, err := client.Do(req)
	if err != nil {
		return false, "health check failed: " + err.Error()
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, healthBodyLimit))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return false, fmt.Sprintf("health check answered %d", resp.StatusCode)
	}
	return true, "health check passed"
}

// recordCheck counts a check's result and flips u's health at a threshold.
// The first check's result is the verdict at once: an upstream that is down
// at start shows as unhealthy (and takes no traffic) after one probe, not
// after UnhealthyThreshold intervals.
func (p *Pool) recordCheck(u *Upstream, pass bool, reason string) {
	if !u.checked.Swap(true) {
		if pass {
			u.hcPasses.Store(p.healthyThreshold)
			u.hcFails.Store(0)
			if u.met != nil {
				u.met.pass.Inc()
			}
		} else {
			u.hcFails.Store(p.unhealthyThreshold)
			u.hcPasses.Store(0)
			if u.met != nil {
				u.met.fail.Inc()
			}
		}
		p.setHealthy(u, pass, reason)
		return
	}
	if pass {
		if u.met != nil {
			u.met.pass.Inc()
		}
		u.hcFails.Store(0)
		if n := u.hcPasses.Add(1); n >= p.healthyThreshold {
			u.hcPasses.Store(p.healthyThreshold) // no overflow on a long run
			p.setHealthy(u, true, reason)
		}
		return
	}
	if u.met != nil {
		u.met.fail.Inc()
	}
	u.hcPasses.Store(0)
	if n := u.hcFails.Add(1); n >= p.unhealthyThreshold {
		u.hcFails.Store(p.unhealthyThreshold)
		p.setHealthy(u, false, reason)
	}
}
