package cache_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard/switchyard/jetstream/jstest"
	"github.com/switchyard/switchyard/workers/cache"
	"github.com/switchyard/switchyard/workers/cache/redistest"
	"github.com/switchyard/switchyard/workers/cache/tier"
)

// Two coordinators on one NATS are two processes: a write or delete
// through one is never served stale by the other after the invalidation
// arrives (the README promises 100 ms; the time taken is logged).
func TestCoherenceAcrossProcesses(t *testing.T) {
	srv := jstest.Start(t)
	redis := redistest.Start(t)
	backends := map[string]func(t *testing.T) (a, b *cache.Coordinator){
		"kv": func(t *testing.T) (a, b *cache.Coordinator) {
			nca, sa := kvShared(t, srv)
			ncb, sb := kvShared(t, srv)
			return newCoord(t, nca, sa), newCoord(t, ncb, sb)
		},
		"redis": func(t *testing.T) (a, b *cache.Coordinator) {
			return newCoord(t, srv.Conn(t), redisShared(t, redis.Addr)), newCoord(t, srv.Conn(t), redisShared(t, redis.Addr))
		},
	}
	for name, mk := range backends {
		t.Run(name, func(t *testing.T) {
			a, b := mk(t)
			for _, ns := range []string{"lru", "coh-" + name} {
				mustSet(t, a, ns, "k", "v1", 0)
				// b's first read may race a's invalidation and not fill
				// its local tier; a later one does.
				waitFor(t, 5*time.Second, "b to hold v1 locally", func() bool {
					v, src, err := get(t, b, ns, "k")
					return err == nil && v == "v1" && src == cache.SourceLocal
				})
				mustSet(t, a, ns, "k", "v2", 0)
				took := waitFor(t, 5*time.Second, "b to see the overwrite", func() bool {
					v, _, err := get(t, b, ns, "k")
					return err == nil && v == "v2"
				})
				t.Logf("%s/%s: overwrite seen by the other process after %v", name, ns, took)
				if v, src, _ := get(t, b, ns, "k"); v != "v2" || src != cache.SourceLocal {
					t.Fatalf("after the overwrite: %q from %s", v, src)
				}
				if err := a.Delete(ctxT(t), ns, "k"); err != nil {
					t.Fatal(err)
				}
				took = waitFor(t, 5*time.Second, "b to see the delete", func() bool {
					_, _, err := get(t, b, ns, "k")
					return errors.Is(err, cache.ErrNotFound)
				})
				t.Logf("%s/%s: delete seen by the other process after %v", name, ns, took)
				// And the other way round, with a batch write.
				if err := b.SetMany(ctxT(t), ns, []tier.Item{{Key: "x", Entry: tier.Entry{Value: []byte("1")}, TTL: cache.DefaultTTL}}); err != nil {
					t.Fatal(err)
				}
				_, _, _ = get(t, a, ns, "x")
				if err := b.SetMany(ctxT(t), ns, []tier.Item{{Key: "x", Entry: tier.Entry{Value: []byte("2")}, TTL: cache.DefaultTTL}}); err != nil {
					t.Fatal(err)
				}
				waitFor(t, 5*time.Second, "a to see the batch overwrite", func() bool {
					v, _, err := get(t, a, ns, "x")
					return err == nil && v == "2"
				})
			}
			if st := b.Stats(); st.Invalidations.Received == 0 || a.Stats().Invalidations.Sent == 0 {
				t.Fatalf("invalidations not counted: %+v %+v", a.Stats().Invalidations, st.Invalidations)
			}
		})
	}
}

// N concurrent misses on one key make one shared-tier read.
func TestStampedeOneSharedRead(t *testing.T) {
	srv := jstest.Start(t)
	nc, kv := kvShared(t, srv)
	g := &gated{Tier: kv, gate: make(chan struct{})}
	c := newCoord(t, nc, g, func(o *cache.Options) { o.SharedTimeout = 20 * time.Second })
	if err := kv.Set(ctxT(t), "stampede", "hot", tier.Entry{Value: []byte("v")}, 0); err != nil {
		t.Fatal(err)
	}
	const n = 64
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e, src, err := c.Get(context.Background(), "stampede", "hot")
			if err == nil && (string(e.Value) != "v" || src != cache.SourceShared) {
				err = fmt.Errorf("got %q from %s", e.Value, src)
			}
			errs <- err
		}()
	}
	waitFor(t, 10*time.Second, "every caller to wait for the shared read", func() bool { return cache.Joined(c) == n })
	close(g.gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := g.gets.Load(); got != 1 {
		t.Fatalf("%d concurrent misses made %d shared reads, want 1", n, got)
	}
	if st := c.Stats().Namespaces["_other"]; st.Coalesced != n-1 {
		t.Fatalf("coalesced %d, want %d", st.Coalesced, n-1)
	}
	// The value is now local: no further shared read.
	if _, src, _ := get(t, c, "stampede", "hot"); src != cache.SourceLocal {
		t.Fatalf("after the stampede: %s", src)
	}
}

// Redis killed: local hits still answer, misses and writes get
// ErrUnavailable (503) fast, Check reports degraded; Redis restarted: the
// coordinator recovers by itself.
func TestDegradedModeRedisKilledAndRestarted(t *testing.T) {
	srv := jstest.Start(t)
	redis := redistest.StartOwn(t)
	c := newCoord(t, srv.Conn(t), redisShared(t, redis.Addr))
	mustSet(t, c, "deg", "warm", "local copy", 0)
	redis.Kill()

	if v, src, err := get(t, c, "deg", "warm"); err != nil || v != "local copy" || src != cache.SourceLocal {
		t.Fatalf("local hit with redis down: %q %s %v", v, src, err)
	}
	if _, _, err := get(t, c, "deg", "cold"); !errors.Is(err, cache.ErrUnavailable) {
		t.Fatalf("miss with redis down: %v, want ErrUnavailable", err)
	}
	if !c.Degraded() || c.Check(context.Background()) == nil {
		t.Fatal("not degraded after a failed shared read")
	}
	if ae := cache.APIError(fmt.Errorf("x: %w", cache.ErrUnavailable)); ae.Status != 503 || ae.RetryAfter <= 0 {
		t.Fatalf("degraded answer: %+v", ae)
	}
	// In degraded mode nothing waits for Redis: answers are immediate.
	if err := c.Set(ctxT(t), "deg", "new", tier.Entry{Value: []byte("x")}, 0); !errors.Is(err, cache.ErrUnavailable) {
		t.Fatalf("write with redis down: %v", err)
	}
	if err := c.Delete(ctxT(t), "deg", "warm"); !errors.Is(err, cache.ErrUnavailable) {
		t.Fatalf("delete with redis down: %v", err)
	}
	if _, err := c.GetMany(ctxT(t), "deg", []string{"warm", "cold"}); !errors.Is(err, cache.ErrUnavailable) {
		t.Fatalf("batch with a miss, redis down: %v", err)
	}
	if res, err := c.GetMany(ctxT(t), "deg", []string{"warm"}); err != nil || !res[0].Found {
		t.Fatalf("batch of local hits, redis down: %v %v", res, err)
	}
	if !c.Stats().Shared.Degraded {
		t.Fatal("stats do not say degraded")
	}

	redis.Restart(t)
	waitFor(t, 10*time.Second, "recovery", func() bool { return !c.Degraded() })
	if c.Check(context.Background()) != nil {
		t.Fatal("still unhealthy after recovery")
	}
	mustSet(t, c, "deg", "new", "after", 0)
	if v, _, err := get(t, c, "deg", "new"); err != nil || v != "after" {
		t.Fatalf("after recovery: %q %v", v, err)
	}
}

func TestBatch(t *testing.T) {
	srv := jstest.Start(t)
	nc, kv := kvShared(t, srv)
	c := newCoord(t, nc, kv)
	ttl := int64(60)
	bin := "AAH/"
	str := func(s string) *string { return &s }
	resp, err := c.Batch(ctxT(t), cache.BatchRequest{Op: "set", NS: "b", Items: []cache.BatchItem{
		{Key: "text", Value: str("héllo"), ContentType: "text/plain", TTL: &ttl},
		{Key: "bin", Value: &bin, Encoding: "base64", ContentType: "application/octet-stream"},
	}})
	if err != nil || resp.Count != 2 {
		t.Fatalf("batch set: %+v %v", resp, err)
	}
	// A second process reads them from the shared tier in one round trip.
	nc2, kv2 := kvShared(t, srv)
	c2 := newCoord(t, nc2, kv2)
	resp, err = c2.Batch(ctxT(t), cache.BatchRequest{NS: "b", Keys: []string{"text", "absent", "bin"}})
	if err != nil {
		t.Fatal(err)
	}
	it := resp.Items
	if len(it) != 3 || *it[0].Value != "héllo" || it[0].Encoding != "utf8" || it[0].Tier != cache.SourceShared ||
		it[1].Value != nil || *it[2].Value != bin || it[2].Encoding != "base64" || it[2].ContentType != "application/octet-stream" {
		t.Fatalf("batch get: %+v", it)
	}
	resp, _ = c2.Batch(ctxT(t), cache.BatchRequest{NS: "b", Keys: []string{"text"}, Encoding: "base64"})
	if *resp.Items[0].Value != "aMOpbGxv" || resp.Items[0].Tier != cache.SourceLocal {
		t.Fatalf("forced base64: %+v", resp.Items[0])
	}
	if resp, err = c.Batch(ctxT(t), cache.BatchRequest{Op: "delete", NS: "b", Keys: []string{"text", "bin", "absent"}}); err != nil || resp.Count != 3 {
		t.Fatalf("batch delete: %+v %v", resp, err)
	}
	waitFor(t, 5*time.Second, "the deletes to reach the other process", func() bool {
		r, err := c2.GetMany(ctxT(t), "b", []string{"text", "bin"})
		return err == nil && !r[0].Found && !r[1].Found
	})
}

func TestBadInput(t *testing.T) {
	srv := jstest.Start(t)
	nc, kv := kvShared(t, srv)
	c := newCoord(t, nc, kv)
	ctx := ctxT(t)
	val := tier.Entry{Value: []byte("v")}
	str := func(s string) *string { return &s }
	cases := []struct {
		name   string
		err    error
		status int
		run    func() error
	}{
		{"bad namespace", cache.ErrInvalidNamespace, 400, func() error { _, _, err := c.Get(ctx, "Bad NS", "k"); return err }},
		{"empty namespace", cache.ErrInvalidNamespace, 400, func() error { return c.Set(ctx, "", "k", val, 0) }},
		{"empty key", cache.ErrInvalidKey, 400, func() error { _, _, err := c.Get(ctx, "ns", ""); return err }},
		{"long key", cache.ErrInvalidKey, 400, func() error { return c.Set(ctx, "ns", strings.Repeat("k", 101), val, 0) }},
		{"not utf-8 key", cache.ErrInvalidKey, 400, func() error { return c.Delete(ctx, "ns", "\xff") }},
		{"value over the limit", cache.ErrTooLarge, 413, func() error {
			return c.Set(ctx, "ns", "k", tier.Entry{Value: make([]byte, 64<<10+1)}, 0)
		}},
		{"ttl over the max", cache.ErrInvalidTTL, 400, func() error { return c.Set(ctx, "ns", "k", val, 2*time.Hour) }},
		{"too many keys", cache.ErrInvalidBatch, 400, func() error { _, err := c.GetMany(ctx, "ns", make([]string, 11)); return err }},
		{"bad key in a batch", cache.ErrInvalidKey, 400, func() error { _, err := c.GetMany(ctx, "ns", []string{"a", ""}); return err }},
		{"unknown op", cache.ErrInvalidBatch, 400, func() error { _, err := c.Batch(ctx, cache.BatchRequest{Op: "put"}); return err }},
		{"set without value", cache.ErrInvalidBatch, 400, func() error {
			_, err := c.Batch(ctx, cache.BatchRequest{Op: "set", Items: []cache.BatchItem{{Key: "k"}}})
			return err
		}},
		{"bad base64", cache.ErrInvalidBatch, 400, func() error {
			_, err := c.Batch(ctx, cache.BatchRequest{Op: "set", Items: []cache.BatchItem{{Key: "k", Value: str("!!"), Encoding: "base64"}}})
			return err
		}},
		{"unknown encoding", cache.ErrInvalidBatch, 400, func() error {
			_, err := c.Batch(ctx, cache.BatchRequest{Op: "set", Items: []cache.BatchItem{{Key: "k", Value: str("x"), Encoding: "hex"}}})
			return err
		}},
		{"keys on a set", cache.ErrInvalidBatch, 400, func() error {
			_, err := c.Batch(ctx, cache.BatchRequest{Op: "set", Keys: []string{"k"}})
			return err
		}},
		{"absent key", cache.ErrNotFound, 404, func() error { _, _, err := c.Get(ctx, "ns", "absent"); return err }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.run()
			if !errors.Is(err, tc.err) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			if s := cache.APIError(err).Status; s != tc.status {
				t.Fatalf("status %d, want %d", s, tc.status)
			}
		})
	}
	for _, s := range []string{"-1", "1.5", "x", "99999999999999999999"} {
		if _, err := cache.ParseTTL(s); !errors.Is(err, cache.ErrInvalidTTL) {
			t.Errorf("ParseTTL(%q): %v", s, err)
		}
	}
	if _, err := cache.DecodeBatch([]byte(`{"keys":["a"]} {}`)); !errors.Is(err, cache.ErrInvalidBatch) {
		t.Errorf("trailing data: %v", err)
	}
	if _, err := cache.DecodeBatch([]byte(`{"keyz":["a"]}`)); !errors.Is(err, cache.ErrInvalidBatch) {
		t.Errorf("unknown field: %v", err)
	}
}

// TTLs hold in both tiers, and a namespace's default TTL applies.
func TestTTLExpiresInBothTiers(t *testing.T) {
	srv := jstest.Start(t)
	nc, kv := kvShared(t, srv)
	c := newCoord(t, nc, kv)
	mustSet(t, c, "ttl", "k", "v", time.Second)
	mustSet(t, c, "short", "k", "v", cache.DefaultTTL)
	if _, src, err := get(t, c, "ttl", "k"); err != nil || src != cache.SourceLocal {
		t.Fatalf("%s %v", src, err)
	}
	for _, ns := range []string{"ttl", "short"} {
		waitFor(t, 10*time.Second, ns+" to expire", func() bool {
			_, _, err := get(t, c, ns, "k")
			return errors.Is(err, cache.ErrNotFound)
		})
		if _, err := kv.Get(ctxT(t), ns, "k"); !errors.Is(err, tier.ErrNotFound) {
			t.Fatalf("%s: the shared tier still has it: %v", ns, err)
		}
	}
}

// A namespace configured without the local tier always reads the shared one.
func TestNamespaceWithoutLocalTier(t *testing.T) {
	srv := jstest.Start(t)
	nc, kv := kvShared(t, srv)
	c := newCoord(t, nc, kv)
	mustSet(t, c, "direct", "k", "v", 0)
	for range 3 {
		if _, src, err := get(t, c, "direct", "k"); err != nil || src != cache.SourceShared {
			t.Fatalf("%s %v", src, err)
		}
	}
	if st := c.Stats().Namespaces["direct"]; st.UsesLocal || st.Hits.Shared != 3 || st.Local != nil {
		t.Fatalf("stats: %+v", st)
	}
}

// After NATS restarts, invalidations sent meanwhile are lost: the local
// tier is cleared on reconnect rather than trusted.
func TestReconnectClearsLocalTier(t *testing.T) {
	dir := t.TempDir()
	srv := jstest.StartAt(t, dir, 0)
	port := srv.Server().Addr().(*net.TCPAddr).Port
	nc, kv := kvShared(t, srv)
	c := newCoord(t, nc, kv)
	mustSet(t, c, "rc", "k", "v", 0)
	if _, src, _ := get(t, c, "rc", "k"); src != cache.SourceLocal {
		t.Fatalf("not local: %s", src)
	}
	srv.Shutdown()
	waitFor(t, 5*time.Second, "the local tier to be bypassed", func() bool { return !c.Stats().Shared.LocalCoherent })
	// NATS is the shared tier here: the first read finds it unreachable,
	// and degraded mode then serves local hits again.
	waitFor(t, 10*time.Second, "degraded mode to serve the local hit", func() bool {
		v, src, err := get(t, c, "rc", "k")
		return err == nil && v == "v" && src == cache.SourceLocal && c.Degraded()
	})
	if _, _, err := get(t, c, "rc", "other"); !errors.Is(err, cache.ErrUnavailable) {
		t.Fatalf("miss with NATS down: %v", err)
	}
	jstest.StartAt(t, dir, port)
	waitFor(t, 20*time.Second, "reconnect and recovery", func() bool {
		st := c.Stats().Shared
		return st.LocalCoherent && !st.Degraded
	})
	if st := c.Stats(); st.Invalidations.Cleared == 0 {
		t.Fatalf("local tier not cleared on reconnect: %+v", st.Invalidations)
	}
}
