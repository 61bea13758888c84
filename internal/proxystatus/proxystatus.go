// Package proxystatus is the shape of what proxy workers report about their
// upstreams on subject switchyard.proxy.status (and in their $SRV.STATS
// data): the proxy worker writes it, the lb edge reads it for GET /services.
// It holds types only, so neither side imports the other's internals.
package proxystatus

import "time"

// Report is one proxy worker's answer: the upstreams of every service it
// serves, by service name, in configuration order.
type Report map[string][]Upstream

// Upstream is one upstream's state as GET /services shows it.
type Upstream struct {
	// URL is the upstream's base URL.
	URL string `json:"url"`
	// Weight is its weight under the weighted policy.
	Weight int `json:"weight"`
	// Healthy is the active health checks' verdict.
	Healthy bool `json:"healthy"`
	// EjectedUntil is set while the upstream is ejected.
	EjectedUntil *time.Time `json:"ejected_until,omitempty"`
	// InFlight is the number of requests being served.
	InFlight int64 `json:"in_flight"`
	// Requests and Errors count outcomes since start; Errors are
	// connect errors, answers with no status and 5xx.
	Requests uint64 `json:"requests"`
	Errors   uint64 `json:"errors"`
	// LatencyEWMAMs is the peak-EWMA latency estimate, 0 until measured.
	LatencyEWMAMs float64 `json:"latency_ewma_ms"`
}
