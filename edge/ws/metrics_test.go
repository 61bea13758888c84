package ws_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard/switchyard/edge/ws"
)

// Two edges of one process register their WebSocket metrics on one registry.
func TestMetricsSharedRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	ws.NewMetrics(reg, "broker")
	ws.NewMetrics(reg, "stream")
	ws.NewMetrics(reg, "stream")
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, mf := range mfs {
		got[mf.GetName()] = len(mf.GetMetric())
	}
	// closes_total: 9 known codes + "other", per edge.
	want := map[string]int{
		"switchyard_websocket_connections": 2, "switchyard_websocket_frames_in_total": 2,
		"switchyard_websocket_frames_out_total": 2, "switchyard_websocket_bytes_in_total": 2,
		"switchyard_websocket_bytes_out_total": 2, "switchyard_websocket_closes_total": 20,
	}
	for name, n := range want {
		if got[name] != n {
			t.Errorf("%s: %d series, want %d", name, got[name], n)
		}
	}
	if len(got) != len(want) {
		t.Errorf("metrics %v, want %v", got, want)
	}

	// A different metric under one of the names is a programming error.
	reg = prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: "switchyard_websocket_connections", Help: "x"}))
	defer func() {
		if recover() == nil {
			t.Error("NewMetrics over a conflicting metric did not panic")
		}
	}()
	ws.NewMetrics(reg, "broker")
}
