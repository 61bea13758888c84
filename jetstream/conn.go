package jetstream

import (
	"fmt"
	"log/slog"
	neturl "net/url"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// Connect opens a NATS connection: in-process to emb when it is not nil,
// else to url (one URL or a comma-separated list). The first connect must
// succeed within 5 seconds; after that the connection reconnects forever
// (unless extra sets nats.MaxReconnects) and logs each disconnect and
// reconnect. extra, applied last, adds credentials (see ClientOptions).
func Connect(name, url string, emb *Embedded, log *slog.Logger, extra ...nats.Option) (*nats.Conn, error) {
	opts := []nats.Option{
		nats.Name(name),
		nats.Timeout(5 * time.Second),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.ReconnectBufSize(64 << 20),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "conn", name, "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("nats reconnected", "conn", name, "url", nc.ConnectedUrlRedacted())
		}),
		nats.ErrorHandler(func(nc *nats.Conn, sub *nats.Subscription, err error) {
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			log.Error("nats async error", "conn", name, "subject", subj, "err", err)
		}),
	}
	opts = append(opts, extra...)
	if emb != nil {
		// In process, but named by the server's real client URL, so /health
		// and the logs report the port actually in use.
		opts = append(opts, nats.InProcessServer(emb.Server()))
		url = emb.ClientURL()
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS %s: %w", RedactURL(url), err)
	}
	return nc, nil
}

// RedactURL hides the password of every user:pass@ in a URL list, for logs
// and errors.
func RedactURL(list string) string {
	parts := strings.Split(list, ",")
	for i, p := range parts {
		if u, err := neturl.Parse(strings.TrimSpace(p)); err == nil && u.User != nil {
			if _, has := u.User.Password(); has {
				parts[i] = u.Redacted()
			} else if strings.Contains(p, "://") {
				u.User = neturl.User("xxxxx") // a bare token
				parts[i] = u.String()
			}
		}
	}
	return strings.Join(parts, ",")
}
