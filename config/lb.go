package config

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/switchyard/switchyard/subjects"
)

// LB configures the load balancer edge and the proxy worker pool.
type LB struct {
	// MaxConnsPerUpstream bounds the connections one proxy worker opens to
	// one upstream; they are kept alive between requests, and a request that
	// finds them all busy waits for one up to QueueWait.
	MaxConnsPerUpstream int `yaml:"max_conns_per_upstream" env:"LB_MAX_CONNS_PER_UPSTREAM"`
	// MaxInFlight bounds concurrent requests per service in one proxy worker.
	MaxInFlight int `yaml:"max_in_flight" env:"LB_MAX_IN_FLIGHT"`
	// QueueWait is how long a request may wait for a free slot when a
	// service's MaxInFlight are busy, or for a connection when an
	// upstream's MaxConnsPerUpstream are, before a 503 with Retry-After.
	// Zero: no wait, 503 at once.
	QueueWait Duration `yaml:"queue_wait" env:"LB_QUEUE_WAIT"`
	// EdgeMaxInFlight bounds the requests the lb edge routes at once (503
	// with Retry-After beyond).
	EdgeMaxInFlight int `yaml:"edge_max_in_flight" env:"LB_EDGE_MAX_IN_FLIGHT"`
	// EdgeMaxBodyMemory bounds the bytes of request bodies the lb edge
	// holds at once (503 with Retry-After beyond). Below
	// server.max_body_bytes it counts as that, so one body of the largest
	// size always fits.
	EdgeMaxBodyMemory int64 `yaml:"edge_max_body_memory" env:"LB_EDGE_MAX_BODY_MEMORY"`
	// DiscoveryInterval is how often the edge asks NATS for micro services.
	DiscoveryInterval Duration `yaml:"discovery_interval" env:"LB_DISCOVERY_INTERVAL"`
	// DiscoveryGrace is how long a discovered service stays known after
	// discovery last saw it: while its workers restart it answers 503
	// no_responders (with Retry-After), not 404 unknown_service, and one
	// late discovery reply does not drop it.
	DiscoveryGrace Duration `yaml:"discovery_grace" env:"LB_DISCOVERY_GRACE"`
	// JobTimeout bounds one attempt of a durable (async) job.
	JobTimeout Duration `yaml:"job_timeout" env:"LB_JOB_TIMEOUT"`
	// JobMaxDeliver is how many attempts a job gets before it is marked failed.
	JobMaxDeliver int `yaml:"job_max_deliver" env:"LB_JOB_MAX_DELIVER"`
	// JobAckWait is how long a job may go without a heartbeat before redelivery.
	JobAckWait Duration `yaml:"job_ack_wait" env:"LB_JOB_ACK_WAIT"`
	// JobTTL is how long finished job records are kept.
	JobTTL Duration `yaml:"job_ttl" env:"LB_JOB_TTL"`
	// JobConcurrency bounds the jobs one job runner holds at once per
	// service; it pulls no more than that.
	JobConcurrency int `yaml:"job_concurrency" env:"LB_JOB_CONCURRENCY"`
	// JobMaxResultBytes bounds the body of a job's answer; a larger answer
	// fails the job (result_too_large). 0 means server.max_body_bytes.
	JobMaxResultBytes int64 `yaml:"job_max_result_bytes" env:"LB_JOB_MAX_RESULT_BYTES"`
}

func (l *LB) defaults() {
	*l = LB{
		MaxConnsPerUpstream: 256,
		MaxInFlight:         1024,
		QueueWait:           Duration(100 * time.Millisecond),
		EdgeMaxInFlight:     4096,
		EdgeMaxBodyMemory:   256 << 20,
		DiscoveryInterval:   Duration(5 * time.Second),
		DiscoveryGrace:      Duration(time.Minute),
		JobTimeout:          Duration(5 * time.Minute),
		JobMaxDeliver:       5,
		JobAckWait:          Duration(30 * time.Second),
		JobTTL:              Duration(24 * time.Hour),
		JobConcurrency:      32,
	}
}

func (l *LB) validate() error {
	if l.MaxConnsPerUpstream < 1 {
		return invalid("LB_MAX_CONNS_PER_UPSTREAM (lb.max_conns_per_upstream)", l.MaxConnsPerUpstream, "must be at least 1")
	}
	if l.MaxInFlight < 1 {
		return invalid("LB_MAX_IN_FLIGHT (lb.max_in_flight)", l.MaxInFlight, "must be at least 1")
	}
	if l.QueueWait < 0 || l.QueueWait.D() > 10*time.Second {
		return invalid("LB_QUEUE_WAIT (lb.queue_wait)", l.QueueWait, "must be 0 to 10s")
	}
	if l.EdgeMaxInFlight < 1 {
		return invalid("LB_EDGE_MAX_IN_FLIGHT (lb.edge_max_in_flight)", l.EdgeMaxInFlight, "must be at least 1")
	}
	if l.EdgeMaxBodyMemory < 1024 {
		return invalid("LB_EDGE_MAX_BODY_MEMORY (lb.edge_max_body_memory)", l.EdgeMaxBodyMemory, "must be at least 1024")
	}
	if l.JobMaxDeliver < 1 {
		return invalid("LB_JOB_MAX_DELIVER (lb.job_max_deliver)", l.JobMaxDeliver, "must be at least 1")
	}
	if l.JobConcurrency < 1 || l.JobConcurrency > 1024 {
		return invalid("LB_JOB_CONCURRENCY (lb.job_concurrency)", l.JobConcurrency, "must be 1 to 1024")
	}
	if l.JobMaxResultBytes < 0 {
		return invalid("LB_JOB_MAX_RESULT_BYTES (lb.job_max_result_bytes)", l.JobMaxResultBytes, "must not be negative (0 means server.max_body_bytes)")
	}
	if l.DiscoveryGrace < 0 {
		return invalid("LB_DISCOVERY_GRACE (lb.discovery_grace)", l.DiscoveryGrace, "must not be negative (0: a service is known while discovery sees it)")
	}
	return positive(
		durationKey{"LB_DISCOVERY_INTERVAL (lb.discovery_interval)", l.DiscoveryInterval},
		durationKey{"LB_JOB_TIMEOUT (lb.job_timeout)", l.JobTimeout},
		durationKey{"LB_JOB_ACK_WAIT (lb.job_ack_wait)", l.JobAckWait},
		durationKey{"LB_JOB_TTL (lb.job_ttl)", l.JobTTL},
	)
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

// validateServices checks the services config.yaml declares.
func validateServices(services map[string]Service) error {
	for name, s := range services {
		key := "services." + name
		if err := subjects.ValidName(name); err != nil {
			return invalid(key, strconv.Quote(name), "service names may hold only a-z, 0-9, '_' and '-'")
		}
		if slices.Contains(ReservedServiceNames, name) {
			return invalid(key, strconv.Quote(name), "the name is taken by an endpoint of the lb edge")
		}
		for i, u := range s.Upstreams {
			if err := validHTTPURL(u.URL); err != nil {
				return invalid(fmt.Sprintf("%s.upstreams[%d].url", key, i), strconv.Quote(u.URL), err.Error())
			}
			if u.Weight < 0 || u.Weight > 1000 {
				return invalid(fmt.Sprintf("%s.upstreams[%d].weight", key, i), u.Weight, "must be 1 to 1000 (0 means 1)")
			}
		}
		if s.Policy != "" && s.Policy != PolicyWeighted && s.Policy != PolicyLatency {
			return invalid(key+".policy", strconv.Quote(s.Policy), `must be "weighted" or "latency"`)
		}
		if s.HealthPath != "" && !strings.HasPrefix(s.HealthPath, "/") {
			return invalid(key+".health_path", strconv.Quote(s.HealthPath), `must start with "/"`)
		}
		for _, kv := range []struct {
			k string
			v int
		}{
			{".healthy_threshold", s.HealthyThreshold}, {".unhealthy_threshold", s.UnhealthyThreshold},
			{".eject_after", s.EjectAfter}, {".retry_budget_percent", s.RetryBudgetPercent},
		} {
			if kv.v < 0 {
				return invalid(key+kv.k, kv.v, "must not be negative")
			}
		}
		if s.MaxEjectedPercent < 0 || s.MaxEjectedPercent > 100 {
			return invalid(key+".max_ejected_percent", s.MaxEjectedPercent, "must be 0 to 100")
		}
		if s.EjectBase < 0 {
			return invalid(key+".eject_base", s.EjectBase, "must not be negative")
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
