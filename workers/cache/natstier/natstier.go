// Package natstier is a Go client of the cache service over NATS
// (cache.<op>.<namespace>, served by micro service switchyard-cache), in
// the shape of a tier: it passes the same conformance suite as the tiers it
// fronts, which is how the NATS contract documented in subjects/README.md
// is tested end to end. It speaks exactly what a Node or Rust caller
// speaks: headers, raw payloads, and the batch JSON.
//
// A Tier is safe for concurrent use and holds no goroutine.
package natstier

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/switchyard/switchyard/internal/apierr"
	"github.com/switchyard/switchyard/subjects"
	"github.com/switchyard/switchyard/workers/cache"
	"github.com/switchyard/switchyard/workers/cache/tier"
)

// Tier calls the cache service on NC.
type Tier struct {
	nc *nats.Conn
}

// New returns a Tier that sends its requests on nc.
func New(nc *nats.Conn) *Tier { return &Tier{nc: nc} }

func (t *Tier) request(ctx context.Context, op, ns string, m *nats.Msg) (*nats.Msg, error) {
	subj, err := subjects.Cache(op, ns)
	if err != nil {
		return nil, err
	}
	m.Subject = subj
	r, err := t.nc.RequestMsgWithContext(ctx, m)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %v", tier.ErrUnavailable, err)
	}
	if code := r.Header.Get(subjects.HeaderErrorCode); code != "" {
		return nil, replyErr(r, code)
	}
	return r, nil
}

// replyErr maps an error reply onto the tier's sentinels.
func replyErr(r *nats.Msg, code string) error {
	var b apierr.Body
	_ = json.Unmarshal(r.Data, &b)
	msg := b.Error.Message
	switch r.Header.Get(subjects.HeaderStatus) {
	case "404":
		return tier.ErrNotFound
	case "413":
		return fmt.Errorf("%w: %s", tier.ErrTooLarge, msg)
	case "503":
		return fmt.Errorf("%w: %s", tier.ErrUnavailable, msg)
	case "507":
		return fmt.Errorf("%w: %s", tier.ErrFull, msg)
	}
	return fmt.Errorf("cache service: %s: %s", code, msg)
}

func safeHeader(key string) bool { return !strings.ContainsAny(key, "\r\n") }

// Get sends cache.get.<ns> with the key as the payload.
func (t *Tier) Get(ctx context.Context, ns, key string) (tier.Entry, error) {
	r, err := t.request(ctx, subjects.CacheOpGet, ns, &nats.Msg{Data: []byte(key)})
	if err != nil {
		return tier.Entry{}, err
	}
	e := tier.Entry{Value: r.Data, ContentType: r.Header.Get("Content-Type")}
	if ms, err := strconv.ParseInt(r.Header.Get(subjects.HeaderCacheExpires), 10, 64); err == nil {
		e.ExpiresAt = time.UnixMilli(ms)
	}
	return e, nil
}

func ttlSeconds(ttl time.Duration) int64 {
	return int64((ttl + time.Second - 1) / time.Second)
}

// Set sends cache.set.<ns> (a batch set for keys a header cannot carry).
func (t *Tier) Set(ctx context.Context, ns, key string, e tier.Entry, ttl time.Duration) error {
	if !safeHeader(key) {
		return t.SetMany(ctx, ns, []tier.Item{{Key: key, Entry: e, TTL: ttl}})
	}
	m := &nats.Msg{Header: nats.Header{
		subjects.HeaderCacheKey: []string{key},
		subjects.HeaderCacheTTL: []string{strconv.FormatInt(ttlSeconds(ttl), 10)},
	}, Data: e.Value}
	if e.ContentType != "" {
		m.Header["Content-Type"] = []string{e.ContentType}
	}
	_, err := t.request(ctx, subjects.CacheOpSet, ns, m)
	return err
}

// Delete sends cache.delete.<ns> with the key as the payload.
func (t *Tier) Delete(ctx context.Context, ns, key string) error {
	_, err := t.request(ctx, subjects.CacheOpDelete, ns, &nats.Msg{Data: []byte(key)})
	return err
}

func (t *Tier) batch(ctx context.Context, ns string, req cache.BatchRequest) (cache.BatchResponse, error) {
	var resp cache.BatchResponse
	data, err := json.Marshal(req)
	if err != nil {
		return resp, err
	}
	r, err := t.request(ctx, subjects.CacheOpBatch, ns, &nats.Msg{Data: data})
	if err != nil {
		return resp, err
	}
	if err := json.Unmarshal(r.Data, &resp); err != nil {
		return resp, fmt.Errorf("cache service: batch answer: %w", err)
	}
	return resp, nil
}

// GetMany sends one cache.batch.<ns> get, values in base64.
func (t *Tier) GetMany(ctx context.Context, ns string, keys []string) ([]tier.Result, error) {
	out := make([]tier.Result, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	resp, err := t.batch(ctx, ns, cache.BatchRequest{Op: cache.BatchGet, Keys: keys, Encoding: cache.EncodingBase64})
	if err != nil {
		return nil, err
	}
	if len(resp.Items) != len(keys) {
		return nil, fmt.Errorf("cache service: %d answers for %d keys", len(resp.Items), len(keys))
	}
	for i, it := range resp.Items {
		if it.Value == nil {
			continue
		}
		v, err := base64.StdEncoding.DecodeString(*it.Value)
		if err != nil {
			return nil, fmt.Errorf("cache service: value of %q: %w", it.Key, err)
		}
		e := tier.Entry{Value: v, ContentType: it.ContentType}
		if it.ExpiresAt != 0 {
			e.ExpiresAt = time.UnixMilli(it.ExpiresAt)
		}
		out[i] = tier.Result{Entry: e, Found: true}
	}
	return out, nil
}

// SetMany sends one cache.batch.<ns> set, values in base64.
func (t *Tier) SetMany(ctx context.Context, ns string, items []tier.Item) error {
	if len(items) == 0 {
		return nil
	}
	req := cache.BatchRequest{Op: cache.BatchSet, Items: make([]cache.BatchItem, len(items))}
	for i, it := range items {
		v := base64.StdEncoding.EncodeToString(it.Entry.Value)
		ttl := ttlSeconds(it.TTL)
		req.Items[i] = cache.BatchItem{Key: it.Key, Value: &v, Encoding: cache.EncodingBase64, ContentType: it.Entry.ContentType, TTL: &ttl}
	}
	_, err := t.batch(ctx, ns, req)
	return err
}

// DeleteMany sends one cache.batch.<ns> delete.
func (t *Tier) DeleteMany(ctx context.Context, ns string, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	_, err := t.batch(ctx, ns, cache.BatchRequest{Op: cache.BatchDelete, Keys: keys})
	return err
}

var (
	_ tier.Tier    = (*Tier)(nil)
	_ tier.Batcher = (*Tier)(nil)
)
