package broker

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard/switchyard/internal/obs"
)

// Paths a message enters the broker by: the values of the path label.
const (
	pathHTTP = "http" // POST /publish
	pathWS   = "ws"   // a publish frame
	pathNATS = "nats" // published straight to NATS
)

var paths = []string{pathHTTP, pathWS, pathNATS}

// maxServiceLabels bounds the service label: services beyond the first
// ones seen are counted as "other".
const maxServiceLabels = 100

// metrics are the broker's Prometheus metrics, subsystem "broker".
type metrics struct {
	connections  *prometheus.GaugeVec
	published    *prometheus.CounterVec
	received     map[string]prometheus.Counter
	delivered    map[string]prometheus.Counter
	undeliver    map[string]prometheus.Counter
	redelivered  prometheus.Counter
	acked        prometheus.Counter
	deadLetters  prometheus.Counter
	slow         prometheus.Counter
	frameErrors  *prometheus.CounterVec
	latency      map[bool]prometheus.Observer
	requestsSent prometheus.Counter
	repliesSent  prometheus.Counter

	labelMu sync.Mutex
	labels  map[string]bool
}

// newMetrics registers the broker's metrics on reg.
func newMetrics(reg prometheus.Registerer) *metrics {
	counterVec := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "switchyard", Subsystem: "broker", Name: name, Help: help,
		}, labels)
	}
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "switchyard", Subsystem: "broker", Name: name, Help: help,
		})
	}
	received := counterVec("messages_in_total", "Messages a broker edge received from NATS for its connections, by the path they were published on (http, ws, nats).", "path")
	delivered := counterVec("messages_out_total", "Frames of messages written to connections (one per connection of a broadcast), by the path the message was published on.", "path")
	undeliver := counterVec("undeliverable_total", "Transient messages no connection of their service could take, by the path they were published on; they are dropped.", "path")
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "switchyard", Subsystem: "broker", Name: "delivery_latency_seconds",
		Help:    "Time from publish (Switchyard-Time) to the frame being queued on a connection, by persistent (true/false).",
		Buckets: obs.LatencyBuckets,
	}, []string{"persistent"})
	m := &metrics{
		connections: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "switchyard", Subsystem: "broker", Name: "connections",
			Help: "Open WebSocket connections of this broker edge, by service (the first 100 services seen; the rest as \"other\") and mode.",
		}, []string{"service", "mode"}),
		published:    counterVec("published_total", "Messages accepted for publishing by this broker edge, by path (http, ws) and persistent (true/false).", "path", "persistent"),
		received:     map[string]prometheus.Counter{},
		delivered:    map[string]prometheus.Counter{},
		undeliver:    map[string]prometheus.Counter{},
		redelivered:  counter("redeliveries_total", "Persistent messages delivered again (delivery attempt 2 or later)."),
		acked:        counter("acks_total", "Persistent messages acknowledged by a client."),
		deadLetters:  counter("dead_letters_total", "Persistent messages moved to broker.dead.> after their last delivery attempt."),
		slow:         counter("slow_disconnects_total", "Connections closed with 4008 \"slow\" because they did not keep up."),
		frameErrors:  counterVec("frame_errors_total", "Inbound frames answered with an error frame, by error code.", "code"),
		latency:      map[bool]prometheus.Observer{false: latency.WithLabelValues("false"), true: latency.WithLabelValues("true")},
		requestsSent: counter("requests_total", "Requests (messages expecting a reply) published by this broker edge's connections."),
		repliesSent:  counter("replies_total", "Reply frames of connections published by this broker edge."),
		labels:       map[string]bool{},
	}
	for _, p := range paths {
		m.received[p] = received.WithLabelValues(p)
		m.delivered[p] = delivered.WithLabelValues(p)
		m.undeliver[p] = undeliver.WithLabelValues(p)
	}
	for _, p := range []string{pathHTTP, pathWS} {
		for _, b := range []string{"false", "true"} {
			m.published.WithLabelValues(p, b)
		}
	}
	for _, c := range []string{codeBadFrame, codeUnknownType, codeBadRequest, codeUnknownID, codeUnavailable, codeTooLarge} {
		m.frameErrors.WithLabelValues(c)
	}
	reg.MustRegister(m.connections, m.published, received, delivered, undeliver, m.redelivered, m.acked,
		m.deadLetters, m.slow, m.frameErrors, latency, m.requestsSent, m.repliesSent)
	return m
}

// serviceLabel bounds the service label to maxServiceLabels values.
func (m *metrics) serviceLabel(service string) string {
	m.labelMu.Lock()
	defer m.labelMu.Unlock()
	if m.labels[service] {
		return service
	}
	if len(m.labels) >= maxServiceLabels {
		return "other"
	}
	m.labels[service] = true
	return service
}

func originLabel(origin string) string {
	switch origin {
	case pathHTTP, pathWS:
		return origin
	}
	return pathNATS
}

// RegisterMetrics registers the broker's metrics on reg as New does, for
// tools and tests that check dashboards against the metric names.
func RegisterMetrics(reg prometheus.Registerer) { newMetrics(reg) }
