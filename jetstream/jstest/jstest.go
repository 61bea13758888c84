// Package jstest starts real, embedded nats-servers with JetStream for
// tests: a random port, a temporary store, and cleanup when the test ends.
package jstest

import (
	"log/slog"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/switchyard/switchyard/jetstream"
)

// Server is a running test server.
type Server struct {
	*jetstream.Embedded
	URL string
}

// Start starts an embedded nats-server with JetStream on a random loopback
// port and a store in t.TempDir(), and shuts it down in t.Cleanup.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartIn(t, t.TempDir())
}

// StartIn is Start with a given store directory, for restart tests.
func StartIn(t testing.TB, dir string) *Server {
	t.Helper()
	return StartAt(t, dir, 0)
}

// StartAt is StartIn on a given port (0: a random one), so a test can
// restart a server where its clients will reconnect.
func StartAt(t testing.TB, dir string, port int) *Server {
	t.Helper()
	emb, err := jetstream.StartEmbedded(jetstream.EmbeddedOptions{
		Host: "127.0.0.1", Port: port, StoreDir: dir, MaxPayload: 9 << 20, ServerName: "test",
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("start nats-server: %v", err)
	}
	t.Cleanup(emb.Shutdown)
	return &Server{Embedded: emb, URL: emb.ClientURL()}
}

// Conn connects to s over loopback TCP and closes the connection in t.Cleanup.
func (s *Server) Conn(t testing.TB) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(s.URL, nats.Name(t.Name()))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}
