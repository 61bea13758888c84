// Package jobs runs durable (async) jobs. For every service it consumes
// the durable pull consumer jobs-<service> on stream JOBS, sends each job
// as an HTTP-over-NATS request to svc.<service>.<tokens> (so a proxy worker
// or any NATS worker serves it), and stores the answer in the job's record.
//
// A job is acked only after the service answered and the record holds the
// answer; while it waits the runner sends progress heartbeats, so a job may
// run far longer than the consumer's AckWait, and a runner that dies
// mid-job has its job redelivered after AckWait. No responders, a timeout
// or a retryable Switchyard error (no healthy upstream, 502/503/504 from
// Switchyard itself) naks the job with a growing delay; after MaxDeliver
// attempts it is marked failed with the last error and terminated.
//
// Concurrency: each service's consumer feeds at most Concurrency jobs at
// once; Shutdown stops pulling, waits for running jobs until its context
// ends, then abandons the rest unacked (they are redelivered).
package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard/switchyard/internal/apierr"
	"github.com/switchyard/switchyard/internal/httpnats"
	ijobs "github.com/switchyard/switchyard/internal/jobs"
	"github.com/switchyard/switchyard/jetstream"
	"github.com/switchyard/switchyard/subjects"
)

// Options configures a Runner.
type Options struct {
	NC       *nats.Conn
	JS       natsjs.JetStream
	Services []string
	// Timeout bounds one attempt of a job.
	Timeout time.Duration
	// AckWait: a delivery not acked, naked or heartbeated within it is redelivered.
	AckWait time.Duration
	// MaxDeliver is the number of attempts before a job fails.
	MaxDeliver int
	// Concurrency bounds the jobs one runner executes at once per service (default 32).
	Concurrency int
	Registry    prometheus.Registerer
	Log         *slog.Logger
}

// Runner executes jobs.
type Runner struct {
	o       Options
	store   *ijobs.Store
	metrics *metrics

	mu         sync.Mutex
	ccs        []natsjs.ConsumeContext
	advisories *nats.Subscription
	running    sync.WaitGroup
	ctx        context.Context
	cancel     context.CancelFunc
	stopped    chan struct{}
	once       sync.Once
}

type metrics struct {
	outcomes *prometheus.CounterVec
	duration *prometheus.HistogramVec
	running  *prometheus.GaugeVec
}

// New builds a runner; it consumes nothing until Run.
func New(o Options) (*Runner, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 32
	}
	m := &metrics{
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "switchyard", Subsystem: "jobs", Name: "attempts_total",
			Help: "Job attempts, by service and outcome (done, retry, failed, skipped).",
		}, []string{"service", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "switchyard", Subsystem: "jobs", Name: "attempt_duration_seconds",
			Help:    "Duration of one job attempt, by service.",
			Buckets: prometheus.ExponentialBuckets(0.005, 4, 10),
		}, []string{"service"}),
		running: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "switchyard", Subsystem: "jobs", Name: "running",
			Help: "Jobs being executed, by service.",
		}, []string{"service"}),
	}
	o.Registry.MustRegister(m.outcomes, m.duration, m.running)
	ctx, cancel := context.WithCancel(context.Background())
	return &Runner{o: o, metrics: m, ctx: ctx, cancel: cancel, stopped: make(chan struct{})}, nil
}

// Run starts the runner if Start was not called and blocks until Shutdown,
// or until ctx ends, when it shuts the runner down itself.
func (r *Runner) Run(ctx context.Context) error {
	r.mu.Lock()
	started := r.store != nil
	r.mu.Unlock()
	if !started {
		if err := r.Start(ctx); err != nil {
			return err
		}
	}
	select {
	case <-r.stopped:
		return nil
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		return r.Shutdown(sctx)
	}
}

// Start declares each service's consumer and starts consuming.
func (r *Runner) Start(ctx context.Context) error {
	store, err := ijobs.Open(ctx, r.o.JS)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.store = store
	r.mu.Unlock()
	stream, err := r.o.JS.Stream(ctx, subjects.StreamJobs)
	if err != nil {
		return fmt.Errorf("stream %s: %w", subjects.StreamJobs, err)
	}
	for _, svc := range r.o.Services {
		cc, err := jetstream.JobsConsumer(svc, r.o.AckWait, r.o.MaxDeliver)
		if err != nil {
			return err
		}
		cons, err := stream.CreateOrUpdateConsumer(ctx, cc)
		if err != nil {
			return fmt.Errorf("consumer %s: %w", cc.Durable, err)
		}
		sem := make(chan struct{}, r.o.Concurrency)
		c, err := cons.Consume(func(msg natsjs.Msg) {
			sem <- struct{}{}
			r.running.Add(1)
			go func() {
				defer func() { <-sem; r.running.Done() }()
				r.handle(svc, msg)
			}()
		}, natsjs.PullMaxMessages(r.o.Concurrency), natsjs.ConsumeErrHandler(func(_ natsjs.ConsumeContext, err error) {
			if !errors.Is(err, natsjs.ErrNoHeartbeat) {
				r.o.Log.Warn("jobs consumer error", "service", svc, "err", err)
			}
		}))
		if err != nil {
			return fmt.Errorf("consume %s: %w", cc.Durable, err)
		}
		r.mu.Lock()
		r.ccs = append(r.ccs, c)
		r.mu.Unlock()
		r.o.Log.Info("job runner consuming", "service", svc, "stream", subjects.StreamJobs, "consumer", cc.Durable)
	}
	sub, err := r.o.NC.QueueSubscribe(subjects.JobsMaxDeliveries, subjects.JobsAdvisoryQueue, func(m *nats.Msg) {
		r.exhausted(stream, m.Data)
	})
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", subjects.JobsMaxDeliveries, err)
	}
	r.mu.Lock()
	r.advisories = sub
	r.mu.Unlock()
	return nil
}

// exhausted marks failed a job whose attempts ran out without an ack (its
// runner died during the last one), and removes it from the stream.
func (r *Runner) exhausted(stream natsjs.Stream, advisory []byte) {
	var a struct {
		Consumer   string `json:"consumer"`
		StreamSeq  uint64 `json:"stream_seq"`
		Deliveries uint64 `json:"deliveries"`
	}
	if err := json.Unmarshal(advisory, &a); err != nil || a.StreamSeq == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(r.ctx, 10*time.Second)
	defer cancel()
	raw, err := stream.GetMsg(ctx, a.StreamSeq)
	if err != nil {
		return // already gone: acked or terminated meanwhile
	}
	id := raw.Header.Get(subjects.HeaderJobID)
	log := r.o.Log.With("job_id", id, "consumer", a.Consumer, "stream_seq", a.StreamSeq)
	if rec, err := r.store.Get(ctx, id); err == nil && rec.Status != ijobs.StatusDone && rec.Status != ijobs.StatusFailed {
		rec.Status = ijobs.StatusFailed
		rec.Attempts = int(a.Deliveries)
		rec.LastError = fmt.Sprintf("attempt %d did not finish: its runner stopped before answering, and no attempt is left", a.Deliveries)
		if err := r.store.Put(ctx, rec); err != nil {
			log.Warn("job record update failed", "err", err)
			return
		}
		r.metrics.outcomes.WithLabelValues(rec.Service, "failed").Inc()
		log.Warn("job failed: attempts ran out while its runner was gone", "service", rec.Service)
	}
	if err := stream.DeleteMsg(ctx, a.StreamSeq); err != nil {
		log.Warn("could not remove exhausted job from the stream", "err", err)
	}
}

// Shutdown stops pulling, waits for running jobs until ctx ends, then
// abandons the rest unacked. Safe to call twice.
func (r *Runner) Shutdown(ctx context.Context) error {
	var err error
	r.once.Do(func() {
		r.mu.Lock()
		ccs := r.ccs
		adv := r.advisories
		r.mu.Unlock()
		if adv != nil {
			_ = adv.Unsubscribe()
		}
		for _, c := range ccs {
			c.Stop()
		}
		for _, c := range ccs {
			select {
			case <-c.Closed():
			case <-ctx.Done():
			}
		}
		done := make(chan struct{})
		go func() { r.running.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			err = fmt.Errorf("job runner: jobs still running at the deadline were left for redelivery")
			r.cancel()
			<-done
		}
		r.cancel()
		close(r.stopped)
	})
	return err
}

func (r *Runner) handle(svc string, msg natsjs.Msg) {
	gauge := r.metrics.running.WithLabelValues(svc)
	gauge.Inc()
	defer gauge.Dec()
	start := time.Now()
	md, err := msg.Metadata()
	if err != nil {
		_ = msg.Term()
		return
	}
	id := msg.Headers().Get(subjects.HeaderJobID)
	log := r.o.Log.With("service", svc, "job_id", id, "attempt", md.NumDelivered)
	if !ijobs.ValidID(id) {
		log.Warn("job without a valid id, terminated", "subject", msg.Subject())
		_ = msg.Term()
		return
	}
	ctx := r.ctx
	rec, err := r.store.Get(ctx, id)
	if errors.Is(err, ijobs.ErrNotFound) {
		log.Warn("job record missing (expired or deleted), terminated")
		_ = msg.Term()
		r.metrics.outcomes.WithLabelValues(svc, "skipped").Inc()
		return
	}
	if err != nil {
		_ = msg.NakWithDelay(time.Second)
		return
	}
	if rec.Status == ijobs.StatusDone || rec.Status == ijobs.StatusFailed {
		_ = msg.Ack() // finished before a crash lost the ack
		r.metrics.outcomes.WithLabelValues(svc, "skipped").Inc()
		return
	}
	rec.Status = ijobs.StatusRunning
	rec.Attempts = int(md.NumDelivered)
	if err := r.store.Put(ctx, rec); err != nil {
		log.Warn("job record update failed", "err", err)
	}

	// Heartbeat while the service works, so AckWait only catches dead runners.
	hbCtx, stopHB := context.WithCancel(ctx)
	var hb sync.WaitGroup
	hb.Add(1)
	go func() {
		defer hb.Done()
		t := time.NewTicker(max(r.o.AckWait/3, 50*time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-hbCtx.Done():
				return
			case <-t.C:
				_ = msg.InProgress()
			}
		}
	}()
	reply, reqErr := r.call(ctx, svc, msg)
	stopHB()
	hb.Wait()
	r.metrics.duration.WithLabelValues(svc).Observe(time.Since(start).Seconds())
	if ctx.Err() != nil {
		return // shutting down: leave it for redelivery
	}

	var failure string
	if reqErr != nil {
		failure = reqErr.Error()
	} else if resp := httpnats.DecodeResponse(reply); retryable(resp.ErrorCode) {
		failure = fmt.Sprintf("%d %s: %s", resp.Status, resp.ErrorCode, strings.TrimSpace(string(resp.Body)))
	} else {
		rec.Status = ijobs.StatusDone
		rec.LastError = ""
		rec.Response = &ijobs.Response{Status: resp.Status, Header: resp.Header, Body: resp.Body}
		if err := r.store.Put(ctx, rec); err != nil {
			log.Warn("job record update failed; will retry", "err", err)
			_ = msg.NakWithDelay(time.Second)
			return
		}
		if err := msg.DoubleAck(ctx); err != nil {
			log.Warn("job ack failed", "err", err)
		}
		r.metrics.outcomes.WithLabelValues(svc, "done").Inc()
		log.Info("job done", "status", resp.Status, "duration_ms", time.Since(start).Milliseconds())
		return
	}

	rec.LastError = failure
	if int(md.NumDelivered) >= r.o.MaxDeliver {
		rec.Status = ijobs.StatusFailed
		_ = r.store.Put(ctx, rec)
		_ = msg.Term()
		r.metrics.outcomes.WithLabelValues(svc, "failed").Inc()
		log.Warn("job failed after its last attempt", "err", failure)
		return
	}
	rec.Status = ijobs.StatusQueued
	_ = r.store.Put(ctx, rec)
	delay := min(time.Duration(md.NumDelivered)*time.Duration(md.NumDelivered)*time.Second, time.Minute)
	_ = msg.NakWithDelay(delay)
	r.metrics.outcomes.WithLabelValues(svc, "retry").Inc()
	log.Info("job attempt failed; retrying", "err", failure, "delay", delay.String())
}

func (r *Runner) call(ctx context.Context, svc string, msg natsjs.Msg) (*nats.Msg, error) {
	rest := strings.TrimPrefix(msg.Subject(), subjects.RootJobs+"."+svc+".")
	subj, err := subjects.Service(svc, strings.Split(rest, ".")...)
	if err != nil {
		return nil, err
	}
	req := nats.NewMsg(subj)
	for k, vs := range msg.Headers() {
		if strings.HasPrefix(k, "Nats-") {
			continue
		}
		req.Header[k] = vs
	}
	req.Data = msg.Data()
	ctx, cancel := context.WithTimeout(ctx, r.o.Timeout)
	defer cancel()
	reply, err := r.o.NC.RequestMsgWithContext(ctx, req)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return nil, errors.New("no worker serves " + svc)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return nil, fmt.Errorf("service %s did not answer within %s", svc, r.o.Timeout)
	case err != nil:
		return nil, err
	}
	return reply, nil
}

// retryable reports whether a Switchyard error code means "try again later"
// rather than "the service answered".
func retryable(code string) bool {
	switch code {
	case apierr.CodeNoHealthyUpstream, apierr.CodeNoResponders, apierr.CodeTimeout,
		apierr.CodeUnavailable, apierr.CodeBadGateway, apierr.CodeShuttingDown:
		return true
	}
	return false
}
