package streamproc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard/switchyard/internal/httpnats"
	"github.com/switchyard/switchyard/internal/streams"
	"github.com/switchyard/switchyard/jetstream"
	"github.com/switchyard/switchyard/subjects"
)

// Options configures a Pool.
type Options struct {
	NC *nats.Conn
	JS natsjs.JetStream
	// Concurrency bounds the chunks of one stream in flight (default 1).
	Concurrency int
	// Workers bounds the chunks in flight over all streams (default 64).
	Workers int
	// Timeout bounds one call to a processing service (default 30s).
	Timeout time.Duration
	// MaxDeliver is the number of attempts per chunk (default 5).
	MaxDeliver int
	// RetryDelay is the first retry's delay; it doubles per attempt, up to 30s (default 1s).
	RetryDelay time.Duration
	// BacklogInterval is how often the backlog gauge is refreshed (default 5s).
	BacklogInterval time.Duration
	Metrics         *streams.Metrics
	Log             *slog.Logger
}

// Pool processes the chunks of every stream with a processing service.
type Pool struct {
	o     Options
	store *streams.Store
	sem   chan struct{}

	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	running map[string]*consumer
	wg      sync.WaitGroup // chunks in flight
	loops   sync.WaitGroup // replica and backlog loops
	started bool
	closing bool // set by Shutdown: no chunk starts after it
	done    chan struct{}
	once    sync.Once
}

type consumer struct {
	rec  *streams.Record
	cc   natsjs.ConsumeContext
	cons natsjs.Consumer
}

// New builds a pool; it consumes nothing until Run.
func New(o Options) (*Pool, error) {
	if o.NC == nil || o.JS == nil || o.Metrics == nil {
		return nil, errors.New("streamproc: NC, JS and Metrics are required")
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 1
	}
	if o.Workers <= 0 {
		o.Workers = 64
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.MaxDeliver <= 0 {
		o.MaxDeliver = 5
	}
	if o.RetryDelay <= 0 {
		o.RetryDelay = time.Second
	}
	if o.BacklogInterval <= 0 {
		o.BacklogInterval = 5 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Pool{o: o, sem: make(chan struct{}, o.Workers), ctx: ctx, cancel: cancel,
		running: map[string]*consumer{}, done: make(chan struct{})}, nil
}

// ConsumerConfig is the declaration of stream id's processing consumer
// with these settings; the edge creates it with the stream. Its ack wait
// is one attempt (the service call, storing the result and the ack, all
// bounded by timeout) plus 5 seconds.
func ConsumerConfig(id string, timeout time.Duration, maxDeliver, concurrency int) (natsjs.ConsumerConfig, error) {
	return jetstream.StreamConsumer(id, timeout+5*time.Second, maxDeliver, concurrency)
}

// outcomeAbandoned: the pool is shutting down; the chunk is naked for
// another worker at once.
const outcomeAbandoned = "abandoned"

// Run watches the streams bucket and consumes every stream with a
// service until Shutdown or ctx ends.
func (p *Pool) Run(ctx context.Context) error {
	store, err := streams.Open(ctx, p.o.JS)
	if err != nil {
		return err
	}
	// Add under the lock Shutdown takes before it waits: after a Shutdown
	// that came first, Run starts nothing.
	p.mu.Lock()
	if p.closing {
		p.mu.Unlock()
		return nil
	}
	p.store, p.started = store, true
	p.loops.Add(2)
	p.mu.Unlock()
	rep := store.NewReplica(p.o.Log, p.onEvent)
	go func() {
		defer p.loops.Done()
		_ = rep.Run(p.ctx)
	}()
	go func() {
		defer p.loops.Done()
		p.backlogLoop()
	}()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), p.o.Timeout)
		defer cancel()
		return p.Shutdown(sctx)
	case <-p.done:
		return nil
	}
}

// onEvent starts or stops consuming a stream as its record changes.
func (p *Pool) onEvent(r *streams.Record, deleted bool) {
	if r.Service == "" {
		return
	}
	if deleted || r.State != streams.StateOpen {
		p.stop(r.ID)
		return
	}
	p.start(r)
}

func (p *Pool) start(r *streams.Record) {
	p.mu.Lock()
	if _, ok := p.running[r.ID]; ok || p.ctx.Err() != nil {
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	log := p.o.Log.With("stream", r.ID, "service", r.Service)
	name, err := subjects.StreamOf(r.ID)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	cc, err := ConsumerConfig(r.ID, p.o.Timeout, p.o.MaxDeliver, p.o.Concurrency)
	if err != nil {
		return
	}
	cons, err := p.o.JS.CreateOrUpdateConsumer(ctx, name, cc)
	if err != nil {
		if !errors.Is(err, natsjs.ErrStreamNotFound) && p.ctx.Err() == nil {
			log.Warn("stream processing consumer", "err", err)
		}
		return
	}
	local := make(chan struct{}, p.o.Concurrency)
	c := &consumer{rec: r, cons: cons}
	c.cc, err = cons.Consume(func(m natsjs.Msg) {
		select { // per stream: keeps at most Concurrency in flight, in order for 1
		case local <- struct{}{}:
		case <-p.ctx.Done():
			_ = m.Nak()
			return
		}
		select { // over all streams
		case p.sem <- struct{}{}:
		case <-p.ctx.Done():
			<-local
			_ = m.Nak()
			return
		}
		p.mu.Lock()
		if p.closing {
			p.mu.Unlock()
			<-p.sem
			<-local
			_ = m.Nak()
			return
		}
		p.wg.Add(1)
		p.mu.Unlock()
		go func() {
			defer func() { <-p.sem; <-local; p.wg.Done() }()
			p.process(r, m)
		}()
	}, natsjs.PullMaxMessages(p.o.Concurrency), natsjs.ConsumeErrHandler(func(_ natsjs.ConsumeContext, err error) {
		if !errors.Is(err, natsjs.ErrNoHeartbeat) && !errors.Is(err, natsjs.ErrConsumerDeleted) &&
			!errors.Is(err, natsjs.ErrConsumerNotFound) && p.ctx.Err() == nil {
			log.Warn("stream processing consumer error", "err", err)
		}
	}))
	if err != nil {
		log.Warn("consume stream", "err", err)
		return
	}
	p.mu.Lock()
	if _, ok := p.running[r.ID]; ok || p.ctx.Err() != nil {
		p.mu.Unlock()
		c.cc.Stop()
		return
	}
	p.running[r.ID] = c
	p.mu.Unlock()
	log.Info("stream processing started")
}

func (p *Pool) stop(id string) {
	p.mu.Lock()
	c := p.running[id]
	delete(p.running, id)
	p.mu.Unlock()
	if c != nil {
		c.cc.Stop()
	}
}

// Consuming reports whether the pool consumes stream id (tests, health).
func (p *Pool) Consuming(id string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.running[id]
	return ok
}

func (p *Pool) process(r *streams.Record, m natsjs.Msg) {
	defer func() {
		if v := recover(); v != nil {
			p.o.Log.Error("panic processing chunk", "stream", r.ID, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			_ = m.NakWithDelay(p.o.RetryDelay)
		}
	}()
	md, err := m.Metadata()
	if err != nil {
		_ = m.Term()
		return
	}
	typ := string(r.Type)
	log := p.o.Log.With("stream", r.ID, "service", r.Service, "seq", md.Sequence.Stream)
	start := time.Now()
	outcome, why := p.attempt(r, m, md.Sequence.Stream)
	switch outcome {
	case streams.OutcomeDone:
		p.o.Metrics.ProcessDuration.WithLabelValues(typ).Observe(time.Since(start).Seconds())
	case streams.OutcomeRetry:
		if md.NumDelivered >= uint64(p.o.MaxDeliver) {
			outcome = streams.OutcomeFailed
			_ = m.Term()
			log.Warn("chunk processing failed, giving up", "attempts", md.NumDelivered, "err", why)
			break
		}
		delay := p.o.RetryDelay << min(md.NumDelivered-1, 5)
		if delay > 30*time.Second {
			delay = 30 * time.Second
		}
		_ = m.NakWithDelay(delay)
		log.Info("chunk processing failed, retrying", "attempt", md.NumDelivered, "delay", delay.String(), "err", why)
	case streams.OutcomeRejected:
		_ = m.Term()
		log.Warn("processing service refused chunk", "err", why)
	case outcomeAbandoned:
		_ = m.Nak()
		return
	case "":
		return // the stream was deleted: nothing to ack
	}
	p.o.Metrics.Processed.WithLabelValues(typ, outcome).Inc()
}

// attempt sends one chunk to its service and stores the answer. It returns
// the outcome and, unless done, why.
func (p *Pool) attempt(r *streams.Record, m natsjs.Msg, seq uint64) (string, string) {
	subj, err := subjects.Service(r.Service, subjects.PathTokens(r.Path)...)
	if err != nil {
		return streams.OutcomeRejected, err.Error()
	}
	seqs := strconv.FormatUint(seq, 10)
	h := http.Header{
		"Content-Type":            {contentType(m.Headers(), r)},
		subjects.HeaderStreamID:   {r.ID},
		subjects.HeaderStreamSeq:  {seqs},
		subjects.HeaderStreamType: {string(r.Type)},
	}
	req := httpnats.NewRequestMsg(subj, http.MethodPost, r.Path, "", h, m.Data())
	ctx, cancel := context.WithTimeout(p.ctx, p.o.Timeout)
	defer cancel()
	reply, err := p.o.NC.RequestMsgWithContext(ctx, req)
	if err != nil {
		if p.ctx.Err() != nil {
			return outcomeAbandoned, ""
		}
		return streams.OutcomeRetry, err.Error()
	}
	resp := httpnats.DecodeResponse(reply)
	switch {
	case resp.Status == http.StatusNoContent:
		// Nothing to store.
	case resp.Status >= 200 && resp.Status < 300:
		out, _ := subjects.StreamOut(r.ID)
		res := nats.NewMsg(out)
		if ct := resp.Header.Get("Content-Type"); ct != "" {
			res.Header.Set("Content-Type", ct)
		}
		res.Header.Set(subjects.HeaderStreamSeq, seqs)
		res.Header.Set(subjects.HeaderMsgID, r.ID+"-"+seqs)
		res.Data = resp.Body
		if _, err := p.o.JS.PublishMsg(ctx, res); err != nil {
			if errors.Is(err, natsjs.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) {
				return "", "" // the stream was deleted
			}
			if p.ctx.Err() != nil {
				return outcomeAbandoned, ""
			}
			return streams.OutcomeRetry, "store result: " + err.Error()
		}
	case resp.Status == http.StatusRequestTimeout || resp.Status == http.StatusTooManyRequests || resp.Status >= 500:
		return streams.OutcomeRetry, "status " + strconv.Itoa(resp.Status)
	default:
		return streams.OutcomeRejected, "status " + strconv.Itoa(resp.Status)
	}
	if err := m.DoubleAck(ctx); err != nil {
		// The result is stored; a redelivery stores it again under the
		// same Nats-Msg-Id, which JetStream drops.
		return streams.OutcomeRetry, "ack: " + err.Error()
	}
	return streams.OutcomeDone, ""
}

func contentType(h nats.Header, r *streams.Record) string {
	if ct := h.Get("Content-Type"); ct != "" {
		return ct
	}
	return r.ContentType()
}

// backlogLoop refreshes the backlog gauge from the consumers' info.
func (p *Pool) backlogLoop() {
	t := time.NewTicker(p.o.BacklogInterval)
	defer t.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-t.C:
		}
		p.mu.Lock()
		cs := make([]*consumer, 0, len(p.running))
		for _, c := range p.running {
			cs = append(cs, c)
		}
		p.mu.Unlock()
		sums := map[streams.Type]float64{}
		for _, c := range cs {
			ctx, cancel := context.WithTimeout(p.ctx, 2*time.Second)
			info, err := c.cons.Info(ctx)
			cancel()
			if err == nil {
				sums[c.rec.Type] += float64(info.NumPending) + float64(info.NumAckPending)
			}
		}
		for _, t := range streams.Types {
			p.o.Metrics.Backlog.WithLabelValues(string(t)).Set(sums[t])
		}
	}
}

// Shutdown stops pulling, waits for the chunks in flight until ctx ends,
// and stops the pool. Safe to call twice.
func (p *Pool) Shutdown(ctx context.Context) error {
	var err error
	p.once.Do(func() {
		p.mu.Lock()
		cs := p.running
		p.running = map[string]*consumer{}
		p.closing = true
		p.mu.Unlock()
		for _, c := range cs {
			c.cc.Stop()
		}
		waited := make(chan struct{})
		go func() { p.wg.Wait(); close(waited) }()
		select {
		case <-waited:
		case <-ctx.Done():
			err = fmt.Errorf("stream processing: %d streams: %w", len(cs), ctx.Err())
		}
		p.cancel() // ends requests still in flight: their chunks are redelivered
		<-waited
		p.loops.Wait()
		close(p.done)
	})
	return err
}
