package cache

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/switchyard/switchyard/workers/cache/tier"
)

// DefaultNamespace is the namespace of requests that name none.
const DefaultNamespace = "default"

// Batch operations.
const (
	BatchGet    = "get"
	BatchSet    = "set"
	BatchDelete = "delete"
)

// Value encodings in batch JSON.
const (
	// EncodingUTF8: the value is the JSON string itself (the default).
	EncodingUTF8 = "utf8"
	// EncodingBase64: the value is standard base64 of the raw bytes.
	EncodingBase64 = "base64"
)

// BatchRequest is the body of POST /cache/batch and of cache.batch.<ns>.
type BatchRequest struct {
	// Op is get (default), set or delete.
	Op string `json:"op,omitempty"`
	// NS is the namespace (default "default"; on NATS, the subject's).
	NS string `json:"ns,omitempty"`
	// Keys are the keys of a get or delete.
	Keys []string `json:"keys,omitempty"`
	// Items are the entries of a set.
	Items []BatchItem `json:"items,omitempty"`
	// Encoding "base64" makes a get return every value in base64.
	Encoding string `json:"encoding,omitempty"`
}

// BatchItem is one entry: written by a set, returned by a get. Value is
// null for an absent key. A value that is not valid UTF-8 (or any value
// when the request asks for base64) is returned base64-encoded with
// Encoding "base64"; a set may send either encoding.
type BatchItem struct {
	Key         string  `json:"key"`
	Value       *string `json:"value"`
	Encoding    string  `json:"encoding,omitempty"`
	ContentType string  `json:"content_type,omitempty"`
	// TTL in seconds (set only): absent means the namespace default, 0 none.
	TTL *int64 `json:"ttl,omitempty"`
	// Tier answered a get: HIT-LOCAL or HIT-SHARED.
	Tier Source `json:"tier,omitempty"`
	// ExpiresAt (get only) is when the value expires, in Unix milliseconds;
	// absent: never.
	ExpiresAt int64 `json:"expires_at,omitempty"`
}

// BatchResponse answers a batch: Items for a get, Count for a set or delete.
type BatchResponse struct {
	Op    string      `json:"op"`
	NS    string      `json:"ns"`
	Items []BatchItem `json:"items,omitempty"`
	Count int         `json:"count"`
}

// DecodeBatch parses a batch body strictly: unknown fields and trailing
// data are ErrInvalidBatch.
func DecodeBatch(data []byte) (BatchRequest, error) {
	var r BatchRequest
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return r, fmt.Errorf("%w: invalid JSON body: %v", ErrInvalidBatch, err)
	}
	if dec.More() {
		return r, fmt.Errorf("%w: invalid JSON body: data after the JSON value", ErrInvalidBatch)
	}
	return r, nil
}

// ParseTTL reads a TTL in whole seconds: "" is DefaultTTL, "0" no expiry.
func ParseTTL(s string) (time.Duration, error) {
	if s == "" {
		return DefaultTTL, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%w %q: a whole number of seconds, 0 for no expiry", ErrInvalidTTL, s)
	}
	if n > int64(100*365*24*time.Hour/time.Second) {
		return 0, fmt.Errorf("%w %q: too long", ErrInvalidTTL, s)
	}
	return time.Duration(n) * time.Second, nil
}

// Batch runs a batch request: one round trip per tier.
func (c *Coordinator) Batch(ctx context.Context, r BatchRequest) (BatchResponse, error) {
	if r.NS == "" {
		r.NS = DefaultNamespace
	}
	if r.Op == "" {
		r.Op = BatchGet
	}
	resp := BatchResponse{Op: r.Op, NS: r.NS}
	switch r.Op {
	case BatchGet, BatchDelete:
		if len(r.Items) > 0 {
			return resp, fmt.Errorf("%w: %s takes keys, not items", ErrInvalidBatch, r.Op)
		}
	case BatchSet:
		if len(r.Keys) > 0 {
			return resp, fmt.Errorf("%w: set takes items, not keys", ErrInvalidBatch)
		}
	default:
		return resp, fmt.Errorf("%w: op %q (want get, set or delete)", ErrInvalidBatch, r.Op)
	}
	if r.Encoding != "" && (r.Op != BatchGet || r.Encoding != EncodingBase64 && r.Encoding != EncodingUTF8) {
		return resp, fmt.Errorf("%w: encoding %q applies to get only and is utf8 or base64", ErrInvalidBatch, r.Encoding)
	}
	switch r.Op {
	case BatchGet:
		res, err := c.GetMany(ctx, r.NS, r.Keys)
		if err != nil {
			return resp, err
		}
		resp.Items = make([]BatchItem, len(res))
		for i, x := range res {
			it := BatchItem{Key: r.Keys[i]}
			if x.Found {
				v, enc := encodeValue(x.Entry.Value, r.Encoding == EncodingBase64)
				it.Value, it.Encoding, it.ContentType, it.Tier = &v, enc, x.Entry.ContentType, x.Source
				if !x.Entry.ExpiresAt.IsZero() {
					it.ExpiresAt = x.Entry.ExpiresAt.UnixMilli()
				}
				resp.Count++
			}
			resp.Items[i] = it
		}
	case BatchSet:
		items := make([]tier.Item, len(r.Items))
		for i, it := range r.Items {
			if it.Value == nil {
				return resp, fmt.Errorf("%w: item %d (%q) has no value", ErrInvalidBatch, i, it.Key)
			}
			v, err := decodeValue(*it.Value, it.Encoding)
			if err != nil {
				return resp, fmt.Errorf("%w: item %d (%q): %v", ErrInvalidBatch, i, it.Key, err)
			}
			ttl := DefaultTTL
			if it.TTL != nil {
				if ttl, err = ParseTTL(strconv.FormatInt(*it.TTL, 10)); err != nil {
					return resp, fmt.Errorf("item %d (%q): %w", i, it.Key, err)
				}
			}
			if it.Tier != "" || it.ExpiresAt != 0 {
				return resp, fmt.Errorf("%w: item %d (%q): tier and expires_at are answer fields (use ttl)", ErrInvalidBatch, i, it.Key)
			}
			items[i] = tier.Item{Key: it.Key, Entry: tier.Entry{Value: v, ContentType: it.ContentType}, TTL: ttl}
		}
		if err := c.SetMany(ctx, r.NS, items); err != nil {
			return resp, err
		}
		resp.Count = len(items)
	case BatchDelete:
		if err := c.DeleteMany(ctx, r.NS, r.Keys); err != nil {
			return resp, err
		}
		resp.Count = len(r.Keys)
	}
	return resp, nil
}

func encodeValue(v []byte, forceBase64 bool) (string, string) {
	if !forceBase64 && utf8.Valid(v) {
		return string(v), EncodingUTF8
	}
	return base64.StdEncoding.EncodeToString(v), EncodingBase64
}

func decodeValue(s, enc string) ([]byte, error) {
	switch enc {
	case "", EncodingUTF8:
		return []byte(s), nil
	case EncodingBase64:
		return base64.StdEncoding.DecodeString(s)
	}
	return nil, fmt.Errorf("encoding %q (want utf8 or base64)", enc)
}
