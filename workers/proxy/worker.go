package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/internal/apierr"
	"github.com/switchyard/switchyard/internal/httpnats"
	"github.com/switchyard/switchyard/internal/proxystatus"
	"github.com/switchyard/switchyard/subjects"
	"github.com/switchyard/switchyard/workers/proxy/balancer"
)

// ErrShuttingDown is the cause of the context of requests cut off because
// the worker's shutdown deadline came; they are answered 503 shutting_down.
var ErrShuttingDown = errors.New("proxy worker shutting down")

// Options configures a Worker.
type Options struct {
	NC       *nats.Conn
	Services []config.ResolvedService // those without upstreams are skipped
	// RequestTimeout bounds one client request, all attempts included. A
	// request's Switchyard-Deadline may only shorten it.
	RequestTimeout time.Duration
	// HealthInterval is the period of the active health checks.
	HealthInterval time.Duration
	// MaxConnsPerUpstream bounds the connections to one upstream, all kept
	// alive between requests; a request finding them busy waits for one up
	// to QueueWait, then tries another upstream or is answered 503
	// overloaded.
	MaxConnsPerUpstream int
	// MaxInFlight bounds concurrent requests per service (0: 1024).
	MaxInFlight int
	// QueueWait is how long a request may wait for one of MaxInFlight to
	// end, or for a connection to its upstream, before it is answered 503
	// overloaded with Retry-After (0: no wait at all). At most MaxInFlight
	// requests wait for a slot at once; beyond, the answer is immediate.
	QueueWait time.Duration
	// MaxResponseBytes bounds an upstream response body (502 beyond).
	MaxResponseBytes int64
	Registry         prometheus.Registerer
	Log              *slog.Logger
	Version          string
}

// Worker is a running proxy worker pool.
type Worker struct {
	o        Options
	client   *http.Client
	services map[string]*service
	metrics  *metrics
	pools    map[*balancer.Upstream]*connPool

	mu      sync.Mutex
	subs    []*nats.Subscription
	micro   micro.Service
	started bool
	// ctx ends the health checks, and cuts off in-flight requests at the
	// shutdown deadline (cause ErrShuttingDown); set in New, never changed.
	ctx      context.Context
	cancel   context.CancelCauseFunc
	bg       sync.WaitGroup // health checkers
	serving  sync.WaitGroup // requests received and not yet answered
	inFlight atomic.Int64   // requests being forwarded
	loops    sync.WaitGroup // request goroutines and waiters
	quit     chan struct{}  // closed once requests are drained: idle goroutines exit
	stopped  chan struct{}
	once     sync.Once
}

type service struct {
	name     string
	pool     *balancer.Pool
	sem      chan struct{}  // one token per running request goroutine
	waiting  chan struct{}  // one token per request waiting for a goroutine
	work     chan *nats.Msg // unbuffered: a send succeeds only to an idle goroutine
	inFlight prometheus.Gauge
	lastWarn atomic.Int64 // unix nanos of the last "overloaded" log line
}

// New builds a worker; it subscribes nothing until Run.
func New(o Options) (*Worker, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = 1024
	}
	if o.MaxConnsPerUpstream <= 0 {
		o.MaxConnsPerUpstream = 256
	}
	if o.MaxResponseBytes <= 0 {
		o.MaxResponseBytes = 8 << 20
	}
	if mp := o.NC.MaxPayload() - 64<<10; mp > 0 && mp < o.MaxResponseBytes {
		o.MaxResponseBytes = mp
	}
	bm := balancer.NewMetrics(o.Registry)
	w := &Worker{
		o:        o,
		services: map[string]*service{},
		metrics:  newMetrics(o.Registry),
		stopped:  make(chan struct{}),
		quit:     make(chan struct{}),
	}
	w.ctx, w.cancel = context.WithCancelCause(context.Background())
	w.pools = map[*balancer.Upstream]*connPool{}
	for _, s := range o.Services {
		if len(s.Upstreams) == 0 {
			continue
		}
		p, err := balancer.New(s, bm, o.Log)
		if err != nil {
			return nil, fmt.Errorf("service %s: %w", s.Name, err)
		}
		w.services[s.Name] = &service{name: s.Name, pool: p,
			sem: make(chan struct{}, o.MaxInFlight), waiting: make(chan struct{}, o.MaxInFlight),
			work: make(chan *nats.Msg), inFlight: w.metrics.inFlight.WithLabelValues(s.Name)}
		for _, up := range p.Upstreams() {
			cp := newConnPool(up.Host(), up.URL.Scheme == "https", o.MaxConnsPerUpstream, int(o.MaxResponseBytes))
			cp.maxWait = o.QueueWait
			w.pools[up] = cp
		}
	}
	// The active health checks' client; requests go through the pools.
	dialer := &net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}
	w.client = &http.Client{
		Transport: &http.Transport{
			DialContext:           dialer.DialContext,
			MaxIdleConnsPerHost:   2,
			IdleConnTimeout:       90 * time.Second,
			ExpectContinueTimeout: time.Second,
			DisableCompression:    true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return w, nil
}

// Services lists the services this worker serves.
func (w *Worker) Services() []string {
	out := make([]string, 0, len(w.services))
	for n := range w.services {
		out = append(out, n)
	}
	return out
}

// Run starts the worker if Start was not called and blocks until Shutdown,
// or until ctx ends, when it shuts the worker down itself.
func (w *Worker) Run(ctx context.Context) error {
	w.mu.Lock()
	started := w.started
	w.mu.Unlock()
	if !started {
		if err := w.Start(); err != nil {
			return err
		}
	}
	select {
	case <-w.stopped:
		return nil
	case <-ctx.Done():
		return shutdownOnCancel(ctx, w.Shutdown)
	}
}

// shutdownOnCancel runs shutdown, bounded, for a Run whose ctx ended.
func shutdownOnCancel(ctx context.Context, shutdown func(context.Context) error) error {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return shutdown(sctx)
}

// Start subscribes, registers the micro service and starts the health
// checkers; when it returns the worker receives requests.
func (w *Worker) Start() error {
	hctx := w.ctx
	w.mu.Lock()
	w.started = true
	for _, s := range w.services {
		subj, _ := subjects.ServiceAll(s.name)
		queue, _ := subjects.ServiceQueue(s.name)
		sub, err := w.o.NC.QueueSubscribe(subj, queue, w.handler(s))
		if err != nil {
			w.mu.Unlock()
			w.cancel(ErrShuttingDown)
			return fmt.Errorf("subscribe %s: %w", subj, err)
		}
		// The callback never blocks for long (see handler); this only
		// bounds a burst the callback has not read yet.
		_ = sub.SetPendingLimits(65536, 256<<20)
		w.subs = append(w.subs, sub)
		w.bg.Add(1)
		go func() {
			defer w.bg.Done()
			s.pool.RunHealthChecks(hctx, w.client, w.o.HealthInterval)
		}()
		w.o.Log.Info("proxy worker serving", "service", s.name, "subject", subj, "queue", queue)
	}
	svc, err := micro.AddService(w.o.NC, micro.Config{
		Name:        subjects.ProxyServiceName,
		Version:     semver(w.o.Version),
		Description: "Switchyard proxy worker: forwards svc.<service>.> to HTTP upstreams",
		Metadata:    map[string]string{"services": strings.Join(w.Services(), ",")},
		StatsHandler: func(*micro.Endpoint) any {
			return w.Status()
		},
	})
	if err == nil {
		err = svc.AddEndpoint("status", micro.HandlerFunc(func(r micro.Request) {
			_ = r.RespondJSON(w.Status())
		}), micro.WithEndpointSubject(subjects.ProxyStatus), micro.WithEndpointQueueGroupDisabled())
	}
	if err != nil {
		w.mu.Unlock()
		w.cancel(ErrShuttingDown)
		return fmt.Errorf("register micro service: %w", err)
	}
	w.micro = svc
	w.mu.Unlock()
	return w.o.NC.Flush()
}

// Shutdown drains the subscriptions and waits for in-flight requests until
// shortly before ctx's deadline. Requests still running then are cut off:
// their upstream I/O stops at once and they are answered 503
// shutting_down, so Shutdown returns in time whatever the upstreams do.
// Then it stops the health checkers and closes the connections. Safe to
// call twice.
func (w *Worker) Shutdown(ctx context.Context) error {
	var err error
	w.once.Do(func() {
		w.mu.Lock()
		subs := w.subs
		svc := w.micro
		w.mu.Unlock()
		if svc != nil {
			_ = svc.Stop()
		}
		grace, cancelGrace := cutoff(ctx, 3)
		defer cancelGrace()
		connected := w.o.NC.IsConnected()
		for _, s := range subs {
			if connected {
				_ = s.Drain() // stop receiving, serve what already arrived
			} else {
				_ = s.Unsubscribe() // a drain needs the server
			}
		}
		for _, s := range subs {
			for s.IsValid() && grace.Err() == nil {
				time.Sleep(10 * time.Millisecond)
			}
		}
		done := make(chan struct{})
		go func() { w.serving.Wait(); close(done) }()
		select {
		case <-done:
		case <-grace.Done():
			w.o.Log.Warn("cutting off in-flight requests at the shutdown deadline", "requests", w.inFlight.Load())
			w.cancel(ErrShuttingDown)
			select {
			case <-done:
			case <-ctx.Done():
				err = fmt.Errorf("proxy worker: in-flight requests did not end: %w", ctx.Err())
			}
		}
		w.cancel(ErrShuttingDown)
		close(w.quit)
		w.loops.Wait()
		w.bg.Wait()
		w.client.CloseIdleConnections() // health checks
		for _, p := range w.pools {
			p.close()
		}
		close(w.stopped)
	})
	return err
}

// cutoff returns a context that ends a part of the time left before ctx's
// deadline: 1/div of it, at most a second, earlier. What runs after it
// still has that time to finish.
func cutoff(ctx context.Context, div time.Duration) (context.Context, context.CancelFunc) {
	d, ok := ctx.Deadline()
	if !ok {
		return context.WithCancel(ctx)
	}
	margin := min(time.Until(d)/div, time.Second)
	return context.WithDeadline(ctx, d.Add(-margin))
}

// Status is what the status endpoint answers: every service's upstreams.
func (w *Worker) Status() proxystatus.Report {
	out := make(proxystatus.Report, len(w.services))
	for n, s := range w.services {
		out[n] = s.pool.Snapshot()
	}
	return out
}

// handler hands each request to an idle goroutine of the service, or
// starts one while fewer than MaxInFlight run. Goroutines stay for a while
// after their request, so under load a request costs a channel send instead
// of a new goroutine and its stack growth. With MaxInFlight busy, the
// request waits up to QueueWait for one in a goroutine of its own (at most
// MaxInFlight wait), and is answered 503 overloaded after that: the
// callback itself never blocks, so the subscription keeps reading and no
// request waits in NATS until its timeout.
func (w *Worker) handler(s *service) nats.MsgHandler {
	return func(m *nats.Msg) {
		if m.Reply == "" {
			return // a publish, not a request: nobody to answer
		}
		w.serving.Add(1)
		select {
		case s.work <- m:
			return
		default:
		}
		select {
		case s.sem <- struct{}{}:
			w.loops.Add(1)
			go w.loop(s, m)
			return
		default:
		}
		if w.o.QueueWait > 0 {
			select {
			case s.waiting <- struct{}{}:
				w.loops.Add(1)
				go w.wait(s, m)
				return
			default:
			}
		}
		w.overloaded(s, m)
	}
}

// wait waits up to QueueWait for a request goroutine to take m.
func (w *Worker) wait(s *service, m *nats.Msg) {
	defer w.loops.Done()
	t := time.NewTimer(w.o.QueueWait)
	defer t.Stop()
	select {
	case s.work <- m:
		<-s.waiting
	case s.sem <- struct{}{}:
		<-s.waiting
		w.loops.Add(1)
		w.loop(s, m)
	case <-t.C:
		<-s.waiting
		w.overloaded(s, m)
	}
}

// overloaded answers m 503 overloaded with Retry-After.
func (w *Worker) overloaded(s *service, m *nats.Msg) {
	defer w.serving.Done()
	w.metrics.dropped.WithLabelValues(s.name, "overloaded").Inc()
	if now := time.Now().UnixNano(); now-s.lastWarn.Load() > int64(time.Second) {
		s.lastWarn.Store(now)
		w.o.Log.Warn("service overloaded, rejecting requests", "service", s.name,
			"max_in_flight", w.o.MaxInFlight, "queue_wait", w.o.QueueWait.String())
	}
	reply := httpnats.NewErrorMsg(apierr.Newf(http.StatusServiceUnavailable, apierr.CodeOverloaded,
		"service %s is at its limit of %d requests in flight", s.name, w.o.MaxInFlight).WithRetry(time.Second))
	w.metrics.requests.WithLabelValues(s.name, "error").Inc()
	if err := m.RespondMsg(reply); err != nil {
		w.o.Log.Warn("reply failed", "service", s.name, "err", err)
	}
}

// loop serves m, then further requests from s.work until idle for a while.
func (w *Worker) loop(s *service, m *nats.Msg) {
	defer func() { <-s.sem; w.loops.Done() }()
	idle := time.NewTimer(idleWorker)
	defer idle.Stop()
	for {
		w.serveSafe(s, m)
		idle.Reset(idleWorker)
		select {
		case m = <-s.work:
		case <-idle.C:
			return
		case <-w.quit:
			return
		}
	}
}

// idleWorker is how long a request goroutine waits for more work.
const idleWorker = 10 * time.Second

func (w *Worker) serveSafe(s *service, m *nats.Msg) {
	inFlight := s.inFlight
	inFlight.Inc()
	w.inFlight.Add(1)
	defer func() {
		inFlight.Dec()
		w.inFlight.Add(-1)
		w.serving.Done()
		if r := recover(); r != nil {
			w.o.Log.Error("panic serving request", "service", s.name, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			_ = m.RespondMsg(httpnats.NewErrorMsg(apierr.New(http.StatusInternalServerError, apierr.CodeInternal, "internal error")))
		}
	}()
	w.serve(s, m)
}

// replayable reports whether req may run more than once (see
// httpnats.Request.Replayable).
func replayable(req *httpnats.Request) bool { return req.Replayable() }

func (w *Worker) serve(s *service, m *nats.Msg) {
	start := time.Now()
	req := httpnats.DecodeRequest(m)
	deadline := start.Add(w.o.RequestTimeout)
	var reply *nats.Msg
	if !req.Deadline.IsZero() && !req.Deadline.After(start) {
		// Its caller has stopped waiting: nothing is sent upstream.
		w.metrics.dropped.WithLabelValues(s.name, "expired").Inc()
		w.o.Log.Debug("request expired before it was served", "service", s.name,
			"late_ms", start.Sub(req.Deadline).Milliseconds())
		reply = httpnats.NewErrorMsg(apierr.Newf(http.StatusGatewayTimeout, apierr.CodeTimeout,
			"the request's deadline passed before service %s could serve it", s.name))
	} else {
		if !req.Deadline.IsZero() && req.Deadline.Before(deadline) {
			deadline = req.Deadline
		}
		ctx, cancel := context.WithDeadline(w.ctx, deadline)
		reply = w.forward(ctx, s, m.Subject, &req)
		cancel()
	}
	class := "error"
	if st := reply.Header.Get(subjects.HeaderStatus); st == "" {
		class = "2xx"
	} else if len(st) == 3 {
		class = st[:1] + "xx"
	}
	if reply.Header.Get(subjects.HeaderErrorCode) != "" {
		class = "error"
	}
	w.metrics.requests.WithLabelValues(s.name, class).Inc()
	w.metrics.duration.WithLabelValues(s.name).Observe(time.Since(start).Seconds())
	if err := m.RespondMsg(reply); err != nil {
		if errors.Is(err, nats.ErrMaxPayload) {
			err = m.RespondMsg(httpnats.NewErrorMsg(apierr.New(http.StatusBadGateway, apierr.CodeResponseTooLarge,
				"upstream response exceeds the NATS max_payload")))
		}
		if err != nil {
			w.o.Log.Warn("reply failed", "service", s.name, "err", err)
		}
	}
}

// verdict is what became of one attempt.
type verdict int

func (v verdict) String() string {
	switch v {
	case answered:
		return "answered"
	case notSent:
		return "not_sent"
	case busy:
		return "busy"
	case broken:
		return "broken"
	}
	return "final"
}

const (
	answered verdict = iota // the upstream answered; reply is its answer
	notSent                 // provably nothing reached the upstream
	busy                    // nothing sent: every connection to the upstream stayed busy
	broken                  // sent, then the answer broke off (reset, EOF, garbage)
	final                   // nothing more to try: timeout, shutdown, answer too large
)

// forward tries upstreams until one answers, an error rules out another
// try, or none is left. It returns the last real answer or error, never an
// invented one. A request goes to another upstream when
//   - it provably did not reach the first (the dial failed, or every
//     connection tried was closed before a byte was written): any method;
//   - it was sent and the answer broke off, or the answer is 502/503/504:
//     only when replayable (idempotent, or with an Idempotency-Key), within
//     the service's retry budget.
//
// Each upstream is tried at most once.
//
// The reply names the upstream that answered, or the last one tried
// (subjects.HeaderUpstream). Each attempt is logged at debug level, and a
// move to another upstream at info level once that upstream is picked: the
// log never says it fails over when no upstream is left.
func (w *Worker) forward(ctx context.Context, s *service, subject string, req *httpnats.Request) *nats.Msg {
	again := replayable(req)
	s.pool.RecordRequest()
	var tried []*balancer.Upstream
	var last *nats.Msg
	// What the last attempt asks for: the message and attributes of the
	// move, logged once the next upstream is known.
	var move string
	var moveAttrs []any
	debug := w.o.Log.Enabled(ctx, slog.LevelDebug)
	for {
		up, err := s.pool.Pick(tried)
		if err != nil {
			if last != nil {
				if move != "" {
					w.o.Log.Info("no other upstream to try", append([]any{"service", s.name,
						"upstream", tried[len(tried)-1].Host(), "tried", len(tried)}, moveAttrs...)...)
				}
				return last
			}
			if debug {
				w.o.Log.Debug("no healthy upstream", "service", s.name, "subject", subject)
			}
			return httpnats.NewErrorMsg(apierr.Newf(http.StatusServiceUnavailable, apierr.CodeNoHealthyUpstream,
				"no healthy upstream for service %s", s.name).WithRetry(time.Second))
		}
		if len(tried) > 0 {
			w.metrics.failovers.WithLabelValues(s.name).Inc()
			w.o.Log.Info(move, append([]any{"service", s.name, "from", tried[len(tried)-1].Host(),
				"upstream", up.Host()}, moveAttrs...)...)
		}
		tried = append(tried, up)
		reply, v, cause := w.attempt(ctx, s, up, req, again)
		reply.Header[subjects.HeaderUpstream] = []string{up.Host()}
		if debug {
			w.o.Log.Debug("upstream attempt", "service", s.name, "subject", subject, "method", req.Method,
				"upstream", up.Host(), "attempt", len(tried), "outcome", v.String(),
				"status", reply.Header.Get(subjects.HeaderStatus), "err", cause)
		}
		last = reply
		move, moveAttrs = "", nil
		switch v {
		case answered:
			st := reply.Header.Get(subjects.HeaderStatus)
			if st != "502" && st != "503" && st != "504" || !again || len(tried) == s.pool.Len() {
				return reply
			}
			if !s.pool.AllowRetry() {
				w.metrics.unretried.WithLabelValues(s.name, "budget").Inc()
				return reply
			}
			w.metrics.retries.WithLabelValues(s.name, "status").Inc()
			move, moveAttrs = "retrying on another upstream", []any{"reason", "status", "status", st}
		case notSent:
			if len(tried) == s.pool.Len() {
				return reply // every upstream unreachable: 503 no_healthy_upstream, with the last error
			}
			w.metrics.retries.WithLabelValues(s.name, "not_sent").Inc()
			move, moveAttrs = "failing over to another upstream", []any{"reason", "not_sent", "err", cause}
		case busy:
			if len(tried) == s.pool.Len() {
				w.metrics.dropped.WithLabelValues(s.name, "overloaded").Inc()
				return reply
			}
			w.metrics.retries.WithLabelValues(s.name, "busy").Inc()
			move, moveAttrs = "failing over to another upstream", []any{"reason", "busy", "err", cause}
		case broken:
			if !again {
				w.metrics.unretried.WithLabelValues(s.name, "not_replayable").Inc()
				w.o.Log.Warn("upstream broke off after the request was sent; not retried", "service", s.name,
					"upstream", up.Host(), "method", req.Method, "err", cause)
				return reply
			}
			if len(tried) == s.pool.Len() {
				w.metrics.unretried.WithLabelValues(s.name, "no_upstream_left").Inc()
				return reply
			}
			if !s.pool.AllowRetry() {
				w.metrics.unretried.WithLabelValues(s.name, "budget").Inc()
				return reply
			}
			w.metrics.retries.WithLabelValues(s.name, "broken").Inc()
			move, moveAttrs = "retrying on another upstream", []any{"reason", "broken", "method", req.Method, "err", cause}
		default:
			return reply
		}
	}
}

func timeoutMsg(service string) *nats.Msg {
	return httpnats.NewErrorMsg(apierr.Newf(http.StatusGatewayTimeout, apierr.CodeTimeout,
		"service %s did not answer in time", service))
}

// attempt sends req to up and returns the reply to give the client if
// nothing else is tried, what became of the attempt, and the error behind
// it for the logs.
func (w *Worker) attempt(ctx context.Context, s *service, up *balancer.Upstream, req *httpnats.Request, again bool) (*nats.Msg, verdict, error) {
	pool := w.pools[up]
	done := up.Begin()
	start := time.Now()
	freq := fasthttp.AcquireRequest()
	fresp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(freq)
	defer fasthttp.ReleaseResponse(fresp)
	freq.URI().DisablePathNormalizing = true
	freq.Header.DisableNormalizing()
	freq.Header.SetMethod(req.Method)
	uri := strings.TrimSuffix(up.URL.EscapedPath(), "/") + req.Path
	if req.Query != "" {
		uri += "?" + req.Query
	}
	freq.SetRequestURI(uri)
	freq.Header.SetHost(up.URL.Host)
	for k, vs := range req.Header {
		if k == "Host" || k == "Content-Length" {
			continue
		}
		for _, v := range vs {
			freq.Header.Add(k, v)
		}
	}
	if len(req.Body) > 0 || req.Method == http.MethodPost || req.Method == http.MethodPut || req.Method == http.MethodPatch {
		freq.SetBodyRaw(req.Body)
	}
	if req.Method == http.MethodHead {
		fresp.SkipBody = true
	}
	deadline, _ := ctx.Deadline()
	res, err := pool.do(ctx, freq, fresp, deadline, again)
	if res.staleRetries > 0 {
		w.metrics.retries.WithLabelValues(s.name, "stale_connection").Add(float64(res.staleRetries))
	}
	lat := time.Since(start)
	if err != nil {
		var ns *NotSentError
		var ne net.Error
		switch {
		case errors.Is(context.Cause(ctx), ErrShuttingDown):
			done(balancer.Outcome{Latency: lat})
			w.metrics.dropped.WithLabelValues(s.name, "shutdown").Inc()
			return httpnats.NewErrorMsg(apierr.Newf(http.StatusServiceUnavailable, apierr.CodeShuttingDown,
				"proxy worker shut down before service %s answered", s.name).WithRetry(time.Second)), final, err
		case errors.Is(err, fasthttp.ErrBodyTooLarge):
			done(balancer.Outcome{Status: http.StatusBadGateway, Latency: lat})
			return httpnats.NewErrorMsg(apierr.Newf(http.StatusBadGateway, apierr.CodeResponseTooLarge,
				"upstream response exceeds %d bytes", w.o.MaxResponseBytes)), final, err
		case ctx.Err() != nil, !time.Now().Before(deadline):
			done(balancer.Outcome{Latency: lat})
			return timeoutMsg(s.name), final, err
		case errors.Is(err, errNoFreeConn):
			done(balancer.Outcome{Latency: lat})
			return httpnats.NewErrorMsg(apierr.Newf(http.StatusServiceUnavailable, apierr.CodeOverloaded,
				"every connection to the upstreams of service %s is busy", s.name).WithRetry(time.Second)), busy, err
		case errors.As(err, &ns):
			done(balancer.Outcome{ConnectErr: ns.Dial, Latency: lat})
			return httpnats.NewErrorMsg(apierr.Newf(http.StatusServiceUnavailable, apierr.CodeNoHealthyUpstream,
				"no upstream of service %s could be reached: %v", s.name, ns.Err).WithRetry(time.Second)), notSent, err
		case errors.Is(err, fasthttp.ErrTimeout), errors.As(err, &ne) && ne.Timeout():
			done(balancer.Outcome{Latency: lat})
			return timeoutMsg(s.name), final, err
		case errors.Is(err, errPoolClosed):
			done(balancer.Outcome{Latency: lat})
			return httpnats.NewErrorMsg(apierr.Newf(http.StatusServiceUnavailable, apierr.CodeShuttingDown,
				"proxy worker shut down before service %s answered", s.name).WithRetry(time.Second)), final, err
		}
		done(balancer.Outcome{ConnectErr: true, Latency: lat})
		return httpnats.NewErrorMsg(apierr.Newf(http.StatusBadGateway, apierr.CodeBadGateway,
			"upstream of service %s broke off its answer: %v", s.name, err)), broken, err
	}
	status := fresp.StatusCode()
	done(balancer.Outcome{Status: status, Latency: lat})
	m := &nats.Msg{Header: make(nats.Header, 8), Data: append([]byte(nil), fresp.Body()...)}
	for k, v := range fresp.Header.All() {
		key := string(k)
		if httpnats.HopByHop(key) || key == "Content-Length" {
			continue
		}
		m.Header[key] = append(m.Header[key], string(v))
	}
	if status != http.StatusOK {
		m.Header[subjects.HeaderStatus] = []string{strconv.Itoa(status)}
	}
	return m, answered, nil
}

// semver makes a micro-valid version from ours ("dev" becomes 0.0.0-dev).
func semver(v string) string {
	v = strings.TrimPrefix(v, "v")
	if v != "" && v[0] >= '0' && v[0] <= '9' && strings.Count(v, ".") >= 2 {
		return v
	}
	clean := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '-'
	}, v)
	if clean == "" {
		clean = "unknown"
	}
	return "0.0.0-" + clean
}
