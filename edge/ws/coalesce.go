package ws

import (
	"bufio"
	"net"
	"net/http"
	"sync"
	"time"
)

// maxHeld bounds the bytes a coalescingConn holds before it writes them.
const maxHeld = 64 << 10

// coalescingConn lets the writer goroutine gather the frames of one batch
// into one write: between hold and release, writes are buffered (up to
// maxHeld) instead of each costing a syscall. Writes outside a batch, such
// as a pong from the reader goroutine or the close frame, go straight
// through (after anything held). Safe for concurrent use; gorilla
// serialises the writes themselves.
type coalescingConn struct {
	net.Conn
	mu       sync.Mutex
	holding  bool
	buf      []byte
	deadline time.Time // the last write deadline set while holding
	pending  bool      // deadline waits for the flush
}

// SetWriteDeadline is applied at once, or, while holding, when the held
// bytes are written: gorilla sets it before every frame, and a timer
// update per frame would cost more than the frame.
func (c *coalescingConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.holding {
		c.deadline, c.pending = t, true
		return nil
	}
	return c.Conn.SetWriteDeadline(t)
}

func (c *coalescingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.holding {
		if len(c.buf)+len(p) > maxHeld {
			if err := c.flushLocked(); err != nil {
				return 0, err
			}
		}
		if len(p) <= maxHeld {
			c.buf = append(c.buf, p...)
			return len(p), nil
		}
	}
	if err := c.flushLocked(); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

func (c *coalescingConn) flushLocked() error {
	if c.pending {
		c.pending = false
		if err := c.Conn.SetWriteDeadline(c.deadline); err != nil {
			return err
		}
	}
	if len(c.buf) == 0 {
		return nil
	}
	_, err := c.Conn.Write(c.buf)
	c.buf = c.buf[:0]
	return err
}

// hold starts a batch.
func (c *coalescingConn) hold() {
	c.mu.Lock()
	c.holding = true
	c.mu.Unlock()
}

// release ends a batch: it writes what was held, or drops it when drop is
// set (the connection is being torn down).
func (c *coalescingConn) release(drop bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.holding = false
	if drop {
		c.buf = c.buf[:0]
		c.pending = false
		return nil
	}
	err := c.flushLocked()
	if cap(c.buf) > maxHeld {
		c.buf = nil
	}
	return err
}

// coalescingHijacker hands gorilla a coalescingConn when it hijacks the
// HTTP connection.
type coalescingHijacker struct {
	http.ResponseWriter
	conn *coalescingConn
}

func (h *coalescingHijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	h.conn = &coalescingConn{Conn: c}
	return h.conn, rw, nil
}

// Unwrap lets http.ResponseController reach the original writer.
func (h *coalescingHijacker) Unwrap() http.ResponseWriter { return h.ResponseWriter }
