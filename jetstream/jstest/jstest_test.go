package jstest_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard/switchyard/jetstream/jstest"
)

func TestStart(t *testing.T) {
	a, b := jstest.Start(t), jstest.Start(t)
	if a.URL == b.URL {
		t.Fatalf("two servers share %s", a.URL)
	}
	if !strings.HasPrefix(a.URL, "nats://127.0.0.1:") {
		t.Errorf("URL %q, want loopback", a.URL)
	}
	nc := a.Conn(t)
	if nc.MaxPayload() < 9<<20 {
		t.Errorf("max payload %d, want room for 8 MiB bodies", nc.MaxPayload())
	}
	js, err := natsjs.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.AccountInfo(ctx); err != nil {
		t.Fatalf("JetStream: %v", err)
	}
}

func TestStartIn(t *testing.T) {
	dir := t.TempDir()
	s := jstest.StartIn(t, dir)
	if got := s.StoreDir(); !strings.HasPrefix(got, filepath.Clean(dir)) {
		t.Errorf("store %q, want under %q", got, dir)
	}
}
