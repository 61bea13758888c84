package cache

import (
	"sort"
	"time"

	"github.com/switchyard/switchyard/workers/cache/local"
)

// Stats is GET /cache/stats: this process's figures per namespace and per
// tier, and the shared tier's latency.
type Stats struct {
	Namespaces    map[string]NamespaceStats `json:"namespaces"`
	Shared        SharedStats               `json:"shared"`
	Invalidations InvalidationStats         `json:"invalidations"`
}

// NamespaceStats are the figures of one configured namespace, or of
// "_other" for every namespace without its own configuration.
type NamespaceStats struct {
	Hits     TierCounts `json:"hits"`
	Misses   TierCounts `json:"misses"`
	HitRatio float64    `json:"hit_ratio"`
	Sets     int64      `json:"sets"`
	Deletes  int64      `json:"deletes"`
	// Coalesced counts misses that shared another caller's shared-tier read.
	Coalesced int64        `json:"coalesced"`
	Evictions int64        `json:"evictions"`
	Expired   int64        `json:"expired"`
	Local     *local.Stats `json:"local,omitempty"`
	UsesLocal bool         `json:"uses_local"`
}

// TierCounts splits a count by tier.
type TierCounts struct {
	Local  int64 `json:"local"`
	Shared int64 `json:"shared"`
}

// SharedStats describe the shared tier.
type SharedStats struct {
	Backend       string  `json:"backend"`
	Degraded      bool    `json:"degraded"`
	Operations    int64   `json:"operations"`
	Errors        int64   `json:"errors"`
	AvgLatencyMS  float64 `json:"avg_latency_ms"`
	LocalCoherent bool    `json:"local_coherent"`
}

// InvalidationStats count invalidation messages.
type InvalidationStats struct {
	Sent     int64 `json:"sent"`
	Received int64 `json:"received"`
	Cleared  int64 `json:"local_clears"`
}

// Stats returns this process's figures.
func (c *Coordinator) Stats() Stats {
	out := Stats{Namespaces: map[string]NamespaceStats{}}
	locals := map[string]local.Stats{}
	for _, s := range c.local.Stats() {
		locals[s.Space] = s
	}
	states := []*nsState{c.other}
	for _, st := range c.states {
		states = append(states, st)
	}
	sort.Slice(states, func(i, j int) bool { return states[i].label < states[j].label })
	for _, st := range states {
		ns := NamespaceStats{
			Hits:      TierCounts{Local: st.hitsLocal.Load(), Shared: st.hitsShared.Load()},
			Misses:    TierCounts{Local: st.missLocal.Load(), Shared: st.missShared.Load()},
			Sets:      st.sets.Load(),
			Deletes:   st.deletes.Load(),
			Coalesced: st.coalesced.Load(),
			UsesLocal: st.useLocal,
		}
		if hits := ns.Hits.Local + ns.Hits.Shared; hits+ns.Misses.Shared > 0 {
			ns.HitRatio = float64(hits) / float64(hits+ns.Misses.Shared)
		}
		if l, ok := locals[c.local.SpaceOf(st.label)]; ok && st.useLocal {
			ns.Local = &l
			ns.Evictions, ns.Expired = l.Evictions, l.Expired
		}
		out.Namespaces[st.label] = ns
	}
	ops := c.sharedOps.Load()
	out.Shared = SharedStats{Backend: c.o.Backend, Degraded: c.degraded.Load(), Operations: ops,
		Errors: c.sharedErrors.Load(), LocalCoherent: c.coherent.Load()}
	if ops > 0 {
		out.Shared.AvgLatencyMS = float64(time.Duration(c.sharedNanos.Load()/ops)) / float64(time.Millisecond)
	}
	out.Invalidations = InvalidationStats{Sent: c.invalSent.Load(), Received: c.invalRecv.Load(), Cleared: c.invalClears.Load()}
	return out
}
