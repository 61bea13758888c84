package jetstream

import (
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/switchyard/switchyard/config"
)

// ClientOptions are the nats.go options every connection of this process
// adds to Connect's: its credentials and its reconnect limit. With an
// external server (NATS_URL) every credential form nats.go supports is
// used as configured: a creds file, an nkey seed file, a token, a user and
// password (or the URL's own user:pass@), TLS with a CA and a client
// certificate. With the embedded server, only user and password or a
// token apply (config.Load refuses the rest).
//
// It fails, naming the key, when a file cannot be read.
func ClientOptions(c *config.NATS) ([]nats.Option, error) {
	opts := []nats.Option{nats.MaxReconnects(c.MaxReconnects)}
	switch {
	case c.Token != "":
		opts = append(opts, nats.Token(c.Token))
	case c.User != "":
		opts = append(opts, nats.UserInfo(c.User, c.Password))
	}
	// nats.go reads these files when it connects (creds on every
	// reconnect); read them once here so a missing file fails the start
	// with its key.
	for _, f := range []struct{ key, path string }{
		{"NATS_CREDS (nats.creds)", c.CredsFile}, {"NATS_NKEY (nats.nkey)", c.NKeyFile},
		{"NATS_TLS_CA (nats.tls_ca)", c.TLSCA}, {"NATS_TLS_CERT (nats.tls_cert)", c.TLSCert},
		{"NATS_TLS_KEY (nats.tls_key)", c.TLSKey},
	} {
		if f.path == "" {
			continue
		}
		if _, err := os.ReadFile(f.path); err != nil {
			return nil, fmt.Errorf("%s: %w", f.key, err)
		}
	}
	if c.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(c.CredsFile))
	}
	if c.NKeyFile != "" {
		o, err := nats.NkeyOptionFromSeed(c.NKeyFile)
		if err != nil {
			return nil, fmt.Errorf("NATS_NKEY (nats.nkey): %w", err)
		}
		opts = append(opts, o)
	}
	if c.TLSCA != "" {
		opts = append(opts, nats.RootCAs(c.TLSCA))
	}
	if c.TLSCert != "" {
		opts = append(opts, nats.ClientCert(c.TLSCert, c.TLSKey))
	}
	return opts, nil
}

// AuthMode names how this process authenticates to NATS, for the start
// log line: "creds", "nkey", "token", "user", "url" (user:pass@ in
// NATS_URL) or "none".
func AuthMode(c *config.NATS) string {
	switch {
	case c.CredsFile != "":
		return "creds"
	case c.NKeyFile != "":
		return "nkey"
	case c.Token != "":
		return "token"
	case c.User != "":
		return "user"
	}
	for _, s := range strings.Split(c.URL, ",") {
		s = strings.TrimSpace(s)
		if !strings.Contains(s, "://") {
			s = "nats://" + s
		}
		if u, err := url.Parse(s); err == nil && u.User != nil {
			return "url"
		}
	}
	return "none"
}
