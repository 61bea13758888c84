package edge

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard/switchyard/internal/obs"
)

// Metrics are the HTTP metrics every edge shares, labelled by edge.
// Create one per registry with NewMetrics and pass it to every edge.
type Metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inFlight *prometheus.GaugeVec
	// forwardedStripped counts requests whose forwarding headers came
	// from an untrusted peer and were removed.
	forwardedStripped *prometheus.CounterVec
}

// NewMetrics registers switchyard_http_requests_total,
// switchyard_http_request_duration_seconds, switchyard_http_in_flight_requests
// and switchyard_http_forwarded_headers_stripped_total.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "switchyard", Subsystem: "http", Name: "requests_total",
			Help: "HTTP requests answered, by edge, route template, method and status.",
		}, []string{"edge", "route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "switchyard", Subsystem: "http", Name: "request_duration_seconds",
			Help:    "HTTP request latency, by edge, route template, method and status.",
			Buckets: obs.LatencyBuckets,
		}, []string{"edge", "route", "method", "status"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "switchyard", Subsystem: "http", Name: "in_flight_requests",
			Help: "HTTP requests being served, by edge.",
		}, []string{"edge"}),
		forwardedStripped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "switchyard", Subsystem: "http", Name: "forwarded_headers_stripped_total",
			Help: "Requests whose X-Forwarded-*, X-Real-Ip or Forwarded headers came from an untrusted peer and were removed, by edge.",
		}, []string{"edge"}),
	}
	reg.MustRegister(m.requests, m.duration, m.inFlight, m.forwardedStripped)
	return m
}

var knownMethods = map[string]bool{
	"GET": true, "HEAD": true, "POST": true, "PUT": true, "PATCH": true,
	"DELETE": true, "OPTIONS": true, "CONNECT": true, "TRACE": true,
}

func (m *Metrics) observe(edge, route, method string, status int, seconds float64) {
	if !knownMethods[method] {
		method = "OTHER"
	}
	st := strconv.Itoa(status)
	m.requests.WithLabelValues(edge, route, method, st).Inc()
	m.duration.WithLabelValues(edge, route, method, st).Observe(seconds)
}
