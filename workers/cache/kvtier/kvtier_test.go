package kvtier_test

import (
	"context"
	"errors"
	"testing"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/switchyard/switchyard/jetstream"
	"github.com/switchyard/switchyard/jetstream/jstest"
	"github.com/switchyard/switchyard/workers/cache/kvtier"
	"github.com/switchyard/switchyard/workers/cache/tier"
	"github.com/switchyard/switchyard/workers/cache/tiertest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newTier(t *testing.T, srv *jstest.Server, maxBytes int64) *kvtier.Tier {
	t.Helper()
	nc := srv.Conn(t)
	js, err := natsjs.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.CacheBucket(1, maxBytes, 9<<20)); err != nil {
		t.Fatal(err)
	}
	tr, err := kvtier.New(ctx, kvtier.Options{NC: nc, JS: js, Bucket: "cache"})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func TestConformance(t *testing.T) {
	srv := jstest.Start(t)
	tiertest.Run(t, tiertest.Features{}, func(t *testing.T) tier.Tier { return newTier(t, srv, 256<<20) })
}

func TestKeyEncodingReversible(t *testing.T) {
	for _, k := range []string{"plain", "a.b", "=x", "sp ace", "ü", "a/b", "*", ">"} {
		enc := kvtier.EncodeKey("ns", k)
		ns, got, err := kvtier.DecodeKey(enc)
		if err != nil || ns != "ns" || got != k {
			t.Fatalf("%q -> %q -> %q %q %v", k, enc, ns, got, err)
		}
	}
	if kvtier.EncodeKey("ns", "plain-key_1/x") != "ns.plain-key_1/x" {
		t.Fatal("plain key encoded")
	}
}

// The bucket is bounded: when full it drops the oldest keys, never a write.
func TestFullBucketEvictsOldest(t *testing.T) {
	srv := jstest.Start(t)
	tr := newTier(t, srv, 64<<10)
	ctx := context.Background()
	v := make([]byte, 4<<10)
	for i := range 40 {
		if err := tr.Set(ctx, "ns", "k"+string(rune('a'+i%26))+string(rune('a'+i/26)), tier.Entry{Value: v}, 0); err != nil {
			t.Fatalf("write %d into a full bucket: %v", i, err)
		}
	}
	if _, err := tr.Get(ctx, "ns", "kaa"); !errors.Is(err, tier.ErrNotFound) {
		t.Fatalf("oldest key still there: %v", err)
	}
	if _, err := tr.Get(ctx, "ns", "knb"); err != nil {
		t.Fatalf("newest key: %v", err)
	}
}

func TestUnavailableWhenServerDown(t *testing.T) {
	srv := jstest.Start(t)
	tr := newTier(t, srv, 1<<20)
	srv.Shutdown()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if _, err := tr.Get(ctx, "ns", "k"); !errors.Is(err, tier.ErrUnavailable) {
		t.Fatalf("get with the server down: %v", err)
	}
	if err := tr.Set(ctx, "ns", "k", tier.Entry{}, 0); !errors.Is(err, tier.ErrUnavailable) {
		t.Fatalf("set with the server down: %v", err)
	}
	if err := tr.Ping(ctx); !errors.Is(err, tier.ErrUnavailable) {
		t.Fatalf("ping with the server down: %v", err)
	}
}
