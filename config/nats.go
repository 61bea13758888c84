package config

import (
	"errors"
	"fmt"
	"net/netip"
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
	// Name of this process's NATS connections, seen in `nats server report
	// connections`; each part connects as <name>-<part>. Empty: service.name
	// (see Config.ClientName).
	ClientName string `yaml:"client_name" env:"NATS_CLIENT_NAME"`
	// Host is the interface the embedded server listens on: 127.0.0.1 by
	// default; empty, 0.0.0.0 or :: mean every interface. A host that is
	// not loopback needs User and Password, or Token.
	Host string `yaml:"host" env:"NATS_HOST"`
	// User and Password: the embedded server requires them when set; with
	// NATS_URL, the client sends them (a URL's own user:pass@ works too).
	User     string `yaml:"user" env:"NATS_USER"`
	Password string `yaml:"password" env:"NATS_PASSWORD"`
	// Token is the same as User/Password for token authentication.
	Token string `yaml:"token" env:"NATS_TOKEN"`
	// CredsFile is a .creds file (user JWT and nkey seed), NATS_URL only.
	CredsFile string `yaml:"creds" env:"NATS_CREDS"`
	// NKeyFile is a file holding a user nkey seed (SU...), NATS_URL only.
	NKeyFile string `yaml:"nkey" env:"NATS_NKEY"`
	// TLSCA is a PEM file of the CAs that sign the server's certificate;
	// TLSCert and TLSKey a client certificate and its key (NATS_URL only).
	TLSCA   string `yaml:"tls_ca" env:"NATS_TLS_CA"`
	TLSCert string `yaml:"tls_cert" env:"NATS_TLS_CERT"`
	TLSKey  string `yaml:"tls_key" env:"NATS_TLS_KEY"`
	// MaxReconnects is how many times a lost connection is re-established
	// before the client gives up: -1 (the default) means forever.
	MaxReconnects int `yaml:"max_reconnects" env:"NATS_MAX_RECONNECTS"`
	// ClusterID is a label and nothing more: NATS 2 has no cluster id (it
	// was NATS Streaming's). It is logged at start and shown on /health.
	ClusterID string `yaml:"cluster_id" env:"NATS_CLUSTER_ID"`
	// Cluster mode of the embedded server (config/cluster.go).
	ServerName    string   `yaml:"server_name" env:"NATS_SERVER_NAME"`
	ClusterName   string   `yaml:"cluster_name" env:"NATS_CLUSTER_NAME"`
	ClusterPort   int      `yaml:"cluster_port" env:"NATS_CLUSTER_PORT"`
	ClusterRoutes string   `yaml:"cluster_routes" env:"NATS_CLUSTER_ROUTES"`
	StartTimeout  Duration `yaml:"start_timeout" env:"NATS_START_TIMEOUT"`
	ScaleUp       bool     `yaml:"scale_up" env:"NATS_SCALE_UP"`
}

func (n *NATS) defaults() {
	n.Port, n.Replicas, n.Host, n.MaxReconnects = 4222, 1, "127.0.0.1", -1
	n.clusterDefaults()
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
	if err := n.validateCluster(); err != nil {
		return err
	}
	if n.URL == "" && n.Replicas > 1 && !n.Clustered() {
		return invalid("NATS_REPLICAS (nats.replicas)", n.Replicas,
			"the embedded NATS server is a single node and keeps one replica; set NATS_CLUSTER_PORT and NATS_CLUSTER_ROUTES to make it a cluster node, or NATS_URL to a cluster")
	}
	if n.MaxReconnects < -1 {
		return invalid("NATS_MAX_RECONNECTS (nats.max_reconnects)", n.MaxReconnects, "must be -1 (forever) or more")
	}
	return n.validateAuth()
}

// validateAuth refuses credentials that cannot work together.
func (n *NATS) validateAuth() error {
	switch {
	case n.User != "" && n.Password == "":
		return invalid("NATS_PASSWORD (nats.password)", `""`, "NATS_USER is set, so a password is needed")
	case n.Password != "" && n.User == "":
		return invalid("NATS_USER (nats.user)", `""`, "NATS_PASSWORD is set, so a user is needed")
	case n.Token != "" && n.User != "":
		return invalid("NATS_TOKEN (nats.token)", "(set)", "choose a token or a user and password, not both")
	case n.CredsFile != "" && n.NKeyFile != "":
		return invalid("NATS_NKEY (nats.nkey)", strconv.Quote(n.NKeyFile), "choose a creds file (NATS_CREDS) or an nkey seed, not both")
	case (n.TLSCert == "") != (n.TLSKey == ""):
		return invalid("NATS_TLS_CERT (nats.tls_cert)", strconv.Quote(n.TLSCert), "a client certificate needs both NATS_TLS_CERT and NATS_TLS_KEY")
	}
	if n.URL == "" {
		for _, k := range []struct{ key, val string }{
			{"NATS_CREDS (nats.creds)", n.CredsFile}, {"NATS_NKEY (nats.nkey)", n.NKeyFile},
			{"NATS_TLS_CA (nats.tls_ca)", n.TLSCA}, {"NATS_TLS_CERT (nats.tls_cert)", n.TLSCert},
		} {
			if k.val != "" {
				return invalid(k.key, strconv.Quote(k.val),
					"applies to an external server only (set NATS_URL); the embedded server takes user and password or a token, or its own NATS_CONFIG file")
			}
		}
	}
	return nil
}

// Exposed reports whether the embedded server's Host is reachable from
// other machines: anything but a loopback address or "localhost".
func (n *NATS) Exposed() bool { return !IsLoopbackHost(n.Host) }

// IsLoopbackHost reports whether host names a loopback interface only.
// Empty means every interface, so it is not.
func IsLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil && ip.IsLoopback()
}

// HasCredentials reports whether a user and password or a token is set.
func (n *NATS) HasCredentials() bool { return n.User != "" || n.Token != "" }

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
