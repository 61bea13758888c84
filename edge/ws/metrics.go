package ws

import (
	"errors"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// codeLabels is the bounded set of values of the code label; any other
// code counts as "other".
var codeLabels = []int{CloseNormal, CloseGoingAway, CloseProtocol, CloseNoStatus, CloseAbnormal,
	ClosePolicy, CloseTooBig, CloseInternal, CloseSlow}

// Metrics counts the WebSocket connections of one edge. A nil *Metrics
// counts nothing. Safe for concurrent use.
type Metrics struct {
	conns     prometheus.Gauge
	framesIn  prometheus.Counter
	framesOut prometheus.Counter
	bytesIn   prometheus.Counter
	bytesOut  prometheus.Counter
	closes    map[int]prometheus.Counter
	other     prometheus.Counter
}

// NewMetrics registers, or reuses when another edge registered them on reg
// already, the switchyard_websocket_* metrics, and returns the ones
// labelled edge="<edge>":
//
//	switchyard_websocket_connections{edge}           gauge: open connections
//	switchyard_websocket_frames_in_total{edge}       messages received
//	switchyard_websocket_frames_out_total{edge}      messages written
//	switchyard_websocket_bytes_in_total{edge}        payload bytes received
//	switchyard_websocket_bytes_out_total{edge}       payload bytes written
//	switchyard_websocket_closes_total{edge,code}     closed connections by close code
//
// code is one of 1000 1001 1002 1005 1006 1008 1009 1011 4008 or "other".
// It panics when reg holds a different metric under one of these names.
func NewMetrics(reg prometheus.Registerer, edge string) *Metrics {
	gauge := func(name, help string) *prometheus.GaugeVec {
		return register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "switchyard", Subsystem: "websocket", Name: name, Help: help,
		}, []string{"edge"}))
	}
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "switchyard", Subsystem: "websocket", Name: name, Help: help,
		}, append([]string{"edge"}, labels...)))
	}
	l := prometheus.Labels{"edge": edge}
	closes := counter("closes_total", "WebSocket connections closed, by edge and close code (sent, received, or 1006 without a close frame).", "code")
	m := &Metrics{
		conns:     gauge("connections", "Open WebSocket connections, by edge.").With(l),
		framesIn:  counter("frames_in_total", "WebSocket messages received, by edge.").With(l),
		framesOut: counter("frames_out_total", "WebSocket messages written, by edge.").With(l),
		bytesIn:   counter("bytes_in_total", "WebSocket payload bytes received, by edge.").With(l),
		bytesOut:  counter("bytes_out_total", "WebSocket payload bytes written, by edge.").With(l),
		closes:    make(map[int]prometheus.Counter, len(codeLabels)),
		other:     closes.WithLabelValues(edge, "other"),
	}
	for _, code := range codeLabels {
		m.closes[code] = closes.WithLabelValues(edge, strconv.Itoa(code))
	}
	return m
}

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

func (m *Metrics) opened() {
	if m != nil {
		m.conns.Inc()
	}
}

func (m *Metrics) closed(code int) {
	if m == nil {
		return
	}
	m.conns.Dec()
	if c, ok := m.closes[code]; ok {
		c.Inc()
	} else {
		m.other.Inc()
	}
}

func (m *Metrics) in(n int) {
	if m != nil {
		m.framesIn.Inc()
		m.bytesIn.Add(float64(n))
	}
}

func (m *Metrics) out(n int) {
	if m != nil {
		m.framesOut.Inc()
		m.bytesOut.Add(float64(n))
	}
}
