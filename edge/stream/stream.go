package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/edge"
	"github.com/switchyard/switchyard/edge/ws"
	"github.com/switchyard/switchyard/internal/streams"
	"github.com/switchyard/switchyard/jetstream"
	"github.com/switchyard/switchyard/part"
	"github.com/switchyard/switchyard/subjects"
	"github.com/switchyard/switchyard/workers/streamproc"
)

// WebSocket close codes a subscriber may receive, besides the shared ones
// of package edge/ws (1001 shutdown, 1008 policy, 1009 too big, 4008 slow).
const (
	// CloseDeleted (1000, reason "deleted"): the stream was deleted.
	CloseDeleted = ws.CloseNormal
	// CloseIdle (4001, reason "idle"): the stream received no chunk within
	// stream.idle_timeout and was closed.
	CloseIdle = 4001
	// CloseExpired (4002, reason "expired"): the stream reached
	// stream.max_age and was closed.
	CloseExpired = 4002
)

func closeCode(reason string) int {
	switch reason {
	case streams.ReasonIdle:
		return CloseIdle
	case streams.ReasonExpired:
		return CloseExpired
	}
	return CloseDeleted
}

// Part runs the stream edge and the stream processing worker pool.
var Part = part.Part{
	Name: "stream", Kind: part.KindEdge,
	Summary: "stream processor edge and processing workers (vision, audio and parameter chunks)",
	Port:    func(c *config.Config) (string, int) { return "STREAM_PORT", c.Server.StreamPort },
	Build:   build,
}

func build(d *part.Deps) ([]part.Component, error) {
	o := d.EdgeOptions("stream")
	o.MaxBodyBytes = max(o.MaxBodyBytes, d.Config.Stream.MaxChunkBytes)
	// The records check is this edge's own: the other edges of the
	// process do not depend on the stream records.
	var h *Handler
	o.Checks = d.Checks.With("streams", func(context.Context) error {
		select {
		case <-h.Ready():
			return nil
		default:
			return errors.New("stream records not loaded yet")
		}
	})
	s := edge.New(o)
	m := streams.NewMetrics(d.Registry)
	h, err := New(context.Background(), s, Options{
		Config: d.Config.Stream, NC: d.NC, JS: d.JS, Assets: jetstream.ForConfig(d.Config),
		Metrics: m, WSMetrics: ws.NewMetrics(d.Registry, "stream"), Log: d.Log,
	})
	if err != nil {
		return nil, err
	}
	pool, err := streamproc.New(streamproc.Options{
		NC: d.NC, JS: d.JS, Concurrency: d.Config.Stream.Concurrency, Workers: d.Config.Stream.Workers,
		Timeout: d.Config.Stream.ProcessTimeout.D(), MaxDeliver: d.Config.Stream.MaxDeliver,
		Metrics: m, Log: d.Log.With("component", "streamproc"),
	})
	if err != nil {
		return nil, err
	}
	return []part.Component{s, h, pool}, nil
}

// Options configures the stream edge's handlers.
type Options struct {
	Config config.Stream
	// NC, when set, makes chunks fail fast (503) while it is disconnected.
	NC      *nats.Conn
	JS      natsjs.JetStream
	Assets  jetstream.Assets
	Metrics *streams.Metrics
	// WSMetrics, when set, counts the subscribers' WebSockets.
	WSMetrics *ws.Metrics
	Log       *slog.Logger
	// BacklogRefresh is how old a stream's backlog figure may be before a
	// chunk request asks JetStream again (default 100ms); chunks accepted
	// since are added to it.
	BacklogRefresh time.Duration
	// JanitorInterval is how often idle and expired streams are looked for
	// (default: a quarter of the shorter timeout, from 1s to 30s).
	JanitorInterval time.Duration
	// OrphanAge is how old a STREAM_<id> JetStream stream without a record
	// must be before the janitor deletes it (default 1m): a create that
	// died between the two leaves one behind.
	OrphanAge time.Duration
}

// Handler serves the stream routes. It is a component: Run keeps its copy
// of the stream records current and closes idle and expired streams;
// Shutdown closes every subscriber with 1001.
type Handler struct {
	o       Options
	srv     *edge.Server
	store   *streams.Store
	replica *streams.Replica
	hub     *ws.Hub

	ctx    context.Context
	cancel context.CancelFunc
	loops  sync.WaitGroup
	subsWG sync.WaitGroup

	mu      sync.Mutex
	subs    map[string]map[*subscriber]struct{}
	backlog map[string]*backlogEntry
	closing bool

	once sync.Once
	done chan struct{}
}

// New binds the streams bucket and adds the routes to s.
func New(ctx context.Context, s *edge.Server, o Options) (*Handler, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.BacklogRefresh <= 0 {
		o.BacklogRefresh = 100 * time.Millisecond
	}
	if o.OrphanAge <= 0 {
		o.OrphanAge = time.Minute
	}
	if o.JanitorInterval <= 0 {
		o.JanitorInterval = 30 * time.Second
		for _, d := range []time.Duration{o.Config.IdleTimeout.D(), o.Config.MaxAge.D()} {
			if d > 0 && d/4 < o.JanitorInterval {
				o.JanitorInterval = max(d/4, time.Second)
			}
		}
	}
	store, err := streams.Open(ctx, o.JS)
	if err != nil {
		return nil, err
	}
	hctx, cancel := context.WithCancel(context.Background())
	h := &Handler{o: o, srv: s, store: store, hub: ws.NewHub(), ctx: hctx, cancel: cancel,
		subs: map[string]map[*subscriber]struct{}{}, backlog: map[string]*backlogEntry{}, done: make(chan struct{})}
	h.replica = store.NewReplica(o.Log, h.onEvent)
	e := s.Echo
	e.POST("/stream/create", h.create)
	e.GET("/streams", h.list)
	e.GET("/stream/:id", h.get)
	e.DELETE("/stream/:id", h.delete)
	e.POST("/stream/:id/chunk", h.chunk)
	e.GET("/stream/:id/subscribe", h.subscribe)
	s.OnShutdown(func(ctx context.Context) { _ = h.Shutdown(ctx) })
	return h, nil
}

// Run keeps the records current and runs the janitor until Shutdown.
func (h *Handler) Run(ctx context.Context) error {
	// Add under the lock Shutdown takes before it waits: a Shutdown that
	// came first (a start that failed) finds no loop to wait for, and
	// Run then starts none.
	h.mu.Lock()
	if h.closing {
		h.mu.Unlock()
		return nil
	}
	h.loops.Add(2)
	h.mu.Unlock()
	go func() {
		defer h.loops.Done()
		_ = h.replica.Run(h.ctx)
	}()
	go func() {
		defer h.loops.Done()
		h.janitor()
	}()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return h.Shutdown(sctx)
	case <-h.done:
		return nil
	}
}

// Ready is closed once the stream records are loaded.
func (h *Handler) Ready() <-chan struct{} { return h.replica.Ready() }

// Shutdown closes every subscriber with 1001 and stops the loops. Safe to call twice.
func (h *Handler) Shutdown(ctx context.Context) error {
	var err error
	h.once.Do(func() {
		h.mu.Lock()
		h.closing = true
		h.mu.Unlock()
		err = h.hub.Shutdown(ctx)
		h.cancel()
		h.subsWG.Wait()
		h.loops.Wait()
		close(h.done)
	})
	return err
}

// onEvent closes the local subscribers of a stream that is closing or gone.
func (h *Handler) onEvent(r *streams.Record, deleted bool) {
	if !deleted && r.State == streams.StateOpen {
		return
	}
	reason := r.Reason
	if reason == "" {
		reason = streams.ReasonDeleted
	}
	h.closeSubscribers(r.ID, reason)
	if deleted {
		h.mu.Lock()
		delete(h.backlog, r.ID)
		h.mu.Unlock()
	}
}

// lookup returns the open stream id, or ErrNotFound. A stream created
// through another process and not yet seen by the watch is read from the bucket.
func (h *Handler) lookup(ctx context.Context, id string) (*streams.Record, error) {
	if !streams.ValidID(id) {
		return nil, streams.ErrNotFound
	}
	r := h.replica.Get(id)
	if r == nil {
		var err error
		if r, err = h.store.Get(ctx, id); err != nil {
			return nil, err
		}
		h.replica.Put(r)
	}
	if r.State != streams.StateOpen {
		return nil, streams.ErrNotFound
	}
	return r, nil
}

// closeStream moves r to closing with reason, closes its subscribers,
// deletes its JetStream stream and then its record. It is idempotent and
// safe against other processes doing the same: the record only moves
// forward (compare-and-set).
func (h *Handler) closeStream(ctx context.Context, r *streams.Record, reason string) error {
	for attempt := 0; r.State == streams.StateOpen; attempt++ {
		err := h.store.MarkClosing(ctx, r, reason)
		if err == nil {
			h.o.Metrics.Closed.WithLabelValues(string(r.Type), reason).Inc()
			h.replica.Put(r)
			break
		}
		if !errors.Is(err, streams.ErrConflict) || attempt > 5 {
			return err
		}
		if r, err = h.store.Get(ctx, r.ID); err != nil {
			return err
		}
	}
	h.closeSubscribers(r.ID, r.Reason)
	name := jetstreamName(r.ID)
	if err := h.o.JS.DeleteStream(ctx, name); err != nil && !errors.Is(err, natsjs.ErrStreamNotFound) {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	if err := h.store.Remove(ctx, r.ID, r.Revision); err != nil && !errors.Is(err, streams.ErrConflict) {
		return err
	}
	h.o.Log.Info("stream closed", "stream", r.ID, "reason", r.Reason)
	return nil
}

// janitor closes idle and expired streams.
func (h *Handler) janitor() {
	idle, maxAge := h.o.Config.IdleTimeout.D(), h.o.Config.MaxAge.D()
	t := time.NewTicker(h.o.JanitorInterval)
	defer t.Stop()
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-t.C:
		}
		counts := map[streams.Type]int{}
		now := time.Now()
		for _, r := range h.replica.List() {
			if r.State != streams.StateOpen {
				continue
			}
			counts[r.Type]++
			reason := ""
			switch {
			case maxAge > 0 && now.Sub(r.Created) > maxAge:
				reason = streams.ReasonExpired
			case idle > 0 && now.Sub(r.Created) > idle:
				if last, ok := h.lastActivity(r); ok && now.Sub(last) > idle {
					reason = streams.ReasonIdle
				}
			}
			if reason == "" {
				continue
			}
			ctx, cancel := context.WithTimeout(h.ctx, 10*time.Second)
			if err := h.closeStream(ctx, r, reason); err != nil && h.ctx.Err() == nil {
				h.o.Log.Warn("close stream", "stream", r.ID, "reason", reason, "err", err)
			}
			cancel()
		}
		for _, t := range streams.Types {
			h.o.Metrics.Streams.WithLabelValues(string(t)).Set(float64(counts[t]))
		}
		h.deleteOrphans()
	}
}

// deleteOrphans deletes the STREAM_<id> JetStream streams that have had
// no record for OrphanAge: left by a create that died half way.
func (h *Handler) deleteOrphans() {
	ctx, cancel := context.WithTimeout(h.ctx, 30*time.Second)
	defer cancel()
	l := h.o.JS.ListStreams(ctx, natsjs.WithStreamListSubject(subjects.StreamsFilter))
	var orphans []string
	for info := range l.Info() {
		id, ok := strings.CutPrefix(info.Config.Name, subjects.StreamPrefix)
		if !ok || h.replica.Get(id) != nil || time.Since(info.Created) < h.o.OrphanAge {
			continue
		}
		orphans = append(orphans, id)
	}
	for _, id := range orphans {
		if _, err := h.store.Get(ctx, id); !errors.Is(err, streams.ErrNotFound) {
			continue
		}
		if err := h.o.JS.DeleteStream(ctx, jetstreamName(id)); err == nil {
			h.o.Log.Info("orphan stream deleted", "stream", id)
		}
	}
}

// lastActivity is the time of the stream's last stored message, or its
// creation when it holds none.
func (h *Handler) lastActivity(r *streams.Record) (time.Time, bool) {
	ctx, cancel := context.WithTimeout(h.ctx, 5*time.Second)
	defer cancel()
	s, err := h.o.JS.Stream(ctx, jetstreamName(r.ID))
	if err != nil {
		return time.Time{}, false
	}
	last := s.CachedInfo().State.LastTime
	if last.Before(r.Created) {
		last = r.Created
	}
	return last, true
}

// jetstreamName is STREAM_<id>; id was validated before.
func jetstreamName(id string) string {
	n, _ := subjects.StreamOf(id)
	return n
}
