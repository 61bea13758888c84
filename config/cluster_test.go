package config_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/switchyard/switchyard/config"
)

func TestClusterKeys(t *testing.T) {
	routes := "nats-route://127.0.0.1:6222,nats-route://127.0.0.1:6223,nats-route://127.0.0.1:6224"
	node := map[string]string{"NATS_SERVER_NAME": "n1", "NATS_CLUSTER_PORT": "6222", "NATS_CLUSTER_ROUTES": routes, "NATS_REPLICAS": "3"}
	with := func(m map[string]string, kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range m {
			out[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	c, err := config.Load("", node)
	if err != nil {
		t.Fatalf("a cluster node: %v", err)
	}
	if !c.NATS.Clustered() || len(c.NATS.Routes()) != 3 || c.NATS.ClusterNameOrDefault() != "switchyard" || c.NATS.Replicas != 3 {
		t.Errorf("cluster node config: %+v", c.NATS)
	}
	if d := config.Default(); d.NATS.Clustered() || d.NATS.StartTimeout.D() != 2*time.Minute || d.NATS.ScaleUp {
		t.Errorf("defaults: clustered %v, start timeout %s, scale up %v", d.NATS.Clustered(), d.NATS.StartTimeout, d.NATS.ScaleUp)
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		key  string
	}{
		{"replicas without a cluster", map[string]string{"NATS_REPLICAS": "3"}, "NATS_REPLICAS (nats.replicas)"},
		{"routes without a port", map[string]string{"NATS_CLUSTER_ROUTES": routes}, "NATS_CLUSTER_ROUTES (nats.cluster_routes)"},
		{"no server name", with(node, "NATS_SERVER_NAME", ""), "NATS_SERVER_NAME (nats.server_name)"},
		{"no routes", with(node, "NATS_CLUSTER_ROUTES", ""), "NATS_CLUSTER_ROUTES (nats.cluster_routes)"},
		{"a route that is not nats-route", with(node, "NATS_CLUSTER_ROUTES", "nats://a:1"), "NATS_CLUSTER_ROUTES (nats.cluster_routes)"},
		{"a route without a port", with(node, "NATS_CLUSTER_ROUTES", "nats-route://a"), "NATS_CLUSTER_ROUTES (nats.cluster_routes)"},
		{"cluster port is the client port", with(node, "NATS_CLUSTER_PORT", "4222"), "NATS_CLUSTER_PORT (nats.cluster_port)"},
		{"cluster port out of range", with(node, "NATS_CLUSTER_PORT", "70000"), "NATS_CLUSTER_PORT (nats.cluster_port)"},
		{"cluster and NATS_URL", with(node, "NATS_URL", "nats://x:4222"), "NATS_CLUSTER_PORT (nats.cluster_port)"},
		{"more replicas than nodes", with(node, "NATS_REPLICAS", "5", "NATS_CLUSTER_ROUTES", "nats-route://a:1"), "NATS_REPLICAS (nats.replicas)"},
		{"start timeout", map[string]string{"NATS_START_TIMEOUT": "0"}, "NATS_START_TIMEOUT (nats.start_timeout)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Load("", tc.env)
			if !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), tc.key) {
				t.Fatalf("err %v, want one naming %s", err, tc.key)
			}
		})
	}
	// A password in a route never appears in the error.
	_, err = config.Load("", with(node, "NATS_CLUSTER_ROUTES", "nats://u:hunter22@a:1"))
	if err == nil || strings.Contains(err.Error(), "hunter22") {
		t.Errorf("route error %v shows the password", err)
	}
}
