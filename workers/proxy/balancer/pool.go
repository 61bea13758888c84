package balancer

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/internal/proxystatus"
)

// ErrNoHealthyUpstream is returned by Pick when every upstream is
// unhealthy or ejected (and panic mode is off), or when every upstream
// that qualifies was excluded.
var ErrNoHealthyUpstream = errors.New("no healthy upstream")

// ErrInvalidService is wrapped by New's errors: no upstreams, a bad or
// duplicate upstream URL, or an unknown policy.
var ErrInvalidService = errors.New("invalid service")

// maxEjection caps an ejection's length; an upstream that has gone this
// long without an ejection starts again from EjectBase.
const maxEjection = 5 * time.Minute

// Pool selects among the upstreams of one service and tracks their health.
// Create it with New; it is safe for concurrent use.
type Pool struct {
	name   string
	policy string
	ups    []*Upstream
	log    *slog.Logger

	// Settings, read-only after New.
	panicMode          bool
	healthPath         string
	healthyThreshold   int32
	unhealthyThreshold int32
	ejectAfter         int64
	ejectBase          time.Duration
	maxEjected         int

	// Clock: now returns the time, epoch is now() at New; every internal
	// timestamp is nanoseconds since epoch (monotonic with time.Now).
	now   func() time.Time
	epoch time.Time

	// mu guards cur, the smooth weighted round robin state.
	mu  sync.Mutex
	cur []int

	// ejectMu serialises ejection decisions and returns.
	ejectMu sync.Mutex

	budget retryBudget
}

// Option configures New.
type Option func(*Pool)

// WithClock replaces time.Now as the pool's clock (ejection times, the
// latency estimate's decay and the retry budget's window). A nil now keeps
// time.Now. Meant for tests.
func WithClock(now func() time.Time) Option {
	return func(p *Pool) {
		if now != nil {
			p.now = now
		}
	}
}

// New builds the pool of one service from its resolved configuration.
// Zero settings take config's defaults (policy weighted, health path
// /health, thresholds 1 and 2, eject after 5 for 10s, 50% ejectable, a 20%
// retry budget). m may be nil (no metrics) and log may be nil (no logs).
// It returns an error wrapping ErrInvalidService when the service has no
// upstreams, an upstream URL is not an absolute http(s) URL or appears
// twice, or the policy is unknown.
func New(svc config.ResolvedService, m *Metrics, log *slog.Logger, opts ...Option) (*Pool, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := svc.Service
	p := &Pool{
		name:               svc.Name,
		policy:             s.Policy,
		log:                log,
		panicMode:          s.PanicMode,
		healthPath:         s.HealthPath,
		healthyThreshold:   int32(orDefault(s.HealthyThreshold, 1)),
		unhealthyThreshold: int32(orDefault(s.UnhealthyThreshold, 2)),
		ejectAfter:         int64(orDefault(s.EjectAfter, 5)),
		ejectBase:          s.EjectBase.D(),
		now:                time.Now,
	}
	for _, o := range opts {
		o(p)
	}
	p.epoch = p.now()
	p.budget.percent = int64(orDefault(s.RetryBudgetPercent, 20))
	if p.policy == "" {
		p.policy = config.PolicyWeighted
	}
	if p.policy != config.PolicyWeighted && p.policy != config.PolicyLatency {
		return nil, fmt.Errorf("balancer: service %s: policy %q: %w", svc.Name, s.Policy, ErrInvalidService)
	}
	if p.healthPath == "" {
		p.healthPath = "/health"
	}
	if p.ejectBase <= 0 {
		p.ejectBase = 10 * time.Second
	}
	if len(s.Upstreams) == 0 {
		return nil, fmt.Errorf("balancer: service %s: no upstreams: %w", svc.Name, ErrInvalidService)
	}
	p.maxEjected = maxEjected(len(s.Upstreams), orDefault(s.MaxEjectedPercent, 50))
	seen := map[string]bool{}
	for i, cu := range s.Upstreams {
		u, err := parseUpstreamURL(cu.URL)
		if err != nil {
			return nil, fmt.Errorf("balancer: service %s: upstreams[%d] %q: %v: %w", svc.Name, i, cu.URL, err, ErrInvalidService)
		}
		if seen[u.String()] {
			return nil, fmt.Errorf("balancer: service %s: upstreams[%d] %q: duplicate: %w", svc.Name, i, cu.URL, ErrInvalidService)
		}
		seen[u.String()] = true
		up := &Upstream{URL: u, Weight: max(cu.Weight, 1), pool: p, host: hostPort(u), healthURL: healthURL(u, p.healthPath)}
		up.done = up.end
		up.met = m.forUpstream(p.name, up.host)
		up.healthy.Store(true)
		if up.met != nil {
			up.met.healthy.Set(1)
		}
		p.ups = append(p.ups, up)
	}
	p.cur = make([]int, len(p.ups))
	return p, nil
}

func orDefault(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

// maxEjected is how many of n upstreams may be ejected at once: the most
// that keeps the ejected share at or below percent, and at least one when
// there are two or more upstreams and percent > 0.
func maxEjected(n, percent int) int {
	k := n * percent / 100
	if k < 1 && n >= 2 && percent > 0 {
		k = 1
	}
	return k
}

func parseUpstreamURL(s string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, errors.New("scheme must be http or https")
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, errors.New("missing host")
	}
	u.Fragment, u.RawFragment = "", ""
	return u, nil
}

// hostPort is u's host:port with the scheme's default port filled in: the
// upstream label of the metrics and logs.
func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	port := "80"
	if u.Scheme == "https" {
		port = "443"
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// healthURL joins u's path and the health path, dropping u's query.
func healthURL(u *url.URL, path string) string {
	h := *u
	h.Path = strings.TrimSuffix(u.Path, "/") + path
	h.RawPath = ""
	h.RawQuery = ""
	h.ForceQuery = false
	return h.String()
}

// Name returns the service's name.
func (p *Pool) Name() string { return p.name }

// Policy returns the selection policy, config.PolicyWeighted or config.PolicyLatency.
func (p *Pool) Policy() string { return p.policy }

// Len returns the number of upstreams.
func (p *Pool) Len() int { return len(p.ups) }

// Upstreams returns the pool's upstreams in configuration order. The slice
// is a copy; the Upstreams are shared.
func (p *Pool) Upstreams() []*Upstream {
	return append([]*Upstream(nil), p.ups...)
}

// nanos is the pool clock's now as nanoseconds since epoch.
func (p *Pool) nanos() int64 { return int64(p.now().Sub(p.epoch)) }

// at turns an internal timestamp back into a time.
func (p *Pool) at(n int64) time.Time { return p.epoch.Add(time.Duration(n)).Round(0) }

// Pick selects an upstream by the service's policy among the upstreams
// that are healthy, not ejected and not in exclude (the upstreams already
// tried for this request). When none qualifies it returns
// ErrNoHealthyUpstream; but with panic mode on and no upstream healthy and
// not ejected at all, it picks among every upstream not in exclude instead.
func (p *Pool) Pick(exclude []*Upstream) (*Upstream, error) {
	u := p.pick(exclude, false)
	if u == nil && p.panicMode && !p.anyAvailable() {
		u = p.pick(exclude, true)
	}
	if u == nil {
		return nil, ErrNoHealthyUpstream
	}
	return u, nil
}

// pick runs the policy over the upstreams not in exclude that are
// available, or over all of them when all is set (panic mode).
func (p *Pool) pick(exclude []*Upstream, all bool) *Upstream {
	if p.policy == config.PolicyLatency {
		return p.pickLatency(exclude, all)
	}
	return p.pickWeighted(exclude, all)
}

// anyAvailable reports whether some upstream is healthy and not ejected.
func (p *Pool) anyAvailable() bool {
	now := int64(-1)
	for _, u := range p.ups {
		if p.available(u, &now) {
			return true
		}
	}
	return false
}

// available reports whether u is healthy and not ejected. *now is read
// from the clock on first need (< 0 means not yet read), so the common
// case of no ejection costs no clock read. An expired ejection is ended.
func (p *Pool) available(u *Upstream, now *int64) bool {
	if !u.healthy.Load() {
		return false
	}
	until := u.ejectedUntil.Load()
	if until == 0 {
		return true
	}
	if *now < 0 {
		*now = p.nanos()
	}
	if until > *now {
		return false
	}
	p.unEject(u, *now)
	return true
}

func excluded(u *Upstream, exclude []*Upstream) bool {
	for _, x := range exclude {
		if x == u {
			return true
		}
	}
	return false
}

// Snapshot returns every upstream's state, in configuration order.
func (p *Pool) Snapshot() []proxystatus.Upstream {
	now := p.nanos()
	out := make([]proxystatus.Upstream, len(p.ups))
	for i, u := range p.ups {
		st := proxystatus.Upstream{
			URL:           u.URL.String(),
			Weight:        u.Weight,
			Healthy:       u.healthy.Load(),
			InFlight:      u.inFlight.Load(),
			Requests:      u.requests.Load(),
			Errors:        u.errors.Load(),
			LatencyEWMAMs: u.latency(now) / 1e6,
		}
		if until := u.ejectedUntil.Load(); until > now {
			t := p.at(until)
			st.EjectedUntil = &t
		} else if until != 0 {
			p.unEject(u, now)
		}
		out[i] = st
	}
	return out
}
