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

	mu       sync.RWMutex
	services map[string]bool // service names routable because a worker is on svc.<name>.>

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

func newDiscovery(nc *nats.Conn, interval time.Duration, log *slog.Logger) *discovery {
	return &discovery{nc: nc, interval: interval, log: log, services: map[string]bool{},
		stop: make(chan struct{}), done: make(chan struct{})}
}

// Known reports whether name was discovered as a service.
func (d *discovery) Known(name string) bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.services[name]
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
	d.mu.Lock()
	for n := range found {
		if !d.services[n] {
			d.log.Info("service discovered", "service", n)
		}
	}
	d.services = found
	d.mu.Unlock()
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
