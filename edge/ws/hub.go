package ws

import (
	"context"
	"fmt"
	"sync"
)

// Hub tracks the live connections of one edge so that they can be closed
// together on shutdown. The zero value is ready to use; a Hub must not be
// copied after first use. Safe for concurrent use.
type Hub struct {
	mu     sync.Mutex
	conns  map[*Conn]struct{}
	closed bool
}

// NewHub returns an empty Hub.
func NewHub() *Hub { return &Hub{} }

// Add tracks c until it is done. After Shutdown started, Add closes c with
// CloseGoingAway instead.
func (h *Hub) Add(c *Conn) {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		c.Close(CloseGoingAway, "going away")
		return
	}
	if h.conns == nil {
		h.conns = make(map[*Conn]struct{})
	}
	h.conns[c] = struct{}{}
	h.mu.Unlock()
	c.afterDone(func() {
		h.mu.Lock()
		delete(h.conns, c)
		h.mu.Unlock()
	})
}

// Len is the number of live connections.
func (h *Hub) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.conns)
}

// Shutdown closes every connection with CloseGoingAway (1001, "going
// away"), each after flushing what it had queued, and waits until all are
// done. If ctx ends first, the remaining sockets are closed at once, and
// Shutdown waits for their goroutines (which exit promptly) and returns
// ctx's error. Connections added later are closed on Add. Safe to call
// more than once.
func (h *Hub) Shutdown(ctx context.Context) error {
	h.mu.Lock()
	h.closed = true
	conns := make([]*Conn, 0, len(h.conns))
	for c := range h.conns {
		conns = append(conns, c)
	}
	h.mu.Unlock()
	for _, c := range conns {
		c.Close(CloseGoingAway, "going away")
	}
	for _, c := range conns {
		select {
		case <-c.Done():
		case <-ctx.Done():
			for _, c := range conns {
				c.kill()
			}
			for _, c := range conns {
				<-c.Done()
			}
			return fmt.Errorf("ws: hub shutdown: %w", ctx.Err())
		}
	}
	return nil
}
