package jetstream

import (
	"context"
	"errors"
	"sync"

	"github.com/nats-io/nats.go"
)

// ErrConnLost is the cause of a DropWatch context when the connection
// dropped: a reply awaited on it can no longer come.
var ErrConnLost = errors.New("NATS connection lost")

// DropWatch (used by the job runners and the lb edge) hands out a context that ends (cause ErrConnLost) as soon as a
// connection drops, so requests waiting on it give up at once instead of
// at their timeout. A drop ends the contexts handed out so far; later
// calls get a fresh one. Safe for concurrent use.
type DropWatch struct {
	mu     sync.Mutex
	ctx    context.Context
	cancel context.CancelCauseFunc
}

// WatchDrops chains onto nc's disconnect handler, keeping the one set at
// connect (which logs).
func WatchDrops(nc *nats.Conn) *DropWatch {
	w := &DropWatch{}
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

// Current is the context of the connection as it is now.
func (w *DropWatch) Current() context.Context {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ctx
}

func (w *DropWatch) drop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.cancel(ErrConnLost)
	w.ctx, w.cancel = context.WithCancelCause(context.Background())
}

// Bind returns ctx, also ended (cause ErrConnLost) when lost ends; the
// returned function releases it.
func Bind(ctx, lost context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(lost, func() { cancel(context.Cause(lost)) })
	return ctx, func() { stop(); cancel(context.Canceled) }
}
