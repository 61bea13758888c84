// Package config loads Switchyard's configuration: defaults, then a YAML
// file (config.yaml), then environment variables, then Validate. It is the
// only package that reads the environment; everything else receives a
// *Config. A Config is read-only once loaded and safe to share.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
	"go.yaml.in/yaml/v3"

	"github.com/switchyard/switchyard/subjects"
)

// ErrInvalid is wrapped by every error Load and Validate return.
var ErrInvalid = errors.New("config")

// Config is the whole configuration. The zero value is not usable: start
// from Default.
type Config struct {
	NATS    NATS    `yaml:"nats"`
	Redis   Redis   `yaml:"redis"`
	Rust    Rust    `yaml:"rust"`
	Metrics Metrics `yaml:"metrics"`
	Server  Server  `yaml:"server"`
	LB      LB      `yaml:"lb"`
	Log     Log     `yaml:"log"`
	DataDir string  `yaml:"data_dir" env:"DATA_DIR"`
	// Services declares further services routed by the load balancer, and
	// overrides the upstreams of vision, ai and analytics. A service listed
	// here with no upstreams is served by NATS workers only.
	Services map[string]Service `yaml:"services"`
}

// NATS selects the embedded server or an external one.
type NATS struct {
	// URL empty starts an embedded server; otherwise one URL or a
	// comma-separated list of a cluster's URLs (nats://, tls://, ws://, wss://).
	URL string `yaml:"url" env:"NATS_URL"`
	// Port is the embedded server's client port (0 picks a free one).
	Port int `yaml:"port" env:"NATS_PORT"`
	// ConfigFile, when set, is a nats-server config file the embedded server loads.
	ConfigFile string `yaml:"config_file" env:"NATS_CONFIG"`
	// Replicas of every stream and bucket: 1 embedded, 3 in a cluster.
	Replicas int `yaml:"replicas" env:"NATS_REPLICAS"`
	// Name of this process's NATS connections, seen in `nats server report connections`.
	ClientName string `yaml:"client_name" env:"NATS_CLIENT_NAME"`
}

// Redis configures the optional Redis shared cache tier.
type Redis struct {
	// Addr empty keeps the shared tier on JetStream KV.
	Addr     string `yaml:"addr" env:"REDIS_ADDR"`
	DB       int    `yaml:"db" env:"REDIS_DB"`
	PoolSize int    `yaml:"pool_size" env:"REDIS_POOL_SIZE"`
}

// Rust configures the default Rust services and how they are checked.
type Rust struct {
	VisionServiceURL    string   `yaml:"vision_service_url" env:"RUST_VISION_SERVICE_URL"`
	AIServiceURL        string   `yaml:"ai_service_url" env:"RUST_AI_SERVICE_URL"`
	AnalyticsServiceURL string   `yaml:"analytics_service_url" env:"RUST_ANALYTICS_SERVICE_URL"`
	HealthCheckInterval Duration `yaml:"health_check_interval" env:"RUST_HEALTH_CHECK_INTERVAL"`
	RequestTimeout      Duration `yaml:"request_timeout" env:"RUST_REQUEST_TIMEOUT"`
}

// Metrics configures the Prometheus endpoint of every edge.
type Metrics struct {
	Enabled bool   `yaml:"enabled" env:"METRICS_ENABLED"`
	Path    string `yaml:"path" env:"METRICS_PATH"`
}

// Server holds the edges' listeners and HTTP limits.
type Server struct {
	Host       string `yaml:"host" env:"HOST"`
	BrokerPort int    `yaml:"broker_port" env:"BROKER_PORT"`
	LBPort     int    `yaml:"lb_port" env:"LB_PORT"`
	CachePort  int    `yaml:"cache_port" env:"CACHE_PORT"`
	StreamPort int    `yaml:"stream_port" env:"STREAM_PORT"`
	// WorkerPort serves /health and /metrics of a process that runs worker
	// pools only (e.g. `switchyard proxy`); a process with an edge uses its
	// edges' ports instead.
	WorkerPort int `yaml:"worker_port" env:"WORKER_PORT"`
	// MaxBodyBytes bounds every request body; larger bodies get 413.
	MaxBodyBytes int64 `yaml:"max_body_bytes" env:"MAX_BODY_BYTES"`
	// PprofAddr, when set (e.g. 127.0.0.1:6060), serves net/http/pprof there.
	PprofAddr string `yaml:"pprof_addr" env:"PPROF_ADDR"`
	// ShutdownTimeout bounds the whole graceful shutdown.
	ShutdownTimeout Duration `yaml:"shutdown_timeout" env:"SHUTDOWN_TIMEOUT"`
}

// LB configures the load balancer edge and the proxy worker pool.
type LB struct {
	// MaxConnsPerUpstream bounds the connections one proxy worker opens to
	// one upstream; they are kept alive between requests, and a request that
	// finds them all busy waits for one (within the request timeout).
	MaxConnsPerUpstream int `yaml:"max_conns_per_upstream" env:"LB_MAX_CONNS_PER_UPSTREAM"`
	// MaxInFlight bounds concurrent requests per service in one proxy worker.
	MaxInFlight int `yaml:"max_in_flight" env:"LB_MAX_IN_FLIGHT"`
	// DiscoveryInterval is how often the edge asks NATS for micro services.
	DiscoveryInterval Duration `yaml:"discovery_interval" env:"LB_DISCOVERY_INTERVAL"`
	// JobTimeout bounds one attempt of a durable (async) job.
	JobTimeout Duration `yaml:"job_timeout" env:"LB_JOB_TIMEOUT"`
	// JobMaxDeliver is how many attempts a job gets before it is marked failed.
	JobMaxDeliver int `yaml:"job_max_deliver" env:"LB_JOB_MAX_DELIVER"`
	// JobAckWait is how long a job may go without a heartbeat before redelivery.
	JobAckWait Duration `yaml:"job_ack_wait" env:"LB_JOB_ACK_WAIT"`
	// JobTTL is how long finished job records are kept.
	JobTTL Duration `yaml:"job_ttl" env:"LB_JOB_TTL"`
}

// Log configures the JSON logger.
type Log struct {
	Level string `yaml:"level" env:"LOG_LEVEL"`
}

// Service declares one load-balanced service.
type Service struct {
	// Upstreams are the service's HTTP servers. Empty: NATS workers only.
	Upstreams []Upstream `yaml:"upstreams"`
	// Policy is "weighted" (smooth weighted round robin, default) or "latency"
	// (power of two choices over peak-EWMA latency and in-flight requests).
	Policy string `yaml:"policy"`
	// HealthPath is the path of the active health check (default /health).
	HealthPath string `yaml:"health_path"`
	// HealthyThreshold and UnhealthyThreshold are the consecutive passes and
	// failures that flip an upstream's state (defaults 1 and 2).
	HealthyThreshold   int `yaml:"healthy_threshold"`
	UnhealthyThreshold int `yaml:"unhealthy_threshold"`
	// EjectAfter consecutive connect errors or 5xx eject an upstream (default 5).
	EjectAfter int `yaml:"eject_after"`
	// EjectBase is the first ejection's length; it doubles each time, up to 5m (default 10s).
	EjectBase Duration `yaml:"eject_base"`
	// MaxEjectedPercent caps the share of upstreams ejected at once (default 50).
	MaxEjectedPercent int `yaml:"max_ejected_percent"`
	// PanicMode routes to every upstream when none is healthy, instead of 503 (default false).
	PanicMode bool `yaml:"panic_mode"`
	// RetryBudgetPercent caps retries of idempotent requests at this share of
	// requests, with at least 3 a second (default 20).
	RetryBudgetPercent int `yaml:"retry_budget_percent"`
}

// Upstream is one HTTP server of a service.
type Upstream struct {
	URL    string `yaml:"url"`
	Weight int    `yaml:"weight"`
}

// Default returns the configuration used when nothing is set.
func Default() *Config {
	return &Config{
		NATS:  NATS{Port: 4222, Replicas: 1, ClientName: "switchyard"},
		Redis: Redis{DB: 0, PoolSize: 10},
		Rust: Rust{
			VisionServiceURL:    "http://localhost:8001",
			AIServiceURL:        "http://localhost:8002",
			AnalyticsServiceURL: "http://localhost:8003",
			HealthCheckInterval: Duration(30 * time.Second),
			RequestTimeout:      Duration(30 * time.Second),
		},
		Metrics: Metrics{Enabled: true, Path: "/metrics"},
		Server: Server{
			BrokerPort: 8081, LBPort: 8082, CachePort: 8083, StreamPort: 8084, WorkerPort: 8085,
			MaxBodyBytes:    8 << 20,
			ShutdownTimeout: Duration(12 * time.Second),
		},
		LB: LB{
			MaxConnsPerUpstream: 256,
			MaxInFlight:         1024,
			DiscoveryInterval:   Duration(5 * time.Second),
			JobTimeout:          Duration(5 * time.Minute),
			JobMaxDeliver:       5,
			JobAckWait:          Duration(30 * time.Second),
			JobTTL:              Duration(24 * time.Hour),
		},
		Log:     Log{Level: "info"},
		DataDir: "./data",
	}
}

// Load builds the configuration: Default, then the YAML file at path (if
// path is not empty), then the environment environ (normally
// env.ToMap(os.Environ()); nil means the process environment; a variable
// set to "" counts as unset), then Validate. Every error names the key and
// the value at fault and wraps ErrInvalid.
func Load(path string, environ map[string]string) (*Config, error) {
	cfg := Default()
	if path != "" {
		raw, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("%w: config file: %w", ErrInvalid, err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(raw))
		dec.KnownFields(true)
		if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: %s: %s", ErrInvalid, path, yamlError(raw, err))
		}
	}
	if environ == nil {
		// caarlos0/env reads the process environment for a nil map; read it
		// here instead, so errors can quote the values.
		environ = env.ToMap(os.Environ())
	}
	if err := env.ParseWithOptions(cfg, env.Options{Environment: environ}); err != nil {
		return nil, envError(cfg, environ, err)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// envError turns caarlos0/env's field-named errors into key=value lines.
func envError(cfg *Config, environ map[string]string, err error) error {
	keys := envKeys(reflect.TypeOf(cfg).Elem(), "")
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return fmt.Errorf("%w: environment: %w", ErrInvalid, err)
	}
	var lines []string
	for _, e := range agg.Errors {
		var pe env.ParseError
		if errors.As(e, &pe) {
			if key, ok := keys[pe.Name]; ok {
				lines = append(lines, fmt.Sprintf("%s=%q: %v", key, environ[key], unwrapNum(pe.Err)))
				continue
			}
		}
		lines = append(lines, e.Error())
	}
	return fmt.Errorf("%w: %s", ErrInvalid, strings.Join(lines, "; "))
}

func unwrapNum(err error) error {
	var ne *strconv.NumError
	if errors.As(err, &ne) {
		return fmt.Errorf("not a valid %s", map[string]string{
			"ParseInt": "integer", "ParseBool": "boolean (true or false)", "ParseFloat": "number",
		}[ne.Func])
	}
	return err
}

// envKeys maps struct field names to their environment keys.
func envKeys(t reflect.Type, prefix string) map[string]string {
	out := map[string]string{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if k := f.Tag.Get("env"); k != "" {
			out[f.Name] = prefix + strings.Split(k, ",")[0]
			continue
		}
		if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeOf(Duration(0)) {
			for n, k := range envKeys(f.Type, prefix+f.Tag.Get("envPrefix")) {
				out[n] = k
			}
		}
	}
	return out
}

// Validate checks every value and returns the first problem, naming its key.
func (c *Config) Validate() error {
	bad := func(key string, val any, why string) error {
		return fmt.Errorf("%w: %s=%v: %s", ErrInvalid, key, val, why)
	}
	if c.NATS.URL != "" {
		for _, u := range strings.Split(c.NATS.URL, ",") {
			if err := validNATSURL(strings.TrimSpace(u)); err != nil {
				return bad("NATS_URL (nats.url)", strconv.Quote(c.NATS.URL), err.Error())
			}
		}
	}
	ports := []struct {
		key string
		val int
	}{
		{"NATS_PORT (nats.port)", c.NATS.Port},
		{"BROKER_PORT (server.broker_port)", c.Server.BrokerPort},
		{"LB_PORT (server.lb_port)", c.Server.LBPort},
		{"CACHE_PORT (server.cache_port)", c.Server.CachePort},
		{"STREAM_PORT (server.stream_port)", c.Server.StreamPort},
		{"WORKER_PORT (server.worker_port)", c.Server.WorkerPort},
	}
	seen := map[int]string{}
	for _, p := range ports {
		if p.val < 0 || p.val > 65535 {
			return bad(p.key, p.val, "must be a port from 0 to 65535")
		}
		if p.val != 0 {
			if other, dup := seen[p.val]; dup {
				return bad(p.key, p.val, "already used by "+other)
			}
			seen[p.val] = p.key
		}
	}
	if c.NATS.Replicas < 1 || c.NATS.Replicas > 5 {
		return bad("NATS_REPLICAS (nats.replicas)", c.NATS.Replicas, "must be 1 to 5")
	}
	if c.Redis.Addr != "" {
		if _, _, err := net.SplitHostPort(c.Redis.Addr); err != nil {
			return bad("REDIS_ADDR (redis.addr)", strconv.Quote(c.Redis.Addr), "must be host:port")
		}
	}
	if c.Redis.DB < 0 || c.Redis.DB > 15 {
		return bad("REDIS_DB (redis.db)", c.Redis.DB, "must be 0 to 15")
	}
	if c.Redis.PoolSize < 1 {
		return bad("REDIS_POOL_SIZE (redis.pool_size)", c.Redis.PoolSize, "must be at least 1")
	}
	for key, u := range map[string]string{
		"RUST_VISION_SERVICE_URL (rust.vision_service_url)":       c.Rust.VisionServiceURL,
		"RUST_AI_SERVICE_URL (rust.ai_service_url)":               c.Rust.AIServiceURL,
		"RUST_ANALYTICS_SERVICE_URL (rust.analytics_service_url)": c.Rust.AnalyticsServiceURL,
	} {
		for _, one := range SplitList(u) {
			if err := validHTTPURL(one); err != nil {
				return bad(key, strconv.Quote(u), err.Error())
			}
		}
	}
	durs := []struct {
		key string
		val Duration
	}{
		{"RUST_HEALTH_CHECK_INTERVAL (rust.health_check_interval)", c.Rust.HealthCheckInterval},
		{"RUST_REQUEST_TIMEOUT (rust.request_timeout)", c.Rust.RequestTimeout},
		{"SHUTDOWN_TIMEOUT (server.shutdown_timeout)", c.Server.ShutdownTimeout},
		{"LB_DISCOVERY_INTERVAL (lb.discovery_interval)", c.LB.DiscoveryInterval},
		{"LB_JOB_TIMEOUT (lb.job_timeout)", c.LB.JobTimeout},
		{"LB_JOB_ACK_WAIT (lb.job_ack_wait)", c.LB.JobAckWait},
		{"LB_JOB_TTL (lb.job_ttl)", c.LB.JobTTL},
	}
	for _, d := range durs {
		if d.val <= 0 {
			return bad(d.key, d.val, "must be positive")
		}
	}
	if !strings.HasPrefix(c.Metrics.Path, "/") || c.Metrics.Path == "/" {
		return bad("METRICS_PATH (metrics.path)", strconv.Quote(c.Metrics.Path), `must start with "/" and name a path`)
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, strings.ToLower(c.Log.Level)) {
		return bad("LOG_LEVEL (log.level)", strconv.Quote(c.Log.Level), "must be debug, info, warn or error")
	}
	if c.Server.MaxBodyBytes < 1024 || c.Server.MaxBodyBytes > 60<<20 {
		return bad("MAX_BODY_BYTES (server.max_body_bytes)", c.Server.MaxBodyBytes, "must be 1024 to 62914560 (60 MiB)")
	}
	if c.DataDir == "" {
		return bad("DATA_DIR (data_dir)", `""`, "must name a directory")
	}
	if c.LB.MaxConnsPerUpstream < 1 {
		return bad("LB_MAX_CONNS_PER_UPSTREAM (lb.max_conns_per_upstream)", c.LB.MaxConnsPerUpstream, "must be at least 1")
	}
	if c.LB.MaxInFlight < 1 {
		return bad("LB_MAX_IN_FLIGHT (lb.max_in_flight)", c.LB.MaxInFlight, "must be at least 1")
	}
	if c.LB.JobMaxDeliver < 1 {
		return bad("LB_JOB_MAX_DELIVER (lb.job_max_deliver)", c.LB.JobMaxDeliver, "must be at least 1")
	}
	for name, s := range c.Services {
		key := "services." + name
		if err := subjects.ValidName(name); err != nil {
			return bad(key, strconv.Quote(name), "service names may hold only a-z, 0-9, '_' and '-'")
		}
		if slices.Contains(ReservedServiceNames, name) {
			return bad(key, strconv.Quote(name), "the name is taken by an endpoint of the lb edge")
		}
		for i, u := range s.Upstreams {
			if err := validHTTPURL(u.URL); err != nil {
				return bad(fmt.Sprintf("%s.upstreams[%d].url", key, i), strconv.Quote(u.URL), err.Error())
			}
			if u.Weight < 0 || u.Weight > 1000 {
				return bad(fmt.Sprintf("%s.upstreams[%d].weight", key, i), u.Weight, "must be 1 to 1000 (0 means 1)")
			}
		}
		if s.Policy != "" && s.Policy != PolicyWeighted && s.Policy != PolicyLatency {
			return bad(key+".policy", strconv.Quote(s.Policy), `must be "weighted" or "latency"`)
		}
		if s.HealthPath != "" && !strings.HasPrefix(s.HealthPath, "/") {
			return bad(key+".health_path", strconv.Quote(s.HealthPath), `must start with "/"`)
		}
		for k, v := range map[string]int{
			".healthy_threshold": s.HealthyThreshold, ".unhealthy_threshold": s.UnhealthyThreshold,
			".eject_after": s.EjectAfter, ".retry_budget_percent": s.RetryBudgetPercent,
		} {
			if v < 0 {
				return bad(key+k, v, "must not be negative")
			}
		}
		if s.MaxEjectedPercent < 0 || s.MaxEjectedPercent > 100 {
			return bad(key+".max_ejected_percent", s.MaxEjectedPercent, "must be 0 to 100")
		}
		if s.EjectBase < 0 {
			return bad(key+".eject_base", s.EjectBase, "must not be negative")
		}
	}
	return nil
}

// ReservedServiceNames cannot name a service: the lb edge serves these paths.
var ReservedServiceNames = []string{"health", "metrics", "services", "jobs"}

// Selection policies of a service.
const (
	PolicyWeighted = "weighted"
	PolicyLatency  = "latency"
)

func validNATSURL(s string) error {
	if s == "" {
		return errors.New("empty URL in list")
	}
	if !strings.Contains(s, "://") {
		s = "nats://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("not a URL: %v", err)
	}
	switch u.Scheme {
	case "nats", "tls", "ws", "wss":
	default:
		return fmt.Errorf("unsupported scheme %q (want nats, tls, ws or wss)", u.Scheme)
	}
	if u.Hostname() == "" {
		return errors.New("missing host")
	}
	return nil
}

func validHTTPURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("not a URL: %v", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("scheme must be http or https")
	}
	if u.Host == "" {
		return errors.New("missing host")
	}
	return nil
}

// SplitList splits a comma-separated list, dropping empty items.
func SplitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
