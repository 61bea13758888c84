package cache

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/edge"
	"github.com/switchyard/switchyard/part"
	"github.com/switchyard/switchyard/subjects"
	wcache "github.com/switchyard/switchyard/workers/cache"
	"github.com/switchyard/switchyard/workers/cache/kvtier"
	"github.com/switchyard/switchyard/workers/cache/local"
	"github.com/switchyard/switchyard/workers/cache/redistier"
)

// Coordinator is the part's coordinator, its NATS service and its shared
// tier, as one component. Shutdown waits for the edge's in-flight requests
// before it closes what they use.
type Coordinator struct {
	C           *wcache.Coordinator
	svc         *wcache.Service
	closeShared func() error
	srv         *edge.Server
	once        sync.Once
}

// Options maps the configuration onto the coordinator's options (without
// NC, Shared, Backend, Registry and Log).
func Options(c *config.Cache) wcache.Options {
	o := wcache.Options{
		Local: local.Options{
			Spaces: map[string]local.Space{},
			Other:  local.Space{Policy: local.Policy(c.Policy), MaxBytes: c.LocalMaxBytes, MaxAge: c.LocalMaxAge.D()},
		},
		Namespaces:    map[string]wcache.Namespace{},
		Default:       wcache.Namespace{DefaultTTL: c.DefaultTTL.D()},
		MaxKeyBytes:   c.MaxKeyBytes,
		MaxValueBytes: c.MaxValueBytes,
		MaxBatchKeys:  c.MaxBatchKeys,
		MaxTTL:        c.MaxTTL.D(),
		SharedTimeout: c.SharedTimeout.D(),
	}
	for name, n := range c.Namespaces {
		o.Namespaces[name] = wcache.Namespace{DefaultTTL: n.DefaultTTL.D(), NoLocal: !n.UsesLocal()}
		if !n.UsesLocal() {
			continue
		}
		sp := o.Local.Other
		if n.Policy != "" {
			sp.Policy = local.Policy(n.Policy)
		}
		if n.LocalMaxBytes != 0 {
			sp.MaxBytes = n.LocalMaxBytes
		}
		if n.LocalMaxAge != 0 {
			sp.MaxAge = n.LocalMaxAge.D()
		}
		o.Local.Spaces[name] = sp
	}
	return o
}

// NewCoordinator builds the shared tier (Redis when REDIS_ADDR is set,
// else the JetStream KV bucket), the coordinator and its NATS service.
func NewCoordinator(ctx context.Context, d *part.Deps) (*Coordinator, error) {
	cfg := d.Config
	o := Options(&cfg.Cache)
	o.NC, o.Registry, o.Log = d.NC, d.Registry, d.Log
	var closeShared func() error
	if cfg.Redis.Addr != "" {
		r := redistier.New(redistier.Options{Addr: cfg.Redis.Addr, DB: cfg.Redis.DB, PoolSize: cfg.Redis.PoolSize,
			Timeout: cfg.Cache.SharedTimeout.D()})
		o.Shared, o.Backend, closeShared = r, "redis", r.Close
	} else {
		kv, err := kvtier.New(ctx, kvtier.Options{NC: d.NC, JS: d.JS, Bucket: subjects.BucketCache})
		if err != nil {
			return nil, err
		}
		o.Shared, o.Backend, closeShared = kv, "jetstream-kv", func() error { return nil }
	}
	c, err := wcache.New(o)
	if err == nil {
		err = c.Start()
	}
	if err != nil {
		_ = closeShared()
		return nil, fmt.Errorf("cache: %w", err)
	}
	svc, err := c.StartService(d.NC, d.Version, cfg.Cache.MaxInFlight)
	if err != nil {
		_ = c.Shutdown(ctx)
		_ = closeShared()
		return nil, fmt.Errorf("cache service: %w", err)
	}
	d.Log.Info("cache coordinator ready", "backend", o.Backend, "namespaces", len(o.Namespaces))
	return &Coordinator{C: c, svc: svc, closeShared: closeShared}, nil
}

// Run runs the coordinator until Shutdown or ctx ends.
func (c *Coordinator) Run(ctx context.Context) error { return c.C.Run(ctx) }

// Shutdown stops the NATS service, waits for the edge's requests, stops
// the coordinator and closes the shared tier. Safe to call twice.
func (c *Coordinator) Shutdown(ctx context.Context) error {
	var errs []error
	c.once.Do(func() {
		errs = append(errs, c.svc.Stop(ctx))
		if c.srv != nil {
			errs = append(errs, c.srv.Shutdown(ctx))
		}
		errs = append(errs, c.C.Shutdown(ctx), c.closeShared())
	})
	return errors.Join(errs...)
}
