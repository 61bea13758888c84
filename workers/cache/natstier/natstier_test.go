package natstier_test

import (
	"context"
	"testing"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/switchyard/switchyard/jetstream"
	"github.com/switchyard/switchyard/jetstream/jstest"
	"github.com/switchyard/switchyard/workers/cache"
	"github.com/switchyard/switchyard/workers/cache/kvtier"
	"github.com/switchyard/switchyard/workers/cache/local"
	"github.com/switchyard/switchyard/workers/cache/natstier"
	"github.com/switchyard/switchyard/workers/cache/tier"
	"github.com/switchyard/switchyard/workers/cache/tiertest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The NATS contract passes the conformance suite: a client on its own
// connection against a coordinator (local tier + KV) serving the service.
func TestConformance(t *testing.T) {
	srv := jstest.Start(t)
	nc := srv.Conn(t)
	js, err := natsjs.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.CacheBucket(1, 256<<20, 9<<20)); err != nil {
		t.Fatal(err)
	}
	kv, err := kvtier.New(ctx, kvtier.Options{NC: nc, JS: js, Bucket: "cache"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := cache.New(cache.Options{NC: nc, Shared: kv, Backend: "jetstream-kv",
		Local: local.Options{Other: local.Space{Policy: local.TinyLFU, MaxBytes: 64 << 20}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	svc, err := c.StartService(nc, "test", 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = svc.Stop(context.Background())
		_ = c.Shutdown(context.Background())
	})
	client := natstier.New(srv.Conn(t))
	tiertest.Run(t, tiertest.Features{}, func(t *testing.T) tier.Tier { return client })
}
