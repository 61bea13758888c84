package proxy

import (
	"github.com/switchyard/switchyard/part"
)

// Part runs the proxy worker pool of every configured service (the job
// runners are their own part, workers/jobs).
var Part = part.Part{
	Name: "proxy", Kind: part.KindWorkers,
	Summary: "proxy worker pool: svc.<service>.> to HTTP upstreams",
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
		if err := w.Start(); err != nil {
			return nil, err
		}
		return []part.Component{w}, nil
	},
}
