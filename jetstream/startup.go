package jetstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard/switchyard/subjects"
)

// ErrReplicaMismatch is returned by Ensure when an existing stream, bucket
// or object store has another replica count than Assets.Replicas, and the
// change is a scale-down (never done) or a scale-up without
// Assets.ScaleUp. It is not retried.
var ErrReplicaMismatch = errors.New("replica count differs from NATS_REPLICAS")

// Waiter is notified of each failed start-up attempt: stage is "connect"
// or "assets" (for a metric).
type Waiter func(stage string)

// backoff is the wait before attempt n+1: 250ms doubling up to 5s.
func backoff(n int) time.Duration {
	d := 250 * time.Millisecond << min(n, 5)
	return min(d, 5*time.Second)
}

// ConnectRetry is Connect, tried again with backoff until it succeeds or
// ctx ends (the start budget); each failure is logged as what it waits
// for. The error of the last try is returned, its URL redacted.
func ConnectRetry(ctx context.Context, name, url string, emb *Embedded, log *slog.Logger, w Waiter, extra ...nats.Option) (*nats.Conn, error) {
	for n := 0; ; n++ {
		nc, err := Connect(name, url, emb, log, extra...)
		if err == nil {
			return nc, nil
		}
		if errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthExpired) || errors.Is(err, nats.ErrAuthRevoked) {
			return nil, err // credentials do not get better by waiting
		}
		d := backoff(n)
		if w != nil {
			w("connect")
		}
		log.Warn("waiting for NATS: connect failed, retrying", "conn", name, "attempt", n+1, "retry_in", d.String(), "err", err)
		if !sleepCtx(ctx, d) {
			return nil, fmt.Errorf("%w (gave up after %d attempts: NATS_START_TIMEOUT)", err, n+1)
		}
	}
}

// EnsureRetry is Ensure, tried again with backoff while the error is
// transient (no JetStream leader yet, too few peers, a timeout) until ctx
// ends. A replica mismatch or a refused declaration fails at once.
func EnsureRetry(ctx context.Context, js natsjs.JetStream, a Assets, log *slog.Logger, w Waiter) error {
	for n := 0; ; n++ {
		err := Ensure(ctx, js, a)
		if err == nil {
			return nil
		}
		if !transient(err) {
			return err
		}
		d := backoff(n)
		if w != nil {
			w("assets")
		}
		log.Warn("waiting for JetStream: assets not declared yet, retrying", "attempt", n+1, "retry_in", d.String(), "err", err)
		if !sleepCtx(ctx, d) {
			return fmt.Errorf("%w (gave up after %d attempts: NATS_START_TIMEOUT)", err, n+1)
		}
	}
}

// transient reports whether a declaration error may go away as the
// cluster forms: no leader, too few peers, a timeout.
func transient(err error) bool {
	if errors.Is(err, ErrReplicaMismatch) {
		return false
	}
	var apiErr *natsjs.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode {
		case 10005, 10202, 10008, 10023, 10076, 10039, 10004, 10009: // no peers yet, no meta leader, not assigned
			return true
		case 10074, 10006: // replicas > 1 on a single node
			return false
		}
		return apiErr.Code >= 500
	}
	return true // timeouts, no responders, a lost connection
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// storeNames lists the JetStream streams behind every declared asset with
// the name a user knows it by: stream X, bucket Y (KV_Y), object store Z (OBJ_Z).
func (a Assets) storeNames() [][2]string {
	var out [][2]string
	for _, s := range a.Streams() {
		out = append(out, [2]string{s.Name, "stream " + s.Name})
	}
	for _, b := range a.Buckets() {
		out = append(out, [2]string{subjects.KVStream(b.Bucket), "bucket " + b.Bucket})
	}
	for _, o := range a.ObjectStores() {
		out = append(out, [2]string{subjects.ObjectStoreStream(o.Bucket), "object store " + o.Bucket})
	}
	return out
}

// checkReplicas compares the replicas of every existing asset with
// a.Replicas: fewer wanted is refused, more wanted needs a.ScaleUp.
func checkReplicas(ctx context.Context, js natsjs.JetStream, a Assets) error {
	want := max(a.Replicas, 1)
	for _, n := range a.storeNames() {
		sctx, cancel := context.WithTimeout(ctx, assetTimeout)
		s, err := js.Stream(sctx, n[0])
		cancel()
		if errors.Is(err, natsjs.ErrStreamNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("%s: %w", n[1], err)
		}
		have := max(s.CachedInfo().Config.Replicas, 1)
		switch {
		case have > want:
			return fmt.Errorf("%s has %d replicas but NATS_REPLICAS=%d: refusing to scale it down (set NATS_REPLICAS=%d): %w",
				n[1], have, want, have, ErrReplicaMismatch)
		case have < want && !a.ScaleUp:
			return fmt.Errorf("%s has %d replicas but NATS_REPLICAS=%d: start once with -scale-up (or NATS_SCALE_UP=true) to raise it: %w",
				n[1], have, want, ErrReplicaMismatch)
		}
	}
	return nil
}
