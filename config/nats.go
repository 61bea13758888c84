package config

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// NATS selects the embedded server or an external one.
type NATS struct {
	// URL empty starts an embedded server; otherwise one URL or a
	// comma-separated list of a cluster's URLs (nats://, tls://, ws://, wss://).
	URL string `yaml:"url" env:"NATS_URL"`
	// Port is the embedded server's client port (0 picks a free one).
	Port int `yaml:"port" env:"NATS_PORT"`
	// ConfigFile, when set, is a nats-server config file the embedded server loads.
	ConfigFile string `yaml:"config_file" env:"NATS_CONFIG"`
	// Replicas of every stream and bucket: 1 embedded, 3 in a cluster.
	Replicas int `yaml:"replicas" env:"NATS_REPLICAS"`
	// Name of this process's NATS connections, seen in `nats server report connections`.
	ClientName string `yaml:"client_name" env:"NATS_CLIENT_NAME"`
}

func (n *NATS) defaults() {
	n.Port, n.Replicas, n.ClientName = 4222, 1, "switchyard"
}

func (n *NATS) validate() error {
	if n.URL != "" {
		for _, u := range strings.Split(n.URL, ",") {
			if err := validNATSURL(strings.TrimSpace(u)); err != nil {
				return invalid("NATS_URL (nats.url)", strconv.Quote(n.URL), err.Error())
			}
		}
	}
	if n.Replicas < 1 || n.Replicas > 5 {
		return invalid("NATS_REPLICAS (nats.replicas)", n.Replicas, "must be 1 to 5")
	}
	if n.URL == "" && n.Replicas > 1 {
		return invalid("NATS_REPLICAS (nats.replicas)", n.Replicas,
			"the embedded NATS server is a single node and keeps one replica; set NATS_URL to a cluster for more")
	}
	return nil
}

func validNATSURL(s string) error {
	if s == "" {
		return errors.New("empty URL in list")
	}
	if !strings.Contains(s, "://") {
		s = "nats://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("not a URL: %v", err)
	}
	switch u.Scheme {
	case "nats", "tls", "ws", "wss":
	default:
		return fmt.Errorf("unsupported scheme %q (want nats, tls, ws or wss)", u.Scheme)
	}
	if u.Hostname() == "" {
		return errors.New("missing host")
	}
	return nil
}
