package proxy

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard/switchyard/internal/obs"
)

type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inFlight *prometheus.GaugeVec
	retries  *prometheus.CounterVec
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
			Help: "Attempts on another upstream, by service and reason (connect: failover before any response byte; status: 502/503/504 on an idempotent request; error: a broken idempotent request).",
		}, []string{"service", "reason"}),
	}
	reg.MustRegister(m.requests, m.duration, m.inFlight, m.retries)
	return m
}
