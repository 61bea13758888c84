package balancer

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard/switchyard/config"
)

// benchPool is a pool of four upstreams with metrics, as the proxy runs it.
func benchPool(b *testing.B, policy string) *Pool {
	b.Helper()
	p, err := New(service(policy, 4, 3, 2, 1), NewMetrics(prometheus.NewRegistry()), nil)
	if err != nil {
		b.Fatal(err)
	}
	return p
}

// baselinePick is the cheapest selection there is, an atomic round robin
// with no health, weights or exclusion: the yardstick for the ratios.
func baselinePick(ups []*Upstream, n *atomic.Uint64) *Upstream {
	return ups[n.Add(1)%uint64(len(ups))]
}

func benchPick(b *testing.B, policy string) {
	b.Run("baseline-atomic-rr", func(b *testing.B) {
		ups := benchPool(b, policy).Upstreams()
		var n atomic.Uint64
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if baselinePick(ups, &n) == nil {
					b.Error("nil")
				}
			}
		})
	})
	b.Run("pick", func(b *testing.B) {
		p := benchPool(b, policy)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := p.Pick(nil); err != nil {
					b.Error(err)
				}
			}
		})
	})
	b.Run("pick-begin-outcome", func(b *testing.B) {
		p := benchPool(b, policy)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				u, err := p.Pick(nil)
				if err != nil {
					b.Error(err)
					continue
				}
				u.Begin()(Outcome{Status: 200, Latency: time.Millisecond})
			}
		})
	})
}

func BenchmarkPickWeighted(b *testing.B) { benchPick(b, config.PolicyWeighted) }

func BenchmarkPickLatency(b *testing.B) { benchPick(b, config.PolicyLatency) }

func BenchmarkRetryBudget(b *testing.B) {
	p := benchPool(b, config.PolicyWeighted)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			p.RecordRequest()
			_ = p.AllowRetry()
		}
	})
}
