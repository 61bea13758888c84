// Package part defines what a Switchyard part is: one edge or one worker
// pool, runnable alone as a subcommand or together with the others in
// `switchyard run`. Edges and pools import this package; the composition
// root (package app) imports them, never the other way round.
//
// A part's Build runs once, on the goroutine of app.Run, with Deps shared by
// every part of the process (each part gets its own NATS connection). The
// Components it returns are run and shut down by app.Run: Run on its own
// goroutine, Shutdown from app.Run in order (edges before worker pools)
// under one deadline.
package part

import (
	"context"
	"log/slog"
	"net"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/edge"
)

// Component is anything with a lifecycle. Run blocks until Shutdown is
// called, ctx ends, or the component fails; it returns nil after a clean
// stop. Shutdown stops it gracefully within ctx and is safe to call twice.
type Component interface {
	Run(ctx context.Context) error
	Shutdown(ctx context.Context) error
}

// Kind orders shutdown: edges stop before worker pools.
type Kind int

// Kinds of part.
const (
	KindEdge Kind = iota
	KindWorkers
)

// Deps is what a part is built from. Everything in it is shared by the
// parts of one process and safe for concurrent use.
type Deps struct {
	Config      *config.Config
	NC          *nats.Conn
	JS          natsjs.JetStream
	Log         *slog.Logger
	Registry    prometheus.Registerer
	Gatherer    prometheus.Gatherer
	HTTPMetrics *edge.Metrics
	Checks      *edge.Checks
	Version     string
	// Listener is the part's bound port (edges only).
	Listener net.Listener
	// MetricsAt, when set, is where the process serves its metrics (the
	// first edge's port, or metrics.port): this edge's /metrics then
	// answers 404 naming it, so the process is one scrape target.
	MetricsAt string
}

// EdgeOptions returns the edge.Options every edge starts from.
func (d *Deps) EdgeOptions(name string) edge.Options {
	o := edge.Options{
		Name: name, Listener: d.Listener, Log: d.Log, Version: d.Version,
		Metrics: d.HTTPMetrics, MetricsPath: d.Config.Metrics.Path,
		MaxBodyBytes: d.Config.Server.MaxBodyBytes, NC: d.NC, Checks: d.Checks,
		WriteTimeout:   d.Config.Rust.RequestTimeout.D() + 30*time.Second,
		TrustedProxies: d.Config.Server.TrustedPrefixes(), NATSClusterID: d.Config.NATS.ClusterID,
	}
	if d.Config.Metrics.Enabled {
		o.Gatherer, o.MetricsAt = d.Gatherer, d.MetricsAt
		if d.MetricsAt != "" {
			o.Gatherer = nil
		}
	}
	return o
}

// Part is one edge or worker pool, runnable alone as a subcommand.
type Part struct {
	Name    string // subcommand name
	Kind    Kind
	Summary string // one line for --help
	// Port returns the config key and port of an edge (nil for workers).
	Port func(*config.Config) (key string, port int)
	// Build creates the part's components.
	Build func(*Deps) ([]Component, error)
}

// EdgePart returns the Part of an edge: the shared plumbing (edge.New) plus
// the routes and components that routes adds (routes may be nil).
func EdgePart(name, summary string, port func(*config.Config) (string, int),
	routes func(*edge.Server, *Deps) ([]Component, error)) Part {
	return Part{
		Name: name, Kind: KindEdge, Summary: summary, Port: port,
		Build: func(d *Deps) ([]Component, error) {
			s := edge.New(d.EdgeOptions(name))
			comps := []Component{s}
			if routes != nil {
				more, err := routes(s, d)
				if err != nil {
					return nil, err
				}
				comps = append(comps, more...)
			}
			return comps, nil
		},
	}
}
