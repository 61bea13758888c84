package lb

import (
	"context"
	"errors"
	"sync"

	"github.com/nats-io/nats.go"
)

// errConnLost is the cause of a request's context when the edge's NATS
// connection dropped while the request waited: its answer cannot come.
var errConnLost = errors.New("NATS connection lost")

// connLoss hands every request a context that ends (cause errConnLost) as
// soon as the connection drops, so requests in flight are answered at
// once rather than at their timeout. A drop ends the contexts handed out
// so far; requests admitted later get a fresh one.
type connLoss struct {
	mu     sync.Mutex
	ctx    context.Context
	cancel context.CancelCauseFunc
}

// watchConnLoss chains onto nc's disconnect handler (keeping the one set
// at connect, which logs).
func watchConnLoss(nc *nats.Conn) *connLoss {
	w := &connLoss{}
	w.ctx, w.cancel = context.WithCancelCause(context.Background())
	prev := nc.Opts.DisconnectedErrCB
	nc.SetDisconnectErrHandler(func(c *nats.Conn, err error) {
		w.drop()
		if prev != nil {
			prev(c, err)
		}
	})
	return w
}

// current is the context of the connection as it is now.
func (w *connLoss) current() context.Context {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ctx
}

func (w *connLoss) drop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.cancel(errConnLost)
	w.ctx, w.cancel = context.WithCancelCause(context.Background())
}

// close ends the current context (the edge is done).
func (w *connLoss) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.cancel(context.Canceled)
}
