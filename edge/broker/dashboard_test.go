package broker_test

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard/switchyard/edge/broker"
	"github.com/switchyard/switchyard/edge/ws"
)

// nameRecorder is a prometheus.Registerer that records metric names.
type nameRecorder map[string]bool

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

func (r nameRecorder) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc)
	go func() { c.Describe(ch); close(ch) }()
	for d := range ch {
		if m := fqName.FindStringSubmatch(d.String()); m != nil {
			r[m[1]] = true
		}
	}
	return nil
}

func (r nameRecorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		_ = r.Register(c)
	}
}

func (r nameRecorder) Unregister(prometheus.Collector) bool { return true }

// TestDashboardQueriesExist: every metric the provisioned broker dashboard
// queries is one the broker edge registers, and the dashboard shows
// connections, message rates, redeliveries, dead letters and latency.
func TestDashboardQueriesExist(t *testing.T) {
	names := nameRecorder{}
	broker.RegisterMetrics(names)
	ws.NewMetrics(names, "broker")
	raw, err := os.ReadFile("../../deploy/grafana/dashboards/broker.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		UID    string `json:"uid"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatal(err)
	}
	metricRe := regexp.MustCompile(`\bswitchyard_[a-z0-9_]+`)
	used := map[string]bool{}
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			for _, m := range metricRe.FindAllString(tg.Expr, -1) {
				base := m
				for _, suf := range []string{"_bucket", "_sum", "_count"} {
					if b, ok := strings.CutSuffix(m, suf); ok && names[b] {
						base = b
					}
				}
				if !names[base] {
					t.Errorf("panel %q queries %s, which the broker does not register", p.Title, m)
				}
				used[base] = true
			}
		}
	}
	for _, m := range []string{"switchyard_broker_connections", "switchyard_broker_messages_in_total",
		"switchyard_broker_messages_out_total", "switchyard_broker_redeliveries_total",
		"switchyard_broker_dead_letters_total", "switchyard_broker_delivery_latency_seconds",
		"switchyard_broker_slow_disconnects_total", "switchyard_broker_undeliverable_total"} {
		if !used[m] {
			t.Errorf("the dashboard does not show %s", m)
		}
	}
	// The check itself catches a wrong name.
	if names["switchyard_broker_no_such_metric"] {
		t.Fatal("recorder accepts anything")
	}
}
