package ws

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
	"github.com/labstack/echo/v4"

	"github.com/switchyard/switchyard/internal/apierr"
)

// Conn is one upgraded WebSocket connection, served by one reader and one
// writer goroutine that Upgrade starts. Send, Close, Done, CloseCode,
// CloseReason and RemoteAddr are safe for concurrent use.
type Conn struct {
	ws        *websocket.Conn
	out       *coalescingConn // under ws: writes of one batch go out in one syscall
	o         Options
	onMessage func(c *Conn, msgType int, data []byte)
	remote    string

	mu        sync.Mutex
	queue     []frame // accepted by Send, not yet taken by the writer
	spare     []frame // the writer's previous batch, reused
	queued    int     // bytes of queue plus the writer's unwritten batch
	closing   bool
	code      int
	reason    string
	flush     bool // write the queued frames before the close frame
	sendFrame bool // send a close frame at all
	finished  bool
	onDone    []func()

	closed     atomic.Bool   // closing started (mirror of closing, for the reader)
	abort      atomic.Bool   // closing without flush: the writer drops what is left
	wake       chan struct{} // capacity 1: frames were queued
	closeReq   chan struct{} // closed when closing starts
	readerDone chan struct{}
	done       chan struct{}
	stopCtx    func() bool
}

type frame struct {
	typ  int
	data []byte
}

func (f frame) size() int { return len(f.data) + frameOverhead }

// Upgrade upgrades the request to a WebSocket, exempts the connection from
// the HTTP server's read and write timeouts (every later read and write
// carries its own deadline), starts the connection's reader and writer
// goroutines and returns the connection. The handler may return right away;
// the connection lives until it closes (see Done).
//
// onMessage, when not nil, is called from the reader goroutine for each
// inbound text or binary message, one at a time, in order; data belongs to
// the callee. It must not block for long: while it runs nothing is read,
// pongs included. Messages that arrive after closing started are dropped. A
// panic in onMessage is logged and closes the connection with CloseInternal.
//
// On failure the HTTP error response (the JSON error shape) has been
// written and the error wraps ErrUpgrade, or ErrOptions for bad options.
func Upgrade(w http.ResponseWriter, r *http.Request, o Options, onMessage func(c *Conn, msgType int, data []byte)) (*Conn, error) {
	if err := o.Validate(); err != nil {
		writeError(w, http.StatusInternalServerError, apierr.CodeInternal, "websocket misconfigured")
		return nil, err
	}
	o = o.withDefaults()
	checkOrigin := o.CheckOrigin
	if checkOrigin == nil {
		checkOrigin = func(*http.Request) bool { return true }
	}
	u := websocket.Upgrader{
		ReadBufferSize:  o.ReadBufferSize,
		WriteBufferSize: o.WriteBufferSize,
		Subprotocols:    o.Subprotocols,
		CheckOrigin:     checkOrigin,
		Error: func(w http.ResponseWriter, _ *http.Request, status int, reason error) {
			w.Header().Set("Sec-Websocket-Version", "13")
			writeError(w, status, apierr.CodeForStatus(status), reason.Error())
		},
		HandshakeTimeout: o.WriteWait,
	}
	hj := &coalescingHijacker{ResponseWriter: w}
	wsc, err := u.Upgrade(hj, r, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUpgrade, err)
	}
	if er, ok := w.(*echo.Response); ok {
		er.Status = http.StatusSwitchingProtocols // for the edge's access log and metrics
	}
	// The HTTP server set read and write deadlines for the request
	// (http.Server ReadTimeout/WriteTimeout); they would cut a long-lived
	// socket. Clear them here, whatever gorilla does: the pumps set their own.
	_ = wsc.NetConn().SetDeadline(time.Time{})
	c := &Conn{
		ws:         wsc,
		out:        hj.conn,
		o:          o,
		onMessage:  onMessage,
		remote:     wsc.RemoteAddr().String(),
		wake:       make(chan struct{}, 1),
		closeReq:   make(chan struct{}),
		readerDone: make(chan struct{}),
		done:       make(chan struct{}),
	}
	o.Metrics.opened()
	if o.Context != nil {
		c.stopCtx = context.AfterFunc(o.Context, func() { c.Close(CloseGoingAway, "going away") })
	}
	go c.readPump()
	go c.writePump()
	return c, nil
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(apierr.Body{Error: apierr.BodyError{
		Code: code, Message: msg, RequestID: h.Get("X-Request-Id")}})
}

// Send queues one message and returns at once; it never waits for the
// network. data is not copied: it must not change after Send (one slice may
// be sent to many connections). It returns ErrMessageType for a type other
// than TextMessage or BinaryMessage, ErrFrameTooBig for one frame larger
// than QueueBytes (the connection stays open), ErrClosed once closing
// started, and ErrSlow when the frame would pass QueueBytes: the connection
// is then closed with CloseSlow, dropping what was queued.
func (c *Conn) Send(msgType int, data []byte) error {
	if msgType != TextMessage && msgType != BinaryMessage {
		return ErrMessageType
	}
	f := frame{typ: msgType, data: data}
	n := f.size()
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return ErrClosed
	}
	if n > c.o.QueueBytes {
		c.mu.Unlock()
		return ErrFrameTooBig
	}
	if c.queued+n > c.o.QueueBytes {
		queued := c.queued
		c.beginCloseLocked(CloseSlow, "slow", false, true)
		c.mu.Unlock()
		c.o.Log.Warn("websocket client too slow, closing", "remote", c.remote,
			"queued_bytes", queued, "frame_bytes", len(data), "queue_limit", c.o.QueueBytes)
		return ErrSlow
	}
	c.queue = append(c.queue, f)
	c.queued += n
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return nil
}

// Close starts closing: the frames queued so far are written (within
// WriteWait), then the close frame with code and reason, then the
// connection waits up to WriteWait for the peer's close reply and closes
// the socket. Close returns at once; Done tells when it is over. Only the
// first close counts: later calls, and Send, are no-ops (Send returns
// ErrClosed). code must be one a peer may receive (1000-1003, 1007-1014,
// 3000-4999); any other is sent as 1011. reason is cut to 123 bytes.
func (c *Conn) Close(code int, reason string) {
	if !validSendCode(code) {
		code = CloseInternal
	}
	c.beginClose(code, truncateReason(reason), true, true)
}

// Done is closed when both goroutines of the connection have exited and the
// socket is closed.
func (c *Conn) Done() <-chan struct{} { return c.done }

// CloseCode is the code the connection closed with: the one it sent (Close,
// CloseSlow, CloseTooBig, ...) or received from the peer, whichever came
// first, or CloseAbnormal when it ended without a close frame. Zero while
// it is open.
func (c *Conn) CloseCode() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.code
}

// CloseReason is the reason that came with CloseCode.
func (c *Conn) CloseReason() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reason
}

// Queued is the number of bytes accepted by Send and not yet written
// (payloads plus 10 bytes a frame), the figure QueueBytes bounds.
func (c *Conn) Queued() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.queued
}

// RemoteAddr is the peer's address.
func (c *Conn) RemoteAddr() net.Addr { return c.ws.RemoteAddr() }

// Subprotocol is the negotiated subprotocol, if any.
func (c *Conn) Subprotocol() string { return c.ws.Subprotocol() }

func (c *Conn) beginClose(code int, reason string, flush, sendFrame bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.beginCloseLocked(code, reason, flush, sendFrame)
}

func (c *Conn) beginCloseLocked(code int, reason string, flush, sendFrame bool) bool {
	if c.closing {
		return false
	}
	c.closing = true
	c.closed.Store(true)
	c.code, c.reason, c.flush, c.sendFrame = code, reason, flush, sendFrame
	if !flush {
		c.abort.Store(true)
	}
	close(c.closeReq)
	return true
}

// kill closes the socket at once, whatever is queued; both goroutines then
// exit promptly. Used when a shutdown deadline has passed.
func (c *Conn) kill() {
	c.beginClose(CloseGoingAway, "going away", false, false)
	c.abort.Store(true)
	_ = c.ws.Close()
}

// afterDone runs fn when the connection is finished (now if it is).
func (c *Conn) afterDone(fn func()) {
	c.mu.Lock()
	if c.finished {
		c.mu.Unlock()
		fn()
		return
	}
	c.onDone = append(c.onDone, fn)
	c.mu.Unlock()
}

// readPump is the only reader. It owns the read deadline and the pong
// handler, and closes the socket when it stops.
func (c *Conn) readPump() {
	defer close(c.readerDone)
	defer c.ws.Close()
	c.ws.SetReadLimit(c.o.ReadLimit)
	if c.o.PingInterval > 0 {
		_ = c.ws.SetReadDeadline(time.Now().Add(c.o.PongWait))
		c.ws.SetPongHandler(func(string) error {
			return c.ws.SetReadDeadline(time.Now().Add(c.o.PongWait))
		})
	}
	for {
		typ, data, err := c.ws.ReadMessage()
		if err != nil {
			c.readFailed(err)
			return
		}
		c.o.Metrics.in(len(data))
		if c.onMessage != nil && !c.closed.Load() {
			c.dispatch(typ, data)
		}
	}
}

func (c *Conn) readFailed(err error) {
	var ce *websocket.CloseError
	var ne net.Error
	switch {
	case errors.As(err, &ce):
		c.beginClose(ce.Code, ce.Text, false, false)
	case errors.Is(err, websocket.ErrReadLimit):
		// gorilla has sent the 1009 close frame already.
		if c.beginClose(CloseTooBig, "message too big", false, false) {
			c.o.Log.Info("websocket message too big, closing", "remote", c.remote, "read_limit", c.o.ReadLimit)
		}
	case errors.As(err, &ne) && ne.Timeout():
		if c.beginClose(CloseAbnormal, "pong timeout", false, false) {
			c.o.Log.Info("websocket peer stopped answering pings, dropping", "remote", c.remote, "pong_wait", c.o.PongWait)
		}
	default:
		if c.beginClose(CloseAbnormal, "connection lost", false, false) {
			c.o.Log.Debug("websocket read failed", "remote", c.remote, "err", err)
		}
	}
}

func (c *Conn) dispatch(typ int, data []byte) {
	defer func() {
		if r := recover(); r != nil {
			c.o.Log.Error("websocket message handler panicked", "remote", c.remote,
				"panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			c.Close(CloseInternal, "internal error")
		}
	}()
	c.onMessage(c, typ, data)
}

// writePump is the only writer of data frames, pings and our close frame.
// It finishes the connection when it returns.
func (c *Conn) writePump() {
	defer c.finish()
	var ping <-chan time.Time
	if c.o.PingInterval > 0 {
		t := time.NewTicker(c.o.PingInterval)
		defer t.Stop()
		ping = t.C
	}
	for {
		select {
		case <-c.closeReq:
			c.closeHandshake()
			return
		case <-c.wake:
			if err := c.writeQueued(time.Time{}); err != nil {
				c.writeFailed(err)
			}
		case <-ping:
			if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(c.o.WriteWait)); err != nil {
				c.writeFailed(err)
			}
		}
	}
}

// writeQueued writes the queued frames, each within WriteWait, or all
// before deadline when it is set. It stops early when closing without flush.
func (c *Conn) writeQueued(deadline time.Time) error {
	c.mu.Lock()
	batch := c.queue
	c.queue = c.spare[:0]
	c.spare = nil
	c.mu.Unlock()
	var err error
	// One write for the batch rather than one a frame (or two: gorilla
	// writes a frame larger than its buffer in two parts).
	held := len(batch) > 0 && c.out != nil
	if held {
		c.out.hold()
	}
	for i := 0; i < len(batch); i++ {
		f := batch[i]
		if err == nil && !c.abort.Load() {
			dl := deadline
			if dl.IsZero() {
				dl = time.Now().Add(c.o.WriteWait)
			}
			_ = c.ws.SetWriteDeadline(dl)
			n := 1
			if c.o.JoinText && f.typ == TextMessage {
				n = joinable(batch[i:])
			}
			if n == 1 {
				if err = c.ws.WriteMessage(f.typ, f.data); err == nil {
					c.o.Metrics.out(len(f.data))
				}
			} else {
				err = c.writeJoined(batch[i : i+n])
			}
			for _, g := range batch[i+1 : i+n] {
				c.mu.Lock()
				c.queued -= g.size()
				c.mu.Unlock()
			}
			clear(batch[i+1 : i+n])
			i += n - 1
		}
		batch[i] = frame{}
		c.mu.Lock()
		c.queued -= f.size()
		c.mu.Unlock()
	}
	if held {
		if rerr := c.out.release(err != nil || c.abort.Load()); err == nil && rerr != nil {
			err = rerr
		}
	}
	c.mu.Lock()
	c.spare = batch[:0]
	c.mu.Unlock()
	return err
}

// maxJoined bounds a frame of joined text messages.
const maxJoined = 64 << 10

// joinable is how many text frames from the start of fs fit one joined frame.
func joinable(fs []frame) int {
	n, size := 0, 0
	for _, f := range fs {
		if f.typ != TextMessage || n > 0 && size+1+len(f.data) > maxJoined {
			break
		}
		size += len(f.data) + 1
		n++
	}
	return max(n, 1)
}

// writeJoined writes text messages as one frame, separated by newlines.
func (c *Conn) writeJoined(fs []frame) error {
	w, err := c.ws.NextWriter(TextMessage)
	if err != nil {
		return err
	}
	for i, f := range fs {
		if i > 0 {
			if _, err := w.Write(newline); err != nil {
				return err
			}
		}
		if _, err := w.Write(f.data); err != nil {
			return err
		}
		c.o.Metrics.out(len(f.data))
	}
	return w.Close()
}

var newline = []byte{'\n'}

func (c *Conn) writeFailed(err error) {
	if c.beginClose(CloseAbnormal, "write failed", false, false) {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			c.o.Log.Warn("websocket write timed out, dropping", "remote", c.remote, "write_wait", c.o.WriteWait)
		} else {
			c.o.Log.Debug("websocket write failed", "remote", c.remote, "err", err)
		}
	}
	_ = c.ws.Close()
}

// closeHandshake runs once closing started: flush if asked, send the close
// frame, wait for the peer's reply or WriteWait, close the socket, wait
// for the reader.
func (c *Conn) closeHandshake() {
	c.mu.Lock()
	code, reason, flush, sendFrame := c.code, c.reason, c.flush, c.sendFrame
	c.mu.Unlock()
	deadline := time.Now().Add(c.o.WriteWait)
	if flush {
		if err := c.writeQueued(deadline); err != nil {
			sendFrame = false
			c.o.Log.Debug("websocket flush before close failed", "remote", c.remote, "err", err)
		}
	}
	c.mu.Lock()
	c.queue, c.spare, c.queued = nil, nil, 0
	c.mu.Unlock()
	if sendFrame {
		msg := websocket.FormatCloseMessage(code, reason)
		if err := c.ws.WriteControl(websocket.CloseMessage, msg, deadline); err == nil {
			t := time.NewTimer(c.o.WriteWait)
			select {
			case <-c.readerDone:
			case <-t.C:
			}
			t.Stop()
		} else {
			c.o.Log.Debug("websocket close frame not sent", "remote", c.remote, "code", code, "err", err)
		}
	}
	_ = c.ws.Close()
	<-c.readerDone
}

func (c *Conn) finish() {
	if c.stopCtx != nil {
		c.stopCtx()
	}
	c.mu.Lock()
	c.finished = true
	fns := c.onDone
	c.onDone = nil
	code, reason := c.code, c.reason
	c.mu.Unlock()
	c.o.Metrics.closed(code)
	c.o.Log.Debug("websocket closed", "remote", c.remote, "code", code, "reason", reason)
	for _, fn := range fns {
		fn()
	}
	close(c.done)
}

func validSendCode(code int) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// truncateReason cuts reason to the 123 bytes a close frame carries,
// on a rune boundary.
func truncateReason(s string) string {
	const max = 123
	if len(s) <= max {
		return s
	}
	s = s[:max]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}
