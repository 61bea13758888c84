package proxy

import (
	"context"

	"github.com/switchyard/switchyard/part"
	"github.com/switchyard/switchyard/workers/jobs"
)

// Part runs the proxy worker pool and the job runners of every configured service.
var Part = part.Part{
	Name: "proxy", Kind: part.KindWorkers,
	Summary: "proxy worker pool: svc.<service>.> to HTTP upstreams, and durable job runners",
	Build: func(d *part.Deps) ([]part.Component, error) {
		cfg := d.Config
		services := cfg.ResolveServices()
		w, err := New(Options{
			NC: d.NC, Services: services,
			RequestTimeout:      cfg.Rust.RequestTimeout.D(),
			HealthInterval:      cfg.Rust.HealthCheckInterval.D(),
			MaxConnsPerUpstream: cfg.LB.MaxConnsPerUpstream,
			MaxInFlight:         cfg.LB.MaxInFlight,
			QueueWait:           cfg.LB.QueueWait.D(),
			MaxResponseBytes:    cfg.Server.MaxBodyBytes,
			Registry:            d.Registry, Log: d.Log, Version: d.Version,
		})
		if err != nil {
			return nil, err
		}
		names := make([]string, len(services))
		for i, s := range services {
			names[i] = s.Name
		}
		r, err := jobs.New(jobs.Options{
			NC: d.NC, JS: d.JS, Services: names,
			Timeout: cfg.LB.JobTimeout.D(), AckWait: cfg.LB.JobAckWait.D(), MaxDeliver: cfg.LB.JobMaxDeliver,
			Registry: d.Registry, Log: d.Log,
		})
		if err != nil {
			return nil, err
		}
		if err := w.Start(); err != nil {
			return nil, err
		}
		if err := r.Start(context.Background()); err != nil {
			_ = w.Shutdown(context.Background())
			return nil, err
		}
		return []part.Component{w, r}, nil
	},
}
