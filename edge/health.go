package edge

import (
	"context"
	"errors"
	"sort"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
)

// Check reports whether one dependency is ready; nil means ready.
type Check func(ctx context.Context) error

// Checks is a set of named readiness checks shared by the edges of one
// process: workers register theirs so every edge's /health reports them.
type Checks struct {
	mu     sync.RWMutex
	checks map[string]Check
	infos  map[string]func() any
	parent *Checks // With: the set this one extends
}

// NewChecks returns an empty set.
func NewChecks() *Checks { return &Checks{checks: map[string]Check{}, infos: map[string]func() any{}} }

// AddInfo registers details shown on /health under "info" and name, such
// as the leader and replicas of every JetStream asset. fn must be cheap.
func (c *Checks) AddInfo(name string, fn func() any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.infos == nil {
		c.infos = map[string]func() any{}
	}
	c.infos[name] = fn
}

// Infos returns every registered detail by name (nil when there is none).
func (c *Checks) Infos() map[string]any {
	var out map[string]any
	for s := c; s != nil; s = s.parent {
		s.mu.RLock()
		for n, fn := range s.infos {
			if out == nil {
				out = map[string]any{}
			}
			if _, ok := out[n]; !ok {
				out[n] = fn()
			}
		}
		s.mu.RUnlock()
	}
	return out
}

// Add registers (or replaces) a named check.
func (c *Checks) Add(name string, fn Check) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.checks[name] = fn
}

// Remove drops a named check.
func (c *Checks) Remove(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.checks, name)
}

// With returns a set that runs c's checks (as they are when it runs) plus
// a check of its own: one edge's readiness that other edges do not share.
func (c *Checks) With(name string, fn Check) *Checks {
	return &Checks{checks: map[string]Check{name: fn}, parent: c}
}

// Run runs every check and returns each result by name, sorted.
func (c *Checks) Run(ctx context.Context) ([]string, map[string]error) {
	fns := map[string]Check{}
	for s := c; s != nil; s = s.parent {
		s.mu.RLock()
		for n, fn := range s.checks {
			if _, ok := fns[n]; !ok {
				fns[n] = fn
			}
		}
		s.mu.RUnlock()
	}
	names := make([]string, 0, len(fns))
	for n := range fns {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make(map[string]error, len(names))
	for _, n := range names {
		out[n] = fns[n](ctx)
	}
	return names, out
}

// NATSCheck is ready while nc is connected.
func NATSCheck(nc *nats.Conn) Check {
	return func(context.Context) error {
		if s := nc.Status(); s != nats.CONNECTED {
			return errors.New("nats connection " + s.String())
		}
		return nil
	}
}

// JetStreamCheck is ready while JetStream answers for the account. A
// result is reused for a second so probes under load cost little.
func JetStreamCheck(js natsjs.JetStream) Check {
	var (
		mu   sync.Mutex
		at   time.Time
		last error
	)
	return func(ctx context.Context) error {
		mu.Lock()
		defer mu.Unlock()
		if time.Since(at) < time.Second {
			return last
		}
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		// The check's name already says "jetstream": the reason reads
		// "jetstream: <cause>", not "jetstream: jetstream: <cause>".
		_, err := js.AccountInfo(ctx)
		at, last = time.Now(), err
		return err
	}
}
