// Package lb is the load balancer edge (default port 8082). Every request
// to /<service>/<path> crosses NATS: it becomes an HTTP-over-NATS request
// on svc.<service>.<path tokens> (queue group svc.<service>), served by the
// proxy worker pool (workers/proxy) for services with HTTP upstreams and by
// any NATS client that joins the queue group. A request with
// "Prefer: respond-async" becomes a durable job on stream JOBS instead.
//
// The request carries the instant the edge stops waiting
// (Switchyard-Deadline), so workers drop what expired and stop at it.
// The edge bounds its own in-flight requests (lb.edge_max_in_flight) and
// the bytes of bodies it holds (lb.edge_max_body_memory): beyond, 503
// overloaded with Retry-After. At the shutdown deadline, requests still
// waiting are answered 503 shutting_down.
//
// Errors: unknown service 404 (a discovered service stays known for
// lb.discovery_grace after discovery last saw it); no worker (NATS no-responders) or no healthy
// upstream 503 with Retry-After, at once; the edge's NATS connection
// dropping answers the requests waiting on it at once: 502 outcome_unknown
// once sent, 503 with Retry-After before; past rust.request_timeout 504;
// bodies over the limit 413. The edge holds no state but a cache of the
// micro services it discovered. Handlers are safe for concurrent use.
package lb

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard/switchyard/internal/obs"
	"github.com/switchyard/switchyard/jetstream"
	"github.com/switchyard/switchyard/part"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/edge"
	"github.com/switchyard/switchyard/internal/apierr"
	"github.com/switchyard/switchyard/internal/httpnats"
	ijobs "github.com/switchyard/switchyard/internal/jobs"
	"github.com/switchyard/switchyard/subjects"
)

// Part runs the lb edge.
var Part = part.EdgePart("lb", "load balancer edge (/vision/*, /ai/*, /analytics/* and configured services)",
	func(c *config.Config) (string, int) { return "LB_PORT", c.Server.LBPort }, build)

type handler struct {
	nc         *nats.Conn
	timeout    time.Duration
	maxBody    int64
	configured map[string]config.ResolvedService
	names      []string
	disc       *discovery
	jobs       *ijobs.Store
	jetstream  natsjs.JetStream
	metrics    *metrics
	srv        *edge.Server
	gate       *edge.Gate           // lb.edge_max_in_flight
	bodies     *edge.Budget         // lb.edge_max_body_memory
	loss       *jetstream.DropWatch // ends requests in flight when the connection drops
	log        *slog.Logger
}

func build(s *edge.Server, d *part.Deps) ([]part.Component, error) {
	store, err := ijobs.Open(context.Background(), d.JS)
	if err != nil {
		return nil, err
	}
	h := &handler{
		nc: d.NC, timeout: d.Config.Rust.RequestTimeout.D(), maxBody: d.Config.Server.MaxBodyBytes,
		configured: map[string]config.ResolvedService{},
		disc:       newDiscovery(d.NC, d.Config.LB.DiscoveryInterval.D(), d.Config.LB.DiscoveryGrace.D(), d.Log),
		jobs:       store,
		jetstream:  d.JS,
		metrics:    newMetrics(d.Registry),
		srv:        s,
		gate:       edge.NewGate(d.Config.LB.EdgeMaxInFlight),
		bodies:     edge.NewBudget(max(d.Config.LB.EdgeMaxBodyMemory, d.Config.Server.MaxBodyBytes)),
		loss:       jetstream.WatchDrops(d.NC),
		log:        d.Log,
	}
	for _, rs := range d.Config.ResolveServices() {
		h.configured[rs.Name] = rs
		h.names = append(h.names, rs.Name)
	}
	e := s.Echo
	e.GET("/services", h.services)
	e.GET("/jobs/:id", h.getJob)
	e.GET("/jobs/:id/result", h.getJobResult)
	// "jobs" is not a service: other paths under /jobs are answered here
	// rather than by the service route, and other methods on the routes
	// above 405 (the edge's method handling: the catch-all below does not
	// shadow the edge's own routes).
	e.Any("/jobs", noJobRoute)
	e.Any("/jobs/:id/*", noJobRoute)
	e.Any("/:service", h.route)
	e.Any("/:service/*", h.route)
	return []part.Component{h.disc}, nil
}

// responder names who answered a routed request, for the replies metric:
// "proxy" when the reply names an upstream, or the service has HTTP
// upstreams (the proxy pool's own errors name none); "worker" otherwise.
func (h *handler) responder(service string, resp httpnats.Response) string {
	if resp.Upstream != "" || len(h.configured[service].Upstreams) > 0 {
		return "proxy"
	}
	return "worker"
}

func noJobRoute(c echo.Context) error {
	return apierr.New(http.StatusNotFound, apierr.CodeNotFound, "jobs are at /jobs/{id} and /jobs/{id}/result")
}

func (h *handler) known(name string) bool {
	_, ok := h.configured[name]
	return ok || h.disc.Known(name)
}

func (h *handler) route(c echo.Context) error {
	req := c.Request()
	service := c.Param("service")
	if subjects.ValidName(service) != nil || slices.Contains(config.ReservedServiceNames, service) || !h.known(service) {
		h.log.Debug("no such service", "service", service, "path", req.URL.Path)
		return apierr.Newf(http.StatusNotFound, apierr.CodeUnknownService, "no service %q", service)
	}
	edge.Annotate(c, slog.String("service", service))
	if h.srv.Draining() {
		return apierr.New(http.StatusServiceUnavailable, apierr.CodeShuttingDown, "edge is shutting down").WithRetry(time.Second)
	}
	if !h.nc.IsConnected() {
		// Fail fast: a request sent now would wait in the reconnect buffer
		// until its timeout, and nothing could answer it.
		h.metrics.natsErrors.WithLabelValues(service, "disconnected").Inc()
		return apierr.New(http.StatusServiceUnavailable, apierr.CodeUnavailable, "not connected to NATS").WithRetry(time.Second)
	}
	if !h.gate.Enter() {
		h.metrics.rejected.WithLabelValues("in_flight").Inc()
		return edge.Overloaded("requests in flight")
	}
	defer h.gate.Leave()
	lost := h.loss.Current()
	start := time.Now()
	inFlight := h.metrics.inFlight.WithLabelValues(service)
	inFlight.Inc()
	defer inFlight.Dec()

	hold := h.bodies.Hold(max(req.ContentLength, 0))
	if hold == nil {
		h.metrics.rejected.WithLabelValues("body_memory").Inc()
		return edge.Overloaded("request body memory")
	}
	defer hold.Release()
	body, err := readBody(req, hold, h.maxBody)
	if errors.Is(err, edge.ErrOverBudget) {
		h.metrics.rejected.WithLabelValues("body_memory").Inc()
		return edge.Overloaded("request body memory")
	}
	if err != nil {
		return err
	}
	escaped := req.URL.EscapedPath()
	path := strings.TrimPrefix(escaped, "/"+service)
	if path == "" {
		path = "/"
	}
	unescaped := strings.TrimPrefix(req.URL.Path, "/"+service)
	tokens := subjects.PathTokens(unescaped)
	if isAsync(req.Header) {
		return h.submitJob(c, service, tokens, path, body)
	}
	subj, err := subjects.Service(service, tokens...)
	if err != nil {
		return apierr.Newf(http.StatusBadRequest, apierr.CodeBadRequest, "cannot route path: %v", err)
	}
	msg := httpnats.NewRequestMsg(subj, req.Method, path, req.URL.RawQuery, req.Header, body)
	addForwarded(msg.Header, req)
	// The worker learns when we stop waiting: it drops the request if it
	// gets it later, and stops its upstream I/O then.
	deadline := time.Now().Add(h.timeout)
	httpnats.SetDeadline(msg, deadline)
	if lost.Err() != nil || !h.nc.IsConnected() {
		// The connection dropped before the request was sent: nothing has it.
		h.metrics.natsErrors.WithLabelValues(service, "disconnected").Inc()
		e := apierr.New(http.StatusServiceUnavailable, apierr.CodeUnavailable, "NATS connection lost before the request was sent").WithRetry(time.Second)
		h.metrics.observe(service, e.Status, time.Since(start))
		return e
	}
	// One context per request: the deadline, ended early by the client
	// going away (its parent) or by the connection dropping (AfterFunc,
	// no second context).
	ctx, cancel := context.WithDeadline(req.Context(), deadline)
	defer cancel()
	defer context.AfterFunc(lost, cancel)()
	debug := h.log.Enabled(ctx, slog.LevelDebug)
	if debug {
		h.log.Debug("routing request", "service", service, "subject", subj, "method", req.Method,
			"req_id", req.Header.Get(echo.HeaderXRequestID))
	}
	reply, err := h.nc.RequestMsgWithContext(ctx, msg)
	if err != nil && debug {
		h.log.Debug("routed", "service", service, "subject", subj, "outcome", "nats_error", "err", err,
			"req_id", req.Header.Get(echo.HeaderXRequestID))
	}
	if err != nil && errors.Is(ctx.Err(), context.Canceled) && errors.Is(context.Cause(lost), jetstream.ErrConnLost) && req.Context().Err() == nil {
		// Sent, then the connection dropped: the reply cannot come, and the
		// service may or may not have run the request.
		h.metrics.natsErrors.WithLabelValues(service, "connection_lost").Inc()
		e := apierr.Newf(http.StatusBadGateway, apierr.CodeOutcomeUnknown,
			"the NATS connection dropped after the request to service %s was sent: it may or may not have run", service)
		h.metrics.observe(service, e.Status, time.Since(start))
		return e
	}
	if err != nil {
		e := h.natsError(service, err, req.Context())
		h.metrics.observe(service, e.Status, time.Since(start))
		return e
	}
	// A plain reply's headers go straight into the response's (an error
	// reply's do not: the edge renders it).
	resp := httpnats.DecodeResponseTo(reply, c.Response().Header())
	h.metrics.observe(service, resp.Status, time.Since(start))
	h.metrics.responder.WithLabelValues(service, h.responder(service, resp)).Inc()
	if resp.Upstream != "" {
		edge.Annotate(c, slog.String("upstream", resp.Upstream))
	}
	if debug {
		outcome := "answered"
		if resp.ErrorCode != "" {
			outcome = resp.ErrorCode
		}
		h.log.Debug("routed", "service", service, "subject", subj, "upstream", resp.Upstream,
			"outcome", outcome, "status", resp.Status, "req_id", req.Header.Get(echo.HeaderXRequestID))
	}
	if e := workerError(resp); e != nil {
		return e // rendered by the edge, with the request id like every error
	}
	httpnats.WriteResponse(c.Response(), resp, req.Method == http.MethodHead)
	return nil
}

// workerError returns the error a worker or micro service answered with
// (not a plain upstream response), or nil.
func workerError(resp httpnats.Response) *apierr.Error {
	if resp.ErrorCode == "" || resp.Status < 400 {
		return nil
	}
	var body apierr.Body
	if json.Unmarshal(resp.Body, &body) != nil || body.Error.Message == "" {
		body.Error.Message = http.StatusText(resp.Status)
	}
	e := &apierr.Error{Status: resp.Status, Code: resp.ErrorCode, Message: body.Error.Message}
	if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && ra > 0 {
		e.RetryAfter = time.Duration(ra) * time.Second
	}
	return e
}

func (h *handler) natsError(service string, err error, reqCtx context.Context) *apierr.Error {
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		h.metrics.natsErrors.WithLabelValues(service, "no_responders").Inc()
		return apierr.Newf(http.StatusServiceUnavailable, apierr.CodeNoResponders,
			"no worker is serving service %s", service).WithRetry(time.Second)
	case errors.Is(err, nats.ErrMaxPayload):
		h.metrics.natsErrors.WithLabelValues(service, "max_payload").Inc()
		return apierr.TooLarge(h.nc.MaxPayload()) // the NATS server's max_payload, below ours
	case errors.Is(context.Cause(reqCtx), edge.ErrShuttingDown):
		return apierr.Newf(http.StatusServiceUnavailable, apierr.CodeShuttingDown,
			"edge shut down before service %s answered", service).WithRetry(time.Second)
	case reqCtx.Err() != nil:
		return apierr.New(499, "canceled", "client went away").WithCause(err)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		h.metrics.natsErrors.WithLabelValues(service, "timeout").Inc()
		return apierr.Newf(http.StatusGatewayTimeout, apierr.CodeTimeout,
			"service %s did not answer within %s", service, h.timeout)
	default:
		h.metrics.natsErrors.WithLabelValues(service, "other").Inc()
		return apierr.New(http.StatusServiceUnavailable, apierr.CodeUnavailable, "NATS request failed").
			WithRetry(time.Second).WithCause(err)
	}
}

// readBody reads the whole body within limit (413 beyond), holding its
// bytes against the edge's body memory (edge.ErrOverBudget when full).
// Bodies over the limit with a Content-Length were refused by the edge's
// middleware already; the middleware's MaxBytesReader catches the others.
func readBody(req *http.Request, hold *edge.Hold, limit int64) ([]byte, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return nil, nil
	}
	var buf bytes.Buffer
	if req.ContentLength > 0 {
		buf.Grow(int(min(req.ContentLength, limit)) + bytes.MinRead) // room to see EOF without regrowing
	}
	if _, err := buf.ReadFrom(hold.Reader(io.LimitReader(req.Body, limit+1))); err != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			return nil, apierr.TooLarge(mbe.Limit)
		case errors.Is(err, edge.ErrOverBudget):
			return nil, err
		}
		return nil, apierr.New(http.StatusBadRequest, apierr.CodeBadRequest, "could not read the request body").WithCause(err)
	}
	if int64(buf.Len()) > limit {
		return nil, apierr.TooLarge(limit)
	}
	return buf.Bytes(), nil
}

// addForwarded adds X-Forwarded-For, -Host and -Proto to h.
func addForwarded(h nats.Header, req *http.Request) {
	if ip, _, err := net.SplitHostPort(req.RemoteAddr); err == nil {
		if prior := req.Header.Get("X-Forwarded-For"); prior != "" {
			ip = prior + ", " + ip
		}
		h["X-Forwarded-For"] = []string{ip}
	}
	if req.Header.Get("X-Forwarded-Host") == "" {
		h["X-Forwarded-Host"] = []string{req.Host}
	}
	if req.Header.Get("X-Forwarded-Proto") == "" {
		proto := "http"
		if req.TLS != nil {
			proto = "https"
		}
		h["X-Forwarded-Proto"] = []string{proto}
	}
}

func isAsync(h http.Header) bool {
	for _, v := range h.Values("Prefer") {
		for _, p := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(p), "respond-async") {
				return true
			}
		}
	}
	return false
}

type metrics struct {
	requests   *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	inFlight   *prometheus.GaugeVec
	natsErrors *prometheus.CounterVec
	jobs       *prometheus.CounterVec
	rejected   *prometheus.CounterVec
	responder  *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "switchyard", Subsystem: "lb", Name: "requests_total",
			Help: "Requests routed by the lb edge, by service and status class.",
		}, []string{"service", "class"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "switchyard", Subsystem: "lb", Name: "request_duration_seconds",
			Help:    "Latency of routed requests through NATS, by service.",
			Buckets: obs.LatencyBuckets,
		}, []string{"service"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "switchyard", Subsystem: "lb", Name: "in_flight_requests",
			Help: "Requests the lb edge is waiting on, by service.",
		}, []string{"service"}),
		natsErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "switchyard", Subsystem: "lb", Name: "nats_errors_total",
			Help: "NATS request failures, by service and kind (no_responders, timeout, max_payload, disconnected, connection_lost, other).",
		}, []string{"service", "kind"}),
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "switchyard", Subsystem: "lb", Name: "jobs_submitted_total",
			Help: "Async job submits, by service and result (created, duplicate, revived, rejected, unconfirmed, key_reused).",
		}, []string{"service", "result"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "switchyard", Subsystem: "lb", Name: "rejected_total",
			Help: "Requests the lb edge answered 503 overloaded because one of its own bounds was full, by bound (in_flight, body_memory).",
		}, []string{"reason"}),
		responder: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "switchyard", Subsystem: "lb", Name: "replies_total",
			Help: "Replies routed requests got over NATS, by service and responder (proxy: the proxy worker pool, " +
				"its reply names an upstream or the service has HTTP upstreams; worker: any other NATS worker of the queue group).",
		}, []string{"service", "responder"}),
	}
	reg.MustRegister(m.requests, m.duration, m.inFlight, m.natsErrors, m.jobs, m.rejected, m.responder)
	return m
}

// RegisterMetrics registers the lb edge's metrics on reg as its Part does,
// for tools and tests that check dashboards against the metric names.
func RegisterMetrics(reg prometheus.Registerer) { newMetrics(reg) }

func (m *metrics) observe(service string, status int, d time.Duration) {
	class := "5xx"
	if status >= 100 && status < 600 {
		class = string(rune('0'+status/100)) + "xx"
	}
	m.requests.WithLabelValues(service, class).Inc()
	m.duration.WithLabelValues(service).Observe(d.Seconds())
}
