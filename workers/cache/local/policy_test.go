package local_test

import (
	"context"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/switchyard/switchyard/workers/cache/local"
	"github.com/switchyard/switchyard/workers/cache/tier"
)

// A trace is a sequence of key ids; every miss is followed by a set, as a
// read-through cache does.
type trace struct {
	name string
	keys func(n int) []int
}

const capacity = 2000 // entries the store holds

// skewed: Zipf(1.1) over 200k keys, the popularity curve of most caches.
func skewed(n int) []int {
	r := rand.New(rand.NewPCG(1, 2))
	z := rand.NewZipf(r, 1.1, 1, 200_000)
	out := make([]int, n)
	for i := range out {
		out[i] = int(z.Uint64())
	}
	return out
}

// scanHeavy: a Zipf hot set, interrupted every 2000 reads by a scan of
// 3000 keys that are never read again (a batch job, a crawler).
func scanHeavy(n int) []int {
	r := rand.New(rand.NewPCG(3, 4))
	z := rand.NewZipf(r, 1.1, 1, 20_000)
	var out []int
	next := 1_000_000
	for len(out) < n {
		for range 2000 {
			out = append(out, int(z.Uint64()))
		}
		for range 3000 {
			out = append(out, next)
			next++
		}
	}
	return out
}

// shifting: a working set of 1500 keys that moves on by 500 keys every
// 20k reads; recency is all that matters.
func shifting(n int) []int {
	r := rand.New(rand.NewPCG(5, 6))
	out := make([]int, n)
	for i := range out {
		base := (i / 20_000) * 500
		out[i] = base + r.IntN(1500)
	}
	return out
}

var traces = []trace{{"skewed", skewed}, {"scan-heavy", scanHeavy}, {"shifting", shifting}}

// hitRatio replays keys against a store of policy p holding capacity entries.
func hitRatio(t testing.TB, p local.Policy, keys []int) float64 {
	value := make([]byte, 16)
	key := func(id int) string { return "k" + strconv.Itoa(id+100_000_000) }
	weight := int64(len(key(0))+len(value)) + 64
	tr, err := local.New(local.Options{Other: local.Space{Policy: p, MaxBytes: weight * capacity}})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	ctx := context.Background()
	hits := 0
	for _, id := range keys {
		k := key(id)
		if _, err := tr.Get(ctx, "ns", k); err == nil {
			hits++
			continue
		}
		_ = tr.Set(ctx, "ns", k, tier.Entry{Value: value}, 0)
	}
	return float64(hits) / float64(len(keys))
}

// TestPolicyHitRatios prints the hit ratio of each policy on each trace
// (recorded in BENCHMARKS.md) and checks the reason tinylfu is the
// default: it resists scans that flush an LRU.
func TestPolicyHitRatios(t *testing.T) {
	res := map[string]map[local.Policy]float64{}
	for _, tc := range traces {
		keys := tc.keys(60_000)
		res[tc.name] = map[local.Policy]float64{}
		for _, p := range []local.Policy{local.LRU, local.TinyLFU} {
			res[tc.name][p] = hitRatio(t, p, keys)
		}
		t.Logf("%-10s lru %.3f  tinylfu %.3f", tc.name, res[tc.name][local.LRU], res[tc.name][local.TinyLFU])
	}
	if s := res["scan-heavy"]; s[local.TinyLFU] < s[local.LRU]+0.02 {
		t.Errorf("scan-heavy: tinylfu %.3f does not beat lru %.3f", s[local.TinyLFU], s[local.LRU])
	}
}

// BenchmarkPolicy reports each policy's hit ratio per trace as a metric.
func BenchmarkPolicy(b *testing.B) {
	for _, tc := range traces {
		keys := tc.keys(300_000)
		for _, p := range []local.Policy{local.LRU, local.TinyLFU} {
			b.Run(tc.name+"/"+string(p), func(b *testing.B) {
				var r float64
				for range b.N {
					r = hitRatio(b, p, keys)
				}
				b.ReportMetric(r, "hit-ratio")
			})
		}
	}
}
