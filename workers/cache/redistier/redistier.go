// Package redistier is the Redis shared cache tier (go-redis). A value is
// stored under <prefix><namespace>:<key> (binary-safe: keys are stored as
// they are) with SET ... PX <ttl>, so Redis expires it itself.
//
// The stored value is an envelope: one version byte (1), the expiry as 8
// bytes of big-endian Unix milliseconds (0: none), the content type's
// length as a uvarint, the content type, then the value's raw bytes. Batch
// reads are one MGET, batch writes one pipeline, batch deletes one DEL.
//
// When Redis is full (maxmemory with policy noeviction) writes fail with
// tier.ErrFull; with an allkeys-* policy Redis evicts instead. A Tier is
// safe for concurrent use; Close closes its connection pool.
package redistier

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/switchyard/switchyard/workers/cache/tier"
)

// Options configures a Tier.
type Options struct {
	Addr     string
	DB       int
	PoolSize int
	// Prefix of every key (default "switchyard:cache:").
	Prefix string
	// Timeout bounds dialing, reading and writing (default 1s).
	Timeout time.Duration
}

// Tier is the Redis shared tier.
type Tier struct {
	c      *redis.Client
	prefix string
}

// New returns a Tier; it does not connect until first used.
func New(o Options) *Tier {
	if o.Prefix == "" {
		o.Prefix = "switchyard:cache:"
	}
	if o.Timeout == 0 {
		o.Timeout = time.Second
	}
	c := redis.NewClient(&redis.Options{
		Addr: o.Addr, DB: o.DB, PoolSize: o.PoolSize,
		DialTimeout: o.Timeout, ReadTimeout: o.Timeout, WriteTimeout: o.Timeout, PoolTimeout: o.Timeout,
		// A failed command is answered (503) rather than retried: the
		// coordinator's degraded mode handles an unreachable Redis.
		MaxRetries:               -1,
		DisableIdentity:          true,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	})
	return &Tier{c: c, prefix: o.Prefix}
}

// Close closes the connection pool.
func (t *Tier) Close() error { return t.c.Close() }

func (t *Tier) key(ns, key string) string { return t.prefix + ns + ":" + key }

// Encode returns the stored form of e with expiry at exp (zero: none).
func Encode(e tier.Entry, exp time.Time) []byte {
	b := make([]byte, 0, 1+8+binary.MaxVarintLen64+len(e.ContentType)+len(e.Value))
	b = append(b, 1)
	var ms uint64
	if !exp.IsZero() {
		ms = uint64(exp.UnixMilli())
	}
	b = binary.BigEndian.AppendUint64(b, ms)
	b = binary.AppendUvarint(b, uint64(len(e.ContentType)))
	b = append(b, e.ContentType...)
	return append(b, e.Value...)
}

// errCorrupt is returned for a stored value that is not an envelope.
var errCorrupt = errors.New("redis tier: stored value is not a cache envelope")

// Decode reverses Encode.
func Decode(b []byte) (tier.Entry, error) {
	if len(b) < 10 || b[0] != 1 {
		return tier.Entry{}, errCorrupt
	}
	var e tier.Entry
	if ms := binary.BigEndian.Uint64(b[1:9]); ms != 0 {
		e.ExpiresAt = time.UnixMilli(int64(ms))
	}
	n, w := binary.Uvarint(b[9:])
	if w <= 0 || uint64(len(b)-9-w) < n {
		return tier.Entry{}, errCorrupt
	}
	e.ContentType = string(b[9+w : 9+w+int(n)])
	e.Value = b[9+w+int(n):]
	return e, nil
}

// Get returns the entry of key, or tier.ErrNotFound.
func (t *Tier) Get(ctx context.Context, ns, key string) (tier.Entry, error) {
	b, err := t.c.Get(ctx, t.key(ns, key)).Bytes()
	if err != nil {
		return tier.Entry{}, mapErr(err)
	}
	return Decode(b)
}

func (t *Tier) setArgs(ns, key string, e tier.Entry, ttl time.Duration) []any {
	var exp time.Time
	if ttl > 0 {
		ms := max(ttl.Milliseconds(), 1)
		exp = time.Now().Add(time.Duration(ms) * time.Millisecond)
		return []any{"SET", t.key(ns, key), Encode(e, exp), "PX", ms}
	}
	return []any{"SET", t.key(ns, key), Encode(e, exp)}
}

// Set stores e under key with SET PX ttl (no expiry when ttl is 0).
func (t *Tier) Set(ctx context.Context, ns, key string, e tier.Entry, ttl time.Duration) error {
	return mapErr(t.c.Do(ctx, t.setArgs(ns, key, e, ttl)...).Err())
}

// Delete removes key.
func (t *Tier) Delete(ctx context.Context, ns, key string) error {
	return mapErr(t.c.Del(ctx, t.key(ns, key)).Err())
}

// GetMany reads keys with one MGET.
func (t *Tier) GetMany(ctx context.Context, ns string, keys []string) ([]tier.Result, error) {
	out := make([]tier.Result, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	rk := make([]string, len(keys))
	for i, k := range keys {
		rk[i] = t.key(ns, k)
	}
	vals, err := t.c.MGet(ctx, rk...).Result()
	if err != nil {
		return nil, mapErr(err)
	}
	for i, v := range vals {
		s, ok := v.(string)
		if !ok {
			continue
		}
		e, err := Decode([]byte(s))
		if err != nil {
			return nil, err
		}
		out[i] = tier.Result{Entry: e, Found: true}
	}
	return out, nil
}

// SetMany writes every item in one pipeline.
func (t *Tier) SetMany(ctx context.Context, ns string, items []tier.Item) error {
	if len(items) == 0 {
		return nil
	}
	_, err := t.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, it := range items {
			p.Do(ctx, t.setArgs(ns, it.Key, it.Entry, it.TTL)...)
		}
		return nil
	})
	return mapErr(err)
}

// DeleteMany removes keys with one DEL.
func (t *Tier) DeleteMany(ctx context.Context, ns string, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	rk := make([]string, len(keys))
	for i, k := range keys {
		rk[i] = t.key(ns, k)
	}
	return mapErr(t.c.Del(ctx, rk...).Err())
}

// Ping reports whether Redis answers.
func (t *Tier) Ping(ctx context.Context) error { return mapErr(t.c.Ping(ctx).Err()) }

func mapErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, redis.Nil) {
		return tier.ErrNotFound
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	var re redis.Error
	if errors.As(err, &re) {
		if strings.HasPrefix(re.Error(), "OOM") {
			return fmt.Errorf("%w: %v", tier.ErrFull, err)
		}
		if strings.HasPrefix(re.Error(), "LOADING") {
			return fmt.Errorf("%w: %v", tier.ErrUnavailable, err)
		}
		return fmt.Errorf("redis tier: %w", err)
	}
	return fmt.Errorf("%w: %v", tier.ErrUnavailable, err)
}

var (
	_ tier.Tier    = (*Tier)(nil)
	_ tier.Batcher = (*Tier)(nil)
	_ tier.Pinger  = (*Tier)(nil)
)
