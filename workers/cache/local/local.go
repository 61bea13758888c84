package local

import (
	"context"
	"fmt"
	"sort"
	"sync/atomic"
	"time"

	"github.com/switchyard/switchyard/workers/cache/tier"
)

// Policy is an eviction policy.
type Policy string

// Policies.
const (
	LRU     Policy = "lru"
	TinyLFU Policy = "tinylfu"
)

// OtherSpace names the store shared by namespaces without their own.
const OtherSpace = "_other"

// entryOverhead is added to the weight of every entry for the map, list
// and struct it costs.
const entryOverhead = 64

// Space configures one store.
type Space struct {
	Policy Policy
	// MaxBytes bounds the store's entries by weight; it must be positive.
	MaxBytes int64
	// MaxAge caps every entry's life in the store; 0 means only the TTL.
	MaxAge time.Duration
}

// Options configures a Tier.
type Options struct {
	// Spaces are the namespaces with a store of their own.
	Spaces map[string]Space
	// Other is the store of every other namespace.
	Other Space
	// OnEvict, when set, is called for every entry removed to make room
	// ("size") or because it expired ("expired"). It must not call the Tier.
	OnEvict func(space, cause string)
}

// Tier is the local tier.
type Tier struct {
	spaces map[string]*space
	other  *space
}

type space struct {
	name      string
	policy    Policy
	maxBytes  int64
	maxAge    time.Duration
	store     store
	evictions atomic.Int64
	expired   atomic.Int64
}

type item struct {
	value []byte
	ct    string
	exp   int64 // unix nanoseconds; 0: never
}

func (it *item) weight(key string) int64 {
	return int64(len(key)+len(it.value)+len(it.ct)) + entryOverhead
}

type store interface {
	get(key string, now int64) (*item, bool)
	set(key string, it *item)
	del(key string)
	clear()
	entries() int
	bytes() int64
	close()
}

// New returns a local tier. It fails on an unknown policy or a bound that
// is not positive.
func New(o Options) (*Tier, error) {
	t := &Tier{spaces: map[string]*space{}}
	mk := func(name string, s Space) (*space, error) {
		if s.MaxBytes <= 0 {
			return nil, fmt.Errorf("local tier %s: max bytes must be positive", name)
		}
		sp := &space{name: name, policy: s.Policy, maxBytes: s.MaxBytes, maxAge: s.MaxAge}
		onEvict := func(cause string) {
			if cause == "expired" {
				sp.expired.Add(1)
			} else {
				sp.evictions.Add(1)
			}
			if o.OnEvict != nil {
				o.OnEvict(name, cause)
			}
		}
		switch s.Policy {
		case LRU:
			sp.store = newLRU(s.MaxBytes, onEvict)
		case TinyLFU, "":
			sp.policy = TinyLFU
			st, err := newTinyLFU(s.MaxBytes, onEvict)
			if err != nil {
				return nil, fmt.Errorf("local tier %s: %w", name, err)
			}
			sp.store = st
		default:
			return nil, fmt.Errorf("local tier %s: unknown policy %q (want lru or tinylfu)", name, s.Policy)
		}
		return sp, nil
	}
	var err error
	if t.other, err = mk(OtherSpace, o.Other); err != nil {
		return nil, err
	}
	for name, s := range o.Spaces {
		sp, err := mk(name, s)
		if err != nil {
			t.Close()
			return nil, err
		}
		t.spaces[name] = sp
	}
	return t, nil
}

// SpaceOf returns the name of the store that holds namespace ns: ns itself
// when it has its own, else OtherSpace.
func (t *Tier) SpaceOf(ns string) string {
	if _, ok := t.spaces[ns]; ok {
		return ns
	}
	return OtherSpace
}

func (t *Tier) lookup(ns, key string) (*space, string) {
	if sp, ok := t.spaces[ns]; ok {
		return sp, key
	}
	return t.other, ns + "\x00" + key
}

// Get returns the entry of key in namespace ns, or tier.ErrNotFound.
func (t *Tier) Get(_ context.Context, ns, key string) (tier.Entry, error) {
	sp, k := t.lookup(ns, key)
	it, ok := sp.store.get(k, time.Now().UnixNano())
	if !ok {
		return tier.Entry{}, tier.ErrNotFound
	}
	e := tier.Entry{Value: it.value, ContentType: it.ct}
	if it.exp != 0 {
		e.ExpiresAt = time.Unix(0, it.exp)
	}
	return e, nil
}

// Set stores e under key for ttl (0: until evicted or MaxAge).
func (t *Tier) Set(_ context.Context, ns, key string, e tier.Entry, ttl time.Duration) error {
	sp, k := t.lookup(ns, key)
	t.set(sp, k, e, ttl)
	return nil
}

func (t *Tier) set(sp *space, k string, e tier.Entry, ttl time.Duration) {
	if ttl < 0 {
		sp.store.del(k)
		return
	}
	if sp.maxAge > 0 && (ttl == 0 || ttl > sp.maxAge) {
		ttl = sp.maxAge
	}
	it := &item{value: e.Value, ct: e.ContentType}
	if ttl > 0 {
		it.exp = time.Now().Add(ttl).UnixNano()
	}
	if it.weight(k) > sp.maxBytes {
		sp.store.del(k)
		return
	}
	sp.store.set(k, it)
}

// Delete removes key; an absent key is not an error.
func (t *Tier) Delete(_ context.Context, ns, key string) error {
	sp, k := t.lookup(ns, key)
	sp.store.del(k)
	return nil
}

// GetMany returns one Result per key.
func (t *Tier) GetMany(ctx context.Context, ns string, keys []string) ([]tier.Result, error) {
	out := make([]tier.Result, len(keys))
	for i, k := range keys {
		if e, err := t.Get(ctx, ns, k); err == nil {
			out[i] = tier.Result{Entry: e, Found: true}
		}
	}
	return out, nil
}

// SetMany stores every item.
func (t *Tier) SetMany(ctx context.Context, ns string, items []tier.Item) error {
	for _, it := range items {
		_ = t.Set(ctx, ns, it.Key, it.Entry, it.TTL)
	}
	return nil
}

// DeleteMany removes every key.
func (t *Tier) DeleteMany(ctx context.Context, ns string, keys []string) error {
	for _, k := range keys {
		_ = t.Delete(ctx, ns, k)
	}
	return nil
}

// Clear empties every store (after a loss of the invalidation channel).
func (t *Tier) Clear() {
	t.other.store.clear()
	for _, sp := range t.spaces {
		sp.store.clear()
	}
}

// ClearNamespace drops every entry of namespace ns.
func (t *Tier) ClearNamespace(ns string) {
	if sp, ok := t.spaces[ns]; ok {
		sp.store.clear()
		return
	}
	// Namespaces without their own store share one: clearing it is the
	// only way that costs no scan, and it is merely a cache.
	t.other.store.clear()
}

// Stats describes one store.
type Stats struct {
	Space     string `json:"space"`
	Policy    Policy `json:"policy"`
	Entries   int    `json:"entries"`
	Bytes     int64  `json:"bytes"`
	MaxBytes  int64  `json:"max_bytes"`
	Evictions int64  `json:"evictions"`
	Expired   int64  `json:"expired"`
}

// Stats returns every store's figures, sorted by name.
func (t *Tier) Stats() []Stats {
	out := []Stats{t.other.stats()}
	for _, sp := range t.spaces {
		out = append(out, sp.stats())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Space < out[j].Space })
	return out
}

func (sp *space) stats() Stats {
	return Stats{Space: sp.name, Policy: sp.policy, Entries: sp.store.entries(), Bytes: sp.store.bytes(),
		MaxBytes: sp.maxBytes, Evictions: sp.evictions.Load(), Expired: sp.expired.Load()}
}

// Close releases the stores' goroutines. The Tier must not be used after.
func (t *Tier) Close() {
	if t.other != nil {
		t.other.store.close()
	}
	for _, sp := range t.spaces {
		sp.store.close()
	}
}

var (
	_ tier.Tier    = (*Tier)(nil)
	_ tier.Batcher = (*Tier)(nil)
)
