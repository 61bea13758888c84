// Package tiertest is the conformance suite every cache tier passes: the
// local tier, JetStream KV, Redis (a real redis-server process), and the
// NATS cache service. A tier's test calls Run with a factory.
package tiertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard/switchyard/workers/cache/tier"
)

// Features describes what a tier supports beyond the interface.
type Features struct {
	// MaxValueBytes is the largest value the suite stores (default 256 KiB).
	MaxValueBytes int
}

var nsSeq atomic.Int64

// namespace returns a namespace no other subtest uses, so tiers that
// outlive a subtest (a shared Redis or bucket) need no cleaning.
func namespace() string {
	return fmt.Sprintf("t%d-%d", time.Now().UnixNano()%1e9, nsSeq.Add(1))
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

// Run runs the suite against the tiers newTier returns (one per subtest).
func Run(t *testing.T, f Features, newTier func(t *testing.T) tier.Tier) {
	if f.MaxValueBytes == 0 {
		f.MaxValueBytes = 256 << 10
	}
	t.Run("MissingKey", func(t *testing.T) {
		tr := newTier(t)
		_, err := tr.Get(ctx(t), namespace(), "absent")
		if !errors.Is(err, tier.ErrNotFound) {
			t.Fatalf("Get absent: err %v, want ErrNotFound", err)
		}
	})
	t.Run("SetGetRoundTrip", func(t *testing.T) {
		tr, ns, c := newTier(t), namespace(), ctx(t)
		mustSet(t, tr, ns, "k1", "application/json", []byte(`{"a":1}`), 0)
		e := mustGet(t, tr, ns, "k1")
		if string(e.Value) != `{"a":1}` || e.ContentType != "application/json" {
			t.Fatalf("got %q %q", e.Value, e.ContentType)
		}
		if !e.ExpiresAt.IsZero() {
			t.Fatalf("no TTL, but ExpiresAt %v", e.ExpiresAt)
		}
		// An empty value is a value.
		mustSet(t, tr, ns, "empty", "", nil, 0)
		if e := mustGet(t, tr, ns, "empty"); len(e.Value) != 0 || e.ContentType != "" {
			t.Fatalf("empty: got %q %q", e.Value, e.ContentType)
		}
		if err := tr.Delete(c, ns, "empty"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("Overwrite", func(t *testing.T) {
		tr, ns := newTier(t), namespace()
		mustSet(t, tr, ns, "k", "text/plain", []byte("one"), 0)
		mustSet(t, tr, ns, "k", "text/csv", []byte("two"), 0)
		if e := mustGet(t, tr, ns, "k"); string(e.Value) != "two" || e.ContentType != "text/csv" {
			t.Fatalf("got %q %q", e.Value, e.ContentType)
		}
	})
	t.Run("Delete", func(t *testing.T) {
		tr, ns, c := newTier(t), namespace(), ctx(t)
		mustSet(t, tr, ns, "k", "", []byte("v"), 0)
		if err := tr.Delete(c, ns, "k"); err != nil {
			t.Fatal(err)
		}
		if _, err := tr.Get(c, ns, "k"); !errors.Is(err, tier.ErrNotFound) {
			t.Fatalf("after delete: %v", err)
		}
		if err := tr.Delete(c, ns, "never-there"); err != nil {
			t.Fatalf("delete absent: %v", err)
		}
		mustSet(t, tr, ns, "k", "", []byte("again"), 0)
		if e := mustGet(t, tr, ns, "k"); string(e.Value) != "again" {
			t.Fatalf("set after delete: %q", e.Value)
		}
	})
	t.Run("BinaryValues", func(t *testing.T) {
		tr, ns := newTier(t), namespace()
		v := make([]byte, 256)
		for i := range v {
			v[i] = byte(i)
		}
		mustSet(t, tr, ns, "bin", "application/octet-stream", v, 0)
		if e := mustGet(t, tr, ns, "bin"); !bytes.Equal(e.Value, v) {
			t.Fatalf("binary value changed: %x", e.Value)
		}
		big := bytes.Repeat([]byte{0, 1, 0xff, 'x'}, f.MaxValueBytes/4)
		mustSet(t, tr, ns, "big", "", big, 0)
		if e := mustGet(t, tr, ns, "big"); !bytes.Equal(e.Value, big) {
			t.Fatalf("large value: got %d bytes, want %d", len(e.Value), len(big))
		}
	})
	t.Run("KeysStoredAsTheyAre", func(t *testing.T) {
		tr, ns := newTier(t), namespace()
		keys := []string{
			"plain", "with.dots", "a..b", ".lead", "trail.", "sp ace", "star*", "gt>", "sl/ash",
			"ünï©ødé", "tab\tnew\nline", "=looks-encoded", "%2F", "_", "-", "UPPER", "a:b",
			strings.Repeat("k", 1024),
		}
		for i, k := range keys {
			mustSet(t, tr, ns, k, "", []byte(fmt.Sprint(i)), 0)
		}
		for i, k := range keys {
			if e := mustGet(t, tr, ns, k); string(e.Value) != fmt.Sprint(i) {
				t.Fatalf("key %q: got %q, want %d", k, e.Value, i)
			}
		}
	})
	t.Run("NamespacesAreSeparate", func(t *testing.T) {
		tr, a, b, c := newTier(t), namespace(), namespace(), ctx(t)
		mustSet(t, tr, a, "k", "", []byte("in a"), 0)
		if _, err := tr.Get(c, b, "k"); !errors.Is(err, tier.ErrNotFound) {
			t.Fatalf("key of ns a seen in ns b: %v", err)
		}
		mustSet(t, tr, b, "k", "", []byte("in b"), 0)
		if e := mustGet(t, tr, a, "k"); string(e.Value) != "in a" {
			t.Fatalf("ns a: %q", e.Value)
		}
	})
	t.Run("TTLExpiry", func(t *testing.T) {
		tr, ns, c := newTier(t), namespace(), ctx(t)
		before := time.Now()
		mustSet(t, tr, ns, "short", "", []byte("v"), time.Second)
		mustSet(t, tr, ns, "long", "", []byte("v"), time.Hour)
		e, err := tr.Get(c, ns, "short")
		if err != nil {
			t.Fatalf("right after set: %v", err)
		}
		if e.ExpiresAt.Before(before.Add(time.Second-50*time.Millisecond)) || e.ExpiresAt.After(time.Now().Add(time.Second+50*time.Millisecond)) {
			t.Fatalf("ExpiresAt %v, want about %v", e.ExpiresAt, before.Add(time.Second))
		}
		waitFor(t, 15*time.Second, "short-lived key to expire", func() bool {
			_, err := tr.Get(c, ns, "short")
			return errors.Is(err, tier.ErrNotFound)
		})
		if e := mustGet(t, tr, ns, "long"); e.ExpiresAt.Before(time.Now().Add(59 * time.Minute)) {
			t.Fatalf("long: ExpiresAt %v", e.ExpiresAt)
		}
		// A later set without TTL makes the key permanent again.
		mustSet(t, tr, ns, "long", "", []byte("w"), 0)
		if e := mustGet(t, tr, ns, "long"); !e.ExpiresAt.IsZero() {
			t.Fatalf("overwrite without TTL kept expiry %v", e.ExpiresAt)
		}
	})
	t.Run("Batch", func(t *testing.T) {
		tr, ns, c := newTier(t), namespace(), ctx(t)
		items := []tier.Item{
			{Key: "a", Entry: tier.Entry{Value: []byte("1"), ContentType: "text/plain"}},
			{Key: "b.c", Entry: tier.Entry{Value: []byte{0, 0xff}}, TTL: time.Hour},
			{Key: "d d", Entry: tier.Entry{Value: []byte("3")}},
		}
		if err := tier.SetMany(c, tr, ns, items); err != nil {
			t.Fatal(err)
		}
		res, err := tier.GetMany(c, tr, ns, []string{"a", "missing", "b.c", "d d", "a"})
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"1", "", "\x00\xff", "3", "1"}
		found := []bool{true, false, true, true, true}
		if len(res) != len(want) {
			t.Fatalf("%d results, want %d", len(res), len(want))
		}
		for i := range want {
			if res[i].Found != found[i] || string(res[i].Entry.Value) != want[i] {
				t.Fatalf("result %d: found %v %q", i, res[i].Found, res[i].Entry.Value)
			}
		}
		if res[0].Entry.ContentType != "text/plain" || res[2].Entry.ExpiresAt.IsZero() {
			t.Fatalf("metadata lost: %+v %+v", res[0].Entry, res[2].Entry)
		}
		if err := tier.DeleteMany(c, tr, ns, []string{"a", "d d", "missing"}); err != nil {
			t.Fatal(err)
		}
		res, err = tier.GetMany(c, tr, ns, []string{"a", "b.c", "d d"})
		if err != nil {
			t.Fatal(err)
		}
		if res[0].Found || !res[1].Found || res[2].Found {
			t.Fatalf("after delete: %+v", res)
		}
		if res, err := tier.GetMany(c, tr, ns, nil); err != nil || len(res) != 0 {
			t.Fatalf("empty batch: %v %v", res, err)
		}
	})
	t.Run("Concurrent", func(t *testing.T) {
		tr, ns, c := newTier(t), namespace(), ctx(t)
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 20 {
					k := fmt.Sprintf("k%d", (g*20+i)%16)
					v := []byte(fmt.Sprintf("%d-%d", g, i))
					if err := tr.Set(c, ns, k, tier.Entry{Value: v}, 0); err != nil {
						errs <- err
						return
					}
					if _, err := tr.Get(c, ns, k); err != nil && !errors.Is(err, tier.ErrNotFound) {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	})
}

func mustSet(t *testing.T, tr tier.Tier, ns, key, ct string, v []byte, ttl time.Duration) {
	t.Helper()
	if err := tr.Set(ctx(t), ns, key, tier.Entry{Value: v, ContentType: ct}, ttl); err != nil {
		t.Fatalf("Set %q: %v", key, err)
	}
}

func mustGet(t *testing.T, tr tier.Tier, ns, key string) tier.Entry {
	t.Helper()
	e, err := tr.Get(ctx(t), ns, key)
	if err != nil {
		t.Fatalf("Get %q: %v", key, err)
	}
	return e
}

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
