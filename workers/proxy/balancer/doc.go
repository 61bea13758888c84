// Package balancer chooses an upstream for each request of one service of
// the proxy worker and keeps track of every upstream's health. It owns:
//
//   - selection: smooth weighted round robin (policy "weighted", nginx's
//     algorithm) or power of two choices over peak-EWMA latency times
//     in-flight requests (policy "latency");
//   - passive health: consecutive connect errors and 5xx answers eject an
//     upstream for an exponentially growing time, capped by the share of
//     upstreams that may be ejected at once;
//   - active health: RunHealthChecks polls every upstream's health path and
//     flips its healthy flag after consecutive passes or failures;
//   - the retry budget of the service (AllowRetry, RecordRequest);
//   - per-upstream Prometheus metrics and the status snapshot of
//     GET /services.
//
// It does not speak HTTP to upstreams on behalf of requests and knows
// nothing of NATS: the proxy worker calls Pick, then Upstream.Begin before
// it sends a request and the returned func with the Outcome afterwards.
//
// # Concurrency
//
// A Pool and its Upstreams are safe for concurrent use by any number of
// goroutines. Upstream.URL and Upstream.Weight are read-only after New.
// Pick under the weighted policy serialises on one short mutex (the round
// robin state); under the latency policy it takes no lock. Upstream state
// (health, ejection, in-flight, counters, latency estimate) lives in
// atomics; outcomes update the latency estimate under a per-upstream mutex
// and ejection decisions under a pool mutex, both off the common path.
// RunHealthChecks owns one goroutine per upstream and waits for all of
// them before it returns; run it at most once at a time per Pool.
package balancer
