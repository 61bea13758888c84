package balancer

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard/switchyard/internal/obs"
)

// Metrics are the per-upstream metrics of every Pool of a process,
// labelled by service and upstream (the upstream's host:port). Create one
// per registry with NewMetrics and pass it to every New. A nil *Metrics
// records nothing.
type Metrics struct {
	requests  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	inFlight  *prometheus.GaugeVec
	healthy   *prometheus.GaugeVec
	ejections *prometheus.CounterVec
	checks    *prometheus.CounterVec
}

// NewMetrics creates and registers on reg
// switchyard_proxy_upstream_requests_total{service,upstream,class},
// switchyard_proxy_upstream_request_duration_seconds{service,upstream},
// switchyard_proxy_upstream_in_flight{service,upstream},
// switchyard_proxy_upstream_healthy{service,upstream},
// switchyard_proxy_ejections_total{service,upstream} and
// switchyard_proxy_health_checks_total{service,upstream,result}.
// A nil reg registers nothing. When reg already holds these collectors
// (a second NewMetrics on one registry) the registered ones are reused.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "switchyard", Subsystem: "proxy", Name: "upstream_requests_total",
			Help: "Requests sent to an upstream, by service, upstream and class (2xx..5xx, error when no response came).",
		}, []string{"service", "upstream", "class"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "switchyard", Subsystem: "proxy", Name: "upstream_request_duration_seconds",
			Help:    "Latency of one attempt on an upstream, by service and upstream.",
			Buckets: obs.LatencyBuckets,
		}, []string{"service", "upstream"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "switchyard", Subsystem: "proxy", Name: "upstream_in_flight",
			Help: "Requests being served by an upstream, by service and upstream.",
		}, []string{"service", "upstream"}),
		healthy: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "switchyard", Subsystem: "proxy", Name: "upstream_healthy",
			Help: "1 when the upstream passes its active health checks, 0 when it fails them.",
		}, []string{"service", "upstream"}),
		ejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "switchyard", Subsystem: "proxy", Name: "ejections_total",
			Help: "Times an upstream was ejected after consecutive connect errors or 5xx answers.",
		}, []string{"service", "upstream"}),
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "switchyard", Subsystem: "proxy", Name: "health_checks_total",
			Help: "Active health checks, by service, upstream and result (pass, fail).",
		}, []string{"service", "upstream", "result"}),
	}
	if reg != nil {
		m.requests = register(reg, m.requests)
		m.duration = register(reg, m.duration)
		m.inFlight = register(reg, m.inFlight)
		m.healthy = register(reg, m.healthy)
		m.ejections = register(reg, m.ejections)
		m.checks = register(reg, m.checks)
	}
	return m
}

// register registers c, or returns the equal collector reg already holds.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(err)
	}
	return c
}

// Outcome classes, indexes into upstreamMetrics.class.
const (
	class2xx = iota
	class3xx
	class4xx
	class5xx
	classError
	numClasses
)

var classNames = [numClasses]string{"2xx", "3xx", "4xx", "5xx", "error"}

// upstreamMetrics are one upstream's series, resolved once so the request
// path does no label lookups.
type upstreamMetrics struct {
	class     [numClasses]prometheus.Counter
	duration  prometheus.Observer
	inFlight  prometheus.Gauge
	healthy   prometheus.Gauge
	ejections prometheus.Counter
	pass      prometheus.Counter
	fail      prometheus.Counter
}

func (m *Metrics) forUpstream(service, upstream string) *upstreamMetrics {
	if m == nil {
		return nil
	}
	um := &upstreamMetrics{
		duration:  m.duration.WithLabelValues(service, upstream),
		inFlight:  m.inFlight.WithLabelValues(service, upstream),
		healthy:   m.healthy.WithLabelValues(service, upstream),
		ejections: m.ejections.WithLabelValues(service, upstream),
		pass:      m.checks.WithLabelValues(service, upstream, "pass"),
		fail:      m.checks.WithLabelValues(service, upstream, "fail"),
	}
	for i, name := range classNames {
		um.class[i] = m.requests.WithLabelValues(service, upstream, name)
	}
	return um
}

// outcomeClass maps an outcome to its class.
func outcomeClass(o Outcome) int {
	switch {
	case o.ConnectErr || o.Status < 200:
		// 1xx never ends a request; treat it, and no status, as an error.
		return classError
	case o.Status < 300:
		return class2xx
	case o.Status < 400:
		return class3xx
	case o.Status < 500:
		return class4xx
	case o.Status < 600:
		return class5xx
	default:
		return classError
	}
}
