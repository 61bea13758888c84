package cache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"

	"github.com/switchyard/switchyard/subjects"
	"github.com/switchyard/switchyard/workers/cache/local"
	"github.com/switchyard/switchyard/workers/cache/tier"
)

// Source says which tier answered a lookup; it is the X-Cache header.
type Source string

// Sources.
const (
	SourceLocal  Source = "HIT-LOCAL"
	SourceShared Source = "HIT-SHARED"
)

// DefaultTTL, passed as a TTL, means the namespace's default TTL.
const DefaultTTL time.Duration = -1

// Namespace is the behaviour of one namespace.
type Namespace struct {
	// DefaultTTL applies to writes without a TTL; 0 means no expiry.
	DefaultTTL time.Duration
	// NoLocal skips the local tier: every read goes to the shared tier.
	NoLocal bool
}

// Options configures a Coordinator.
type Options struct {
	// NC carries invalidations between processes (required).
	NC *nats.Conn
	// Shared is the shared tier (required).
	Shared tier.Tier
	// Backend names the shared tier in stats and logs ("jetstream-kv", "redis").
	Backend string
	// Local configures the local tier's stores.
	Local local.Options
	// Namespaces are the configured namespaces; Default applies to the rest.
	Namespaces map[string]Namespace
	Default    Namespace
	// MaxKeyBytes bounds a key (default 1024).
	MaxKeyBytes int
	// MaxValueBytes bounds a value (default 1 MiB).
	MaxValueBytes int
	// MaxBatchKeys bounds the keys of one batch (default 1000).
	MaxBatchKeys int
	// MaxTTL bounds a TTL (default 365 days).
	MaxTTL time.Duration
	// SharedTimeout bounds one shared-tier operation (default 2s).
	SharedTimeout time.Duration
	// ProbeInterval is how often an unreachable shared tier is probed (default 500ms).
	ProbeInterval time.Duration
	// Registry receives the metrics (nil: a private registry).
	Registry prometheus.Registerer
	Log      *slog.Logger
}

// Coordinator serves cache operations over a local and a shared tier. All
// methods are safe for concurrent use.
type Coordinator struct {
	o      Options
	id     string
	local  *local.Tier
	shared tier.Tier
	m      *Metrics
	states map[string]*nsState
	other  *nsState

	sf       singleflight.Group
	seed     maphash.Seed
	seq      [seqShards]atomic.Uint64
	coherent atomic.Bool
	degraded atomic.Bool
	// joined counts callers registered with a shared-tier read (tests).
	joined atomic.Int64

	sharedOps, sharedNanos, sharedErrors atomic.Int64
	invalSent, invalRecv, invalClears    atomic.Int64

	// base is canceled by Shutdown: shared-tier reads made for several
	// callers (and probes) run under it, not under one caller's context.
	base       context.Context
	cancelBase context.CancelFunc

	sub      *nats.Subscription
	statusCh chan nats.Status
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

const seqShards = 4096

type nsState struct {
	label    string
	cfg      Namespace
	useLocal bool

	hitsLocal, missLocal, hitsShared, missShared, sets, deletes, coalesced        atomic.Int64
	pHitsLocal, pMissLocal, pHitsShared, pMissShared, pSets, pDeletes, pCoalesced prometheus.Counter
}

// New builds a coordinator. Start subscribes to invalidations; Shutdown
// stops it and closes the local tier (not the shared one, which the
// caller owns).
func New(o Options) (*Coordinator, error) {
	if o.NC == nil || o.Shared == nil {
		return nil, errors.New("cache: NC and Shared are required")
	}
	if o.MaxKeyBytes == 0 {
		o.MaxKeyBytes = 1024
	}
	if o.MaxValueBytes == 0 {
		o.MaxValueBytes = 1 << 20
	}
	if o.MaxBatchKeys == 0 {
		o.MaxBatchKeys = 1000
	}
	if o.MaxTTL == 0 {
		o.MaxTTL = 365 * 24 * time.Hour
	}
	if o.SharedTimeout == 0 {
		o.SharedTimeout = 2 * time.Second
	}
	if o.ProbeInterval == 0 {
		o.ProbeInterval = 500 * time.Millisecond
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	for name := range o.Namespaces {
		if err := subjects.ValidName(name); err != nil {
			return nil, fmt.Errorf("cache: namespace %q: %w", name, err)
		}
	}
	c := &Coordinator{o: o, id: nuid.Next(), shared: o.Shared, seed: maphash.MakeSeed(),
		states: map[string]*nsState{}, stop: make(chan struct{}), done: make(chan struct{})}
	c.base, c.cancelBase = context.WithCancel(context.Background())
	c.m = NewMetrics(o.Registry, func() *local.Tier { return c.local })
	lo := o.Local
	userEvict := lo.OnEvict
	lo.OnEvict = func(space, cause string) {
		c.m.evictions.WithLabelValues(space, cause).Inc()
		if userEvict != nil {
			userEvict(space, cause)
		}
	}
	var err error
	if c.local, err = local.New(lo); err != nil {
		c.cancelBase()
		return nil, err
	}
	mk := func(label string, cfg Namespace) *nsState {
		st := &nsState{label: label, cfg: cfg, useLocal: !cfg.NoLocal}
		st.pHitsLocal = c.m.hits.WithLabelValues(label, "local")
		st.pHitsShared = c.m.hits.WithLabelValues(label, "shared")
		st.pMissLocal = c.m.misses.WithLabelValues(label, "local")
		st.pMissShared = c.m.misses.WithLabelValues(label, "shared")
		st.pSets = c.m.sets.WithLabelValues(label)
		st.pDeletes = c.m.deletes.WithLabelValues(label)
		st.pCoalesced = c.m.coalesced.WithLabelValues(label)
		return st
	}
	c.other = mk(local.OtherSpace, o.Default)
	for name, cfg := range o.Namespaces {
		c.states[name] = mk(name, cfg)
	}
	c.m.invalidations.WithLabelValues("sent")
	c.m.invalidations.WithLabelValues("received")
	c.m.invalidations.WithLabelValues("cleared")
	return c, nil
}

// ID is this coordinator's origin id on invalidation messages.
func (c *Coordinator) ID() string { return c.id }

// Metrics returns the coordinator's metrics.
func (c *Coordinator) Metrics() *Metrics { return c.m }

// Start subscribes to invalidations and starts the loop that watches the
// NATS connection and probes a degraded shared tier.
func (c *Coordinator) Start() error {
	subj, err := subjects.CacheAll(subjects.CacheOpInvalidate)
	if err != nil {
		return err
	}
	c.statusCh = c.o.NC.StatusChanged()
	c.sub, err = c.o.NC.Subscribe(subj, c.onInvalidate)
	if err != nil {
		c.o.NC.RemoveStatusListener(c.statusCh)
		return fmt.Errorf("cache: subscribe %s: %w", subj, err)
	}
	// The subscription must be known to the server before local entries
	// can be trusted.
	if err := c.o.NC.Flush(); err == nil {
		c.coherent.Store(true)
	}
	go c.loop()
	return nil
}

// Run blocks until Shutdown or ctx ends.
func (c *Coordinator) Run(ctx context.Context) error {
	select {
	case <-ctx.Done():
	case <-c.stop:
	}
	return nil
}

// Shutdown stops the loop and the subscription and closes the local tier.
// Safe to call twice.
func (c *Coordinator) Shutdown(ctx context.Context) error {
	c.stopOnce.Do(func() {
		close(c.stop)
		c.cancelBase()
		if c.sub != nil {
			_ = c.sub.Unsubscribe()
			c.o.NC.RemoveStatusListener(c.statusCh)
			select {
			case <-c.done:
			case <-ctx.Done():
			}
		}
		c.local.Close()
	})
	return nil
}

func (c *Coordinator) loop() {
	defer close(c.done)
	defer func() {
		if r := recover(); r != nil {
			c.o.Log.Error("panic in cache coordinator loop", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		}
	}()
	tick := time.NewTicker(c.o.ProbeInterval)
	defer tick.Stop()
	var dropped int
	for {
		select {
		case <-c.stop:
			return
		case <-c.statusCh:
			c.checkConn()
		case <-tick.C:
			c.checkConn()
			if d, err := c.sub.Dropped(); err == nil && d > dropped {
				dropped = d
				c.clearLocal("invalidations dropped (slow consumer)")
			}
			if c.degraded.Load() {
				c.probe()
			}
		}
	}
}

// checkConn trusts the local tier only while invalidations can arrive: a
// disconnect stops local reads, a reconnect clears the local tier (what was
// missed meanwhile is unknown) and resumes them.
func (c *Coordinator) checkConn() {
	connected := c.o.NC.Status() == nats.CONNECTED
	switch {
	case !connected && c.coherent.Load():
		c.coherent.Store(false)
		c.o.Log.Warn("cache: NATS disconnected, local tier bypassed until reconnect (unless degraded)")
	case connected && !c.coherent.Load():
		c.clearLocal("NATS reconnected")
		c.coherent.Store(true)
	}
}

func (c *Coordinator) clearLocal(why string) {
	c.local.Clear()
	c.invalClears.Add(1)
	c.m.invalidations.WithLabelValues("cleared").Inc()
	c.o.Log.Info("cache: local tier cleared", "reason", why)
}

func (c *Coordinator) probe() {
	ctx, cancel := context.WithTimeout(c.base, c.o.SharedTimeout)
	defer cancel()
	var err error
	if p, ok := c.shared.(tier.Pinger); ok {
		err = p.Ping(ctx)
	} else {
		_, err = c.shared.Get(ctx, "_probe", "_probe")
		if errors.Is(err, tier.ErrNotFound) {
			err = nil
		}
	}
	if err == nil && c.degraded.CompareAndSwap(true, false) {
		c.m.degraded.Set(0)
		c.o.Log.Info("cache: shared tier reachable again, leaving degraded mode", "backend", c.o.Backend)
	}
}

// localReadable: the local tier answers while invalidations can arrive,
// and in degraded mode (nothing fresher can be read then; entries are at
// most MaxAge old and the tier is cleared on reconnect).
func (c *Coordinator) localReadable() bool { return c.coherent.Load() || c.degraded.Load() }

// Degraded reports whether the shared tier is unreachable.
func (c *Coordinator) Degraded() bool { return c.degraded.Load() }

// Check is a readiness check for /health: an error while degraded.
func (c *Coordinator) Check(context.Context) error {
	if c.degraded.Load() {
		return fmt.Errorf("degraded: shared tier (%s) unreachable; local hits only", c.o.Backend)
	}
	return nil
}

// sharedErr records a shared-tier failure and maps it to the coordinator's
// sentinels; an unreachable tier enters degraded mode.
func (c *Coordinator) sharedErr(op string, err error) error {
	switch {
	case errors.Is(err, tier.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		if c.degraded.CompareAndSwap(false, true) {
			c.m.degraded.Set(1)
			c.o.Log.Warn("cache: shared tier unreachable, entering degraded mode", "backend", c.o.Backend, "op", op, "err", err)
		}
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	case errors.Is(err, tier.ErrFull):
		return fmt.Errorf("%w: %v", ErrFull, err)
	}
	return err
}

func (c *Coordinator) observe(op string, start time.Time, err error) {
	c.sharedOps.Add(1)
	c.sharedNanos.Add(int64(time.Since(start)))
	if err != nil && !errors.Is(err, tier.ErrNotFound) {
		c.sharedErrors.Add(1)
	}
	c.m.observeShared(op, start, err)
}

func (c *Coordinator) state(ns string) *nsState {
	if st, ok := c.states[ns]; ok {
		return st
	}
	return c.other
}

func (c *Coordinator) seqOf(ns, key string) *atomic.Uint64 {
	var h maphash.Hash
	h.SetSeed(c.seed)
	h.WriteString(ns)
	h.WriteByte(0)
	h.WriteString(key)
	return &c.seq[h.Sum64()%seqShards]
}

// ValidNamespace checks a namespace name.
func ValidNamespace(ns string) error {
	if err := subjects.ValidName(ns); err != nil {
		return fmt.Errorf("%w %q: 1 to 64 characters of a-z, 0-9, '_' and '-', starting with a letter or digit", ErrInvalidNamespace, ns)
	}
	return nil
}

func (c *Coordinator) validKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("%w: empty key", ErrInvalidKey)
	case len(key) > c.o.MaxKeyBytes:
		return fmt.Errorf("%w: key of %d bytes exceeds %d", ErrInvalidKey, len(key), c.o.MaxKeyBytes)
	case !utf8.ValidString(key):
		return fmt.Errorf("%w: key is not valid UTF-8", ErrInvalidKey)
	}
	return nil
}

func (c *Coordinator) validate(ns, key string) error {
	if err := ValidNamespace(ns); err != nil {
		return err
	}
	return c.validKey(key)
}

// ttlOf resolves DefaultTTL and checks the bound.
func (c *Coordinator) ttlOf(st *nsState, ttl time.Duration) (time.Duration, error) {
	if ttl < 0 {
		ttl = st.cfg.DefaultTTL
	}
	if ttl > c.o.MaxTTL {
		return 0, fmt.Errorf("%w: %v exceeds the maximum %v", ErrInvalidTTL, ttl, c.o.MaxTTL)
	}
	return ttl, nil
}

// Get returns the entry of key in namespace ns and the tier that answered.
// Errors: ErrNotFound, ErrInvalidNamespace, ErrInvalidKey, ErrUnavailable
// (degraded mode, on a local miss), ctx's error.
func (c *Coordinator) Get(ctx context.Context, ns, key string) (tier.Entry, Source, error) {
	if err := c.validate(ns, key); err != nil {
		return tier.Entry{}, "", err
	}
	st := c.state(ns)
	if st.useLocal && c.localReadable() {
		if e, err := c.local.Get(ctx, ns, key); err == nil {
			st.hitsLocal.Add(1)
			st.pHitsLocal.Inc()
			return e, SourceLocal, nil
		}
		st.missLocal.Add(1)
		st.pMissLocal.Inc()
	}
	if c.degraded.Load() {
		return tier.Entry{}, "", fmt.Errorf("%w: degraded mode", ErrUnavailable)
	}
	// Only the caller whose function runs leads the read; the channel
	// receive orders its write of led before the read below.
	var led bool
	ch := c.sf.DoChan(ns+"\x00"+key, func() (any, error) { led = true; return c.fetch(st, ns, key) })
	c.joined.Add(1)
	select {
	case r := <-ch:
		if r.Shared && !led {
			st.coalesced.Add(1)
			st.pCoalesced.Inc()
		}
		if r.Err != nil {
			return tier.Entry{}, "", r.Err
		}
		return r.Val.(tier.Entry), SourceShared, nil
	case <-ctx.Done():
		return tier.Entry{}, "", ctx.Err()
	}
}

// fetch reads key from the shared tier once for every concurrent caller,
// and fills the local tier unless an invalidation of the key arrived
// meanwhile.
func (c *Coordinator) fetch(st *nsState, ns, key string) (any, error) {
	seq := c.seqOf(ns, key)
	before := seq.Load()
	ctx, cancel := context.WithTimeout(c.base, c.o.SharedTimeout)
	defer cancel()
	start := time.Now()
	e, err := c.shared.Get(ctx, ns, key)
	c.observe("get", start, err)
	if err != nil {
		if errors.Is(err, tier.ErrNotFound) {
			st.missShared.Add(1)
			st.pMissShared.Inc()
			return nil, ErrNotFound
		}
		return nil, c.sharedErr("get", err)
	}
	st.hitsShared.Add(1)
	st.pHitsShared.Inc()
	c.fill(st, ns, key, e, seq, before)
	return e, nil
}

func (c *Coordinator) fill(st *nsState, ns, key string, e tier.Entry, seq *atomic.Uint64, before uint64) {
	if !st.useLocal || !c.coherent.Load() || seq.Load() != before {
		return
	}
	var ttl time.Duration
	if !e.ExpiresAt.IsZero() {
		if ttl = time.Until(e.ExpiresAt); ttl <= 0 {
			return
		}
	}
	_ = c.local.Set(context.Background(), ns, key, e, ttl)
}

// Set writes e under key with ttl (DefaultTTL: the namespace's default; 0:
// no expiry) to the shared tier, then the local tier, then tells the
// other processes. The coordinator keeps e.Value: callers must not modify
// it. Errors: ErrInvalidNamespace, ErrInvalidKey, ErrInvalidTTL,
// ErrTooLarge, ErrUnavailable, ErrFull.
func (c *Coordinator) Set(ctx context.Context, ns, key string, e tier.Entry, ttl time.Duration) error {
	if err := c.validate(ns, key); err != nil {
		return err
	}
	if len(e.Value) > c.o.MaxValueBytes {
		return fmt.Errorf("%w: %d bytes exceeds the limit of %d", ErrTooLarge, len(e.Value), c.o.MaxValueBytes)
	}
	st := c.state(ns)
	ttl, err := c.ttlOf(st, ttl)
	if err != nil {
		return err
	}
	if c.degraded.Load() {
		return fmt.Errorf("%w: degraded mode", ErrUnavailable)
	}
	sctx, cancel := context.WithTimeout(ctx, c.o.SharedTimeout)
	defer cancel()
	start := time.Now()
	err = c.shared.Set(sctx, ns, key, e, ttl)
	c.observe("set", start, err)
	if err != nil {
		return c.sharedErr("set", err)
	}
	c.afterWrite(st, ns, key, &e, ttl)
	st.sets.Add(1)
	st.pSets.Inc()
	c.invalidate(ns, []string{key})
	return nil
}

// afterWrite makes the local tier follow a write (e) or delete (nil).
func (c *Coordinator) afterWrite(st *nsState, ns, key string, e *tier.Entry, ttl time.Duration) {
	c.seqOf(ns, key).Add(1)
	c.sf.Forget(ns + "\x00" + key)
	if e != nil && st.useLocal && c.coherent.Load() {
		_ = c.local.Set(context.Background(), ns, key, *e, ttl)
		return
	}
	_ = c.local.Delete(context.Background(), ns, key)
}

// Delete removes key from both tiers and tells the other processes. An
// absent key is not an error.
func (c *Coordinator) Delete(ctx context.Context, ns, key string) error {
	if err := c.validate(ns, key); err != nil {
		return err
	}
	if c.degraded.Load() {
		return fmt.Errorf("%w: degraded mode", ErrUnavailable)
	}
	st := c.state(ns)
	sctx, cancel := context.WithTimeout(ctx, c.o.SharedTimeout)
	defer cancel()
	start := time.Now()
	err := c.shared.Delete(sctx, ns, key)
	c.observe("delete", start, err)
	if err != nil {
		return c.sharedErr("delete", err)
	}
	c.afterWrite(st, ns, key, nil, 0)
	st.deletes.Add(1)
	st.pDeletes.Inc()
	c.invalidate(ns, []string{key})
	return nil
}

// Result is one answer of GetMany.
type Result struct {
	Entry  tier.Entry
	Found  bool
	Source Source
}

func (c *Coordinator) validBatch(ns string, keys []string) error {
	if err := ValidNamespace(ns); err != nil {
		return err
	}
	if len(keys) > c.o.MaxBatchKeys {
		return fmt.Errorf("%w: %d keys exceed the limit of %d", ErrInvalidBatch, len(keys), c.o.MaxBatchKeys)
	}
	for _, k := range keys {
		if err := c.validKey(k); err != nil {
			return err
		}
	}
	return nil
}

// GetMany looks keys up: the local tier first, then every remaining key
// in one shared-tier round trip. In degraded mode a batch with a local
// miss fails with ErrUnavailable.
func (c *Coordinator) GetMany(ctx context.Context, ns string, keys []string) ([]Result, error) {
	if err := c.validBatch(ns, keys); err != nil {
		return nil, err
	}
	st := c.state(ns)
	out := make([]Result, len(keys))
	var missKeys []string
	var missIdx []int
	useLocal := st.useLocal && c.localReadable()
	for i, k := range keys {
		if useLocal {
			if e, err := c.local.Get(ctx, ns, k); err == nil {
				out[i] = Result{Entry: e, Found: true, Source: SourceLocal}
				st.hitsLocal.Add(1)
				st.pHitsLocal.Inc()
				continue
			}
			st.missLocal.Add(1)
			st.pMissLocal.Inc()
		}
		missKeys = append(missKeys, k)
		missIdx = append(missIdx, i)
	}
	if len(missKeys) == 0 {
		return out, nil
	}
	if c.degraded.Load() {
		return nil, fmt.Errorf("%w: degraded mode", ErrUnavailable)
	}
	seqs := make([]*atomic.Uint64, len(missKeys))
	befores := make([]uint64, len(missKeys))
	for i, k := range missKeys {
		seqs[i] = c.seqOf(ns, k)
		befores[i] = seqs[i].Load()
	}
	sctx, cancel := context.WithTimeout(ctx, c.o.SharedTimeout)
	defer cancel()
	start := time.Now()
	res, err := tier.GetMany(sctx, c.shared, ns, missKeys)
	c.observe("get_many", start, err)
	if err != nil {
		return nil, c.sharedErr("get_many", err)
	}
	for j, r := range res {
		if !r.Found {
			st.missShared.Add(1)
			st.pMissShared.Inc()
			continue
		}
		st.hitsShared.Add(1)
		st.pHitsShared.Inc()
		out[missIdx[j]] = Result{Entry: r.Entry, Found: true, Source: SourceShared}
		c.fill(st, ns, missKeys[j], r.Entry, seqs[j], befores[j])
	}
	return out, nil
}

// SetMany writes every item (TTL DefaultTTL: the namespace's default) in
// one shared-tier round trip. It validates every item before writing any.
func (c *Coordinator) SetMany(ctx context.Context, ns string, items []tier.Item) error {
	keys := make([]string, len(items))
	for i, it := range items {
		keys[i] = it.Key
	}
	if err := c.validBatch(ns, keys); err != nil {
		return err
	}
	st := c.state(ns)
	resolved := make([]tier.Item, len(items))
	for i, it := range items {
		if len(it.Entry.Value) > c.o.MaxValueBytes {
			return fmt.Errorf("%w: key %q: %d bytes exceeds the limit of %d", ErrTooLarge, it.Key, len(it.Entry.Value), c.o.MaxValueBytes)
		}
		ttl, err := c.ttlOf(st, it.TTL)
		if err != nil {
			return fmt.Errorf("key %q: %w", it.Key, err)
		}
		resolved[i] = tier.Item{Key: it.Key, Entry: it.Entry, TTL: ttl}
	}
	if len(items) == 0 {
		return nil
	}
	if c.degraded.Load() {
		return fmt.Errorf("%w: degraded mode", ErrUnavailable)
	}
	sctx, cancel := context.WithTimeout(ctx, c.o.SharedTimeout)
	defer cancel()
	start := time.Now()
	err := tier.SetMany(sctx, c.shared, ns, resolved)
	c.observe("set_many", start, err)
	if err != nil {
		// Some items may have been written: drop them locally everywhere.
		for _, k := range keys {
			c.afterWrite(st, ns, k, nil, 0)
		}
		c.invalidate(ns, keys)
		return c.sharedErr("set_many", err)
	}
	for _, it := range resolved {
		c.afterWrite(st, ns, it.Key, &it.Entry, it.TTL)
	}
	st.sets.Add(int64(len(items)))
	st.pSets.Add(float64(len(items)))
	c.invalidate(ns, keys)
	return nil
}

// DeleteMany deletes every key in one shared-tier round trip.
func (c *Coordinator) DeleteMany(ctx context.Context, ns string, keys []string) error {
	if err := c.validBatch(ns, keys); err != nil {
		return err
	}
	if len(keys) == 0 {
		return nil
	}
	if c.degraded.Load() {
		return fmt.Errorf("%w: degraded mode", ErrUnavailable)
	}
	st := c.state(ns)
	sctx, cancel := context.WithTimeout(ctx, c.o.SharedTimeout)
	defer cancel()
	start := time.Now()
	err := tier.DeleteMany(sctx, c.shared, ns, keys)
	c.observe("delete_many", start, err)
	for _, k := range keys {
		c.afterWrite(st, ns, k, nil, 0)
	}
	c.invalidate(ns, keys)
	if err != nil {
		return c.sharedErr("delete_many", err)
	}
	st.deletes.Add(int64(len(keys)))
	st.pDeletes.Add(float64(len(keys)))
	return nil
}

// invalidate tells every other process to drop keys of ns from its local
// tier: a core-NATS message on cache.inval.<ns>, payload a JSON array of
// keys. A process that misses it (disconnected) clears its local tier on
// reconnect.
func (c *Coordinator) invalidate(ns string, keys []string) {
	subj, err := subjects.Cache(subjects.CacheOpInvalidate, ns)
	if err != nil {
		return
	}
	data, _ := json.Marshal(keys)
	m := &nats.Msg{Subject: subj, Data: data, Header: nats.Header{subjects.HeaderCacheOrigin: []string{c.id}}}
	if err := c.o.NC.PublishMsg(m); err != nil {
		c.o.Log.Debug("cache: invalidation not sent", "namespace", ns, "err", err)
		return
	}
	c.invalSent.Add(1)
	c.m.invalidations.WithLabelValues("sent").Inc()
}

func (c *Coordinator) onInvalidate(m *nats.Msg) {
	if m.Header.Get(subjects.HeaderCacheOrigin) == c.id {
		return
	}
	ns := m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]
	c.invalRecv.Add(1)
	c.m.invalidations.WithLabelValues("received").Inc()
	var keys []string
	if err := json.Unmarshal(m.Data, &keys); err != nil {
		c.o.Log.Warn("cache: malformed invalidation, clearing the namespace", "namespace", ns, "err", err)
		c.local.ClearNamespace(ns)
		return
	}
	for _, k := range keys {
		c.seqOf(ns, k).Add(1)
		_ = c.local.Delete(context.Background(), ns, k)
	}
}

// localGet answers from the local tier only (the NATS fast path); any
// error means "ask Get".
func (c *Coordinator) localGet(ns, key string) (tier.Entry, error) {
	// ns was checked by the caller.
	if c.validKey(key) != nil {
		return tier.Entry{}, ErrInvalidKey
	}
	st := c.state(ns)
	if !st.useLocal || !c.localReadable() {
		return tier.Entry{}, ErrNotFound
	}
	e, err := c.local.Get(context.Background(), ns, key)
	if err != nil {
		return tier.Entry{}, err
	}
	st.hitsLocal.Add(1)
	st.pHitsLocal.Inc()
	return e, nil
}
