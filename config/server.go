package config

import (
	"strconv"
	"strings"
	"time"
)

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
	// TrustedProxies are the peers (IPs or CIDRs) whose X-Forwarded-For,
	// -Host, -Proto and Forwarded headers the edges pass on. Empty: no
	// peer is trusted, and the edges replace those headers with what they
	// see themselves.
	TrustedProxies []string `yaml:"trusted_proxies" env:"TRUSTED_PROXIES"`
}

// DefaultMaxBodyBytes is 8 MiB less the 64 KiB kept for NATS headers: the
// NATS max_payload it needs is then exactly 8 MiB, the largest nats-server
// runs without warning that large payloads are discouraged.
const DefaultMaxBodyBytes = 8<<20 - 64<<10

func (s *Server) defaults() {
	*s = Server{
		BrokerPort: 8081, LBPort: 8082, CachePort: 8083, StreamPort: 8084, WorkerPort: 8085,
		MaxBodyBytes:    DefaultMaxBodyBytes,
		ShutdownTimeout: Duration(12 * time.Second),
		TrustedProxies:  []string{},
	}
}

func (s *Server) validate() error {
	if s.MaxBodyBytes < 1024 || s.MaxBodyBytes > 60<<20 {
		return invalid("MAX_BODY_BYTES (server.max_body_bytes)", s.MaxBodyBytes, "must be 1024 to 62914560 (60 MiB)")
	}
	if _, err := ParsePrefixes(s.TrustedProxies); err != nil {
		return invalid("TRUSTED_PROXIES (server.trusted_proxies)", strconv.Quote(strings.Join(s.TrustedProxies, ",")), err.Error())
	}
	return positive(durationKey{"SHUTDOWN_TIMEOUT (server.shutdown_timeout)", s.ShutdownTimeout})
}

// Metrics configures the Prometheus endpoint of every edge.
type Metrics struct {
	Enabled bool   `yaml:"enabled" env:"METRICS_ENABLED"`
	Path    string `yaml:"path" env:"METRICS_PATH"`
	// Port, when not 0, serves the process's whole registry at Path on
	// that port too (on server.host), besides every edge's own /metrics.
	Port int `yaml:"port" env:"METRICS_PORT"`
}

func (m *Metrics) defaults() { m.Enabled, m.Path = true, "/metrics" }

func (m *Metrics) validate() error {
	if !strings.HasPrefix(m.Path, "/") || m.Path == "/" {
		return invalid("METRICS_PATH (metrics.path)", strconv.Quote(m.Path), `must start with "/" and name a path`)
	}
	return nil
}

// Log configures the JSON logger.
type Log struct {
	Level string `yaml:"level" env:"LOG_LEVEL"`
}

func (l *Log) defaults() { l.Level = "info" }

func (l *Log) validate() error {
	if !validLevel(l.Level) {
		return invalid("LOG_LEVEL (log.level)", strconv.Quote(l.Level), "must be debug, info, warn or error")
	}
	return nil
}
