package redistier_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/switchyard/switchyard/workers/cache/redistest"
	"github.com/switchyard/switchyard/workers/cache/redistier"
	"github.com/switchyard/switchyard/workers/cache/tier"
	"github.com/switchyard/switchyard/workers/cache/tiertest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newTier(t *testing.T, addr string) *redistier.Tier {
	tr := redistier.New(redistier.Options{Addr: addr, PoolSize: 8})
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

func TestConformance(t *testing.T) {
	srv := redistest.Start(t)
	tiertest.Run(t, tiertest.Features{}, func(t *testing.T) tier.Tier { return newTier(t, srv.Addr) })
}

func TestEnvelopeRoundTrip(t *testing.T) {
	exp := time.UnixMilli(time.Now().Add(time.Hour).UnixMilli())
	e, err := redistier.Decode(redistier.Encode(tier.Entry{Value: []byte{0, 1}, ContentType: "a/b"}, exp))
	if err != nil || string(e.Value) != "\x00\x01" || e.ContentType != "a/b" || !e.ExpiresAt.Equal(exp) {
		t.Fatalf("%+v %v", e, err)
	}
	for _, bad := range [][]byte{nil, []byte("plain"), {1, 0, 0, 0, 0, 0, 0, 0, 0, 50}} {
		if _, err := redistier.Decode(bad); err == nil {
			t.Fatalf("%q decoded", bad)
		}
	}
}

func TestKilledAndRestarted(t *testing.T) {
	srv := redistest.StartOwn(t)
	tr := newTier(t, srv.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := tr.Set(ctx, "ns", "k", tier.Entry{Value: []byte("v")}, 0); err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	if _, err := tr.Get(ctx, "ns", "k"); !errors.Is(err, tier.ErrUnavailable) {
		t.Fatalf("get with redis down: %v", err)
	}
	if err := tr.Ping(ctx); !errors.Is(err, tier.ErrUnavailable) {
		t.Fatalf("ping with redis down: %v", err)
	}
	srv.Restart(t)
	if err := tr.Ping(ctx); err != nil {
		t.Fatalf("ping after restart: %v", err)
	}
	// Nothing was persisted: the restarted server is empty.
	if _, err := tr.Get(ctx, "ns", "k"); !errors.Is(err, tier.ErrNotFound) {
		t.Fatalf("after restart: %v", err)
	}
}

func TestFullRedisIsAClearError(t *testing.T) {
	srv := redistest.StartOwn(t)
	tr := newTier(t, srv.Addr)
	ctx := context.Background()
	if err := configSet(ctx, srv.Addr); err != nil {
		t.Fatal(err)
	}
	var err error
	for i := 0; i < 1000 && err == nil; i++ {
		err = tr.Set(ctx, "ns", string(rune('a'+i%26))+time.Now().String(), tier.Entry{Value: make([]byte, 64<<10)}, 0)
	}
	if !errors.Is(err, tier.ErrFull) {
		t.Fatalf("writing past maxmemory: %v, want ErrFull", err)
	}
}
