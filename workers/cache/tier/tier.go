// Package tier is the one small interface every cache tier implements: the
// in-process local tier (workers/cache/local), the JetStream KV shared tier
// (workers/cache/kvtier), the Redis shared tier (workers/cache/redistier).
// Every tier passes the conformance suite in workers/cache/tiertest.
//
// A tier stores opaque values with a content type under a namespace and a
// key. Keys are any non-empty string; a tier that cannot store a key as it
// is encodes it reversibly. Implementations are safe for concurrent use.
package tier

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors, matched with errors.Is.
var (
	// ErrNotFound: the key is absent or expired.
	ErrNotFound = errors.New("cache: not found")
	// ErrUnavailable: the tier cannot be reached (connection refused,
	// timeout, server down). The coordinator enters degraded mode.
	ErrUnavailable = errors.New("cache: tier unavailable")
	// ErrFull: the tier is full and refuses writes (e.g. Redis maxmemory
	// with the noeviction policy).
	ErrFull = errors.New("cache: tier full")
	// ErrTooLarge: the value does not fit a message of the tier.
	ErrTooLarge = errors.New("cache: value too large for the tier")
)

// Entry is one cached value.
type Entry struct {
	Value       []byte
	ContentType string
	// ExpiresAt is when the entry expires; the zero time means never. Set
	// by Get; ignored by Set (which takes a TTL).
	ExpiresAt time.Time
}

// Tier is a cache tier. A ttl of zero means the entry never expires.
// Get returns ErrNotFound for an absent or expired key; Delete of an absent
// key is not an error. Errors of the tier's transport wrap ErrUnavailable.
type Tier interface {
	Get(ctx context.Context, ns, key string) (Entry, error)
	Set(ctx context.Context, ns, key string, e Entry, ttl time.Duration) error
	Delete(ctx context.Context, ns, key string) error
}

// Item is one entry of a batch write.
type Item struct {
	Key   string
	Entry Entry
	TTL   time.Duration
}

// Result is one answer of a batch read; Found is false for an absent key.
type Result struct {
	Entry Entry
	Found bool
}

// Batcher is implemented by tiers that read and write many keys in one
// round trip. GetMany returns one Result per key, in order.
type Batcher interface {
	GetMany(ctx context.Context, ns string, keys []string) ([]Result, error)
	SetMany(ctx context.Context, ns string, items []Item) error
	DeleteMany(ctx context.Context, ns string, keys []string) error
}

// Pinger is implemented by tiers that can tell whether they are reachable;
// the coordinator uses it to leave degraded mode.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Expired reports whether e has expired at now.
func (e Entry) Expired(now time.Time) bool {
	return !e.ExpiresAt.IsZero() && !now.Before(e.ExpiresAt)
}

// GetMany reads keys from t, in one round trip when t is a Batcher.
func GetMany(ctx context.Context, t Tier, ns string, keys []string) ([]Result, error) {
	if b, ok := t.(Batcher); ok {
		return b.GetMany(ctx, ns, keys)
	}
	out := make([]Result, len(keys))
	for i, k := range keys {
		e, err := t.Get(ctx, ns, k)
		switch {
		case err == nil:
			out[i] = Result{Entry: e, Found: true}
		case errors.Is(err, ErrNotFound):
		default:
			return nil, err
		}
	}
	return out, nil
}

// SetMany writes items to t, in one round trip when t is a Batcher.
func SetMany(ctx context.Context, t Tier, ns string, items []Item) error {
	if b, ok := t.(Batcher); ok {
		return b.SetMany(ctx, ns, items)
	}
	for _, it := range items {
		if err := t.Set(ctx, ns, it.Key, it.Entry, it.TTL); err != nil {
			return err
		}
	}
	return nil
}

// DeleteMany deletes keys from t, in one round trip when t is a Batcher.
func DeleteMany(ctx context.Context, t Tier, ns string, keys []string) error {
	if b, ok := t.(Batcher); ok {
		return b.DeleteMany(ctx, ns, keys)
	}
	for _, k := range keys {
		if err := t.Delete(ctx, ns, k); err != nil {
			return err
		}
	}
	return nil
}
