package cache_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/switchyard/switchyard/jetstream/jstest"
	"github.com/switchyard/switchyard/workers/cache/local"
	"github.com/switchyard/switchyard/workers/cache/tier"
)

// BenchmarkGetLocalHit is the coordinator's share of a local hit, against
// the bare local tier it reads (the baseline), with allocations.
func BenchmarkGetLocalHit(b *testing.B) {
	srv := jstest.Start(b)
	nc, kv := kvSharedB(b, srv)
	c := newCoordB(b, nc, kv)
	ctx := context.Background()
	if err := c.Set(ctx, "bench", "key", tier.Entry{Value: make([]byte, 100)}, 0); err != nil {
		b.Fatal(err)
	}
	bare, _ := local.New(local.Options{Other: local.Space{Policy: local.TinyLFU, MaxBytes: 1 << 20}})
	defer bare.Close()
	_ = bare.Set(ctx, "bench", "key", tier.Entry{Value: make([]byte, 100)}, 0)
	var base, coord float64
	b.Run("local-tier", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, err := bare.Get(ctx, "bench", "key"); err != nil {
				b.Fatal(err)
			}
		}
		base = float64(b.Elapsed()) / float64(b.N)
	})
	b.Run("coordinator", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, _, err := c.Get(ctx, "bench", "key"); err != nil {
				b.Fatal(err)
			}
		}
		coord = float64(b.Elapsed()) / float64(b.N)
	})
	if base > 0 && coord > 0 {
		fmt.Printf("coordinator / bare local tier: %.2fx the time per Get\n", coord/base)
	}
}
