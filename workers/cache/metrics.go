package cache

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard/switchyard/internal/obs"
	"github.com/switchyard/switchyard/workers/cache/local"
	"github.com/switchyard/switchyard/workers/cache/tier"
)

// Metrics are the coordinator's Prometheus metrics. Labels are bounded:
// namespace is a configured namespace or "_other"; tier is local or shared.
type Metrics struct {
	hits          *prometheus.CounterVec
	misses        *prometheus.CounterVec
	sets          *prometheus.CounterVec
	deletes       *prometheus.CounterVec
	evictions     *prometheus.CounterVec
	coalesced     *prometheus.CounterVec
	invalidations *prometheus.CounterVec
	sharedDur     *prometheus.HistogramVec
	sharedErrs    *prometheus.CounterVec
	degraded      prometheus.Gauge
	localBytes    *prometheus.Desc
	localEntries  *prometheus.Desc
	localMax      *prometheus.Desc
	tier          func() *local.Tier
}

// NewMetrics registers the cache metrics on reg. localTier, when set,
// returns the local tier whose size the collector reports at scrape time.
func NewMetrics(reg prometheus.Registerer, localTier func() *local.Tier) *Metrics {
	const ns, sub = "switchyard", "cache"
	m := &Metrics{
		hits: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "hits_total",
			Help: "Lookups answered, by namespace and tier (local, shared)."}, []string{"namespace", "tier"}),
		misses: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "misses_total",
			Help: "Lookups a tier could not answer, by namespace and tier (local, shared)."}, []string{"namespace", "tier"}),
		sets: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "sets_total",
			Help: "Keys written, by namespace."}, []string{"namespace"}),
		deletes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "deletes_total",
			Help: "Keys deleted, by namespace."}, []string{"namespace"}),
		evictions: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "evictions_total",
			Help: "Local-tier entries removed to make room (size) or because they expired (expired), by namespace."}, []string{"namespace", "reason"}),
		coalesced: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "coalesced_total",
			Help: "Misses that waited for another caller's shared-tier read of the same key (stampede protection), by namespace."}, []string{"namespace"}),
		invalidations: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "invalidations_total",
			Help: "Invalidation messages sent to and received from other processes, and local-tier clears after a lost channel (direction sent, received, cleared)."}, []string{"direction"}),
		sharedDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "shared_duration_seconds",
			Help: "Latency of shared-tier operations, by operation.", Buckets: obs.LatencyBuckets}, []string{"op"}),
		sharedErrs: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "shared_errors_total",
			Help: "Failed shared-tier operations, by operation and kind (unavailable, full, too_large, other)."}, []string{"op", "kind"}),
		degraded: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "degraded",
			Help: "1 while the shared tier is unreachable (only local hits are served), else 0."}),
		localBytes:   prometheus.NewDesc(ns+"_"+sub+"_local_bytes", "Bytes held by the local tier, by namespace store.", []string{"namespace"}, nil),
		localEntries: prometheus.NewDesc(ns+"_"+sub+"_local_entries", "Entries held by the local tier, by namespace store.", []string{"namespace"}, nil),
		localMax:     prometheus.NewDesc(ns+"_"+sub+"_local_max_bytes", "Byte bound of the local tier, by namespace store.", []string{"namespace"}, nil),
		tier:         localTier,
	}
	reg.MustRegister(m.hits, m.misses, m.sets, m.deletes, m.evictions, m.coalesced, m.invalidations,
		m.sharedDur, m.sharedErrs, m.degraded, m)
	return m
}

// Describe implements prometheus.Collector for the local-tier gauges.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.localBytes
	ch <- m.localEntries
	ch <- m.localMax
}

// Collect implements prometheus.Collector for the local-tier gauges.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	if m.tier == nil {
		return
	}
	t := m.tier()
	if t == nil {
		return
	}
	for _, s := range t.Stats() {
		ch <- prometheus.MustNewConstMetric(m.localBytes, prometheus.GaugeValue, float64(s.Bytes), s.Space)
		ch <- prometheus.MustNewConstMetric(m.localEntries, prometheus.GaugeValue, float64(s.Entries), s.Space)
		ch <- prometheus.MustNewConstMetric(m.localMax, prometheus.GaugeValue, float64(s.MaxBytes), s.Space)
	}
}

func (m *Metrics) observeShared(op string, start time.Time, err error) {
	m.sharedDur.WithLabelValues(op).Observe(time.Since(start).Seconds())
	if err == nil || errors.Is(err, tier.ErrNotFound) {
		return
	}
	kind := "other"
	switch {
	case errors.Is(err, tier.ErrUnavailable):
		kind = "unavailable"
	case errors.Is(err, tier.ErrFull):
		kind = "full"
	case errors.Is(err, tier.ErrTooLarge):
		kind = "too_large"
	}
	m.sharedErrs.WithLabelValues(op, kind).Inc()
}
