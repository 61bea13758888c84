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
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/internal/apierr"
	"github.com/switchyard/switchyard/internal/httpnats"
	"github.com/switchyard/switchyard/subjects"
	"github.com/switchyard/switchyard/workers/proxy/balancer"
)

// Options configures a Worker.
type Options struct {
	NC       *nats.Conn
	Services []config.ResolvedService // those without upstreams are skipped
	// RequestTimeout bounds one client request, all attempts included.
	RequestTimeout time.Duration
	// HealthInterval is the period of the active health checks.
	HealthInterval time.Duration
	// MaxConnsPerUpstream bounds the connections to one upstream, all kept
	// alive between requests; a request finding them busy waits for one.
	MaxConnsPerUpstream int
	// MaxInFlight bounds concurrent requests per service.
	MaxInFlight int
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
	// ctx ends the health checks, and in-flight requests past the shutdown
	// deadline; set in New and never changed.
	ctx     context.Context
	cancel  context.CancelFunc
	bg      sync.WaitGroup // health checkers
	serving sync.WaitGroup // in-flight requests
	loops   sync.WaitGroup // request goroutines
	quit    chan struct{}  // closed once requests are drained: idle goroutines exit
	stopped chan struct{}
	once    sync.Once
}

type service struct {
	name     string
	pool     *balancer.Pool
	sem      chan struct{}  // one token per running request goroutine
	work     chan *nats.Msg // unbuffered: a send succeeds only to an idle goroutine
	inFlight prometheus.Gauge
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
	w.ctx, w.cancel = context.WithCancel(context.Background())
	w.pools = map[*balancer.Upstream]*connPool{}
	for _, s := range o.Services {
		if len(s.Upstreams) == 0 {
			continue
		}
		p, err := balancer.New(s, bm, o.Log)
		if err != nil {
			return nil, fmt.Errorf("service %s: %w", s.Name, err)
		}
		w.services[s.Name] = &service{name: s.Name, pool: p, sem: make(chan struct{}, o.MaxInFlight),
			work: make(chan *nats.Msg), inFlight: w.metrics.inFlight.WithLabelValues(s.Name)}
		for _, up := range p.Upstreams() {
			w.pools[up] = newConnPool(up.Host(), up.URL.Scheme == "https", o.MaxConnsPerUpstream, int(o.MaxResponseBytes))
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
			w.cancel()
			return fmt.Errorf("subscribe %s: %w", subj, err)
		}
		// Bound what waits while every slot is busy: 64k messages or 256 MiB.
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
		w.cancel()
		return fmt.Errorf("register micro service: %w", err)
	}
	w.micro = svc
	w.mu.Unlock()
	return w.o.NC.Flush()
}

// Shutdown drains the subscriptions, waits for in-flight requests and
// stops the health checkers. Safe to call twice.
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
		connected := w.o.NC.IsConnected()
		for _, s := range subs {
			if connected {
				_ = s.Drain() // stop receiving, serve what already arrived
			} else {
				_ = s.Unsubscribe() // a drain needs the server
			}
		}
		for _, s := range subs {
			for s.IsValid() && ctx.Err() == nil {
				time.Sleep(10 * time.Millisecond)
			}
		}
		done := make(chan struct{})
		go func() { w.serving.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			err = fmt.Errorf("proxy worker: in-flight requests did not finish: %w", ctx.Err())
		}
		w.cancel()
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

// Status is what the status endpoint answers: every service's upstreams.
func (w *Worker) Status() map[string][]balancer.UpstreamStatus {
	out := make(map[string][]balancer.UpstreamStatus, len(w.services))
	for n, s := range w.services {
		out[n] = s.pool.Snapshot()
	}
	return out
}

// handler hands each request to an idle goroutine of the service, or
// starts one while fewer than MaxInFlight run. Goroutines stay for a while
// after their request, so under load a request costs a channel send instead
// of a new goroutine and its stack growth. With MaxInFlight busy the
// callback blocks: further requests wait in the subscription's bounded
// pending queue.
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
		case s.work <- m:
		case s.sem <- struct{}{}:
			w.loops.Add(1)
			go w.loop(s, m)
		}
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
	defer func() {
		inFlight.Dec()
		w.serving.Done()
		if r := recover(); r != nil {
			w.o.Log.Error("panic serving request", "service", s.name, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			_ = m.RespondMsg(httpnats.NewErrorMsg(apierr.New(http.StatusInternalServerError, apierr.CodeInternal, "internal error")))
		}
	}()
	w.serve(s, m)
}

var idempotent = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodOptions: true, http.MethodTrace: true,
	http.MethodPut: true, http.MethodDelete: true,
}

func (w *Worker) serve(s *service, m *nats.Msg) {
	start := time.Now()
	req := httpnats.DecodeRequest(m)
	reply := w.forward(s, req)
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

// forward tries upstreams until one answers or none is left.
func (w *Worker) forward(s *service, req httpnats.Request) *nats.Msg {
	ctx, cancel := context.WithTimeout(w.ctx, w.o.RequestTimeout)
	defer cancel()
	s.pool.RecordRequest()
	var tried []*balancer.Upstream
	var lastErr *apierr.Error
	for {
		up, err := s.pool.Pick(tried)
		if err != nil {
			if lastErr != nil && lastErr.Code != apierr.CodeBadGateway {
				return httpnats.NewErrorMsg(lastErr)
			}
			// Nothing left to try, or every upstream tried refused or reset
			// the connection: the service has no healthy upstream right now.
			return httpnats.NewErrorMsg(apierr.Newf(http.StatusServiceUnavailable, apierr.CodeNoHealthyUpstream,
				"no healthy upstream for service %s", s.name).WithRetry(time.Second).WithCause(lastErr))
		}
		tried = append(tried, up)
		reply, retryable, failover, aerr := w.attempt(ctx, up, req)
		if aerr == nil {
			if retryable && idempotent[req.Method] && len(tried) < s.pool.Len() && s.pool.AllowRetry() {
				w.metrics.retries.WithLabelValues(s.name, "status").Inc()
				w.o.Log.Info("retrying on another upstream", "service", s.name, "upstream", up.URL.Host,
					"status", reply.Header.Get(subjects.HeaderStatus))
				lastErr = nil
				continue
			}
			return reply
		}
		lastErr = aerr
		if ctx.Err() != nil {
			return httpnats.NewErrorMsg(apierr.Newf(http.StatusGatewayTimeout, apierr.CodeTimeout,
				"service %s did not answer within %s", s.name, w.o.RequestTimeout))
		}
		if failover || idempotent[req.Method] && s.pool.AllowRetry() {
			reason := "connect"
			if !failover {
				reason = "error"
			}
			w.metrics.retries.WithLabelValues(s.name, reason).Inc()
			w.o.Log.Info("failing over to another upstream", "service", s.name, "upstream", up.URL.Host, "err", aerr.Err)
			continue
		}
		return httpnats.NewErrorMsg(aerr)
	}
}

// attempt sends req to up. failover is true when the upstream received
// nothing it could have answered (connect failure, or the connection closed
// or reset before the response was read), so another upstream may be tried
// whatever the method.
func (w *Worker) attempt(ctx context.Context, up *balancer.Upstream, req httpnats.Request) (reply *nats.Msg, retryable, failover bool, aerr *apierr.Error) {
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
	err := pool.do(freq, fresp, deadline, idempotent[req.Method])
	lat := time.Since(start)
	if err != nil {
		var ne net.Error
		switch {
		case errors.Is(err, fasthttp.ErrBodyTooLarge):
			done(balancer.Outcome{Status: http.StatusBadGateway, Latency: lat})
			return nil, false, false, apierr.Newf(http.StatusBadGateway, apierr.CodeResponseTooLarge,
				"upstream response exceeds %d bytes", w.o.MaxResponseBytes)
		case ctx.Err() != nil, !time.Now().Before(deadline), errors.Is(err, fasthttp.ErrTimeout),
			errors.As(err, &ne) && ne.Timeout(), errors.Is(err, errNoFreeConn):
			done(balancer.Outcome{Latency: lat})
			return nil, false, false, apierr.New(http.StatusGatewayTimeout, apierr.CodeTimeout, "upstream timed out").WithCause(err)
		}
		done(balancer.Outcome{ConnectErr: true, Latency: lat})
		return nil, false, true, apierr.Newf(http.StatusBadGateway, apierr.CodeBadGateway,
			"upstream %s failed before answering", up.URL.Host).WithCause(err)
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
	return m, status == http.StatusBadGateway || status == http.StatusServiceUnavailable || status == http.StatusGatewayTimeout, false, nil
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
