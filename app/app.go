// Package app wires a Switchyard process: it binds the edges' ports, starts
// the embedded nats-server (or connects to NATS_URL), declares the
// JetStream assets, builds the selected parts, runs them, and shuts them
// down in order under one deadline: edges fail readiness and drain their
// requests, then worker pools drain, then the NATS connection drains, then
// the embedded server stops.
//
// A part is one edge or one worker pool. Parts do not know each other: a
// new edge or pool is a new Part in the list cmd/switchyard passes to Run.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/edge"
	"github.com/switchyard/switchyard/jetstream"
	"github.com/switchyard/switchyard/part"
)

// Options configures Run.
type Options struct {
	Config  *config.Config
	Parts   []part.Part
	Log     *slog.Logger
	Version string
	// Registry, when set, replaces a fresh Prometheus registry (tests).
	Registry *prometheus.Registry
	// Ready, when set, receives the bound edge addresses once every part runs.
	Ready func(map[string]net.Addr)
}

// Run runs the parts until ctx ends or one of them fails, then shuts
// everything down. It returns nil after a clean shutdown.
func Run(ctx context.Context, o Options) error {
	cfg, log := o.Config, o.Log.With("app", o.Config.Service.Name)
	listeners := map[string]net.Listener{}
	closeListeners := func() {
		for _, l := range listeners {
			_ = l.Close()
		}
	}
	for _, p := range o.Parts {
		if p.Port == nil {
			continue
		}
		key, port := p.Port(cfg)
		l, err := net.Listen("tcp", net.JoinHostPort(cfg.Server.Host, strconv.Itoa(port)))
		if err != nil {
			closeListeners()
			return fmt.Errorf("%s edge: cannot listen on port %d (%s): %w", p.Name, port, key, errors.Unwrap(err))
		}
		listeners[p.Name] = l
	}

	edges := len(listeners)
	// metrics.port, when set, is the one place the registry is served.
	if cfg.Metrics.Enabled && cfg.Metrics.Port != 0 {
		l, err := net.Listen("tcp", net.JoinHostPort(cfg.Server.Host, strconv.Itoa(cfg.Metrics.Port)))
		if err != nil {
			closeListeners()
			return fmt.Errorf("metrics: cannot listen on port %d (METRICS_PORT): %w", cfg.Metrics.Port, errors.Unwrap(err))
		}
		listeners[metricsListener] = l
	}

	// A process of worker pools only still serves /health and /metrics.
	var opsName string
	if edges == 0 {
		l, err := net.Listen("tcp", net.JoinHostPort(cfg.Server.Host, strconv.Itoa(cfg.Server.WorkerPort)))
		if err != nil {
			return fmt.Errorf("workers: cannot listen on port %d (WORKER_PORT): %w", cfg.Server.WorkerPort, errors.Unwrap(err))
		}
		opsName = strings.Join(partNames(o.Parts), "+")
		listeners[opsName] = l
	}

	maxMsg := int32(cfg.MaxPayloadBytes())
	var nc *nats.Conn
	var emb *jetstream.Embedded
	if cfg.NATS.URL == "" {
		var err error
		emb, err = jetstream.StartEmbedded(jetstream.EmbeddedOptions{
			Host: natsHost(cfg), Port: cfg.NATS.Port, ConfigFile: cfg.NATS.ConfigFile,
			StoreDir: filepath.Clean(cfg.DataDir), MaxPayload: maxMsg, ServerName: serverName(cfg),
			User: cfg.NATS.User, Password: cfg.NATS.Password, Token: cfg.NATS.Token,
			Cluster: jetstream.ClusterOptions{Name: cfg.NATS.ClusterNameOrDefault(), Port: cfg.NATS.ClusterPort, Routes: cfg.NATS.Routes()},
		}, log)
		if err != nil {
			closeListeners()
			if errors.Is(err, jetstream.ErrClusterPortInUse) {
				return fmt.Errorf("embedded NATS: cannot listen on port %d (NATS_CLUSTER_PORT): address already in use", cfg.NATS.ClusterPort)
			}
			if errors.Is(err, jetstream.ErrRoutesExposedWithoutAuth) {
				return fmt.Errorf("embedded NATS: NATS_HOST (nats.host)=%q exposes the cluster port NATS_CLUSTER_PORT: set NATS_USER and NATS_PASSWORD, or NATS_TOKEN (or keep NATS_HOST=127.0.0.1)", cfg.NATS.Host)
			}
			if errors.Is(err, jetstream.ErrPortInUse) {
				return fmt.Errorf("embedded NATS: cannot listen on port %d (NATS_PORT): address already in use", cfg.NATS.Port)
			}
			if errors.Is(err, jetstream.ErrExposedWithoutAuth) {
				return fmt.Errorf("embedded NATS: NATS_HOST (nats.host)=%q listens beyond loopback: set NATS_USER and NATS_PASSWORD, or NATS_TOKEN (or keep NATS_HOST=127.0.0.1)", cfg.NATS.Host)
			}
			return fmt.Errorf("embedded NATS: %w", err)
		}
		log.Info("embedded nats-server started", "url", emb.ClientURL(), "store_dir", emb.StoreDir(), "auth", emb.AuthMode())
		if cfg.NATS.Clustered() {
			log.Info("embedded nats-server is a cluster node", "server_name", serverName(cfg), "cluster", cfg.NATS.ClusterNameOrDefault(),
				"cluster_port", cfg.NATS.ClusterPort, "routes", jetstream.RedactURL(cfg.NATS.ClusterRoutes), "replicas", cfg.NATS.Replicas)
		}
	}
	stopNATS := func() {
		if emb != nil {
			emb.Shutdown()
		}
	}

	reg := o.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	cm := jetstream.NewClusterMetrics(reg)
	// The start budget: connect, a JetStream leader and the assets, each
	// retried with backoff while the cluster forms.
	startCtx, endStart := context.WithTimeout(ctx, cfg.NATS.StartTimeout.D())
	defer endStart()
	ident := processIdentity()
	natsOpts, err := jetstream.ClientOptions(&cfg.NATS)
	if err == nil {
		nc, err = jetstream.ConnectRetry(startCtx, cfg.ClientName()+ident, cfg.NATS.URL, emb, log, cm.StartRetry, natsOpts...)
	}
	if err != nil {
		closeListeners()
		stopNATS()
		return err
	}
	logNATS(log, cfg, nc)
	if mp := nc.MaxPayload(); mp < int64(maxMsg) {
		log.Warn("NATS max_payload is below the body limit; large bodies will be refused",
			"max_payload", mp, "max_body_bytes", cfg.Server.MaxBodyBytes)
	}
	js, err := natsjs.New(nc)
	if err == nil {
		err = jetstream.EnsureRetry(startCtx, js, jetstream.ForConfig(cfg), log, cm.StartRetry)
	}
	if err != nil {
		nc.Close()
		closeListeners()
		stopNATS()
		if errors.Is(err, jetstream.ErrReplicaMismatch) {
			cm.Mismatch()
			log.Error("replica mismatch: refusing to start", "err", err)
		}
		return fmt.Errorf("jetstream assets: %w", err)
	}

	checks := edge.NewChecks()
	// Every NATS connection of the process, and the quorum of every asset.
	var (
		connsMu sync.Mutex
		conns   = []*nats.Conn{nc}
	)
	checks.Add("nats", jetstream.ConnsCheck(func() []*nats.Conn {
		connsMu.Lock()
		defer connsMu.Unlock()
		return slices.Clone(conns)
	}))
	quorum := jetstream.NewQuorumWatch(nc, jetstream.ForConfig(cfg), cm, log)
	checks.Add("jetstream", quorum.Check)
	checks.AddInfo("jetstream", quorum.Info)
	base := part.Deps{
		Config: cfg, NC: nc, JS: js, Log: log, Registry: reg, Gatherer: reg,
		HTTPMetrics: edge.NewMetrics(reg), Checks: checks, Version: o.Version,
	}

	// One scrape target per process: metrics.port when set, else the
	// first edge's port, else the worker port. Every other edge's
	// /metrics says where to look instead of serving the same registry.
	metricsOwner, metricsAt := metricsTarget(cfg, o.Parts, opsName, listeners)
	if metricsOwner != "" {
		log.Info("metrics served", "at", metricsAt)
	}
	metricsElsewhere := func(name string) string {
		if name == metricsOwner {
			return ""
		}
		return metricsAt
	}

	type running struct {
		part part.Part
		comp part.Component
	}
	var comps []running
	// Each part gets its own connection: one socket's read loop and flusher
	// would otherwise serialise every part's traffic, and
	// `nats server report connections` shows each part by name.
	comps = append(comps, running{part.Part{Name: "quorum", Kind: part.KindWorkers}, quorum})
	for _, p := range o.Parts {
		d := base
		d.Listener = listeners[p.Name]
		d.MetricsAt = metricsElsewhere(p.Name)
		pnc, err := jetstream.ConnectRetry(startCtx, cfg.ClientName()+"-"+p.Name+ident, cfg.NATS.URL, emb, log, cm.StartRetry, natsOpts...)
		var cs []part.Component
		if err == nil {
			connsMu.Lock()
			conns = append(conns, pnc)
			connsMu.Unlock()
			d.NC = pnc
			d.JS, err = natsjs.New(pnc)
		}
		if err == nil {
			cs, err = p.Build(&d)
		}
		if err != nil {
			sctx, cancel := context.WithTimeout(context.Background(), cfg.Server.ShutdownTimeout.D())
			for _, r := range comps {
				_ = r.comp.Shutdown(sctx)
			}
			cancel()
			for _, c := range conns {
				c.Close()
			}
			closeListeners()
			stopNATS()
			return fmt.Errorf("%s: %w", p.Name, err)
		}
		for _, c := range cs {
			comps = append(comps, running{p, c})
		}
	}

	if opsName != "" {
		d := base
		d.Listener = listeners[opsName]
		d.MetricsAt = metricsElsewhere(opsName)
		comps = append(comps, running{part.Part{Name: opsName, Kind: part.KindEdge}, edge.New(d.EdgeOptions(opsName))})
	}
	if cfg.Metrics.Enabled && cfg.Metrics.Port != 0 {
		comps = append(comps, running{part.Part{Name: "metrics", Kind: part.KindEdge}, newMetricsServer(listeners[metricsListener], cfg.Metrics.Path, reg, log)})
	}
	if cfg.Server.PprofAddr != "" {
		comps = append(comps, running{part.Part{Name: "pprof", Kind: part.KindWorkers}, newPprof(cfg.Server.PprofAddr, log)})
	}
	// Components run under runCtx, which ends only after the ordered
	// shutdown below: Run's own ctx handling is a backstop, not the order.
	runCtx, endRun := context.WithCancel(context.WithoutCancel(ctx))
	defer endRun()
	failed := make(chan error, len(comps))
	var wg sync.WaitGroup
	for _, r := range comps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.comp.Run(runCtx); err != nil {
				failed <- fmt.Errorf("%s: %w", r.part.Name, err)
			}
		}()
	}
	addrs := map[string]net.Addr{}
	for name, l := range listeners {
		addrs[name] = l.Addr()
	}
	if emb != nil {
		addrs["nats"] = emb.Server().Addr()
	}
	endStart()
	log.Info("switchyard ready", "parts", partNames(o.Parts), "nats", natsURL(cfg, emb), "version", o.Version)
	if o.Ready != nil {
		o.Ready(addrs)
	}

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down", "reason", context.Cause(ctx))
	case runErr = <-failed:
		log.Error("part failed, shutting down", "err", runErr)
	}

	sctx, cancel := context.WithTimeout(context.Background(), cfg.Server.ShutdownTimeout.D())
	defer cancel()
	var errs []error
	for _, kind := range []part.Kind{part.KindEdge, part.KindWorkers} {
		var swg sync.WaitGroup
		var mu sync.Mutex
		for _, r := range comps {
			if r.part.Kind != kind {
				continue
			}
			swg.Add(1)
			go func() {
				defer swg.Done()
				if err := r.comp.Shutdown(sctx); err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("%s shutdown: %w", r.part.Name, err))
					mu.Unlock()
				}
			}()
		}
		swg.Wait()
	}
	endRun()
	wg.Wait()
	var (
		dwg      sync.WaitGroup
		tmu      sync.Mutex
		timedOut []string
	)
	for _, c := range conns {
		dwg.Add(1)
		go func() {
			defer dwg.Done()
			if !drainNATS(sctx, c) {
				tmu.Lock()
				timedOut = append(timedOut, c.Opts.Name)
				tmu.Unlock()
			}
		}()
	}
	dwg.Wait()
	if len(timedOut) > 0 {
		sort.Strings(timedOut)
		log.Warn("nats drain timed out; closed those connections", "conns", timedOut)
	}
	stopNATS()
	log.Info("switchyard stopped")
	if runErr != nil {
		return runErr
	}
	return errors.Join(errs...)
}

// metricsListener names the metrics.port listener in Options.Ready's map.
const metricsListener = "metrics"

// metricsTarget returns the listener that serves the process's metrics
// (metrics.port, else the first edge in parts order, else the worker
// port) and how to reach it, or "" when metrics are off.
func metricsTarget(cfg *config.Config, parts []part.Part, opsName string, listeners map[string]net.Listener) (owner, at string) {
	if !cfg.Metrics.Enabled {
		return "", ""
	}
	switch {
	case listeners[metricsListener] != nil:
		owner = metricsListener
	case opsName != "":
		owner = opsName
	default:
		for _, p := range parts {
			if listeners[p.Name] != nil {
				owner = p.Name
				break
			}
		}
	}
	l := listeners[owner]
	if l == nil {
		return "", ""
	}
	port := l.Addr().(*net.TCPAddr).Port
	what := "the " + owner + " edge's port"
	switch owner {
	case metricsListener:
		what = "METRICS_PORT"
	case opsName:
		what = "WORKER_PORT"
	}
	return owner, fmt.Sprintf("%s on port %d (%s)", cfg.Metrics.Path, port, what)
}

// natsHost is the embedded server's interface: nats.host, where empty
// means every interface.
func natsHost(cfg *config.Config) string {
	if cfg.NATS.Host == "" {
		return "0.0.0.0"
	}
	return cfg.NATS.Host
}

// logNATS logs the connection, how it authenticated, and the settings
// that are labels only.
func logNATS(log *slog.Logger, cfg *config.Config, nc *nats.Conn) {
	log.Info("nats connected", "url", nc.ConnectedUrlRedacted(), "client_name", cfg.ClientName(),
		"auth", jetstream.AuthMode(&cfg.NATS), "tls", nc.TLSRequired() || cfg.NATS.TLSCA != "", "max_reconnects", cfg.NATS.MaxReconnects,
		"cluster_id", cfg.NATS.ClusterID)
	if tp := cfg.Server.TrustedProxies; len(tp) > 0 {
		log.Warn("trusted proxies set: the edges pass on X-Forwarded-* and Forwarded headers from these peers",
			"trusted_proxies", strings.Join(tp, ","))
	}
}

// drainNATS drains nc within ctx, and closes it when that fails or times
// out. It reports false only when the drain timed out.
func drainNATS(ctx context.Context, nc *nats.Conn) bool {
	closed := make(chan struct{})
	nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
	if !nc.IsConnected() {
		nc.Close() // nothing can be drained through a connection that is down
		return true
	}
	if err := nc.Drain(); err != nil {
		nc.Close()
		return true
	}
	select {
	case <-closed:
		return true
	case <-ctx.Done():
		nc.Close()
		return false
	}
}

// natsURL is the server list for logs, passwords redacted.
func natsURL(cfg *config.Config, emb *jetstream.Embedded) string {
	if emb != nil {
		return emb.ClientURL()
	}
	return jetstream.RedactURL(cfg.NATS.URL)
}

// serverName is the embedded server's name: nats.server_name, or
// "switchyard" for a single node.
func serverName(cfg *config.Config) string {
	if cfg.NATS.ServerName != "" {
		return cfg.NATS.ServerName
	}
	return "switchyard"
}

// processIdentity is appended to every NATS connection name, so
// `nats server report connections` tells processes of the same
// service.name apart: "@<host>:<pid>".
func processIdentity() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	return "@" + host + ":" + strconv.Itoa(os.Getpid())
}

func partNames(ps []part.Part) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Name
	}
	return out
}
