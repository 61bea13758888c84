// Package ws is the WebSocket plumbing that the broker and stream edges
// share: the upgrade, one reader and one writer goroutine per connection,
// a bounded outbound queue, ping/pong keep-alives, read limits, write
// deadlines, close codes, metrics, and a Hub that closes every connection
// of an edge on shutdown. Edges use it; they never write their own pumps.
//
// # What it owns
//
// Upgrade (gorilla/websocket underneath) answers a refused upgrade with the
// JSON error shape, clears the deadlines the HTTP server put on the socket
// (http.Server's ReadTimeout and WriteTimeout would otherwise cut a
// long-lived connection) and starts two goroutines:
//
//   - the reader: the only caller of ReadMessage. It enforces ReadLimit
//     (1009 beyond), extends the read deadline by PongWait on every pong,
//     and calls the message callback for each message, in order.
//   - the writer: the only writer of data frames, pings and the close frame.
//     It writes what Send queued, each frame under WriteWait, pings every
//     PingInterval, and runs the close handshake.
//
// The outbound queue is bounded in bytes (QueueBytes; each frame counts its
// payload plus 10 bytes). Send never waits for the network: past the bound
// it returns ErrSlow and closes the connection with CloseSlow (4008,
// "slow"), dropping what was queued, so that one slow client never holds
// back a broadcaster or the other clients.
//
// # Close codes
//
//	1000 CloseNormal     sent by the edge when the work is done
//	1001 CloseGoingAway  Hub.Shutdown, Options.Context ended, Add after Shutdown
//	1008 ClosePolicy     sent by the edge for a malformed or refused message
//	1009 CloseTooBig     an inbound message exceeded ReadLimit
//	1011 CloseInternal   the message callback panicked (logged with its stack)
//	4008 CloseSlow       the client did not keep up (queue past QueueBytes)
//	1006 CloseAbnormal   recorded, never sent: no close frame (peer gone,
//	                     pong timeout, failed or timed-out write)
//
// A 4008 close frame reaches a client that reads again; for a client that
// stays stalled the socket is closed once the blocked write passes
// WriteWait, and the client sees the connection end without it.
//
// # Lifecycle and concurrency
//
// Every Conn method is safe for concurrent use. A connection ends in one
// of these ways, and in each both goroutines exit and Done is closed: the
// peer closes or vanishes (read error, pong timeout), a write fails, Close,
// Send past the bound, Options.Context ends, Hub.Shutdown. Only the first
// close counts; CloseCode reports it. Close returns at once: it flushes the
// frames queued before it within WriteWait, sends the close frame, waits
// up to WriteWait for the peer's reply and closes the socket (at most
// 2*WriteWait in all). Hub.Shutdown waits for its connections or its
// context; at the context's end it closes the remaining sockets at once and
// still waits for their goroutines, which then exit promptly.
//
// The message callback runs on the reader goroutine: it must not block for
// long, since nothing (pongs included) is read while it runs. It may call
// Send and Close. Send does not copy data: the caller must not change it
// afterwards, and may pass the same slice to many connections.
//
// # Use from an edge
//
//	hub := ws.NewHub()
//	srv.OnShutdown(func(ctx context.Context) { _ = hub.Shutdown(ctx) })
//	m := ws.NewMetrics(deps.Registry, "stream")
//	srv.Echo.GET("/stream/:id/subscribe", func(c echo.Context) error {
//		conn, err := ws.Upgrade(c.Response(), c.Request(), ws.Options{Metrics: m, Log: log}, nil)
//		if err != nil {
//			return nil // the error response is written
//		}
//		hub.Add(conn)
//		return nil
//	})
//
// # Differences from the first plan
//
// The API follows the plan (Options, CloseSlow, Upgrade, Send, Close, Done,
// CloseCode, Hub with Add, Len and Shutdown, Metrics), with these additions
// and precisions:
//   - Options also has Subprotocols, Metrics, Log and Context, and a
//     Validate method (Upgrade answers 500 and returns ErrOptions for
//     invalid options; PongWait must exceed PingInterval; a negative
//     PingInterval disables pings).
//   - Conn also has CloseReason, Queued, RemoteAddr and Subprotocol.
//   - A single frame larger than QueueBytes is refused with ErrFrameTooBig
//     and the connection stays open (it says nothing about the client's
//     speed). Send also returns ErrMessageType for non-data types.
//   - NewMetrics(reg, edge) returns the metrics of one edge; several edges
//     may call it on one registry (the collectors are shared).
//   - NewHub exists, and the zero Hub is ready to use too.
//   - When the ResponseWriter is echo's, Upgrade records status 101 on it,
//     so that the edge's access log and HTTP metrics show the upgrade.
//   - Close codes are named constants, text and binary message types are
//     re-exported (TextMessage, BinaryMessage), so edges need not import
//     gorilla.
package ws
