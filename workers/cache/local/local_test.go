package local_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/switchyard/switchyard/workers/cache/local"
	"github.com/switchyard/switchyard/workers/cache/tier"
	"github.com/switchyard/switchyard/workers/cache/tiertest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newTier(t *testing.T, p local.Policy, maxBytes int64) *local.Tier {
	t.Helper()
	tr, err := local.New(local.Options{
		Spaces: map[string]local.Space{"named": {Policy: p, MaxBytes: maxBytes}},
		Other:  local.Space{Policy: p, MaxBytes: maxBytes},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.Close)
	return tr
}

func TestConformance(t *testing.T) {
	for _, p := range []local.Policy{local.LRU, local.TinyLFU} {
		t.Run(string(p), func(t *testing.T) {
			tiertest.Run(t, tiertest.Features{}, func(t *testing.T) tier.Tier { return newTier(t, p, 64<<20) })
		})
	}
}

func TestBoundedInBytes(t *testing.T) {
	for _, p := range []local.Policy{local.LRU, local.TinyLFU} {
		t.Run(string(p), func(t *testing.T) {
			const max = 64 << 10
			tr := newTier(t, p, max)
			evicted := 0
			ctx := context.Background()
			v := make([]byte, 1000)
			for i := range 1000 {
				_ = tr.Set(ctx, "named", fmt.Sprint("k", i), tier.Entry{Value: v}, 0)
			}
			// otter applies its bound in maintenance passes; poll.
			deadline := time.Now().Add(10 * time.Second)
			for {
				var st local.Stats
				for _, s := range tr.Stats() {
					if s.Space == "named" {
						st = s
					}
				}
				evicted = int(st.Evictions)
				if st.Bytes <= max && st.Entries <= max/1000 && evicted > 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("store over its bound: %+v", st)
				}
				_, _ = tr.Get(ctx, "named", "k999")
				time.Sleep(10 * time.Millisecond)
			}
			// An entry heavier than the whole store is not kept.
			_ = tr.Set(ctx, "named", "huge", tier.Entry{Value: make([]byte, max)}, 0)
			if _, err := tr.Get(ctx, "named", "huge"); err == nil {
				t.Fatal("entry over the bound was kept")
			}
		})
	}
}

func TestMaxAgeCapsTTL(t *testing.T) {
	tr, err := local.New(local.Options{Other: local.Space{Policy: local.LRU, MaxBytes: 1 << 20, MaxAge: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	ctx := context.Background()
	_ = tr.Set(ctx, "x", "k", tier.Entry{Value: []byte("v")}, time.Hour)
	e, err := tr.Get(ctx, "x", "k")
	if err != nil || e.ExpiresAt.After(time.Now().Add(2*time.Second)) {
		t.Fatalf("MaxAge not applied: %v %v", e.ExpiresAt, err)
	}
}

func TestUnknownPolicy(t *testing.T) {
	if _, err := local.New(local.Options{Other: local.Space{Policy: "fifo", MaxBytes: 1}}); err == nil {
		t.Fatal("unknown policy accepted")
	}
	if _, err := local.New(local.Options{Other: local.Space{Policy: local.LRU}}); err == nil {
		t.Fatal("zero bound accepted")
	}
}
