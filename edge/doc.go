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
package edge
