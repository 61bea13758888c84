// Package proxy is the proxy worker pool: for every service with HTTP
// upstreams it joins queue group svc.<service> on svc.<service>.>, turns
// each HTTP-over-NATS request into an HTTP request to one upstream chosen
// by the service's balancer.Pool, and replies with the upstream's response.
//
// Each request runs once unless retrying is safe. It goes to another
// upstream, whatever its method, only when it provably did not reach the
// first (the dial failed, or every kept-alive connection tried was found
// closed before a byte was written: NotSentError). A request that was sent
// and whose answer broke off, or was 502/503/504, is retried only when
// replayable (an idempotent method, or an Idempotency-Key header), within
// the service's retry budget; otherwise the client gets 502 with the
// upstream's error. The reply is always the last real answer or error.
// Each upstream is tried at most once per request.
//
// Deadlines: a request's Switchyard-Deadline (set by the lb edge) may
// shorten the worker's own request timeout; a request received after it is
// answered 504 without being sent. Upstream I/O stops at the deadline or
// when Shutdown cuts in-flight requests off, whichever comes first.
//
// Concurrency: one NATS subscription per service; each message is served
// on a request goroutine, at most LB_MAX_IN_FLIGHT per service. When all
// are busy a request waits up to LB_QUEUE_WAIT in a waiter goroutine (at
// most LB_MAX_IN_FLIGHT wait) and is then answered 503 overloaded with
// Retry-After; the subscription's callback never blocks. Every goroutine is
// counted and waited for by Shutdown, which drains the subscriptions, waits
// for in-flight requests until shortly before its deadline, cuts the rest
// off (503 shutting_down), then stops the health checkers and closes the
// connections.
//
// The upstream connections are a pool of our own (upstream.go) over
// fasthttp's HTTP/1.1 codec rather than fasthttp's HostClient: the
// HostClient cannot tell a request that was written from one that was not,
// cannot stop its I/O on shutdown, and leaves goroutines behind; the
// measured cost of the difference is in BENCHMARKS.md.
//
// The pool registers the micro service "switchyard-proxy" whose "status"
// endpoint (subject switchyard.proxy.status) and $SRV.STATS data report
// every upstream's state (internal/proxystatus); the lb edge reads it for
// GET /services.
package proxy
