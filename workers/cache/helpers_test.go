package cache_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard/switchyard/jetstream"
	"github.com/switchyard/switchyard/jetstream/jstest"
	"github.com/switchyard/switchyard/workers/cache"
	"github.com/switchyard/switchyard/workers/cache/kvtier"
	"github.com/switchyard/switchyard/workers/cache/local"
	"github.com/switchyard/switchyard/workers/cache/redistier"
	"github.com/switchyard/switchyard/workers/cache/tier"
)

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// kvShared returns a KV tier on its own connection to srv.
func kvShared(t *testing.T, srv *jstest.Server) (*nats.Conn, tier.Tier) { return kvSharedB(t, srv) }

func kvSharedB(t testing.TB, srv *jstest.Server) (*nats.Conn, tier.Tier) {
	t.Helper()
	nc := srv.Conn(t)
	js, err := natsjs.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.CacheBucket(1, 64<<20, 9<<20)); err != nil {
		t.Fatal(err)
	}
	tr, err := kvtier.New(ctx, kvtier.Options{NC: nc, JS: js, Bucket: "cache"})
	if err != nil {
		t.Fatal(err)
	}
	return nc, tr
}

func redisShared(t *testing.T, addr string) tier.Tier {
	tr := redistier.New(redistier.Options{Addr: addr, PoolSize: 8, Timeout: 500 * time.Millisecond})
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

// newCoord starts a coordinator, as one process would.
func newCoord(t *testing.T, nc *nats.Conn, shared tier.Tier, mod ...func(*cache.Options)) *cache.Coordinator {
	return newCoordB(t, nc, shared, mod...)
}

func newCoordB(t testing.TB, nc *nats.Conn, shared tier.Tier, mod ...func(*cache.Options)) *cache.Coordinator {
	t.Helper()
	o := cache.Options{
		NC: nc, Shared: shared, Backend: "test",
		Local: local.Options{
			Spaces: map[string]local.Space{"lru": {Policy: local.LRU, MaxBytes: 1 << 20}, "direct": {Policy: local.TinyLFU, MaxBytes: 1 << 20}},
			Other:  local.Space{Policy: local.TinyLFU, MaxBytes: 8 << 20},
		},
		Namespaces:    map[string]cache.Namespace{"lru": {}, "direct": {NoLocal: true}, "short": {DefaultTTL: time.Second}},
		MaxValueBytes: 64 << 10, MaxBatchKeys: 10, MaxKeyBytes: 100, MaxTTL: time.Hour,
		SharedTimeout: 500 * time.Millisecond, ProbeInterval: 50 * time.Millisecond,
	}
	for _, m := range mod {
		m(&o)
	}
	c, err := cache.New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Shutdown(context.Background()) })
	return c
}

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !ok() {
		if time.Since(start) > d {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return time.Since(start)
}

func mustSet(t *testing.T, c *cache.Coordinator, ns, key, v string, ttl time.Duration) {
	t.Helper()
	if err := c.Set(ctxT(t), ns, key, tier.Entry{Value: []byte(v), ContentType: "text/plain"}, ttl); err != nil {
		t.Fatalf("set %s/%s: %v", ns, key, err)
	}
}

func get(t *testing.T, c *cache.Coordinator, ns, key string) (string, cache.Source, error) {
	t.Helper()
	e, src, err := c.Get(ctxT(t), ns, key)
	return string(e.Value), src, err
}

// gated is a real tier whose reads wait for a gate and are counted.
type gated struct {
	tier.Tier
	gets atomic.Int64
	gate chan struct{}
}

func (g *gated) Get(ctx context.Context, ns, key string) (tier.Entry, error) {
	g.gets.Add(1)
	select {
	case <-g.gate:
	case <-ctx.Done():
		return tier.Entry{}, errors.Join(tier.ErrUnavailable, ctx.Err())
	}
	return g.Tier.Get(ctx, ns, key)
}
