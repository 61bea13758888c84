package deploy

import (
	"bufio"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.yaml.in/yaml/v3"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/edge"
	"github.com/switchyard/switchyard/edge/broker"
	"github.com/switchyard/switchyard/edge/lb"
	"github.com/switchyard/switchyard/edge/ws"
	"github.com/switchyard/switchyard/internal/streams"
	wcache "github.com/switchyard/switchyard/workers/cache"
	wjobs "github.com/switchyard/switchyard/workers/jobs"
	"github.com/switchyard/switchyard/workers/proxy"
)

// root is the repository root, relative to this package's directory.
const root = ".."

// subcommands are the cmd/switchyard commands that start parts ("run" starts
// them all). package main cannot be imported: keep this list in step with
// cmd/switchyard/main.go and parts.go.
var subcommands = []string{"run", "broker", "lb", "cache", "stream", "proxy", "jobs"}

// wantServices are the compose services of the parts, by the names the
// docs and clients use.
var wantServices = map[string]string{
	"message-broker":    "broker",
	"load-balancer":     "lb",
	"cache-coordinator": "cache",
	"stream-processor":  "stream",
	"proxy-worker":      "proxy",
	"jobs-worker":       "jobs",
}

// ---------------------------------------------------------------------------
// The tests

// (a) Every environment name a Switchyard container gets is one the binary reads.
func TestComposeEnvironmentNames(t *testing.T) {
	known := knownEnv(t)
	c := loadCompose(t)
	for _, name := range sortedKeys(switchyardServices(t, c)) {
		s := c.Services[name]
		for _, k := range sortedKeys(s.Environment) {
			if !known[k] {
				t.Errorf("docker-compose.yml: service %s: environment %s is not read by switchyard%s",
					name, k, suggest(k, known))
			}
		}
	}
	d := loadDockerfile(t)
	for _, k := range sortedKeys(d.final().env()) {
		if !known[k] {
			t.Errorf("Dockerfile: ENV %s is not read by switchyard%s", k, suggest(k, known))
		}
	}
}

// (b) Every Switchyard service runs a known subcommand, and every part runs somewhere.
func TestComposeCommands(t *testing.T) {
	c := loadCompose(t)
	d := loadDockerfile(t)
	svcs := switchyardServices(t, c)
	runs := map[string]bool{}
	for _, name := range sortedKeys(svcs) {
		inv, err := parseInvocation(commandOf(c.Services[name], d))
		if err != nil {
			t.Errorf("docker-compose.yml: service %s: command: %v", name, err)
			continue
		}
		if !slices.Contains(subcommands, inv.sub) {
			t.Errorf("docker-compose.yml: service %s: command %q is not a switchyard subcommand (want one of %v)",
				name, inv.sub, subcommands)
		}
		runs[inv.sub] = true
	}
	for _, name := range sortedKeys(wantServices) {
		sub := wantServices[name]
		if _, ok := svcs[name]; !ok {
			t.Errorf("docker-compose.yml: no Switchyard service %s (switchyard %s)", name, sub)
			continue
		}
		if inv, err := parseInvocation(commandOf(c.Services[name], d)); err == nil && inv.sub != sub {
			t.Errorf("docker-compose.yml: service %s runs %q, want %q", name, inv.sub, sub)
		}
	}
	if !runs["run"] {
		for _, sub := range subcommands[1:] {
			if !runs[sub] {
				t.Errorf("docker-compose.yml: no service runs `switchyard %s`", sub)
			}
		}
	}
}

// (c) Published container ports are the ports the process listens on.
func TestComposePorts(t *testing.T) {
	c := loadCompose(t)
	d := loadDockerfile(t)
	hostPorts := map[string]string{}
	for _, name := range sortedKeys(c.Services) {
		for _, p := range c.Services[name].Ports {
			if p.published == "" {
				continue
			}
			if other, dup := hostPorts[p.published]; dup {
				t.Errorf("docker-compose.yml: host port %s is published by both %s and %s", p.published, other, name)
			}
			hostPorts[p.published] = name
		}
	}
	for _, name := range sortedKeys(switchyardServices(t, c)) {
		s := c.Services[name]
		inv, cfg := serviceConfig(t, c, d, name)
		if cfg == nil {
			continue
		}
		want := edgePorts(inv.sub, cfg)
		allowed := maps.Clone(want)
		if cfg.NATS.URL == "" && cfg.NATS.Port > 0 {
			allowed[cfg.NATS.Port] = "NATS_PORT (nats.port)"
		}
		got := map[int]bool{}
		for _, p := range s.Ports {
			for _, cp := range p.container {
				got[cp] = true
				if _, ok := allowed[cp]; !ok {
					t.Errorf("docker-compose.yml: service %s publishes container port %d, but `switchyard %s` listens on %s",
						name, cp, inv.sub, describePorts(allowed))
				}
			}
		}
		for _, p := range sortedKeys(want) {
			if !got[p] {
				t.Errorf("docker-compose.yml: service %s listens on %d (%s) but does not publish it",
					name, p, want[p])
			}
		}
		switch cfg.Server.Host {
		case "", "0.0.0.0", "::":
		default:
			t.Errorf("docker-compose.yml: service %s: HOST=%q: published ports need the edges to listen on every interface",
				name, cfg.Server.Host)
		}
	}
}

// (d) Every mounted file exists in the repository, and the mounted configs load.
func TestComposeMounts(t *testing.T) {
	c := loadCompose(t)
	d := loadDockerfile(t)
	for _, name := range sortedKeys(c.Services) {
		for _, m := range c.Services[name].Volumes {
			switch {
			case m.bind:
				if !strings.HasPrefix(m.source, "./") {
					t.Errorf("docker-compose.yml: service %s: bind mount %s must name a path inside the repository (./...)",
						name, m.source)
					continue
				}
				if _, err := os.Stat(filepath.Join(root, m.source)); err != nil {
					t.Errorf("docker-compose.yml: service %s: mounted %s does not exist in the repository", name, m.source)
				}
			case m.source != "":
				if _, ok := c.Volumes[m.source]; !ok {
					t.Errorf("docker-compose.yml: service %s: volume %s is not declared under top-level volumes", name, m.source)
				}
			}
			if !path.IsAbs(m.target) {
				t.Errorf("docker-compose.yml: service %s: mount target %q must be an absolute path", name, m.target)
			}
		}
	}
	for _, name := range sortedKeys(switchyardServices(t, c)) {
		inv, _ := serviceConfig(t, c, d, name) // loads the mounted config, failing on error
		if inv.configPath == "" {
			t.Errorf("docker-compose.yml: service %s: set CONFIG_FILE to a mounted config file", name)
		}
	}
	// The NATS server loads its mounted config.
	nname, ns := natsService(t, c)
	arg := flagValue(ns.Command, "-c", "--config")
	if arg == "" {
		t.Fatalf("docker-compose.yml: service %s: command %q does not pass --config", nname, ns.Command)
	}
	host, ok := hostPath(ns, arg)
	if !ok {
		t.Fatalf("docker-compose.yml: service %s: --config %s is not a mounted file", nname, arg)
	}
	opts := loadNATSConf(t, host)
	if !mountedAt(ns, opts.StoreDir) {
		t.Errorf("docker-compose.yml: service %s: JetStream store_dir %s (from %s) is not on a volume: streams would not survive a restart",
			nname, opts.StoreDir, relRoot(host))
	}
}

// The services find each other: NATS_URL and REDIS_ADDR name compose services
// and their ports, and services start after what they need.
func TestComposeWiring(t *testing.T) {
	c := loadCompose(t)
	d := loadDockerfile(t)
	nname, ns := natsService(t, c)
	nopts := loadNATSConf(t, mustHostPath(t, ns, flagValue(ns.Command, "-c", "--config")))
	natsPort := nopts.Port
	if natsPort == 0 {
		natsPort = server.DEFAULT_PORT
	}
	if hc := ns.healthURL(); hc != nil && hc.Port() != strconv.Itoa(nopts.HTTPPort) {
		t.Errorf("docker-compose.yml: service %s: healthcheck %s, but nats.conf sets http_port %d", nname, hc, nopts.HTTPPort)
	}
	for _, name := range sortedKeys(c.Services) {
		for _, dep := range c.Services[name].DependsOn {
			if _, ok := c.Services[dep]; !ok {
				t.Errorf("docker-compose.yml: service %s depends on %s, which is not a service", name, dep)
			}
		}
	}
	for _, name := range sortedKeys(switchyardServices(t, c)) {
		s := c.Services[name]
		_, cfg := serviceConfig(t, c, d, name)
		if cfg == nil {
			continue
		}
		if cfg.NATS.URL == "" && !cfg.NATS.Clustered() {
			t.Errorf("docker-compose.yml: service %s has no NATS_URL: it would start its own embedded server and never see the other services", name)
		}
		if cfg.NATS.Clustered() {
			clusterNode(t, c, name, cfg)
			continue
		}
		if need := cfg.Server.MaxBodyBytes + 64<<10; int64(nopts.MaxPayload) < need {
			t.Errorf("docker-compose.yml: service %s: MAX_BODY_BYTES %d needs max_payload >= %d, but nats.conf sets %d",
				name, cfg.Server.MaxBodyBytes, need, nopts.MaxPayload)
		}
		for _, u := range config.SplitList(cfg.NATS.URL) {
			pu, err := url.Parse(u)
			if err != nil {
				continue // Validate already refused it
			}
			if pu.Hostname() != nname {
				t.Errorf("docker-compose.yml: service %s: NATS_URL %s does not name the NATS service %s", name, u, nname)
				continue
			}
			if pu.Port() != strconv.Itoa(natsPort) {
				t.Errorf("docker-compose.yml: service %s: NATS_URL %s, but nats.conf listens on port %d", name, u, natsPort)
			}
			if !slices.Contains(s.DependsOn, nname) {
				t.Errorf("docker-compose.yml: service %s uses %s but does not depend on it", name, nname)
			}
		}
		if cfg.Redis.Addr != "" {
			host, port, _ := net.SplitHostPort(cfg.Redis.Addr)
			rs, ok := c.Services[host]
			switch {
			case !ok:
				t.Errorf("docker-compose.yml: service %s: REDIS_ADDR %s does not name a service", name, cfg.Redis.Addr)
			case !strings.HasPrefix(rs.Image, "redis"):
				t.Errorf("docker-compose.yml: service %s: REDIS_ADDR %s names %s, which is not a redis image", name, cfg.Redis.Addr, host)
			case port != redisPort(rs):
				t.Errorf("docker-compose.yml: service %s: REDIS_ADDR %s, but %s listens on %s", name, cfg.Redis.Addr, host, redisPort(rs))
			}
			if ok && !slices.Contains(s.DependsOn, host) {
				t.Errorf("docker-compose.yml: service %s uses %s but does not depend on it", name, host)
			}
		}
		// A RUST_*_SERVICE_URL that the mounted config's services block
		// replaces would be silently ignored.
		for svc, key := range map[string]string{
			"vision": "RUST_VISION_SERVICE_URL", "ai": "RUST_AI_SERVICE_URL", "analytics": "RUST_ANALYTICS_SERVICE_URL",
		} {
			if _, set := s.Environment[key]; !set {
				continue
			}
			if _, shadowed := cfg.Services[svc]; shadowed {
				t.Errorf("docker-compose.yml: service %s sets %s, but its config file declares services.%s, which replaces it",
					name, key, svc)
			}
		}
	}
}

// (e) Prometheus scrapes every process once, at the port that serves its
// metrics and its metrics path, and nothing else unknown.
func TestPrometheusTargets(t *testing.T) {
	c := loadCompose(t)
	d := loadDockerfile(t)
	host, pc := prometheusConfigOf(t, c)
	scraped := map[string]bool{}
	for _, sc := range pc.ScrapeConfigs {
		mpath := sc.MetricsPath
		if mpath == "" {
			mpath = "/metrics"
		}
		for _, st := range sc.StaticConfigs {
			for _, target := range st.Targets {
				h, port, err := net.SplitHostPort(target)
				if err != nil {
					t.Errorf("%s: job %s: target %q is not host:port", relRoot(host), sc.JobName, target)
					continue
				}
				s, ok := c.Services[h]
				if !ok {
					t.Errorf("%s: job %s: target %s: %s is not a compose service", relRoot(host), sc.JobName, target, h)
					continue
				}
				if l, ok := st.Labels["service"]; ok && l != h {
					t.Errorf("%s: job %s: target %s has label service=%q", relRoot(host), sc.JobName, target, l)
				}
				scraped[target] = true
				if !isSwitchyard(s) {
					if !slices.Contains(s.containerPorts(), atoi(port)) {
						t.Errorf("%s: job %s: target %s: service %s does not publish port %s (ports %v)",
							relRoot(host), sc.JobName, target, h, port, s.containerPorts())
					}
					continue
				}
				inv, cfg := serviceConfig(t, c, d, h)
				if cfg == nil {
					continue
				}
				ports := metricsPorts(inv.sub, cfg)
				if _, ok := ports[atoi(port)]; !ok {
					t.Errorf("%s: job %s: target %s, but `switchyard %s` in %s serves its metrics on %s",
						relRoot(host), sc.JobName, target, inv.sub, h, describePorts(ports))
				}
				if !cfg.Metrics.Enabled {
					t.Errorf("%s: job %s: target %s, but %s has METRICS_ENABLED=false", relRoot(host), sc.JobName, target, h)
				}
				if mpath != cfg.Metrics.Path {
					t.Errorf("%s: job %s: metrics_path %s, but %s serves metrics at %s", relRoot(host), sc.JobName, mpath, h, cfg.Metrics.Path)
				}
			}
		}
	}
	for _, name := range sortedKeys(switchyardServices(t, c)) {
		inv, cfg := serviceConfig(t, c, d, name)
		if cfg == nil {
			continue
		}
		if len(c.Services[name].Profiles) > 0 {
			continue // not in the default stack Prometheus scrapes
		}
		for _, p := range sortedKeys(metricsPorts(inv.sub, cfg)) {
			if target := net.JoinHostPort(name, strconv.Itoa(p)); !scraped[target] {
				t.Errorf("%s: the edge %s is not scraped", relRoot(host), target)
			}
		}
	}
}

// Grafana's provisioning points at the compose Prometheus and the mounted
// dashboards, and every dashboard queries metrics the code registers.
func TestGrafanaProvisioning(t *testing.T) {
	c := loadCompose(t)
	gname, gs := serviceByImage(t, c, "grafana/grafana")
	prov := gs.Environment["GF_PATHS_PROVISIONING"]
	if prov == "" {
		prov = "/etc/grafana/provisioning"
	}
	provDir := mustHostPath(t, gs, prov)

	uids := map[string]bool{}
	for _, f := range globFiles(t, filepath.Join(provDir, "datasources"), "*.y*ml") {
		var ds struct {
			Datasources []struct {
				Name, UID, Type, URL string
			} `yaml:"datasources"`
		}
		decodeYAMLFile(t, f, &ds)
		for _, d := range ds.Datasources {
			uids[d.UID] = true
			u, err := url.Parse(d.URL)
			if err != nil {
				t.Errorf("%s: datasource %s: url %q: %v", relRoot(f), d.Name, d.URL, err)
				continue
			}
			s, ok := c.Services[u.Hostname()]
			if !ok {
				t.Errorf("%s: datasource %s: %s is not a compose service", relRoot(f), d.Name, u.Hostname())
				continue
			}
			if !slices.Contains(s.containerPorts(), atoi(u.Port())) {
				t.Errorf("%s: datasource %s: %s does not publish port %s", relRoot(f), d.Name, u.Hostname(), u.Port())
			}
		}
	}
	if len(uids) == 0 {
		t.Fatalf("%s: no datasource provisioned", relRoot(provDir))
	}

	jobs := map[string]bool{}
	_, pc := prometheusConfigOf(t, c)
	for _, sc := range pc.ScrapeConfigs {
		jobs[sc.JobName] = true
	}
	metrics := registeredMetrics(t)
	var dashboards []string
	for _, f := range globFiles(t, filepath.Join(provDir, "dashboards"), "*.y*ml") {
		var dp struct {
			Providers []struct {
				Name    string
				Options struct{ Path string }
			} `yaml:"providers"`
		}
		decodeYAMLFile(t, f, &dp)
		for _, p := range dp.Providers {
			dir, ok := hostPath(gs, p.Options.Path)
			if !ok {
				t.Errorf("%s: provider %s: path %s is not mounted into %s", relRoot(f), p.Name, p.Options.Path, gname)
				continue
			}
			dashboards = append(dashboards, globFiles(t, dir, "*.json")...)
		}
	}
	if len(dashboards) == 0 {
		t.Fatal("no dashboard provisioned")
	}
	if home := gs.Environment["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]; home != "" {
		if f, ok := hostPath(gs, home); !ok || !slices.Contains(dashboards, f) {
			t.Errorf("docker-compose.yml: service %s: home dashboard %s is not a provisioned dashboard", gname, home)
		}
	}
	metricRe := regexp.MustCompile(`\b(?:switchyard|go|process|nats)_[a-zA-Z0-9_]+`)
	jobRe := regexp.MustCompile(`\bjob\s*=\s*"([^"]*)"`)
	for _, f := range dashboards {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var dash map[string]any
		if err := json.Unmarshal(raw, &dash); err != nil {
			t.Errorf("%s: %v", relRoot(f), err)
			continue
		}
		if dash["uid"] == nil || dash["title"] == nil {
			t.Errorf("%s: a dashboard needs a uid and a title", relRoot(f))
		}
		var exprs []string
		walkJSON(dash, func(key string, v any) {
			switch key {
			case "expr":
				if s, ok := v.(string); ok {
					exprs = append(exprs, s)
				}
			case "datasource":
				if m, ok := v.(map[string]any); ok {
					if uid, _ := m["uid"].(string); uid != "" && !strings.HasPrefix(uid, "$") && !uids[uid] {
						t.Errorf("%s: datasource uid %q is not provisioned", relRoot(f), uid)
					}
				}
			}
		})
		if len(exprs) == 0 {
			t.Errorf("%s: no queries", relRoot(f))
		}
		for _, e := range exprs {
			for _, m := range metricRe.FindAllString(e, -1) {
				if !metrics[m] && !metrics[strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m, "_bucket"), "_sum"), "_count")] {
					t.Errorf("%s: query %q: no Switchyard code registers %s", relRoot(f), e, m)
				}
			}
			for _, m := range jobRe.FindAllStringSubmatch(e, -1) {
				if !jobs[m[1]] {
					t.Errorf("%s: query %q: Prometheus has no job %q", relRoot(f), e, m[1])
				}
			}
		}
	}
}

// (f) nats.conf loads, enables JetStream, carries the largest body, and boots.
func TestNATSConf(t *testing.T) {
	f := filepath.Join(root, "nats.conf")
	opts := loadNATSConf(t, f)
	if !opts.JetStream {
		t.Errorf("nats.conf: JetStream is not enabled (add a jetstream {} block)")
	}
	if opts.StoreDir == "" {
		t.Errorf("nats.conf: jetstream.store_dir is not set")
	}
	if opts.ServerName == "" {
		t.Errorf("nats.conf: server_name is not set")
	}
	// app.Run sizes every stream for a body plus 64 KiB of headers.
	minPayload := config.Default().Server.MaxBodyBytes + 64<<10
	if int64(opts.MaxPayload) < minPayload {
		t.Errorf("nats.conf: max_payload %d < %d (max_body_bytes + 64 KiB): large bodies would be refused",
			opts.MaxPayload, minPayload)
	}
	// The embedded server keeps room for four maximum-size messages per client.
	if opts.MaxPending < 4*int64(opts.MaxPayload) {
		t.Errorf("nats.conf: max_pending %d < 4 x max_payload (%d)", opts.MaxPending, 4*int64(opts.MaxPayload))
	}
	if opts.WriteDeadline <= 0 {
		t.Errorf("nats.conf: write_deadline is not set")
	}

	// Boot it, on a free port and a temporary store.
	opts.Host, opts.Port, opts.HTTPPort = "127.0.0.1", server.RANDOM_PORT, 0
	opts.StoreDir = t.TempDir()
	opts.NoSigs, opts.NoLog = true, true
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("nats.conf: %v", err)
	}
	go srv.Start()
	defer func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	}()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats.conf: the server did not become ready")
	}
	if !srv.JetStreamEnabled() {
		t.Error("nats.conf: JetStream did not start")
	}
}

// (g) config.example.yaml loads, shows every key with its default and a
// comment naming its environment variable, and documents every service key.
func TestConfigExample(t *testing.T) {
	f := filepath.Join(root, "config.example.yaml")
	cfg, err := config.Load(f, map[string]string{})
	if err != nil {
		t.Fatalf("config.example.yaml: %v", err)
	}
	got, want := *cfg, *config.Default()
	got.Services, want.Services = nil, nil
	got.Cache.Namespaces, want.Cache.Namespaces = nil, nil // the example shows two
	for _, diff := range diffFields("", reflect.ValueOf(got), reflect.ValueOf(want)) {
		t.Errorf("config.example.yaml: %s (the example shows every default)", diff)
	}

	var doc yaml.Node
	decodeYAMLFile(t, f, &doc)
	if len(doc.Content) == 0 {
		t.Fatal("config.example.yaml is empty")
	}
	checkDocumented(t, "", reflect.TypeFor[config.Config](), doc.Content[0])

	// The services block shows an HTTP service with weighted upstreams, a
	// NATS-only one, and every per-service key.
	svcs := mappingValue(doc.Content[0], "services")
	if svcs == nil || len(cfg.Services) == 0 {
		t.Fatal("config.example.yaml: no services block")
	}
	var weighted, natsOnly bool
	for _, s := range cfg.Services {
		weighted = weighted || (len(s.Upstreams) > 1 && slices.ContainsFunc(s.Upstreams, func(u config.Upstream) bool { return u.Weight > 1 }))
		natsOnly = natsOnly || len(s.Upstreams) == 0
	}
	if !weighted || !natsOnly {
		t.Errorf("config.example.yaml: services should show one service with weighted upstreams (%v) and one served by NATS workers only (%v)",
			weighted, natsOnly)
	}
	shown := map[string]bool{}
	for i := 1; i < len(svcs.Content); i += 2 {
		for j := 0; j+1 < len(svcs.Content[i].Content); j += 2 {
			shown[svcs.Content[i].Content[j].Value] = true
		}
	}
	st := reflect.TypeFor[config.Service]()
	for i := range st.NumField() {
		if k := yamlName(st.Field(i)); k != "" && !shown[k] {
			t.Errorf("config.example.yaml: no service shows services.<name>.%s", k)
		}
	}
}

// (h) The Dockerfile builds a static ./cmd/switchyard and runs it.
func TestDockerfile(t *testing.T) {
	d := loadDockerfile(t)
	var build *stage
	var buildRun string
	for i := range d.stages {
		for _, in := range d.stages[i].ins {
			if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
				build, buildRun = &d.stages[i], in.args
			}
		}
	}
	if build == nil {
		t.Fatal("Dockerfile: no RUN go build")
	}
	if !strings.Contains(buildRun, "CGO_ENABLED=0") && build.env()["CGO_ENABLED"] != "0" {
		t.Errorf("Dockerfile: go build without CGO_ENABLED=0: the binary would not be static")
	}
	if !regexp.MustCompile(`(^|\s)\./cmd/switchyard(\s|$)`).MatchString(buildRun) {
		t.Errorf("Dockerfile: go build does not build ./cmd/switchyard: %s", buildRun)
	}
	if !strings.Contains(buildRun, "-X main.version=") {
		t.Errorf("Dockerfile: go build does not set main.version with -ldflags -X")
	}
	if !hasStringVar(t, filepath.Join(root, "cmd", "switchyard"), "version") {
		t.Errorf("cmd/switchyard has no package-level string var version for -X main.version")
	}

	// The Go image matches go.mod's go directive.
	if img, tag, _ := strings.Cut(build.image, ":"); img == "golang" {
		want := goDirective(t)
		if mm := majorMinor(want); majorMinor(tag) != mm {
			t.Errorf("Dockerfile: FROM golang:%s, but go.mod says go %s (want golang:%s)", tag, want, mm)
		}
	}

	// The final stage runs the built binary with `run` by default.
	fin := d.final()
	if fin == build {
		t.Errorf("Dockerfile: the final stage is the build stage; use a small runtime image")
	}
	out := flagArg(strings.Fields(buildRun), "-o")
	var binary string
	for _, in := range fin.ins {
		if in.cmd != "COPY" || !strings.Contains(in.args, "--from="+build.name) {
			continue
		}
		f := strings.Fields(in.args)
		if len(f) >= 3 && f[len(f)-2] == out {
			binary = f[len(f)-1]
			if strings.HasSuffix(binary, "/") {
				binary += path.Base(out)
			}
		}
	}
	if binary == "" {
		t.Errorf("Dockerfile: the final stage does not COPY --from=%s %s", build.name, out)
	}
	if ep := fin.exec("ENTRYPOINT"); len(ep) == 0 || ep[0] != binary {
		t.Errorf("Dockerfile: ENTRYPOINT %q does not run %s", ep, binary)
	}
	if cmd := fin.exec("CMD"); !slices.Equal(cmd, []string{"run"}) {
		t.Errorf("Dockerfile: CMD %q, want [\"run\"]", cmd)
	}
	exposed := map[int]bool{}
	for _, in := range fin.ins {
		if in.cmd == "EXPOSE" {
			for _, p := range strings.Fields(in.args) {
				exposed[atoi(strings.TrimSuffix(p, "/tcp"))] = true
			}
		}
	}
	def := config.Default()
	want := edgePorts("run", def)
	want[def.NATS.Port] = "NATS_PORT (nats.port)"
	for _, p := range sortedKeys(want) {
		if !exposed[p] {
			t.Errorf("Dockerfile: EXPOSE lacks %d (%s default)", p, want[p])
		}
	}
	if dir := fin.env()["DATA_DIR"]; dir != "" && !slices.ContainsFunc(fin.ins, func(in instruction) bool {
		return in.cmd == "VOLUME" && strings.Contains(in.args, dir)
	}) {
		t.Errorf("Dockerfile: DATA_DIR=%s is not a VOLUME: the embedded JetStream store would be lost", dir)
	}
}

// ---------------------------------------------------------------------------
// docker-compose.yml

type composeFile struct {
	Services map[string]service `yaml:"services"`
	Volumes  map[string]any     `yaml:"volumes"`
}

type service struct {
	Image       string            `yaml:"image"`
	Build       any               `yaml:"build"`
	Entrypoint  args              `yaml:"entrypoint"`
	Command     args              `yaml:"command"`
	Environment environment       `yaml:"environment"`
	Ports       []portSpec        `yaml:"ports"`
	Volumes     []mountSpec       `yaml:"volumes"`
	DependsOn   dependsOn         `yaml:"depends_on"`
	Healthcheck map[string]any    `yaml:"healthcheck"`
	Labels      map[string]string `yaml:"labels"`
	// Profiles: a service in a profile starts only with --profile.
	Profiles []string `yaml:"profiles"`
}

func (s service) containerPorts() []int {
	var out []int
	for _, p := range s.Ports {
		out = append(out, p.container...)
	}
	return out
}

// healthURL is the URL a wget or curl healthcheck fetches, if any.
func (s service) healthURL() *url.URL {
	var test []string
	switch v := s.Healthcheck["test"].(type) {
	case []any:
		for _, a := range v {
			test = append(test, fmt.Sprint(a))
		}
	case string:
		test = strings.Fields(v)
	}
	for _, a := range test {
		if u, err := url.Parse(a); err == nil && (u.Scheme == "http" || u.Scheme == "https") {
			return u
		}
	}
	return nil
}

// args is a command: a YAML list or a string split on spaces.
type args []string

func (a *args) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*a = strings.Fields(interpolate(n.Value))
		return nil
	case yaml.SequenceNode:
		var l []string
		if err := n.Decode(&l); err != nil {
			return err
		}
		for i := range l {
			l[i] = interpolate(l[i])
		}
		*a = l
		return nil
	}
	return fmt.Errorf("line %d: command must be a string or a list", n.Line)
}

// environment is a mapping or a list of KEY=VALUE.
type environment map[string]string

func (e *environment) UnmarshalYAML(n *yaml.Node) error {
	out := environment{}
	switch n.Kind {
	case yaml.MappingNode:
		var m map[string]any
		if err := n.Decode(&m); err != nil {
			return err
		}
		for k, v := range m {
			if v == nil {
				out[k] = ""
				continue
			}
			out[k] = interpolate(fmt.Sprint(v))
		}
	case yaml.SequenceNode:
		var l []string
		if err := n.Decode(&l); err != nil {
			return err
		}
		for _, kv := range l {
			k, v, _ := strings.Cut(kv, "=")
			out[k] = interpolate(v)
		}
	default:
		return fmt.Errorf("line %d: environment must be a mapping or a list", n.Line)
	}
	*e = out
	return nil
}

// portSpec is one entry of ports: short ([ip:][host:]container[/proto],
// ranges allowed) or long syntax.
type portSpec struct {
	published string
	container []int
}

func (p *portSpec) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.MappingNode {
		var long struct {
			Target    int    `yaml:"target"`
			Published string `yaml:"published"`
		}
		if err := n.Decode(&long); err != nil {
			return err
		}
		p.container, p.published = []int{long.Target}, interpolate(long.Published)
		return nil
	}
	s := interpolate(n.Value)
	s, _, _ = strings.Cut(s, "/")
	parts := strings.Split(s, ":")
	cont := parts[len(parts)-1]
	if len(parts) > 1 {
		p.published = parts[len(parts)-2]
	}
	lo, hi, isRange := strings.Cut(cont, "-")
	a, err := strconv.Atoi(lo)
	if err != nil {
		return fmt.Errorf("line %d: port %q: %v", n.Line, n.Value, err)
	}
	b := a
	if isRange {
		if b, err = strconv.Atoi(hi); err != nil {
			return fmt.Errorf("line %d: port %q: %v", n.Line, n.Value, err)
		}
	}
	for i := a; i <= b; i++ {
		p.container = append(p.container, i)
	}
	return nil
}

// mountSpec is one entry of volumes: short (source:target[:mode]) or long syntax.
type mountSpec struct {
	bind           bool
	source, target string
}

func (m *mountSpec) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.MappingNode {
		var long struct{ Type, Source, Target string }
		if err := n.Decode(&long); err != nil {
			return err
		}
		*m = mountSpec{bind: long.Type == "bind", source: interpolate(long.Source), target: long.Target}
		return nil
	}
	f := strings.Split(interpolate(n.Value), ":")
	switch len(f) {
	case 1: // anonymous volume
		m.target = f[0]
	default:
		m.source, m.target = f[0], f[1]
		m.bind = strings.HasPrefix(m.source, ".") || strings.HasPrefix(m.source, "/") || strings.HasPrefix(m.source, "~")
	}
	return nil
}

// dependsOn is a list of names or a mapping of name to condition.
type dependsOn []string

func (d *dependsOn) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.SequenceNode:
		var l []string
		if err := n.Decode(&l); err != nil {
			return err
		}
		*d = l
	case yaml.MappingNode:
		var m map[string]any
		if err := n.Decode(&m); err != nil {
			return err
		}
		*d = sortedKeys(m)
	}
	return nil
}

var interpRe = regexp.MustCompile(`\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}`)

// interpolate resolves ${VAR:-default} and ${VAR-default} to the default and
// ${VAR} to "", as compose does with VAR unset: the tests check the file as
// shipped, not this machine's environment.
func interpolate(s string) string {
	return interpRe.ReplaceAllStringFunc(s, func(m string) string {
		if m == "$$" {
			return "$"
		}
		sm := interpRe.FindStringSubmatch(m)
		if strings.HasSuffix(sm[2], "-") {
			return sm[3]
		}
		return ""
	})
}

func loadCompose(t *testing.T) *composeFile {
	t.Helper()
	var c composeFile
	decodeYAMLFile(t, filepath.Join(root, "docker-compose.yml"), &c)
	if len(c.Services) == 0 {
		t.Fatal("docker-compose.yml: no services")
	}
	return &c
}

func isSwitchyard(s service) bool {
	return s.Build != nil || strings.HasPrefix(s.Image, "switchyard")
}

// switchyardServices are the services built from the Dockerfile.
func switchyardServices(t *testing.T, c *composeFile) map[string]service {
	t.Helper()
	out := map[string]service{}
	for name, s := range c.Services {
		if isSwitchyard(s) {
			out[name] = s
		}
	}
	if len(out) == 0 {
		t.Fatal("docker-compose.yml: no Switchyard service (build: . or image: switchyard...)")
	}
	return out
}

func serviceByImage(t *testing.T, c *composeFile, image string) (string, service) {
	t.Helper()
	for _, name := range sortedKeys(c.Services) {
		s := c.Services[name]
		if img, _, _ := strings.Cut(s.Image, ":"); img == image || strings.HasSuffix(img, "/"+image) {
			return name, s
		}
	}
	t.Fatalf("docker-compose.yml: no service runs the %s image", image)
	return "", service{}
}

func natsService(t *testing.T, c *composeFile) (string, service) {
	t.Helper()
	return serviceByImage(t, c, "nats")
}

// commandOf is what the container runs after the entrypoint: the service's
// command or the image's CMD.
func commandOf(s service, d *dockerfile) []string {
	if len(s.Command) > 0 {
		return s.Command
	}
	return d.final().exec("CMD")
}

// invocation is a parsed switchyard command line.
type invocation struct {
	sub        string
	configPath string // -config, when given
}

// parseInvocation parses args the way cmd/switchyard does: flags (only
// -config) before or after one subcommand.
func parseInvocation(a []string) (invocation, error) {
	var inv invocation
	for i := 0; i < len(a); i++ {
		arg := a[i]
		if strings.HasPrefix(arg, "-") {
			name, val, hasVal := strings.Cut(strings.TrimLeft(arg, "-"), "=")
			if name != "config" {
				return inv, fmt.Errorf("switchyard has no flag %s", arg)
			}
			if !hasVal {
				if i++; i >= len(a) {
					return inv, fmt.Errorf("flag %s needs a value", arg)
				}
				val = a[i]
			}
			inv.configPath = val
			continue
		}
		if inv.sub != "" {
			return inv, fmt.Errorf("unexpected argument %q after %q", arg, inv.sub)
		}
		inv.sub = arg
	}
	if inv.sub == "" {
		return inv, fmt.Errorf("no subcommand in %q", a)
	}
	return inv, nil
}

// serviceConfig loads the configuration a Switchyard service's process would
// load: its mounted config file, then the image's ENV and the service's
// environment. It reports errors and returns a nil config on failure.
func serviceConfig(t *testing.T, c *composeFile, d *dockerfile, name string) (invocation, *config.Config) {
	t.Helper()
	s := c.Services[name]
	inv, err := parseInvocation(commandOf(s, d))
	if err != nil {
		t.Errorf("docker-compose.yml: service %s: command: %v", name, err)
		return inv, nil
	}
	environ := d.final().env()
	maps.Copy(environ, s.Environment)
	if inv.configPath == "" {
		inv.configPath = environ["CONFIG_FILE"]
	}
	var file string
	if inv.configPath != "" {
		var ok bool
		if file, ok = hostPath(s, inv.configPath); !ok {
			t.Errorf("docker-compose.yml: service %s: config file %s is not mounted from the repository", name, inv.configPath)
			return inv, nil
		}
	}
	cfg, err := config.Load(file, environ)
	if err != nil {
		t.Errorf("docker-compose.yml: service %s: %v", name, err)
		return inv, nil
	}
	return inv, cfg
}

// hostPath maps a path inside a service's container to the repository file
// bind-mounted there.
func hostPath(s service, p string) (string, bool) {
	for _, m := range s.Volumes {
		if !m.bind || !strings.HasPrefix(m.source, "./") {
			continue
		}
		if p == m.target || strings.HasPrefix(p, strings.TrimSuffix(m.target, "/")+"/") {
			return filepath.Join(root, m.source, strings.TrimPrefix(p, m.target)), true
		}
	}
	return "", false
}

func mustHostPath(t *testing.T, s service, p string) string {
	t.Helper()
	h, ok := hostPath(s, p)
	if !ok {
		t.Fatalf("docker-compose.yml: %s is not mounted from the repository", p)
	}
	return h
}

// mountedAt reports whether p lies on one of the service's mounts.
func mountedAt(s service, p string) bool {
	for _, m := range s.Volumes {
		if p == m.target || strings.HasPrefix(p, strings.TrimSuffix(m.target, "/")+"/") {
			return true
		}
	}
	return false
}

// flagValue returns the value of the first of names in a command line
// ("--name value" or "--name=value").
func flagValue(a []string, names ...string) string {
	for i, arg := range a {
		for _, n := range names {
			if arg == n && i+1 < len(a) {
				return a[i+1]
			}
			if v, ok := strings.CutPrefix(arg, n+"="); ok {
				return v
			}
		}
	}
	return ""
}

func redisPort(s service) string {
	if p := flagValue(s.Command, "--port"); p != "" {
		return p
	}
	return "6379"
}

// edgePorts maps the ports a subcommand's edges listen on to their keys.
func edgePorts(sub string, cfg *config.Config) map[int]string {
	all := map[string]struct {
		port int
		key  string
	}{
		"broker": {cfg.Server.BrokerPort, "BROKER_PORT (server.broker_port)"},
		"lb":     {cfg.Server.LBPort, "LB_PORT (server.lb_port)"},
		"cache":  {cfg.Server.CachePort, "CACHE_PORT (server.cache_port)"},
		"stream": {cfg.Server.StreamPort, "STREAM_PORT (server.stream_port)"},
	}
	out := map[int]string{}
	for name, e := range all {
		if sub == name || sub == "run" {
			out[e.port] = e.key
		}
	}
	if len(out) == 0 { // worker pools only: /health and /metrics on WORKER_PORT
		out[cfg.Server.WorkerPort] = "WORKER_PORT (server.worker_port)"
	}
	return out
}

// metricsPorts is where `switchyard <sub>` serves its metrics: one scrape
// target per process (METRICS_PORT, else its first edge, else WORKER_PORT).
func metricsPorts(sub string, cfg *config.Config) map[int]string {
	if cfg.Metrics.Port != 0 {
		return map[int]string{cfg.Metrics.Port: "METRICS_PORT (metrics.port)"}
	}
	if sub == "run" {
		return map[int]string{cfg.Server.BrokerPort: "BROKER_PORT (server.broker_port)"}
	}
	return edgePorts(sub, cfg)
}

func describePorts(m map[int]string) string {
	if len(m) == 0 {
		return "no port"
	}
	var parts []string
	for _, p := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%d (%s)", p, m[p]))
	}
	return strings.Join(parts, ", ")
}

// ---------------------------------------------------------------------------
// Dockerfile

type instruction struct {
	cmd, args string
}

type stage struct {
	image, name string
	ins         []instruction
}

// env is the stage's ENV, KEY=VALUE or the legacy KEY VALUE form.
func (s *stage) env() map[string]string {
	out := map[string]string{}
	for _, in := range s.ins {
		if in.cmd != "ENV" {
			continue
		}
		f := strings.Fields(in.args)
		if len(f) > 0 && !strings.Contains(f[0], "=") {
			out[f[0]] = strings.Join(f[1:], " ")
			continue
		}
		for _, kv := range f {
			k, v, _ := strings.Cut(kv, "=")
			out[k] = strings.Trim(v, `"'`)
		}
	}
	return out
}

// exec is the last instruction cmd (CMD or ENTRYPOINT) as an argument list.
func (s *stage) exec(cmd string) []string {
	var out []string
	for _, in := range s.ins {
		if in.cmd != cmd {
			continue
		}
		if err := json.Unmarshal([]byte(in.args), &out); err != nil {
			out = strings.Fields(in.args)
		}
	}
	return out
}

type dockerfile struct{ stages []stage }

func (d *dockerfile) final() *stage { return &d.stages[len(d.stages)-1] }

func loadDockerfile(t *testing.T) *dockerfile {
	t.Helper()
	f, err := os.Open(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var d dockerfile
	var cont strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if l, ok := strings.CutSuffix(line, `\`); ok {
			cont.WriteString(l + " ")
			continue
		}
		cont.WriteString(line)
		full := cont.String()
		cont.Reset()
		cmd, rest, _ := strings.Cut(full, " ")
		cmd, rest = strings.ToUpper(cmd), strings.Join(strings.Fields(rest), " ")
		if cmd == "FROM" {
			st := stage{}
			f := slices.DeleteFunc(strings.Fields(rest), func(s string) bool { return strings.HasPrefix(s, "--") })
			if len(f) > 0 {
				st.image = f[0]
			}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.name = f[2]
			}
			d.stages = append(d.stages, st)
			continue
		}
		if len(d.stages) == 0 {
			if cmd == "ARG" {
				continue
			}
			t.Fatalf("Dockerfile: %s before FROM", cmd)
		}
		d.stages[len(d.stages)-1].ins = append(d.stages[len(d.stages)-1].ins, instruction{cmd, rest})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(d.stages) == 0 {
		t.Fatal("Dockerfile: no FROM")
	}
	return &d
}

// flagArg returns the word after flag in f.
func flagArg(f []string, flag string) string {
	if i := slices.Index(f, flag); i >= 0 && i+1 < len(f) {
		return f[i+1]
	}
	return ""
}

// hasStringVar reports whether the Go package in dir declares a
// package-level string variable name (what -X can set).
func hasStringVar(t *testing.T, dir, name string) bool {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, file, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range af.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.VAR {
				continue
			}
			for _, sp := range gd.Specs {
				vs := sp.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if n.Name != name {
						continue
					}
					if id, ok := vs.Type.(*ast.Ident); ok {
						return id.Name == "string"
					}
					if i < len(vs.Values) {
						lit, ok := vs.Values[i].(*ast.BasicLit)
						return ok && lit.Kind == token.STRING
					}
				}
			}
		}
	}
	return false
}

func goDirective(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(raw)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "go "); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatal("go.mod: no go directive")
	return ""
}

// majorMinor turns "1.26.8" or "1.26-alpine" into "1.26".
func majorMinor(v string) string {
	v, _, _ = strings.Cut(v, "-")
	f := strings.Split(v, ".")
	if len(f) < 2 {
		return v
	}
	return f[0] + "." + f[1]
}

// ---------------------------------------------------------------------------
// config

// knownEnv is every environment name the binary reads: config.Config's env
// tags (with envPrefix), and CONFIG_FILE, which cmd/switchyard reads.
func knownEnv(t *testing.T) map[string]bool {
	t.Helper()
	out := map[string]bool{"CONFIG_FILE": true}
	var walk func(reflect.Type, string)
	walk = func(rt reflect.Type, prefix string) {
		for i := range rt.NumField() {
			f := rt.Field(i)
			if !f.IsExported() {
				continue
			}
			if k, _, _ := strings.Cut(f.Tag.Get("env"), ","); k != "" {
				out[prefix+k] = true
				continue
			}
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				walk(ft, prefix+f.Tag.Get("envPrefix"))
			}
		}
	}
	walk(reflect.TypeFor[config.Config](), "")
	for _, k := range []string{"NATS_URL", "REDIS_ADDR", "RUST_VISION_SERVICE_URL", "BROKER_PORT"} {
		if !out[k] {
			t.Fatalf("config.Config has no env tag %s: the reflection over it is broken", k)
		}
	}
	return out
}

// suggest names the closest known name, for typos.
func suggest(k string, known map[string]bool) string {
	best, bestD := "", 4
	for _, n := range sortedKeys(known) {
		if d := levenshtein(k, n); d < bestD {
			best, bestD = n, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %s?)", best)
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

func yamlName(f reflect.StructField) string {
	k, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if k == "-" {
		return ""
	}
	return k
}

var durationType = reflect.TypeFor[config.Duration]()

// diffFields lists the fields where a and b differ, by YAML key.
func diffFields(prefix string, a, b reflect.Value) []string {
	if a.Kind() == reflect.Struct && a.Type() != durationType {
		var out []string
		for i := range a.NumField() {
			k := yamlName(a.Type().Field(i))
			if k == "" {
				continue
			}
			out = append(out, diffFields(strings.TrimPrefix(prefix+"."+k, "."), a.Field(i), b.Field(i))...)
		}
		return out
	}
	if !reflect.DeepEqual(a.Interface(), b.Interface()) {
		return []string{fmt.Sprintf("%s is %v, the default is %v", prefix, a.Interface(), b.Interface())}
	}
	return nil
}

// checkDocumented checks that node, the YAML of type rt, has every key of rt,
// each with a comment, naming the key's environment variable when it has one.
func checkDocumented(t *testing.T, prefix string, rt reflect.Type, node *yaml.Node) {
	t.Helper()
	if node.Kind != yaml.MappingNode {
		t.Errorf("config.example.yaml: %s is not a mapping", prefix)
		return
	}
	for i := range rt.NumField() {
		f := rt.Field(i)
		k := yamlName(f)
		if k == "" || f.Type.Kind() == reflect.Map {
			continue
		}
		key := strings.TrimPrefix(prefix+"."+k, ".")
		kn, vn := mappingEntry(node, k)
		if kn == nil {
			t.Errorf("config.example.yaml: key %s is missing", key)
			continue
		}
		if f.Type.Kind() == reflect.Struct && f.Type != durationType {
			checkDocumented(t, key, f.Type, vn)
			continue
		}
		if strings.TrimSpace(kn.HeadComment) == "" {
			t.Errorf("config.example.yaml: key %s has no comment", key)
		}
		if env, _, _ := strings.Cut(f.Tag.Get("env"), ","); env != "" && !strings.Contains(kn.HeadComment, "["+env+"]") {
			t.Errorf("config.example.yaml: the comment of %s does not name its variable [%s]", key, env)
		}
	}
}

func mappingEntry(n *yaml.Node, key string) (k, v *yaml.Node) {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil, nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i], n.Content[i+1]
		}
	}
	return nil, nil
}

func mappingValue(n *yaml.Node, key string) *yaml.Node {
	_, v := mappingEntry(n, key)
	return v
}

// ---------------------------------------------------------------------------
// NATS, Prometheus, Grafana

func loadNATSConf(t *testing.T, file string) *server.Options {
	t.Helper()
	opts, err := server.ProcessConfigFile(file)
	if err != nil {
		t.Fatalf("%s: %v", relRoot(file), err)
	}
	return opts
}

type prometheusConfig struct {
	ScrapeConfigs []struct {
		JobName       string `yaml:"job_name"`
		MetricsPath   string `yaml:"metrics_path"`
		StaticConfigs []struct {
			Targets []string          `yaml:"targets"`
			Labels  map[string]string `yaml:"labels"`
		} `yaml:"static_configs"`
	} `yaml:"scrape_configs"`
}

// prometheusConfigOf loads the config file the compose Prometheus service mounts.
func prometheusConfigOf(t *testing.T, c *composeFile) (string, *prometheusConfig) {
	t.Helper()
	_, ps := serviceByImage(t, c, "prom/prometheus")
	arg := flagValue(ps.Command, "--config.file")
	if arg == "" {
		arg = "/etc/prometheus/prometheus.yml" // the image's default
	}
	file := mustHostPath(t, ps, arg)
	return file, loadPrometheus(t, file)
}

func loadPrometheus(t *testing.T, file string) *prometheusConfig {
	t.Helper()
	var pc prometheusConfig
	decodeYAMLFile(t, file, &pc)
	if len(pc.ScrapeConfigs) == 0 {
		t.Fatalf("%s: no scrape_configs", relRoot(file))
	}
	return &pc
}

// registeredMetrics is every metric name a Switchyard process registers, as
// app.Run does: the edges' HTTP metrics and the Go and process collectors.
func registeredMetrics(t *testing.T) map[string]bool {
	t.Helper()
	r := &descRecorder{names: map[string]bool{}}
	edge.NewMetrics(r)
	broker.RegisterMetrics(r)
	lb.RegisterMetrics(r)
	proxy.RegisterMetrics(r)
	wjobs.RegisterMetrics(r)
	ws.NewMetrics(r, "broker")
	wcache.NewMetrics(r, nil)
	streams.NewMetrics(r)
	ws.NewMetrics(r, "stream")
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if len(r.names) == 0 {
		t.Fatal("no metric registered")
	}
	return r.names
}

// descRecorder is a prometheus.Registerer that records metric names.
type descRecorder struct{ names map[string]bool }

var fqNameRe = regexp.MustCompile(`fqName: "([^"]+)"`)

func (r *descRecorder) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc)
	go func() {
		c.Describe(ch)
		close(ch)
	}()
	for d := range ch {
		if m := fqNameRe.FindStringSubmatch(d.String()); m != nil {
			r.names[m[1]] = true
		}
	}
	return nil
}

func (r *descRecorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		_ = r.Register(c)
	}
}

func (r *descRecorder) Unregister(prometheus.Collector) bool { return true }

var _ prometheus.Registerer = (*descRecorder)(nil)

func walkJSON(v any, fn func(key string, v any)) {
	switch x := v.(type) {
	case map[string]any:
		for _, k := range sortedKeys(x) {
			fn(k, x[k])
			walkJSON(x[k], fn)
		}
	case []any:
		for _, e := range x {
			walkJSON(e, fn)
		}
	}
}

// ---------------------------------------------------------------------------
// helpers

func decodeYAMLFile(t *testing.T, file string, v any) {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, v); err != nil {
		t.Fatalf("%s: %v", relRoot(file), err)
	}
}

func globFiles(t *testing.T, dir, pattern string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, pattern))
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func relRoot(p string) string {
	if r, err := filepath.Rel(root, p); err == nil {
		return r
	}
	return p
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return -1
	}
	return n
}

func sortedKeys[K interface{ ~int | ~string }, V any](m map[K]V) []K {
	return slices.Sorted(maps.Keys(m))
}

// The compose stack's config declares only services the stack can reach:
// none of its upstreams may point at a port nothing in the stack serves.
func TestComposeConfigIsConsistent(t *testing.T) {
	cfg, err := config.Load(filepath.Join(root, "deploy", "config.compose.yaml"), map[string]string{})
	if err != nil {
		t.Fatalf("deploy/config.compose.yaml: %v", err)
	}
	for name, s := range cfg.Services {
		for _, u := range s.Upstreams {
			if !strings.Contains(u.URL, "host.docker.internal") {
				t.Errorf("services.%s: upstream %s is not served by the compose stack", name, u.URL)
			}
		}
	}
	compose, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(compose), "./deploy/config.compose.yaml:/etc/switchyard/config.yaml") {
		t.Error("docker-compose.yml does not mount deploy/config.compose.yaml as the config")
	}
}

// clusterNode checks a node of the cluster profile: its routes name
// services of the same profile on their cluster port, and it is in a profile
// (the default stack runs one external NATS server instead).
func clusterNode(t *testing.T, c *composeFile, name string, cfg *config.Config) {
	t.Helper()
	s := c.Services[name]
	if len(s.Profiles) == 0 {
		t.Errorf("docker-compose.yml: service %s is an embedded cluster node but in no profile: it would start with the default stack", name)
	}
	for _, r := range cfg.NATS.Routes() {
		peer, ok := c.Services[r.Hostname()]
		if !ok {
			t.Errorf("docker-compose.yml: service %s: route %s names no service", name, r)
			continue
		}
		if !slices.Equal(peer.Profiles, s.Profiles) {
			t.Errorf("docker-compose.yml: service %s: route %s is a service of profiles %v, not %v", name, r, peer.Profiles, s.Profiles)
		}
		if r.Port() != strconv.Itoa(cfg.NATS.ClusterPort) {
			t.Errorf("docker-compose.yml: service %s: route %s, but the nodes listen for routes on %d", name, r, cfg.NATS.ClusterPort)
		}
	}
	if cfg.NATS.Replicas != 3 {
		t.Errorf("docker-compose.yml: service %s: NATS_REPLICAS=%d, want 3 on a three-node cluster", name, cfg.NATS.Replicas)
	}
}
