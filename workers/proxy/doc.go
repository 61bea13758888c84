// Package proxy is the proxy worker pool: for every service with HTTP
// upstreams it joins queue group svc.<service> on svc.<service>.>, turns
// each HTTP-over-NATS request into an HTTP request to one upstream chosen
// by the service's balancer.Pool, and replies with the upstream's response.
//
// Failover: a connect failure or a reset before any response byte is
// retried on another upstream for every method; a 502/503/504 answer is
// retried only for idempotent methods, within the service's retry budget.
// Each upstream is tried at most once per request.
//
// Concurrency: one NATS subscription per service; each message is served
// on its own goroutine, at most LB_MAX_IN_FLIGHT per service. When the
// window is full the subscription's callback blocks, so further requests
// wait in the subscription's bounded pending queue (backpressure, not
// memory growth). Shutdown drains the subscriptions, waits for in-flight
// requests, then stops the health checkers.
//
// The pool registers the micro service "switchyard-proxy" whose "status"
// endpoint (subject switchyard.proxy.status) and $SRV.STATS data report
// every upstream's state; the lb edge reads it for GET /services.
package proxy
