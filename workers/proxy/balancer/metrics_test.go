package balancer

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/switchyard/switchyard/config"
)

// find returns the metric of family name whose labels include want.
func find(t *testing.T, reg *prometheus.Registry, name string, want map[string]string) *dto.Metric {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			for k, v := range want {
				found := false
				for _, l := range m.GetLabel() {
					if l.GetName() == k && l.GetValue() == v {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			return m
		}
	}
	t.Fatalf("no %s with labels %v", name, want)
	return nil
}

func counterValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	return find(t, reg, name, labels).GetCounter().GetValue()
}

func gaugeValue(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	return find(t, reg, name, map[string]string{label: value}).GetGauge().GetValue()
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	if NewMetrics(reg) == nil { // a second set on one registry reuses the first
		t.Fatal("NewMetrics returned nil")
	}
	s := service(config.PolicyWeighted, 1, 1)
	s.Name = "vision"
	p, err := New(s, m, nil, WithClock(new(fakeClock).Now))
	if err != nil {
		t.Fatal(err)
	}
	a := p.Upstreams()[0]
	done := a.Begin()
	if v := gaugeValue(t, reg, "switchyard_proxy_upstream_in_flight", "upstream", "127.0.0.1:8000"); v != 1 {
		t.Fatalf("in flight gauge %v, want 1", v)
	}
	done(Outcome{Status: 200, Latency: 2 * time.Millisecond})
	for _, o := range []Outcome{{Status: 301}, {Status: 404}, {Status: 500}, {ConnectErr: true}, {Status: 503}, {Status: 0}} {
		a.Begin()(o)
	}
	lbl := func(class string) map[string]string {
		return map[string]string{"service": "vision", "upstream": "127.0.0.1:8000", "class": class}
	}
	for class, want := range map[string]float64{"2xx": 1, "3xx": 1, "4xx": 1, "5xx": 2, "error": 2} {
		if v := counterValue(t, reg, "switchyard_proxy_upstream_requests_total", lbl(class)); v != want {
			t.Errorf("requests{class=%s} = %v, want %v", class, v, want)
		}
	}
	if v := gaugeValue(t, reg, "switchyard_proxy_upstream_in_flight", "upstream", "127.0.0.1:8000"); v != 0 {
		t.Errorf("in flight gauge %v, want 0", v)
	}
	if v := counterValue(t, reg, "switchyard_proxy_ejections_total", map[string]string{"upstream": "127.0.0.1:8000"}); v != 1 {
		t.Errorf("ejections %v, want 1 (500, connect error, 503)", v)
	}
	if h := find(t, reg, "switchyard_proxy_upstream_request_duration_seconds", map[string]string{"upstream": "127.0.0.1:8000"}).GetHistogram(); h.GetSampleCount() != 7 {
		t.Errorf("duration samples %d, want 7", h.GetSampleCount())
	}
	if v := gaugeValue(t, reg, "switchyard_proxy_upstream_healthy", "upstream", "127.0.0.2:8000"); v != 1 {
		t.Errorf("healthy gauge %v, want 1", v)
	}

	snap := p.Snapshot()
	if snap[0].Requests != 7 || snap[0].Errors != 4 || snap[0].EjectedUntil == nil || snap[0].URL != "http://127.0.0.1:8000" {
		t.Fatalf("snapshot %+v", snap[0])
	}
	raw, err := json.Marshal(snap)
	if err != nil {
		t.Fatal(err)
	}
	var back []map[string]any
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	if _, ok := back[0]["ejected_until"]; !ok {
		t.Errorf("ejected upstream's JSON lacks ejected_until: %s", raw)
	}
	if _, ok := back[1]["ejected_until"]; ok {
		t.Errorf("JSON of an upstream not ejected has ejected_until: %s", raw)
	}
	for _, k := range []string{"url", "weight", "healthy", "in_flight", "requests", "errors", "latency_ewma_ms"} {
		if _, ok := back[1][k]; !ok {
			t.Errorf("JSON lacks %q: %s", k, raw)
		}
	}
}

func TestNilMetrics(t *testing.T) {
	var m *Metrics
	p, err := New(service(config.PolicyLatency, 1, 1), m, nil)
	if err != nil {
		t.Fatal(err)
	}
	u := mustPick(t, p)
	u.Begin()(Outcome{ConnectErr: true})
	fail(u, 5)
	p.recordCheck(u, false, "test")
	p.recordCheck(u, false, "test")
	NewMetrics(nil).forUpstream("s", "u").class[class2xx].Inc()
}
