// Package edge is the shared plumbing of Switchyard's four HTTP/WebSocket
// edges: an echo server with request ids, a structured access log, panic
// recovery, forwarding headers (X-Forwarded-*, X-Real-Ip, Forwarded)
// removed unless the peer is a trusted proxy, body limits, server timeouts, one JSON error shape (404 and 405
// included), Prometheus HTTP metrics, /health and /metrics.
//
// An edge package (edge/lb, edge/broker, ...) calls New with a bound
// listener, adds its routes to Server.Echo, and hands the Server to the
// process's lifecycle, which calls Run and then Shutdown. Shutdown first
// fails readiness, then runs the OnShutdown hooks (WebSockets close with
// 1001), then drains in-flight requests until shortly before its deadline;
// requests still running then see their context cancelled with cause
// ErrShuttingDown and answer 503 rather than lose their connection. Gate
// and Budget bound an edge's in-flight requests and the body bytes it holds
// (Overloaded is their 503). All methods are safe for concurrent use;
// Shutdown may be called more than once.
//
// Methods (methods.go): HEAD is served wherever GET is (by the GET route,
// net/http drops the body), and a method an edge's own route does not
// serve answers 405 with Allow, even where a catch-all route (the lb's
// /:service/*) would match the path. Routes are read at the first request:
// register them before the edge serves. Annotate adds attributes (service,
// upstream) to a request's access line. /metrics serves Options.Gatherer;
// with Options.MetricsAt instead, it answers 404 naming where the process
// serves its metrics, so a process is one scrape target.
package edge
