package lb

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/switchyard/switchyard/internal/microdisc"
	"github.com/switchyard/switchyard/subjects"
)

// discovery asks NATS which micro services run ($SRV.INFO) every interval,
// and on demand for their statistics ($SRV.STATS). It holds only a cache.
type discovery struct {
	nc       *nats.Conn
	interval time.Duration
	log      *slog.Logger

	grace time.Duration

	mu       sync.RWMutex
	services map[string]time.Time // service names routable because a worker is on svc.<name>.>, by when discovery last saw them

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// newDiscovery asks every interval. A service stays known for grace after
// the last time discovery saw it: while its workers restart, requests get
// 503 no_responders (come back) rather than 404 unknown_service (give up),
// and one late reply to a discovery round does not drop it.
func newDiscovery(nc *nats.Conn, interval, grace time.Duration, log *slog.Logger) *discovery {
	return &discovery{nc: nc, interval: interval, grace: grace, log: log, services: map[string]time.Time{},
		stop: make(chan struct{}), done: make(chan struct{})}
}

// Known reports whether name was discovered as a service within the grace
// period.
func (d *discovery) Known(name string) bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	seen, ok := d.services[name]
	return ok && time.Since(seen) <= d.grace+d.interval
}

func (d *discovery) Run(ctx context.Context) error {
	defer close(d.done)
	t := time.NewTicker(d.interval)
	defer t.Stop()
	for {
		d.refresh()
		select {
		case <-d.stop:
			return nil
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (d *discovery) Shutdown(context.Context) error {
	d.once.Do(func() { close(d.stop) })
	<-d.done
	return nil
}

func (d *discovery) refresh() {
	infos := microdisc.Infos(d.nc, 300*time.Millisecond)
	found := map[string]bool{}
	for _, i := range infos {
		for _, ep := range i.Endpoints {
			if svc := serviceOf(ep.Subject, ep.QueueGroup); svc != "" {
				found[svc] = true
			}
		}
	}
	now := time.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	for n := range found {
		if _, ok := d.services[n]; !ok {
			d.log.Info("service discovered", "service", n)
		}
		d.services[n] = now
	}
	for n, seen := range d.services {
		if found[n] {
			continue
		}
		// Gone from this round. Keep it for the grace period, counted from
		// the round that last saw it.
		if now.Sub(seen) > d.grace {
			delete(d.services, n)
			d.log.Info("service gone", "service", n, "last_seen", seen.UTC().Format(time.RFC3339))
		} else if now.Sub(seen) <= d.interval+time.Second {
			d.log.Debug("discovered service missing from a round; kept for the grace period",
				"service", n, "grace", d.grace.String())
		}
	}
}

// Stats gathers $SRV.STATS from every micro service instance.
func (d *discovery) Stats(timeout time.Duration) []micro.Stats {
	return microdisc.Stats(d.nc, timeout)
}

// serviceOf names the Switchyard service an endpoint serves: one whose
// subject is svc.<name>.> (or below) or whose queue group is svc.<name>.
func serviceOf(subject, queue string) string {
	if name, ok := subjects.ServiceOf(subject); ok {
		return name
	}
	name, _ := subjects.ServiceOf(queue)
	return name
}
