package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	ijobs "github.com/switchyard/switchyard/internal/jobs"
	"github.com/switchyard/switchyard/jetstream"
	"github.com/switchyard/switchyard/subjects"
)

// ErrShutdownDeadline is returned by Shutdown when jobs were still running
// at its deadline; they were naked and will be redelivered.
var ErrShutdownDeadline = errors.New("job runner: jobs still running at the shutdown deadline were left for redelivery")

// Options configures a Runner.
type Options struct {
	NC       *nats.Conn
	JS       natsjs.JetStream
	Services []string
	// Timeout bounds one attempt of a job.
	Timeout time.Duration
	// AckWait: a delivery not acked, naked or heartbeated within it is
	// redelivered. Heartbeats go every AckWait/3.
	AckWait time.Duration
	// MaxDeliver is the number of attempts before a job fails.
	MaxDeliver int
	// Concurrency bounds the jobs one runner holds at once per service;
	// it pulls no more than that (0: 32).
	Concurrency int
	// MaxResultBytes bounds the body of a job's answer; a larger one fails
	// the job with code result_too_large (0: 8 MiB).
	MaxResultBytes int64
	// PollWait is how long one pull request waits for jobs (0: 1s). A slot
	// freed meanwhile is used by the next pull.
	PollWait time.Duration
	// ResultWriteBudget is how long storing a finished job's record is
	// retried (heartbeating) before the job is handed back to run again
	// (0: 30s). It outlasts a leader election of the jobs bucket.
	ResultWriteBudget time.Duration
	Registry          prometheus.Registerer
	Log               *slog.Logger
}

// Runner executes jobs.
type Runner struct {
	o       Options
	metrics *metrics
	drops   *jetstream.DropWatch // ends calls in flight when NC drops

	mu         sync.Mutex
	store      *ijobs.Store
	advisories *nats.Subscription
	closing    bool // Shutdown started: nothing new is tracked

	// pullCtx ends when Shutdown starts: no new job is pulled.
	pullCtx  context.Context
	stopPull context.CancelFunc
	// jobCtx ends at Shutdown's deadline: running jobs are abandoned.
	jobCtx     context.Context
	cancelJobs context.CancelFunc

	loops   sync.WaitGroup // pull loops
	running sync.WaitGroup // jobs and advisory handlers
	stopped chan struct{}
	once    sync.Once
}

// New builds a runner; it consumes nothing until Start or Run.
func New(o Options) (*Runner, error) {
	if o.NC == nil || o.JS == nil {
		return nil, errors.New("job runner: NC and JS are required")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 32
	}
	if o.MaxResultBytes <= 0 {
		o.MaxResultBytes = 8 << 20
	}
	if o.PollWait <= 0 {
		o.PollWait = time.Second
	}
	if o.ResultWriteBudget <= 0 {
		o.ResultWriteBudget = 30 * time.Second
	}
	if o.AckWait <= 0 {
		o.AckWait = 30 * time.Second
	}
	if o.MaxDeliver <= 0 {
		o.MaxDeliver = 5
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Minute
	}
	r := &Runner{o: o, metrics: newMetrics(o.Registry), drops: jetstream.WatchDrops(o.NC), stopped: make(chan struct{})}
	r.pullCtx, r.stopPull = context.WithCancel(context.Background())
	r.jobCtx, r.cancelJobs = context.WithCancel(context.Background())
	return r, nil
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

// Start declares each service's consumer, starts pulling, and subscribes
// to the max-deliveries advisory of JOBS.
func (r *Runner) Start(ctx context.Context) error {
	store, err := ijobs.Open(ctx, r.o.JS)
	if err != nil {
		return err
	}
	stream, err := r.o.JS.Stream(ctx, subjects.StreamJobs)
	if err != nil {
		return fmt.Errorf("stream %s: %w", subjects.StreamJobs, err)
	}
	r.mu.Lock()
	if r.store != nil {
		r.mu.Unlock()
		return errors.New("job runner: already started")
	}
	r.store = store
	r.mu.Unlock()
	type pull struct {
		svc  string
		cons natsjs.Consumer
	}
	var pulls []pull
	for _, svc := range r.o.Services {
		cc, err := jetstream.JobsConsumer(svc, r.o.AckWait, r.o.MaxDeliver)
		if err != nil {
			return err
		}
		cons, err := stream.CreateOrUpdateConsumer(ctx, cc)
		if err != nil {
			return fmt.Errorf("consumer %s: %w", cc.Durable, err)
		}
		pulls = append(pulls, pull{svc, cons})
	}
	sub, err := r.o.NC.QueueSubscribe(subjects.JobsMaxDeliveries, subjects.JobsAdvisoryQueue, func(m *nats.Msg) {
		if !r.track() {
			return
		}
		defer r.running.Done()
		r.exhausted(stream, m.Data)
	})
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", subjects.JobsMaxDeliveries, err)
	}
	r.mu.Lock()
	r.advisories = sub
	r.mu.Unlock()
	for _, p := range pulls {
		r.loops.Add(1)
		go r.pullLoop(p.svc, p.cons)
		r.o.Log.Info("job runner pulling", "service", p.svc, "stream", subjects.StreamJobs,
			"consumer", p.cons.CachedInfo().Name, "concurrency", r.o.Concurrency)
	}
	return nil
}

// track registers one more running goroutine unless Shutdown is waiting
// for them already.
func (r *Runner) track() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closing {
		return false
	}
	r.running.Add(1)
	return true
}

// pullLoop pulls the jobs of one service, never more than its free slots,
// and runs each one as soon as it arrives.
func (r *Runner) pullLoop(svc string, cons natsjs.Consumer) {
	defer r.loops.Done()
	defer r.recoverLog("pull loop", svc)
	free := make(chan struct{}, r.o.Concurrency)
	for range r.o.Concurrency {
		free <- struct{}{}
	}
	for {
		select {
		case <-free:
		case <-r.pullCtx.Done():
			return
		}
		n := 1
	more:
		for n < r.o.Concurrency {
			select {
			case <-free:
				n++
			default:
				break more
			}
		}
		ctx, cancel := context.WithTimeout(r.pullCtx, r.o.PollWait)
		batch, err := cons.Fetch(n, natsjs.FetchContext(ctx))
		if err != nil {
			cancel()
			for range n {
				free <- struct{}{}
			}
			if r.pullCtx.Err() != nil {
				return
			}
			r.o.Log.Warn("job pull failed", "service", svc, "err", err)
			select {
			case <-time.After(time.Second):
			case <-r.pullCtx.Done():
				return
			}
			continue
		}
		for msg := range batch.Messages() {
			n--
			if r.pullCtx.Err() != nil || !r.track() {
				// Shutting down: hand it back at once rather than after AckWait.
				_ = msg.Nak()
				free <- struct{}{}
				continue
			}
			go func() {
				defer func() { free <- struct{}{}; r.running.Done() }()
				defer r.recoverLog("job", svc)
				r.handle(svc, msg)
			}()
		}
		cancel()
		if err := batch.Error(); err != nil && !errors.Is(err, context.DeadlineExceeded) &&
			!errors.Is(err, context.Canceled) && !errors.Is(err, natsjs.ErrNoHeartbeat) {
			r.o.Log.Warn("job pull ended with an error", "service", svc, "err", err)
		}
		for range n {
			free <- struct{}{}
		}
	}
}

func (r *Runner) recoverLog(what, svc string) {
	if v := recover(); v != nil {
		r.o.Log.Error("job runner panic", "in", what, "service", svc, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
	}
}

// Shutdown stops pulling, waits for running jobs until ctx ends, then
// cancels the rest (naked for redelivery) and returns ErrShutdownDeadline.
// Safe to call twice.
func (r *Runner) Shutdown(ctx context.Context) error {
	var err error
	r.once.Do(func() {
		r.stopPull()
		r.loops.Wait() // each returns within PollWait
		r.mu.Lock()
		adv := r.advisories
		r.closing = true
		r.mu.Unlock()
		if adv != nil {
			_ = adv.Unsubscribe()
		}
		done := make(chan struct{})
		go func() { r.running.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			err = ErrShutdownDeadline
		}
		r.cancelJobs()
		<-done
		close(r.stopped)
	})
	return err
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
	ctx, cancel := context.WithTimeout(r.jobCtx, 10*time.Second)
	defer cancel()
	raw, err := stream.GetMsg(ctx, a.StreamSeq)
	if err != nil {
		return // already gone: acked or terminated meanwhile
	}
	id := raw.Header.Get(subjects.HeaderJobID)
	log := r.o.Log.With("job_id", id, "consumer", a.Consumer, "stream_seq", a.StreamSeq)
	if !ijobs.ValidID(id) {
		return
	}
	get := r.store.Get
	for range 3 {
		rec, err := get(ctx, id)
		if err != nil {
			if !errors.Is(err, ijobs.ErrNotFound) {
				r.metrics.recordErrors.WithLabelValues(serviceOf(raw.Subject), "advisory").Inc()
				log.Warn("job record read failed", "transition", "advisory", "err", err)
				return // the message stays; the record is left as it is
			}
			break
		}
		if ijobs.Final(rec.Status) || (rec.StreamSeq != 0 && rec.StreamSeq != a.StreamSeq) {
			break // finished, or run by another message of the job
		}
		rec.Status = ijobs.StatusFailed
		rec.ErrorCode = ijobs.CodeRunnerLost
		rec.Attempts = int(a.Deliveries)
		rec.LastError = &ijobs.Failure{Code: ijobs.CodeRunnerLost,
			Message: fmt.Sprintf("attempt %d did not finish: its runner stopped before answering, and no attempt is left", a.Deliveries)}
		err = r.store.Update(ctx, rec)
		if errors.Is(err, ijobs.ErrConflict) {
			r.metrics.conflicts.WithLabelValues(rec.Service, "advisory").Inc()
			log.Info("job record changed meanwhile; reading it again", "transition", "advisory")
			get = r.store.GetLatest
			continue
		}
		if err != nil {
			r.metrics.recordErrors.WithLabelValues(rec.Service, "advisory").Inc()
			log.Warn("job record write failed", "transition", "advisory", "err", err)
			return
		}
		r.metrics.outcomes.WithLabelValues(rec.Service, outcomeFailed).Inc()
		log.Warn("job failed: attempts ran out while its runner was gone", "service", rec.Service, "error_code", rec.ErrorCode)
		break
	}
	if err := stream.DeleteMsg(ctx, a.StreamSeq); err != nil {
		log.Warn("could not remove exhausted job from the stream", "err", err)
	}
}

// serviceOf returns the service token of a jobs.<service>.> subject.
func serviceOf(subject string) string {
	s, _, err := subjects.JobCall(subject)
	if err != nil {
		return "unknown"
	}
	return s
}
