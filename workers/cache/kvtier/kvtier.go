// Package kvtier is the JetStream KV shared cache tier: one bucket (stream
// KV_<bucket>) holding every namespace under the key <namespace>.<key>.
//
// Expiry is JetStream's per-message TTL (the Nats-TTL header; the bucket
// allows it through LimitMarkerTTL / AllowMsgTTL), so each key has its own
// TTL and a write without TTL makes a key permanent again; a plain KV Put
// would keep neither. The content type travels as the message's
// Content-Type header and the value is the raw payload, so
// `nats kv get cache <ns>.<key>` shows the value as it is.
//
// Keys of [A-Za-z0-9_/-] are stored as they are; every other key (dots,
// spaces, '*', '>', non-ASCII, ...) is stored as "=" + base64url(key), which
// no plain key starts with, so the mapping is reversible (EncodeKey,
// DecodeKey).
//
// Reads are direct gets (any replica answers); a batch read is one
// multi_last direct get; batch writes are pipelined asynchronous publishes.
// A Tier is safe for concurrent use and holds no goroutine.
package kvtier

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
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard/switchyard/workers/cache/tier"
)

// Options configures a Tier.
type Options struct {
	NC *nats.Conn
	JS natsjs.JetStream
	// Bucket is the KV bucket (its stream is KV_<Bucket>); it must exist.
	Bucket string
	// MarkerTTL is how long the marker of a deleted key is kept (default 1m).
	MarkerTTL time.Duration
	// MaxBatchBytes bounds one reply message batch of GetMany (default 8 MiB);
	// larger batches take more round trips.
	MaxBatchBytes int
}

// Tier is the KV shared tier.
type Tier struct {
	o      Options
	stream natsjs.Stream
	prefix string // $KV.<bucket>.
}

// New binds to the bucket's stream. It fails when the bucket does not exist
// or does not allow per-message TTLs.
func New(ctx context.Context, o Options) (*Tier, error) {
	if o.MarkerTTL == 0 {
		o.MarkerTTL = time.Minute
	}
	if o.MaxBatchBytes == 0 {
		o.MaxBatchBytes = 8 << 20
	}
	s, err := o.JS.Stream(ctx, "KV_"+o.Bucket)
	if err != nil {
		return nil, fmt.Errorf("kv tier: bucket %s: %w", o.Bucket, err)
	}
	if !s.CachedInfo().Config.AllowMsgTTL {
		return nil, fmt.Errorf("kv tier: bucket %s does not allow per-key TTLs (LimitMarkerTTL unset)", o.Bucket)
	}
	return &Tier{o: o, stream: s, prefix: "$KV." + o.Bucket + "."}, nil
}

// EncodeKey returns the KV key of key in namespace ns.
func EncodeKey(ns, key string) string {
	if plain(key) {
		return ns + "." + key
	}
	return ns + ".=" + base64.RawURLEncoding.EncodeToString([]byte(key))
}

// DecodeKey reverses EncodeKey.
func DecodeKey(kvKey string) (ns, key string, err error) {
	ns, k, ok := strings.Cut(kvKey, ".")
	if !ok {
		return "", "", fmt.Errorf("kv tier: key %q has no namespace", kvKey)
	}
	if enc, ok := strings.CutPrefix(k, "="); ok {
		b, err := base64.RawURLEncoding.DecodeString(enc)
		if err != nil {
			return "", "", fmt.Errorf("kv tier: key %q: %w", kvKey, err)
		}
		return ns, string(b), nil
	}
	return ns, k, nil
}

func plain(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '/') {
			return false
		}
	}
	return true
}

func (t *Tier) subject(ns, key string) string { return t.prefix + EncodeKey(ns, key) }

// Get returns the entry of key, or tier.ErrNotFound.
func (t *Tier) Get(ctx context.Context, ns, key string) (tier.Entry, error) {
	m, err := t.stream.GetLastMsgForSubject(ctx, t.subject(ns, key))
	if err != nil {
		return tier.Entry{}, mapErr(err)
	}
	e, ok := entryOf(m.Header, m.Data, m.Time)
	if !ok {
		return tier.Entry{}, tier.ErrNotFound
	}
	return e, nil
}

// entryOf turns a stored message into an entry; false for a delete or
// purge marker, a TTL marker, or an expired message the server has not
// removed yet.
func entryOf(h nats.Header, data []byte, at time.Time) (tier.Entry, bool) {
	if h.Get("KV-Operation") != "" || h.Get(natsjs.MarkerReasonHeader) != "" {
		return tier.Entry{}, false
	}
	e := tier.Entry{Value: data, ContentType: h.Get("Content-Type")}
	if v := h.Get(natsjs.MsgTTLHeader); v != "" {
		if d, err := parseTTL(v); err == nil && d > 0 {
			e.ExpiresAt = at.Add(d)
			if e.Expired(time.Now()) {
				return tier.Entry{}, false
			}
		}
	}
	return e, true
}

// parseTTL reads a Nats-TTL value: a Go duration or a number of seconds.
func parseTTL(v string) (time.Duration, error) {
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	return time.ParseDuration(v)
}

func (t *Tier) putMsg(ns, key string, e tier.Entry) *nats.Msg {
	m := &nats.Msg{Subject: t.subject(ns, key), Data: e.Value}
	if e.ContentType != "" {
		m.Header = nats.Header{"Content-Type": []string{e.ContentType}}
	}
	return m
}

// msgTTL rounds ttl up to JetStream's one-second granularity.
func msgTTL(ttl time.Duration) time.Duration {
	return (ttl + time.Second - 1) / time.Second * time.Second
}

// Set stores e under key, with ttl (0: no expiry).
func (t *Tier) Set(ctx context.Context, ns, key string, e tier.Entry, ttl time.Duration) error {
	var opts []natsjs.PublishOpt
	if ttl > 0 {
		opts = append(opts, natsjs.WithMsgTTL(msgTTL(ttl)))
	}
	_, err := t.o.JS.PublishMsg(ctx, t.putMsg(ns, key, e), opts...)
	return mapErr(err)
}

func (t *Tier) delMsg(ns, key string) *nats.Msg {
	return &nats.Msg{Subject: t.subject(ns, key), Header: nats.Header{
		"KV-Operation":   []string{"PURGE"},
		natsjs.MsgRollup: []string{natsjs.MsgRollupSubject},
	}}
}

// Delete purges key: a marker replaces its value and is itself removed
// after MarkerTTL.
func (t *Tier) Delete(ctx context.Context, ns, key string) error {
	_, err := t.o.JS.PublishMsg(ctx, t.delMsg(ns, key), natsjs.WithMsgTTL(t.o.MarkerTTL))
	return mapErr(err)
}

// SetMany publishes every item asynchronously and waits for all acks.
func (t *Tier) SetMany(ctx context.Context, ns string, items []tier.Item) error {
	futs := make([]natsjs.PubAckFuture, 0, len(items))
	for _, it := range items {
		var opts []natsjs.PublishOpt
		if it.TTL > 0 {
			opts = append(opts, natsjs.WithMsgTTL(msgTTL(it.TTL)))
		}
		f, err := t.o.JS.PublishMsgAsync(t.putMsg(ns, it.Key, it.Entry), opts...)
		if err != nil {
			return mapErr(err)
		}
		futs = append(futs, f)
	}
	return waitAcks(ctx, futs)
}

// DeleteMany purges every key with pipelined publishes.
func (t *Tier) DeleteMany(ctx context.Context, ns string, keys []string) error {
	futs := make([]natsjs.PubAckFuture, 0, len(keys))
	for _, k := range keys {
		f, err := t.o.JS.PublishMsgAsync(t.delMsg(ns, k), natsjs.WithMsgTTL(t.o.MarkerTTL))
		if err != nil {
			return mapErr(err)
		}
		futs = append(futs, f)
	}
	return waitAcks(ctx, futs)
}

func waitAcks(ctx context.Context, futs []natsjs.PubAckFuture) error {
	var first error
	for _, f := range futs {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			if first == nil {
				first = mapErr(err)
			}
		case <-ctx.Done():
			return mapErr(ctx.Err())
		}
	}
	return first
}

// multiGetRequest is JetStream's batched direct get (nats-server 2.11+).
type multiGetRequest struct {
	MultiLast []string `json:"multi_last"`
	Batch     int      `json:"batch"`
	MaxBytes  int      `json:"max_bytes"`
}

// GetMany reads keys with multi_last direct gets: one round trip unless
// the values exceed MaxBatchBytes.
func (t *Tier) GetMany(ctx context.Context, ns string, keys []string) ([]tier.Result, error) {
	out := make([]tier.Result, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	idx := make(map[string][]int, len(keys))
	var subjects []string
	for i, k := range keys {
		s := t.subject(ns, k)
		if _, ok := idx[s]; !ok {
			subjects = append(subjects, s)
		}
		idx[s] = append(idx[s], i)
	}
	for len(subjects) > 0 {
		got, truncated, err := t.multiGet(ctx, subjects, out, idx)
		if err != nil {
			return nil, err
		}
		if !truncated {
			break
		}
		rest := subjects[:0]
		for _, s := range subjects {
			if !got[s] {
				rest = append(rest, s)
			}
		}
		subjects = rest
	}
	return out, nil
}

func (t *Tier) multiGet(ctx context.Context, subjects []string, out []tier.Result, idx map[string][]int) (map[string]bool, bool, error) {
	req, _ := json.Marshal(multiGetRequest{MultiLast: subjects, Batch: len(subjects), MaxBytes: t.o.MaxBatchBytes})
	inbox := t.o.NC.NewInbox()
	sub, err := t.o.NC.SubscribeSync(inbox)
	if err != nil {
		return nil, false, mapErr(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	_ = sub.SetPendingLimits(-1, -1) // bounded by MaxBytes of the request
	if err := t.o.NC.PublishRequest("$JS.API.DIRECT.GET."+t.stream.CachedInfo().Config.Name, inbox, req); err != nil {
		return nil, false, mapErr(err)
	}
	got := map[string]bool{}
	size := 0
	for {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			return nil, false, mapErr(err)
		}
		if len(m.Data) == 0 {
			switch m.Header.Get("Status") {
			case "204": // end of batch
				return got, size >= t.o.MaxBatchBytes, nil
			case "404": // none of the keys exists
				return got, false, nil
			case "":
			default:
				return nil, false, fmt.Errorf("kv tier: batch get: %s %s", m.Header.Get("Status"), m.Header.Get("Description"))
			}
		}
		subj := m.Header.Get(natsjs.SubjectHeader)
		size += len(subj) + len(m.Data) + 12
		for k, vs := range m.Header {
			for _, v := range vs {
				size += len(k) + len(v) + 4
			}
		}
		got[subj] = true
		ts, _ := time.Parse(time.RFC3339Nano, m.Header.Get(natsjs.TimeStampHeaer))
		e, ok := entryOf(m.Header, m.Data, ts)
		if !ok {
			continue
		}
		for _, i := range idx[subj] {
			out[i] = tier.Result{Entry: e, Found: true}
		}
	}
}

// Ping reports whether the bucket's stream answers.
func (t *Tier) Ping(ctx context.Context) error {
	_, err := t.stream.Info(ctx)
	return mapErr(err)
}

// mapErr maps JetStream and NATS errors onto the tier's sentinels.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	var apiErr *natsjs.APIError
	switch {
	case errors.Is(err, natsjs.ErrMsgNotFound), errors.Is(err, natsjs.ErrKeyNotFound):
		return tier.ErrNotFound
	case errors.Is(err, nats.ErrMaxPayload), errors.Is(err, natsjs.ErrStreamMessageExceedsMaximum):
		return fmt.Errorf("%w: %v", tier.ErrTooLarge, err)
	case errors.As(err, &apiErr):
		if apiErr.Code == 503 {
			return fmt.Errorf("%w: %v", tier.ErrUnavailable, err)
		}
		if strings.Contains(apiErr.Description, "resources") || strings.Contains(apiErr.Description, "maximum bytes") {
			return fmt.Errorf("%w: %v", tier.ErrFull, err)
		}
		return fmt.Errorf("kv tier: %w", err)
	case errors.Is(err, context.Canceled):
		return err
	}
	// Timeouts, no responders, a closed or reconnecting connection.
	return fmt.Errorf("%w: %v", tier.ErrUnavailable, err)
}

var (
	_ tier.Tier    = (*Tier)(nil)
	_ tier.Batcher = (*Tier)(nil)
	_ tier.Pinger  = (*Tier)(nil)
)
