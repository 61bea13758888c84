package deploy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Grafana is on the host's port 3001, and the compose NATS server, which
// has no authorization, is published on the host's loopback only.
func TestComposeGrafanaPortAndNATSLoopback(t *testing.T) {
	c := loadCompose(t)
	_, g := serviceByImage(t, c, "grafana/grafana")
	var grafana bool
	for _, p := range g.Ports {
		grafana = grafana || p.published == "3001"
	}
	if !grafana {
		t.Errorf("docker-compose.yml: Grafana is not published on port 3001 (ports %+v)", g.Ports)
	}
	n, ok := c.Services["nats"]
	if !ok {
		t.Fatal("docker-compose.yml: no nats service")
	}
	raw, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(n.Ports) == 0 {
		t.Error("docker-compose.yml: nats publishes no port")
	}
	for _, want := range []string{`"127.0.0.1:4222:4222"`, `"127.0.0.1:8222:8222"`} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("docker-compose.yml: nats should publish %s (loopback only: it has no authorization)", want)
		}
	}
}
