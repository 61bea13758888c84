package jetstream

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"syscall"

	"github.com/nats-io/nats-server/v2/server"
)

// ClusterOptions make an embedded server one node of a JetStream cluster
// (EmbeddedOptions.Cluster). The zero value runs a single node.
type ClusterOptions struct {
	// Name of the cluster, the same on every node ("switchyard" if empty).
	Name string
	// Port of the routes; it listens on EmbeddedOptions.Host, like the
	// client port. 0: no cluster.
	Port int
	// Routes are the nats-route:// URLs of the other nodes (this node's
	// own may be listed: the server skips it).
	Routes []*url.URL
}

// ErrRoutesExposedWithoutAuth is returned by StartEmbedded when the route
// port would listen beyond loopback with no credentials.
var ErrRoutesExposedWithoutAuth = errors.New("cluster port listens beyond loopback without credentials")

// ErrClusterPortInUse is returned by StartEmbedded when the cluster port is taken.
var ErrClusterPortInUse = errors.New("cluster port already in use")

// routeUser is the route user when the cluster is secured by a token.
const routeUser = "switchyard"

// applyCluster sets the cluster block of opts from c, unless a config file
// declared one. Routes need the credentials clients need: a user and
// password are the route's, a token is the password of user "switchyard";
// route URLs without credentials get them.
func applyCluster(opts *server.Options, c ClusterOptions, user, password, token string) error {
	if c.Port == 0 || opts.Cluster.Port != 0 {
		return nil
	}
	opts.Cluster.Name = c.Name
	if opts.Cluster.Name == "" {
		opts.Cluster.Name = "switchyard"
	}
	opts.Cluster.Host = opts.Host
	opts.Cluster.Port = c.Port
	ru, rp := user, password
	if token != "" {
		ru, rp = routeUser, token
	}
	if ru == "" && !isLoopback(opts.Host) {
		return fmt.Errorf("nats cluster host %s: %w", opts.Host, ErrRoutesExposedWithoutAuth)
	}
	opts.Cluster.Username, opts.Cluster.Password = ru, rp
	opts.Routes = nil
	for _, r := range c.Routes {
		u := *r
		if u.User == nil && ru != "" {
			u.User = url.UserPassword(ru, rp)
		}
		opts.Routes = append(opts.Routes, &u)
	}
	l, err := net.Listen("tcp", net.JoinHostPort(opts.Cluster.Host, strconv.Itoa(c.Port)))
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("nats cluster port %d: %w", c.Port, ErrClusterPortInUse)
		}
		return fmt.Errorf("nats cluster port %d: %w", c.Port, err)
	}
	return l.Close()
}
