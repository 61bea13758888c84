// Package obs holds what Switchyard's metrics share across packages.
package obs

// LatencyBuckets are the histogram buckets, in seconds, of every request
// latency metric: from 0.5 ms (a cached or in-process answer) to 30 s (the
// default request timeout), so dashboards can compare edges, workers and
// upstreams bucket for bucket.
var LatencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
