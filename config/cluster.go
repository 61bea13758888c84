package config

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Cluster mode of the embedded server. The fields live in the NATS
// section (they are nats.* keys):
//
//	ServerName    NATS_SERVER_NAME    (nats.server_name): the node's name, unique in the
//	              cluster; empty: "switchyard" alone, required in a cluster.
//	ClusterName   NATS_CLUSTER_NAME   (nats.cluster_name): the same on every node;
//	              empty: "switchyard".
//	ClusterPort   NATS_CLUSTER_PORT   (nats.cluster_port): the route port, on the client
//	              port's host; 0 (the default) runs a single node.
//	ClusterRoutes NATS_CLUSTER_ROUTES (nats.cluster_routes): comma-separated
//	              nats-route://host:port of the other nodes (its own may be listed).
//	StartTimeout  NATS_START_TIMEOUT  (nats.start_timeout): how long the start waits
//	              for NATS (connect, a JetStream leader, the assets), retrying with backoff.
//	ScaleUp       NATS_SCALE_UP       (nats.scale_up), or `switchyard run -scale-up`:
//	              raise the replicas of existing assets to NATS_REPLICAS; without it a
//	              mismatch stops the start.

// defaultClusterName is the cluster name when NATS_CLUSTER_NAME is empty.
const defaultClusterName = "switchyard"

func (n *NATS) clusterDefaults() {
	n.StartTimeout = Duration(2 * time.Minute)
}

// Clustered reports whether the embedded server runs as a cluster node.
func (n *NATS) Clustered() bool { return n.URL == "" && n.ClusterPort != 0 }

// Routes returns the cluster routes as URLs (validated by Load).
func (n *NATS) Routes() []*url.URL {
	var out []*url.URL
	for _, r := range SplitList(n.ClusterRoutes) {
		if u, err := url.Parse(r); err == nil {
			out = append(out, u)
		}
	}
	return out
}

// ClusterNameOrDefault is ClusterName, or "switchyard" when empty.
func (n *NATS) ClusterNameOrDefault() string {
	if n.ClusterName != "" {
		return n.ClusterName
	}
	return defaultClusterName
}

func (n *NATS) validateCluster() error {
	if n.StartTimeout <= 0 {
		return invalid("NATS_START_TIMEOUT (nats.start_timeout)", n.StartTimeout, "must be positive")
	}
	if n.ClusterPort < 0 || n.ClusterPort > 65535 {
		return invalid("NATS_CLUSTER_PORT (nats.cluster_port)", n.ClusterPort, "must be a port from 1 to 65535 (0: no cluster)")
	}
	if n.ClusterPort == 0 {
		if n.ClusterRoutes != "" {
			return invalid("NATS_CLUSTER_ROUTES (nats.cluster_routes)", strconv.Quote(n.ClusterRoutes), "needs NATS_CLUSTER_PORT, the port this node's routes listen on")
		}
		return nil
	}
	if n.URL != "" {
		return invalid("NATS_CLUSTER_PORT (nats.cluster_port)", n.ClusterPort,
			"makes the embedded server a cluster node, but NATS_URL is set (an external server is used): unset one of them")
	}
	if n.ClusterPort == n.Port {
		return invalid("NATS_CLUSTER_PORT (nats.cluster_port)", n.ClusterPort, "already used by NATS_PORT (nats.port)")
	}
	if n.ServerName == "" {
		return invalid("NATS_SERVER_NAME (nats.server_name)", `""`, "a cluster node needs a name of its own, unique in the cluster (e.g. n1)")
	}
	if strings.ContainsFunc(n.ServerName+n.ClusterName, func(r rune) bool { return r <= ' ' || r > '~' }) {
		return invalid("NATS_SERVER_NAME (nats.server_name)", strconv.Quote(n.ServerName), "server and cluster names must be printable ASCII without spaces")
	}
	routes := SplitList(n.ClusterRoutes)
	if len(routes) == 0 {
		return invalid("NATS_CLUSTER_ROUTES (nats.cluster_routes)", `""`, "a cluster node needs the routes of the others (nats-route://host:port,...)")
	}
	for _, r := range routes {
		u, err := url.Parse(r)
		if err != nil || u.Scheme != "nats-route" || u.Hostname() == "" || u.Port() == "" {
			return invalid("NATS_CLUSTER_ROUTES (nats.cluster_routes)", strconv.Quote(redactList(n.ClusterRoutes)), fmt.Sprintf("%q is not nats-route://host:port", redactList(r)))
		}
	}
	if n.Replicas > len(routes)+1 {
		return invalid("NATS_REPLICAS (nats.replicas)", n.Replicas, fmt.Sprintf("more than the %d nodes NATS_CLUSTER_ROUTES names with this one", len(routes)+1))
	}
	return nil
}

// redactList hides the password of each user:pass@ in a URL list.
func redactList(s string) string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		if u, err := url.Parse(strings.TrimSpace(p)); err == nil && u.User != nil {
			parts[i] = u.Redacted()
		}
	}
	return strings.Join(parts, ",")
}
