package jstest

import (
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard/switchyard/jetstream"
)

// Cluster is a JetStream cluster of embedded nodes on loopback, each with
// a store of its own; a test kills and restarts nodes by index.
type Cluster struct {
	t     testing.TB
	mu    sync.Mutex
	nodes []*Server
	names []string
	dirs  []string
	ports []int // client ports, kept across restarts
	route []int // route ports
	opts  ClusterOpts
}

// ClusterOpts tunes StartCluster.
type ClusterOpts struct {
	// User and Password, when set, are required from clients and routes.
	User, Password string
	// Log receives the servers' warnings (nil: discarded).
	Log *slog.Logger
}

// StartCluster starts n nodes (n1..nN) that form one cluster, and shuts
// them down in t.Cleanup. It does not wait for a JetStream leader.
func StartCluster(t testing.TB, n int, o ClusterOpts) *Cluster {
	t.Helper()
	c := &Cluster{t: t, opts: o, nodes: make([]*Server, n)}
	for i := range n {
		c.names = append(c.names, fmt.Sprintf("n%d", i+1))
		c.dirs = append(c.dirs, t.TempDir())
		c.ports = append(c.ports, freePort(t))
		c.route = append(c.route, freePort(t))
	}
	t.Cleanup(c.Shutdown)
	for i := range n {
		c.Start(i)
	}
	return c
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Start starts node i (again) on its ports and store; a port another
// process took meanwhile is retried for a few seconds.
func (c *Cluster) Start(i int) {
	c.t.Helper()
	var routes []*url.URL
	for j, p := range c.route {
		if j != i {
			routes = append(routes, &url.URL{Scheme: "nats-route", Host: fmt.Sprintf("127.0.0.1:%d", p)})
		}
	}
	log := c.opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var (
		emb *jetstream.Embedded
		err error
	)
	for deadline := time.Now().Add(10 * time.Second); ; {
		emb, err = jetstream.StartEmbedded(jetstream.EmbeddedOptions{
			Host: "127.0.0.1", Port: c.ports[i], StoreDir: c.dirs[i], MaxPayload: 9 << 20, ServerName: c.names[i],
			User: c.opts.User, Password: c.opts.Password,
			Cluster: jetstream.ClusterOptions{Name: "test", Port: c.route[i], Routes: routes},
		}, log.With("node", c.names[i]))
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		c.t.Fatalf("start node %s: %v", c.names[i], err)
	}
	c.mu.Lock()
	c.nodes[i] = &Server{Embedded: emb, URL: emb.ClientURL()}
	c.mu.Unlock()
}

// Kill stops node i at once (its store stays for Start).
func (c *Cluster) Kill(i int) {
	c.mu.Lock()
	s := c.nodes[i]
	c.nodes[i] = nil
	c.mu.Unlock()
	if s != nil {
		s.Shutdown()
	}
}

// Shutdown stops every node.
func (c *Cluster) Shutdown() {
	for i := range c.nodes {
		c.Kill(i)
	}
}

// Node returns node i (nil while killed).
func (c *Cluster) Node(i int) *Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i]
}

// Name is node i's server name.
func (c *Cluster) Name(i int) string { return c.names[i] }

// Index returns the index of the node named name, or -1.
func (c *Cluster) Index(name string) int {
	for i, n := range c.names {
		if n == name {
			return i
		}
	}
	return -1
}

// URLs is the comma-separated client URL list of every node, with the
// credentials when set.
func (c *Cluster) URLs() string {
	var out []string
	for _, p := range c.ports {
		u := url.URL{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", p)}
		if c.opts.User != "" {
			u.User = url.UserPassword(c.opts.User, c.opts.Password)
		}
		out = append(out, u.String())
	}
	return strings.Join(out, ",")
}

// URL is node i's client URL (without credentials).
func (c *Cluster) URL(i int) string { return fmt.Sprintf("nats://127.0.0.1:%d", c.ports[i]) }

// RoutePort is node i's route port.
func (c *Cluster) RoutePort(i int) int { return c.route[i] }

// ClientPort is node i's client port.
func (c *Cluster) ClientPort(i int) int { return c.ports[i] }
