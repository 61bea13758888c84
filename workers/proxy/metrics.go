package proxy

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard/switchyard/internal/obs"
	"github.com/switchyard/switchyard/workers/proxy/balancer"
)

type metrics struct {
	requests  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	inFlight  *prometheus.GaugeVec
	retries   *prometheus.CounterVec
	failovers *prometheus.CounterVec
	unretried *prometheus.CounterVec
	dropped   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "switchyard", Subsystem: "proxy", Name: "requests_total",
			Help: "Requests the proxy worker answered, by service and class (2xx..5xx, error for Switchyard's own errors).",
		}, []string{"service", "class"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "switchyard", Subsystem: "proxy", Name: "request_duration_seconds",
			Help:    "Time from a request's arrival at the proxy worker to its reply, all attempts included.",
			Buckets: obs.LatencyBuckets,
		}, []string{"service"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "switchyard", Subsystem: "proxy", Name: "in_flight_requests",
			Help: "Requests the proxy worker is serving, by service.",
		}, []string{"service"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "switchyard", Subsystem: "proxy", Name: "retries_total",
			Help: "Further attempts of a request, by service and reason (not_sent: nothing reached the upstream, any method; " +
				"busy: every connection to the upstream stayed busy past the queue wait, any method; " +
				"stale_connection: a replayable request replayed on a new connection after a kept-alive one broke before any response byte; " +
				"status: 502/503/504 on a replayable request; broken: a replayable request whose answer broke off).",
		}, []string{"service", "reason"}),
		failovers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "switchyard", Subsystem: "proxy", Name: "failovers_total",
			Help: "Attempts moved to another upstream of the service.",
		}, []string{"service"}),
		unretried: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "switchyard", Subsystem: "proxy", Name: "retries_refused_total",
			Help: "Failed attempts not retried although another upstream might answer, by service and reason " +
				"(not_replayable: sent, and neither idempotent nor with an Idempotency-Key; budget: retry budget spent; no_upstream_left).",
		}, []string{"service", "reason"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "switchyard", Subsystem: "proxy", Name: "dropped_total",
			Help: "Requests answered without an upstream answer, by service and reason (expired: deadline passed before it was served, 504; " +
				"overloaded: no free slot, or no free connection to any upstream, within the queue wait, 503; shutdown: cut off at the shutdown deadline, 503).",
		}, []string{"service", "reason"}),
	}
	reg.MustRegister(m.requests, m.duration, m.inFlight, m.retries, m.failovers, m.unretried, m.dropped)
	return m
}

// RegisterMetrics registers the proxy worker's metrics, and those of its
// balancer, on reg as New does, for tools and tests that check dashboards
// against the metric names.
func RegisterMetrics(reg prometheus.Registerer) {
	newMetrics(reg)
	balancer.NewMetrics(reg)
}
