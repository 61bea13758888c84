package ws

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/gorilla/websocket"
)

// Message types accepted by Conn.Send and passed to the message callback.
const (
	TextMessage   = websocket.TextMessage
	BinaryMessage = websocket.BinaryMessage
)

// Close codes. The ones this package sends are 1000, 1001, 1008, 1009, 1011
// and 4008; 1006 is never sent, only recorded by CloseCode when the peer
// went away without a close frame.
const (
	// CloseNormal (1000): the work is done; edges send it when a stream ends.
	CloseNormal = websocket.CloseNormalClosure
	// CloseGoingAway (1001): the server is shutting down (Hub.Shutdown,
	// Options.Context ended). Clients should reconnect, to another node if
	// they can.
	CloseGoingAway = websocket.CloseGoingAway
	// CloseProtocol (1002): the peer broke the WebSocket protocol; gorilla
	// sends it. Recorded, never sent by this package.
	CloseProtocol = websocket.CloseProtocolError
	// CloseNoStatus (1005): the peer's close frame carried no code. Recorded only.
	CloseNoStatus = websocket.CloseNoStatusReceived
	// CloseAbnormal (1006): the connection ended without a close frame: the
	// peer vanished, reset the connection, stopped answering pings (pong
	// timeout) or a write failed or timed out. Recorded only.
	CloseAbnormal = websocket.CloseAbnormalClosure
	// ClosePolicy (1008): the client sent something the edge refuses, such
	// as a malformed or unexpected frame. Edges send it themselves with Close.
	ClosePolicy = websocket.ClosePolicyViolation
	// CloseTooBig (1009): an inbound message exceeded Options.ReadLimit.
	CloseTooBig = websocket.CloseMessageTooBig
	// CloseInternal (1011): the message callback panicked; the panic is
	// logged with its stack.
	CloseInternal = websocket.CloseInternalServerErr
	// CloseSlow (4008), reason "slow": the client did not read fast enough
	// and its outbound queue passed Options.QueueBytes. Queued frames are
	// dropped, not delivered. Clients should reconnect and catch up.
	CloseSlow = 4008
)

// Sentinel errors; match them with errors.Is.
var (
	// ErrClosed: Send after the connection started closing.
	ErrClosed = errors.New("ws: connection closed")
	// ErrSlow: the frame would pass Options.QueueBytes; the connection is
	// being closed with CloseSlow.
	ErrSlow = errors.New("ws: client too slow, outbound queue full")
	// ErrFrameTooBig: a single frame larger than Options.QueueBytes; the
	// frame is refused and the connection stays open.
	ErrFrameTooBig = errors.New("ws: frame larger than the outbound queue")
	// ErrMessageType: Send with a type other than TextMessage or BinaryMessage.
	ErrMessageType = errors.New("ws: message type must be text or binary")
	// ErrOptions: Options.Validate refused the options.
	ErrOptions = errors.New("ws: invalid options")
	// ErrUpgrade: the HTTP request could not be upgraded; the error
	// response has been written.
	ErrUpgrade = errors.New("ws: upgrade failed")
)

// Defaults applied to zero Options fields.
const (
	DefaultReadLimit    = 64 << 10
	DefaultQueueBytes   = 1 << 20
	DefaultPingInterval = 20 * time.Second
	DefaultWriteWait    = 10 * time.Second
	DefaultBufferSize   = 4 << 10
)

// frameOverhead is what every queued frame counts on top of its payload:
// the largest header of an unmasked server frame. It keeps empty frames
// bounded too.
const frameOverhead = 10

// Options configures one connection. The zero value of every field means its
// default; Options are copied by Upgrade and may be shared between calls.
type Options struct {
	// ReadLimit is the largest inbound message in bytes; a larger one closes
	// the connection with CloseTooBig (1009). Zero: 64 KiB.
	ReadLimit int64
	// QueueBytes bounds the outbound queue: the frames accepted by Send and
	// not yet written, each counted as its payload plus 10 bytes. A Send
	// past it returns ErrSlow and closes with CloseSlow (4008). Zero: 1 MiB.
	QueueBytes int
	// PingInterval is how often the server pings. Zero: 20s. Negative
	// disables pings and the pong deadline (reads then never time out).
	PingInterval time.Duration
	// PongWait is how long the peer may stay silent (no pong) before the
	// connection is dropped (recorded as 1006). It must exceed PingInterval.
	// Zero: PingInterval*3/2.
	PongWait time.Duration
	// WriteWait bounds every write: one frame, a ping, the close frame.
	// Close flushes queued frames within WriteWait, then waits up to
	// WriteWait for the peer's close reply. Zero: 10s.
	WriteWait time.Duration
	// ReadBufferSize and WriteBufferSize are gorilla's I/O buffer sizes.
	// Zero: 4 KiB each.
	ReadBufferSize, WriteBufferSize int
	// CheckOrigin decides whether the request's Origin is acceptable (403
	// otherwise). Nil allows every origin: the edges serve backend clients
	// (Node.js), not browsers; an edge exposed to browsers must set it.
	CheckOrigin func(*http.Request) bool
	// Subprotocols, in order of preference, are negotiated with the client.
	// Nil: none.
	Subprotocols []string
	// Metrics, when set, counts this connection (see NewMetrics).
	Metrics *Metrics
	// JoinText, when set, lets the writer join text messages queued
	// together into one frame, separated by "\n", up to 64 KiB a frame: a
	// client that asked for it splits each frame on newlines (each message
	// must then hold no raw newline, as compact JSON does not). Fewer, larger
	// frames cost both sides less. False: one frame per message.
	JoinText bool
	// Log receives the connection's log lines; pass one with the edge
	// attribute set. Nil: nothing is logged.
	Log *slog.Logger
	// Context, when set, closes the connection with CloseGoingAway when it
	// ends. Never pass the request's context: it ends when the handler
	// returns, right after Upgrade.
	Context context.Context
}

// Validate reports options that cannot work, wrapped in ErrOptions.
func (o Options) Validate() error {
	switch {
	case o.ReadLimit < 0:
		return fmt.Errorf("%w: ReadLimit %d is negative", ErrOptions, o.ReadLimit)
	case o.QueueBytes < 0:
		return fmt.Errorf("%w: QueueBytes %d is negative", ErrOptions, o.QueueBytes)
	case o.WriteWait < 0:
		return fmt.Errorf("%w: WriteWait %s is negative", ErrOptions, o.WriteWait)
	case o.PongWait < 0:
		return fmt.Errorf("%w: PongWait %s is negative", ErrOptions, o.PongWait)
	case o.ReadBufferSize < 0 || o.WriteBufferSize < 0:
		return fmt.Errorf("%w: buffer sizes must not be negative", ErrOptions)
	}
	d := o.withDefaults()
	if d.PingInterval > 0 && d.PongWait <= d.PingInterval {
		return fmt.Errorf("%w: PongWait %s must exceed PingInterval %s", ErrOptions, d.PongWait, d.PingInterval)
	}
	return nil
}

func (o Options) withDefaults() Options {
	if o.ReadLimit == 0 {
		o.ReadLimit = DefaultReadLimit
	}
	if o.QueueBytes == 0 {
		o.QueueBytes = DefaultQueueBytes
	}
	if o.PingInterval == 0 {
		o.PingInterval = DefaultPingInterval
	}
	if o.PongWait == 0 && o.PingInterval > 0 {
		o.PongWait = o.PingInterval * 3 / 2
	}
	if o.WriteWait == 0 {
		o.WriteWait = DefaultWriteWait
	}
	if o.ReadBufferSize == 0 {
		o.ReadBufferSize = DefaultBufferSize
	}
	if o.WriteBufferSize == 0 {
		o.WriteBufferSize = DefaultBufferSize
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return o
}
