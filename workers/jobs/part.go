package jobs

import (
	"context"

	"github.com/switchyard/switchyard/part"
)

// Part runs the job runners of every configured service. It needs no
// proxy worker: a service's jobs go to svc.<service>.>, whoever serves it.
var Part = part.Part{
	Name: "jobs", Kind: part.KindWorkers,
	Summary: "durable job runners: jobs.<service>.> from stream JOBS to svc.<service>.>",
	Build: func(d *part.Deps) ([]part.Component, error) {
		cfg := d.Config
		var names []string
		for _, s := range cfg.ResolveServices() {
			names = append(names, s.Name)
		}
		r, err := New(Options{
			NC: d.NC, JS: d.JS, Services: names,
			Timeout: cfg.LB.JobTimeout.D(), AckWait: cfg.LB.JobAckWait.D(), MaxDeliver: cfg.LB.JobMaxDeliver,
			Concurrency: cfg.LB.JobConcurrency, MaxResultBytes: cfg.JobResultLimit(),
			Registry: d.Registry, Log: d.Log,
		})
		if err != nil {
			return nil, err
		}
		if err := r.Start(context.Background()); err != nil {
			_ = r.Shutdown(context.Background())
			return nil, err
		}
		return []part.Component{r}, nil
	},
}
