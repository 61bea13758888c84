package config_test

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchyard/switchyard/config"
)

// writeYAML writes body to a config file in a temp dir and returns its path.
func writeYAML(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// load runs config.Load with an optional YAML body (empty: no file) and
// an explicit environment, never the process's.
func load(t *testing.T, yamlBody string, environ map[string]string) (*config.Config, error) {
	t.Helper()
	path := ""
	if yamlBody != "" {
		path = writeYAML(t, yamlBody)
	}
	if environ == nil {
		environ = map[string]string{}
	}
	return config.Load(path, environ)
}

func mustLoad(t *testing.T, yamlBody string, environ map[string]string) *config.Config {
	t.Helper()
	c, err := load(t, yamlBody, environ)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return c
}

func TestDefaultIsValid(t *testing.T) {
	if err := config.Default().Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
	got := mustLoad(t, "", nil)
	if !reflect.DeepEqual(got, config.Default()) {
		t.Errorf("Load with nothing set = %+v, want Default() %+v", got, config.Default())
	}
	// An empty file and a file of comments change nothing.
	for _, body := range []string{"\n", "# nothing here\n", "---\n"} {
		if got := mustLoad(t, body, nil); !reflect.DeepEqual(got, config.Default()) {
			t.Errorf("Load(%q) = %+v, want Default()", body, got)
		}
	}
}

func TestDefaults(t *testing.T) {
	c := config.Default()
	checks := []struct {
		name      string
		got, want any
	}{
		{"nats.url", c.NATS.URL, ""},
		{"nats.port", c.NATS.Port, 4222},
		{"nats.replicas", c.NATS.Replicas, 1},
		{"redis.addr", c.Redis.Addr, ""},
		{"redis.pool_size", c.Redis.PoolSize, 10},
		{"rust.vision_service_url", c.Rust.VisionServiceURL, "http://localhost:8001"},
		{"rust.ai_service_url", c.Rust.AIServiceURL, "http://localhost:8002"},
		{"rust.analytics_service_url", c.Rust.AnalyticsServiceURL, "http://localhost:8003"},
		{"rust.health_check_interval", c.Rust.HealthCheckInterval.D(), 30 * time.Second},
		{"rust.request_timeout", c.Rust.RequestTimeout.D(), 30 * time.Second},
		{"metrics.enabled", c.Metrics.Enabled, true},
		{"metrics.path", c.Metrics.Path, "/metrics"},
		{"server.broker_port", c.Server.BrokerPort, 8081},
		{"server.lb_port", c.Server.LBPort, 8082},
		{"server.cache_port", c.Server.CachePort, 8083},
		{"server.stream_port", c.Server.StreamPort, 8084},
		{"log.level", c.Log.Level, "info"},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("default %s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
}

// TestLoadOrder checks defaults < YAML file < environment for every kind
// of value (string, int, int64, bool, duration, list).
func TestLoadOrder(t *testing.T) {
	const fileYAML = `
nats:
  url: nats://file:4222
  replicas: 3
redis:
  addr: file:6379
  db: 2
rust:
  vision_service_url: http://file-v1:1,http://file-v2:2
  request_timeout: 45
metrics:
  enabled: false
server:
  broker_port: 9081
  max_body_bytes: 2048
log:
  level: debug
`
	type view struct {
		URL      string
		Replicas int
		Addr     string
		DB       int
		Vision   string
		Timeout  time.Duration
		Metrics  bool
		Broker   int
		MaxBody  int64
		LogLevel string
	}
	get := func(c *config.Config) view {
		return view{c.NATS.URL, c.NATS.Replicas, c.Redis.Addr, c.Redis.DB, c.Rust.VisionServiceURL,
			c.Rust.RequestTimeout.D(), c.Metrics.Enabled, c.Server.BrokerPort, c.Server.MaxBodyBytes, c.Log.Level}
	}
	defaults := view{"", 1, "", 0, "http://localhost:8001", 30 * time.Second, true, 8081, config.DefaultMaxBodyBytes, "info"}
	fromFile := view{"nats://file:4222", 3, "file:6379", 2, "http://file-v1:1,http://file-v2:2", 45 * time.Second, false, 9081, 2048, "debug"}
	fullEnv := map[string]string{
		"NATS_URL": "nats://env:4222", "NATS_REPLICAS": "5", "REDIS_ADDR": "env:6379", "REDIS_DB": "7",
		"RUST_VISION_SERVICE_URL": "http://env:3", "RUST_REQUEST_TIMEOUT": "500ms", "METRICS_ENABLED": "true",
		"BROKER_PORT": "7081", "MAX_BODY_BYTES": "4096", "LOG_LEVEL": "warn",
	}
	fromEnv := view{"nats://env:4222", 5, "env:6379", 7, "http://env:3", 500 * time.Millisecond, true, 7081, 4096, "warn"}

	cases := []struct {
		name string
		yaml string
		env  map[string]string
		want view
	}{
		{"defaults only", "", nil, defaults},
		{"file over defaults", fileYAML, nil, fromFile},
		{"environment over defaults", "", fullEnv, fromEnv},
		{"environment over file", fileYAML, fullEnv, fromEnv},
		{"environment over file, one key", fileYAML, map[string]string{"LOG_LEVEL": "error"},
			func() view { v := fromFile; v.LogLevel = "error"; return v }()},
		{"empty variable counts as unset", fileYAML, map[string]string{"NATS_URL": "", "BROKER_PORT": "", "RUST_REQUEST_TIMEOUT": ""}, fromFile},
		{"unrelated variables are ignored", "", map[string]string{"PATH": "/bin", "nats_url": "bogus://x"}, defaults},
		{"partial file keeps the other defaults", "server:\n  broker_port: 9081\n", nil,
			func() view { v := defaults; v.Broker = 9081; return v }()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := get(mustLoad(t, tc.yaml, tc.env))
			if got != tc.want {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// TestLoadEveryEnvKey sets each environment variable once and checks the
// field it lands in.
func TestLoadEveryEnvKey(t *testing.T) {
	cases := []struct {
		key, val string
		get      func(*config.Config) any
		want     any
	}{
		{"NATS_URL", "nats://a:4222, nats://b:4222", func(c *config.Config) any { return c.NATS.URL }, "nats://a:4222, nats://b:4222"},
		{"NATS_PORT", "0", func(c *config.Config) any { return c.NATS.Port }, 0},
		{"NATS_CONFIG", "nats.conf", func(c *config.Config) any { return c.NATS.ConfigFile }, "nats.conf"},
		{"NATS_REPLICAS", "1", func(c *config.Config) any { return c.NATS.Replicas }, 1},
		{"NATS_CLIENT_NAME", "edge-1", func(c *config.Config) any { return c.NATS.ClientName }, "edge-1"},
		{"REDIS_ADDR", "redis:6379", func(c *config.Config) any { return c.Redis.Addr }, "redis:6379"},
		{"REDIS_DB", "15", func(c *config.Config) any { return c.Redis.DB }, 15},
		{"REDIS_POOL_SIZE", "64", func(c *config.Config) any { return c.Redis.PoolSize }, 64},
		{"RUST_VISION_SERVICE_URL", "http://v:1", func(c *config.Config) any { return c.Rust.VisionServiceURL }, "http://v:1"},
		{"RUST_AI_SERVICE_URL", "https://ai:2", func(c *config.Config) any { return c.Rust.AIServiceURL }, "https://ai:2"},
		{"RUST_ANALYTICS_SERVICE_URL", "http://an:3", func(c *config.Config) any { return c.Rust.AnalyticsServiceURL }, "http://an:3"},
		{"RUST_HEALTH_CHECK_INTERVAL", "5", func(c *config.Config) any { return c.Rust.HealthCheckInterval.D() }, 5 * time.Second},
		{"RUST_REQUEST_TIMEOUT", "2m", func(c *config.Config) any { return c.Rust.RequestTimeout.D() }, 2 * time.Minute},
		{"METRICS_ENABLED", "false", func(c *config.Config) any { return c.Metrics.Enabled }, false},
		{"METRICS_PATH", "/prom", func(c *config.Config) any { return c.Metrics.Path }, "/prom"},
		{"HOST", "127.0.0.1", func(c *config.Config) any { return c.Server.Host }, "127.0.0.1"},
		{"BROKER_PORT", "9001", func(c *config.Config) any { return c.Server.BrokerPort }, 9001},
		{"LB_PORT", "9002", func(c *config.Config) any { return c.Server.LBPort }, 9002},
		{"CACHE_PORT", "9003", func(c *config.Config) any { return c.Server.CachePort }, 9003},
		{"STREAM_PORT", "9004", func(c *config.Config) any { return c.Server.StreamPort }, 9004},
		{"MAX_BODY_BYTES", "1024", func(c *config.Config) any { return c.Server.MaxBodyBytes }, int64(1024)},
		{"SHUTDOWN_TIMEOUT", "0.5", func(c *config.Config) any { return c.Server.ShutdownTimeout.D() }, 500 * time.Millisecond},
		{"LB_MAX_CONNS_PER_UPSTREAM", "8", func(c *config.Config) any { return c.LB.MaxConnsPerUpstream }, 8},
		{"LB_MAX_IN_FLIGHT", "16", func(c *config.Config) any { return c.LB.MaxInFlight }, 16},
		{"LB_DISCOVERY_INTERVAL", "250ms", func(c *config.Config) any { return c.LB.DiscoveryInterval.D() }, 250 * time.Millisecond},
		{"LB_JOB_TIMEOUT", "1h", func(c *config.Config) any { return c.LB.JobTimeout.D() }, time.Hour},
		{"LB_JOB_MAX_DELIVER", "2", func(c *config.Config) any { return c.LB.JobMaxDeliver }, 2},
		{"LB_JOB_ACK_WAIT", "10", func(c *config.Config) any { return c.LB.JobAckWait.D() }, 10 * time.Second},
		{"LB_JOB_TTL", "48h", func(c *config.Config) any { return c.LB.JobTTL.D() }, 48 * time.Hour},
		{"LOG_LEVEL", "DEBUG", func(c *config.Config) any { return c.Log.Level }, "DEBUG"},
		{"DATA_DIR", "/var/lib/switchyard", func(c *config.Config) any { return c.DataDir }, "/var/lib/switchyard"},
	}
	for _, tc := range cases {
		t.Run(tc.key, func(t *testing.T) {
			c := mustLoad(t, "", map[string]string{tc.key: tc.val})
			if got := tc.get(c); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("%s=%q gives %v (%T), want %v (%T)", tc.key, tc.val, got, got, tc.want, tc.want)
			}
		})
	}
}

// TestLoadNilEnvironReadsProcess checks that a nil environment means the
// process's, and that its errors still quote the value.
func TestLoadNilEnvironReadsProcess(t *testing.T) {
	t.Setenv("NATS_CLIENT_NAME", "from-process")
	c, err := config.Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.NATS.ClientName != "from-process" {
		t.Errorf("ClientName = %q, want the process environment's", c.NATS.ClientName)
	}
	t.Setenv("BROKER_PORT", "abc")
	_, err = config.Load("", nil)
	if !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), `BROKER_PORT="abc"`) {
		t.Errorf("err = %v, want ErrInvalid naming BROKER_PORT=\"abc\"", err)
	}
}

// TestLoadErrors checks that every bad value of every key stops Load with
// an error that wraps ErrInvalid and names the key and the value.
func TestLoadErrors(t *testing.T) {
	type tc struct {
		name string
		yaml string
		env  map[string]string
		want []string // substrings of the error
	}
	var cases []tc
	env := func(key, val string, extra ...string) {
		cases = append(cases, tc{key + "=" + val, "", map[string]string{key: val}, append([]string{key, val}, extra...)})
	}
	// Values caarlos0/env cannot parse.
	for _, key := range []string{"NATS_PORT", "NATS_REPLICAS", "REDIS_DB", "REDIS_POOL_SIZE", "BROKER_PORT", "LB_PORT",
		"CACHE_PORT", "STREAM_PORT", "MAX_BODY_BYTES", "LB_MAX_CONNS_PER_UPSTREAM", "LB_MAX_IN_FLIGHT", "LB_JOB_MAX_DELIVER"} {
		env(key, "abc", "not a valid integer")
		env(key, "1.5", "not a valid integer")
	}
	env("BROKER_PORT", "99999999999999999999", "not a valid integer")
	env("METRICS_ENABLED", "yes", "not a valid boolean")
	for _, key := range []string{"RUST_HEALTH_CHECK_INTERVAL", "RUST_REQUEST_TIMEOUT", "SHUTDOWN_TIMEOUT",
		"LB_DISCOVERY_INTERVAL", "LB_JOB_TIMEOUT", "LB_JOB_ACK_WAIT", "LB_JOB_TTL"} {
		env(key, "soon", "not a duration")
		env(key, "NaN", "not a duration")
		env(key, "inf", "not a duration")
		env(key, "1e300", "not a duration")
		env(key, "1e12", "out of range")
		env(key, "-1e12", "out of range")
		env(key, "5 minutes", "not a duration")
		env(key, "0", "must be positive")
		env(key, "-1s", "must be positive")
	}
	// Values Validate refuses.
	env("NATS_URL", "bogus://x", "unsupported scheme")
	env("NATS_URL", "http://x:4222", "unsupported scheme")
	env("NATS_URL", "nats://", "missing host")
	env("NATS_URL", "nats://a:4222,,nats://b:4222", "empty URL")
	env("NATS_URL", "nats://a:4222,bogus://b", "bogus")
	env("NATS_URL", "nats://a b", "not a URL")
	env("NATS_PORT", "65536", "0 to 65535")
	env("NATS_PORT", "-1", "0 to 65535")
	env("NATS_REPLICAS", "0", "1 to 5")
	env("NATS_REPLICAS", "6", "1 to 5")
	// The embedded server is one node: more replicas need a cluster.
	env("NATS_REPLICAS", "3", "embedded", "NATS_URL")
	env("REDIS_ADDR", "localhost", "host:port")
	env("REDIS_DB", "16", "0 to 15")
	env("REDIS_DB", "-1", "0 to 15")
	env("REDIS_POOL_SIZE", "0", "at least 1")
	for _, key := range []string{"RUST_VISION_SERVICE_URL", "RUST_AI_SERVICE_URL", "RUST_ANALYTICS_SERVICE_URL"} {
		env(key, "ftp://x", "http or https")
		env(key, "localhost:8001", "http or https")
		env(key, "http://", "missing host")
		env(key, "http://ok:1,ftp://bad", "http or https")
		env(key, "http://[::1", "not a URL")
	}
	for _, key := range []string{"BROKER_PORT", "LB_PORT", "CACHE_PORT", "STREAM_PORT"} {
		env(key, "65536", "0 to 65535")
		env(key, "-5", "0 to 65535")
	}
	env("METRICS_PATH", "metrics", "must start with")
	env("METRICS_PATH", "/", "must start with")
	env("LOG_LEVEL", "loud", "debug, info, warn or error")
	env("MAX_BODY_BYTES", "1023", "1024 to")
	env("MAX_BODY_BYTES", strconv.Itoa(61<<20), "1024 to")
	env("LB_MAX_CONNS_PER_UPSTREAM", "0", "at least 1")
	env("LB_MAX_IN_FLIGHT", "0", "at least 1")
	env("LB_JOB_MAX_DELIVER", "0", "at least 1")

	// Duplicated ports: the error names both keys.
	cases = append(cases,
		tc{"LB_PORT duplicates BROKER_PORT", "", map[string]string{"LB_PORT": "8081"}, []string{"LB_PORT", "8081", "already used by BROKER_PORT"}},
		tc{"NATS_PORT duplicates STREAM_PORT", "", map[string]string{"NATS_PORT": "8084"}, []string{"STREAM_PORT", "8084", "already used by NATS_PORT"}},
		tc{"ports duplicated in YAML", "server:\n  cache_port: 9000\n  stream_port: 9000\n", nil, []string{"STREAM_PORT", "server.stream_port", "9000", "already used by CACHE_PORT"}},
	)

	// YAML values: the error names the key (and its variable) and the value.
	yaml := func(name, body string, want ...string) {
		cases = append(cases, tc{"yaml " + name, body, nil, want})
	}
	yaml("bad int", "server:\n  broker_port: abc\n", "server.broker_port", "BROKER_PORT", "abc", "line 2")
	yaml("bad bool", "metrics:\n  enabled: maybe\n", "metrics.enabled", "METRICS_ENABLED", "maybe")
	yaml("bad duration", "rust:\n  request_timeout: soon\n", "rust.request_timeout", "RUST_REQUEST_TIMEOUT", "soon")
	yaml("NaN duration", "lb:\n  job_ttl: .nan\n", "lb.job_ttl", "LB_JOB_TTL", ".nan")
	yaml("huge duration", "lb:\n  job_ttl: 1e12\n", "lb.job_ttl", "LB_JOB_TTL", "1e12", "out of range")
	yaml("zero duration", "rust:\n  health_check_interval: 0\n", "RUST_HEALTH_CHECK_INTERVAL", "rust.health_check_interval", "0s", "must be positive")
	yaml("bad url", "nats:\n  url: bogus://x\n", "NATS_URL", "nats.url", "bogus://x")
	yaml("bad log level", "log:\n  level: loud\n", "LOG_LEVEL", "log.level", "loud")
	yaml("empty data dir", "data_dir: \"\"\n", "DATA_DIR", "data_dir")
	yaml("unknown top-level key", "natz:\n  url: nats://x\n", "natz", "not found")
	yaml("unknown nested key", "nats:\n  urll: nats://x\n", "nats.urll", "not found", "line 2")
	yaml("unknown service key", "services:\n  reports:\n    upstream: []\n", "services.reports.upstream", "not found")
	yaml("struct given a list", "nats: [1, 2]\n", "nats", "line 1")
	yaml("syntax error", "nats:\n  url: [\n", "line")
	yaml("service upstream url", "services:\n  reports:\n    upstreams:\n      - url: ftp://r:1\n", "services.reports.upstreams[0].url", "ftp://r:1", "http or https")
	yaml("service upstream missing url", "services:\n  reports:\n    upstreams:\n      - weight: 2\n", "services.reports.upstreams[0].url", `""`)
	yaml("service second upstream url", "services:\n  reports:\n    upstreams:\n      - url: http://ok:1\n      - url: http://\n", "services.reports.upstreams[1].url", "http://", "missing host")
	yaml("weight not a number", "services:\n  reports:\n    upstreams:\n      - url: http://r:1\n        weight: heavy\n", "services.reports.upstreams[0].weight", "heavy", "line 5")
	yaml("weight in flow style", "services: {reports: {upstreams: [{url: 'http://r:1', weight: heavy}]}}\n", "services.reports.upstreams[0].weight", "heavy")
	yaml("negative weight", "services:\n  reports:\n    upstreams:\n      - url: http://r:1\n        weight: -1\n", "services.reports.upstreams[0].weight", "-1", "1 to 1000")
	yaml("weight too big", "services:\n  reports:\n    upstreams:\n      - url: http://r:1\n        weight: 1001\n", "services.reports.upstreams[0].weight", "1001")
	yaml("bad service name", "services:\n  Re.ports: {}\n", "services.Re.ports", "a-z")
	yaml("bad policy", "services:\n  reports:\n    policy: random\n", "services.reports.policy", "random")
	yaml("bad health path", "services:\n  reports:\n    health_path: health\n", "services.reports.health_path", "health")
	yaml("negative healthy threshold", "services:\n  reports:\n    healthy_threshold: -1\n", "services.reports.healthy_threshold", "-1")
	yaml("negative unhealthy threshold", "services:\n  reports:\n    unhealthy_threshold: -2\n", "services.reports.unhealthy_threshold", "-2")
	yaml("negative eject after", "services:\n  reports:\n    eject_after: -3\n", "services.reports.eject_after", "-3")
	yaml("negative retry budget", "services:\n  reports:\n    retry_budget_percent: -4\n", "services.reports.retry_budget_percent", "-4")
	yaml("max ejected percent", "services:\n  reports:\n    max_ejected_percent: 101\n", "services.reports.max_ejected_percent", "101")
	yaml("negative eject base", "services:\n  reports:\n    eject_base: -1s\n", "services.reports.eject_base", "-1s")
	yaml("bad eject base", "services:\n  reports:\n    eject_base: later\n", "services.reports.eject_base", "later")
	for _, name := range config.ReservedServiceNames {
		yaml("reserved service name "+name, "services:\n  "+name+": {}\n", "services."+name, name)
	}

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := load(t, c.yaml, c.env)
			if err == nil {
				t.Fatal("Load succeeded")
			}
			if !errors.Is(err, config.ErrInvalid) {
				t.Errorf("error does not wrap ErrInvalid: %v", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
		})
	}
}

func TestLoadReportsEveryBadVariable(t *testing.T) {
	_, err := load(t, "", map[string]string{"BROKER_PORT": "abc", "LB_PORT": "xyz", "RUST_REQUEST_TIMEOUT": "soon"})
	if !errors.Is(err, config.ErrInvalid) {
		t.Fatalf("err = %v", err)
	}
	for _, w := range []string{`BROKER_PORT="abc"`, `LB_PORT="xyz"`, `RUST_REQUEST_TIMEOUT="soon"`} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %s", err, w)
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := config.Load(filepath.Join(t.TempDir(), "nope.yaml"), map[string]string{})
	if !errors.Is(err, config.ErrInvalid) || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v, want ErrInvalid and ErrNotExist", err)
	}
}

// TestDurations checks the accepted forms, in YAML and in the environment.
func TestDurations(t *testing.T) {
	cases := []struct {
		in   string
		want time.Duration
	}{
		{"30", 30 * time.Second},
		{"0.5", 500 * time.Millisecond},
		{"500ms", 500 * time.Millisecond},
		{"2m", 2 * time.Minute},
		{"1h30m", 90 * time.Minute},
		{"1.5h", 90 * time.Minute},
		{"250us", 250 * time.Microsecond},
		{"1e-3", time.Millisecond},
		{"86400", 24 * time.Hour},
		{" 2m ", 2 * time.Minute},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			c := mustLoad(t, "", map[string]string{"RUST_REQUEST_TIMEOUT": tc.in})
			if got := c.Rust.RequestTimeout.D(); got != tc.want {
				t.Errorf("env %q = %v, want %v", tc.in, got, tc.want)
			}
			c = mustLoad(t, fmt.Sprintf("rust:\n  request_timeout: %q\n", tc.in), nil)
			if got := c.Rust.RequestTimeout.D(); got != tc.want {
				t.Errorf("yaml quoted %q = %v, want %v", tc.in, got, tc.want)
			}
			c = mustLoad(t, "lb:\n  job_ttl: "+strings.TrimSpace(tc.in)+"\n", nil)
			if got := c.LB.JobTTL.D(); got != tc.want {
				t.Errorf("yaml plain %q = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

func TestDurationText(t *testing.T) {
	d := config.Duration(1500 * time.Millisecond)
	if d.D() != 1500*time.Millisecond || d.String() != "1.5s" {
		t.Errorf("D() = %v, String() = %q", d.D(), d.String())
	}
	b, err := d.MarshalText()
	if err != nil || string(b) != "1.5s" {
		t.Errorf("MarshalText = %q, %v", b, err)
	}
	for _, bad := range []string{"", " ", "soon", "NaN", "+Inf", "-inf", "1e19", "-1e19", "2562048h", "1s2", "s"} {
		var got config.Duration = 7
		if err := got.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("UnmarshalText(%q) = %v, want an error", bad, got.D())
		} else if got != 7 {
			t.Errorf("UnmarshalText(%q) changed the value to %v on error", bad, got.D())
		}
	}
	// The extremes a time.Duration holds still parse.
	for _, ok := range []string{"9223372036", "-9223372036", "2562047h", "-2562047h47m16.854775808s"} {
		var got config.Duration
		if err := got.UnmarshalText([]byte(ok)); err != nil {
			t.Errorf("UnmarshalText(%q) = %v", ok, err)
		}
	}
}

func FuzzDurationUnmarshalText(f *testing.F) {
	for _, s := range []string{"30", "0.5", "500ms", "2m", "-1", "NaN", "inf", "1e300", "9223372036.854775807", "0x1p4", " 1h ", "", "1h2m3s4ms5us6ns", "-2562047h47m16.854775808s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var d config.Duration
		err := d.UnmarshalText([]byte(s))
		trimmed := strings.TrimSpace(s)
		if fl, ferr := strconv.ParseFloat(trimmed, 64); ferr == nil {
			ns := fl * float64(time.Second)
			inRange := !math.IsNaN(ns) && ns < math.MaxInt64 && ns >= math.MinInt64
			switch {
			case inRange && err != nil:
				t.Fatalf("UnmarshalText(%q) = %v, want %v seconds", s, err, fl)
			case !inRange && err == nil:
				t.Fatalf("UnmarshalText(%q) accepted %v seconds as %v", s, fl, d.D())
			case inRange && d != config.Duration(ns):
				t.Fatalf("UnmarshalText(%q) = %v, want %v", s, d.D(), time.Duration(ns))
			}
		} else {
			want, perr := time.ParseDuration(trimmed)
			if (perr == nil) != (err == nil) || perr == nil && d.D() != want {
				t.Fatalf("UnmarshalText(%q) = (%v, %v), time.ParseDuration = (%v, %v)", s, d.D(), err, want, perr)
			}
		}
		if err != nil {
			return
		}
		// What it accepts survives a round trip through MarshalText.
		b, _ := d.MarshalText()
		var back config.Duration
		if err := back.UnmarshalText(b); err != nil || back != d {
			t.Fatalf("round trip of %q: %q gives (%v, %v), want %v", s, b, back.D(), err, d.D())
		}
	})
}

// FuzzLoadYAML feeds Load arbitrary files: it never panics, every error
// wraps ErrInvalid and is one line, and what it accepts is valid.
func FuzzLoadYAML(f *testing.F) {
	for _, s := range []string{
		"", "nats:\n  url: nats://x\n", "server:\n  broker_port: abc\n", "rust:\n  request_timeout: soon\n",
		"services: {x: {upstreams: [{url: 'http://a', weight: heavy}]}}\n", "natz: 1\n", ":::\n", "- 1\n",
		"services:\n  r:\n    upstreams:\n      - url: http://r:1\n        weight: 2\n", "lb: {job_ttl: .nan}\n",
	} {
		f.Add(s)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, body string) {
		path := filepath.Join(dir, "config.yaml")
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := config.Load(path, map[string]string{})
		if err != nil {
			if !errors.Is(err, config.ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error is not one line: %q", err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Load accepted a config Validate refuses: %v", err)
		}
		_ = c.ResolveServices()
	})
}

func TestSplitList(t *testing.T) {
	cases := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{" , ,", nil},
		{"http://a", []string{"http://a"}},
		{"http://a,http://b", []string{"http://a", "http://b"}},
		{" http://a , ,http://b ,", []string{"http://a", "http://b"}},
	}
	for _, tc := range cases {
		if got := config.SplitList(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("SplitList(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestResolveServices(t *testing.T) {
	byName := func(rs []config.ResolvedService) map[string]config.ResolvedService {
		m := map[string]config.ResolvedService{}
		for _, r := range rs {
			m[r.Name] = r
		}
		return m
	}
	urls := func(s config.ResolvedService) []string {
		var out []string
		for _, u := range s.Upstreams {
			out = append(out, fmt.Sprintf("%s*%d", u.URL, u.Weight))
		}
		return out
	}
	cases := []struct {
		name  string
		yaml  string
		env   map[string]string
		names []string
		ups   map[string][]string // service -> "url*weight"
	}{
		{
			name:  "defaults from rust urls",
			names: []string{"ai", "analytics", "vision"},
			ups: map[string][]string{
				"vision": {"http://localhost:8001*1"}, "ai": {"http://localhost:8002*1"}, "analytics": {"http://localhost:8003*1"},
			},
		},
		{
			name:  "comma lists from the environment",
			env:   map[string]string{"RUST_VISION_SERVICE_URL": "http://v1:1, http://v2:2,,", "RUST_AI_SERVICE_URL": "https://ai:443"},
			names: []string{"ai", "analytics", "vision"},
			ups: map[string][]string{
				"vision": {"http://v1:1*1", "http://v2:2*1"}, "ai": {"https://ai:443*1"}, "analytics": {"http://localhost:8003*1"},
			},
		},
		{
			name:  "empty rust url leaves the service to NATS workers",
			yaml:  "rust:\n  analytics_service_url: \"\"\n",
			names: []string{"ai", "analytics", "vision"},
			ups:   map[string][]string{"analytics": nil},
		},
		{
			name: "declared services override defaults and add new ones",
			yaml: `
services:
  vision:
    upstreams:
      - url: http://gpu-1:8001
        weight: 3
      - url: http://gpu-2:8001
  reports: {}
  zeta:
    upstreams:
      - url: https://z:1
`,
			names: []string{"ai", "analytics", "reports", "vision", "zeta"},
			ups: map[string][]string{
				"vision": {"http://gpu-1:8001*3", "http://gpu-2:8001*1"}, "reports": nil, "zeta": {"https://z:1*1"},
				"ai": {"http://localhost:8002*1"},
			},
		},
		{
			name:  "a default service declared with no upstreams stays empty",
			yaml:  "services:\n  ai: {}\n  vision:\n    upstreams: []\n  analytics:\n",
			env:   map[string]string{"RUST_AI_SERVICE_URL": "http://ignored:1"},
			names: []string{"ai", "analytics", "vision"},
			ups:   map[string][]string{"ai": nil, "vision": nil, "analytics": nil},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := mustLoad(t, tc.yaml, tc.env)
			rs := c.ResolveServices()
			var names []string
			for _, r := range rs {
				names = append(names, r.Name)
			}
			if !reflect.DeepEqual(names, tc.names) {
				t.Errorf("names = %v, want %v (sorted)", names, tc.names)
			}
			m := byName(rs)
			for name, want := range tc.ups {
				if got := urls(m[name]); !reflect.DeepEqual(got, want) {
					t.Errorf("%s upstreams = %v, want %v", name, got, want)
				}
			}
		})
	}
}

func TestResolveServicesDefaults(t *testing.T) {
	c := mustLoad(t, `
services:
  plain:
    upstreams:
      - url: http://p:1
  tuned:
    policy: latency
    health_path: /ready
    healthy_threshold: 3
    unhealthy_threshold: 4
    eject_after: 7
    eject_base: 2s
    max_ejected_percent: 100
    panic_mode: true
    retry_budget_percent: 5
    upstreams:
      - url: http://t:1
        weight: 9
`, nil)
	m := map[string]config.ResolvedService{}
	for _, r := range c.ResolveServices() {
		m[r.Name] = r
	}
	want := map[string]config.Service{
		"plain": {
			Upstreams: []config.Upstream{{URL: "http://p:1", Weight: 1}},
			Policy:    config.PolicyWeighted, HealthPath: "/health", HealthyThreshold: 1, UnhealthyThreshold: 2,
			EjectAfter: 5, EjectBase: config.Duration(10 * time.Second), MaxEjectedPercent: 50, RetryBudgetPercent: 20,
		},
		"tuned": {
			Upstreams: []config.Upstream{{URL: "http://t:1", Weight: 9}},
			Policy:    config.PolicyLatency, HealthPath: "/ready", HealthyThreshold: 3, UnhealthyThreshold: 4,
			EjectAfter: 7, EjectBase: config.Duration(2 * time.Second), MaxEjectedPercent: 100, PanicMode: true, RetryBudgetPercent: 5,
		},
	}
	// The default services get the same defaults.
	want["vision"] = config.Service{
		Upstreams: []config.Upstream{{URL: "http://localhost:8001", Weight: 1}},
		Policy:    config.PolicyWeighted, HealthPath: "/health", HealthyThreshold: 1, UnhealthyThreshold: 2,
		EjectAfter: 5, EjectBase: config.Duration(10 * time.Second), MaxEjectedPercent: 50, RetryBudgetPercent: 20,
	}
	for name, w := range want {
		if got := m[name].Service; !reflect.DeepEqual(got, w) {
			t.Errorf("%s:\n got  %+v\n want %+v", name, got, w)
		}
	}
	// Resolving fills a copy: the loaded config keeps weight 0 and no policy.
	if p := c.Services["plain"]; p.Upstreams[0].Weight != 0 || p.Policy != "" {
		t.Errorf("ResolveServices changed the config: %+v", p)
	}
	// A service with no upstreams gets an empty, non-nil list.
	c = mustLoad(t, "services:\n  reports: {}\n", nil)
	for _, r := range c.ResolveServices() {
		if r.Name == "reports" && (r.Upstreams == nil || len(r.Upstreams) != 0 || r.Policy != config.PolicyWeighted) {
			t.Errorf("reports = %+v, want no upstreams and defaults", r)
		}
	}
}

func ExampleLoad() {
	// Normally: config.Load(path, env.ToMap(os.Environ())).
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "config.yaml")
	_ = os.WriteFile(path, []byte(`
rust:
  vision_service_url: http://gpu-1:8001,http://gpu-2:8001
  request_timeout: 10
server:
  lb_port: 9082
`), 0o600)

	cfg, err := config.Load(path, map[string]string{"LB_PORT": "9182"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cfg.Server.LBPort, cfg.Rust.RequestTimeout)
	for _, s := range cfg.ResolveServices() {
		fmt.Println(s.Name, len(s.Upstreams), s.Policy)
	}

	_, err = config.Load(path, map[string]string{"BROKER_PORT": "abc"})
	fmt.Println(errors.Is(err, config.ErrInvalid), err)
	// Output:
	// 9182 10s
	// ai 1 weighted
	// analytics 1 weighted
	// vision 2 weighted
	// true config: BROKER_PORT="abc": not a valid integer
}
