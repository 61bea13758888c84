package edge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/switchyard/switchyard/internal/apierr"
)

// Options configures one edge.
type Options struct {
	Name     string       // "broker", "lb", "cache" or "stream": the edge label and service name
	Listener net.Listener // already bound: a port in use fails before anything starts
	Log      *slog.Logger
	Version  string
	Metrics  *Metrics            // shared HTTP metrics; nil disables them
	Gatherer prometheus.Gatherer // what /metrics serves; nil disables /metrics
	// MetricsPath is where /metrics is served (default "/metrics").
	MetricsPath string
	// MetricsAt, when set and Gatherer is nil, says where this process
	// serves its metrics instead (another edge's port, or metrics.port):
	// MetricsPath then answers 404 naming it. A process is one scrape
	// target, so a Prometheus scraping every edge counts each series once.
	MetricsAt string
	// MaxBodyBytes bounds request bodies (413 beyond). Zero means 8 MiB.
	// (The process default, config.DefaultMaxBodyBytes, is a little less.)
	MaxBodyBytes int64
	// WriteTimeout bounds writing one response (0: 60s). WebSockets are exempt.
	WriteTimeout time.Duration
	// NC, when set, adds the NATS connection to /health.
	NC *nats.Conn
	// Checks are the process-wide readiness checks shown on /health.
	Checks *Checks
	// TrustedProxies are the peers whose forwarding headers (X-Forwarded-For,
	// -Host, -Proto, X-Real-Ip, Forwarded) are kept. From any other peer
	// they are removed before a handler runs, so what a handler forwards
	// is what the edge saw itself. Empty: no peer is trusted.
	TrustedProxies []netip.Prefix
	// NATSClusterID is shown on /health as nats.cluster_id: a label only.
	NATSClusterID string
}

// ErrShuttingDown is the cause of the context of requests still running
// when the edge's shutdown deadline comes: handlers answer them 503
// shutting_down instead of leaving the connection to be dropped.
var ErrShuttingDown = errors.New("edge shutting down")

// Server is one running edge.
type Server struct {
	Echo *echo.Echo

	// base is every request's parent context; Shutdown cancels it (cause
	// ErrShuttingDown) for the requests still running near its deadline.
	base       context.Context
	cancelBase context.CancelCauseFunc

	opts     Options
	http     *http.Server
	started  time.Time
	ready    atomic.Bool
	hooksMu  sync.Mutex
	hooks    []func(context.Context)
	shutOnce sync.Once
	shutErr  error
	methods  *methodRouter
}

// New builds an edge with the shared middleware, /health and /metrics.
func New(o Options) *Server {
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = 8 << 20
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = 60 * time.Second
	}
	if o.MetricsPath == "" {
		o.MetricsPath = "/metrics"
	}
	if o.Checks == nil {
		o.Checks = NewChecks()
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	s := &Server{Echo: e, opts: o, started: time.Now(), methods: &methodRouter{e: e}}
	s.base, s.cancelBase = context.WithCancelCause(context.Background())
	s.ready.Store(true)
	e.HTTPErrorHandler = s.errorHandler
	e.IPExtractor = realIP(o.TrustedProxies)
	e.Use(s.middleware)
	e.GET("/health", s.health)
	if o.Gatherer != nil {
		h := promhttp.HandlerFor(o.Gatherer, promhttp.HandlerOpts{})
		e.GET(o.MetricsPath, echo.WrapHandler(h))
	} else if o.MetricsAt != "" {
		e.GET(o.MetricsPath, func(echo.Context) error {
			return apierr.Newf(http.StatusNotFound, apierr.CodeNotFound,
				"this process serves its metrics once, at %s", o.MetricsAt)
		})
	}
	s.http = &http.Server{
		Handler:           e,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      o.WriteTimeout,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(o.Log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return s.base },
	}
	return s
}

// Name is the edge's name.
func (s *Server) Name() string { return s.opts.Name }

// Addr is the address the edge listens on.
func (s *Server) Addr() net.Addr { return s.opts.Listener.Addr() }

// OnShutdown registers fn to run when Shutdown starts, after readiness
// fails and before in-flight requests drain: edges close WebSockets here.
func (s *Server) OnShutdown(fn func(context.Context)) {
	s.hooksMu.Lock()
	defer s.hooksMu.Unlock()
	s.hooks = append(s.hooks, fn)
}

// Run serves until Shutdown, or until ctx ends, when it closes the server
// at once (Shutdown is the graceful way); it returns nil after either.
func (s *Server) Run(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { _ = s.http.Close() })
	defer stop()
	s.opts.Log.Info("edge listening", "edge", s.opts.Name, "addr", s.Addr().String())
	err := s.http.Serve(jsonErrorListener{s.opts.Listener})
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("edge %s: %w", s.opts.Name, err)
}

// Shutdown fails readiness, runs the OnShutdown hooks, stops accepting and
// waits for in-flight requests until shortly before ctx's deadline (a
// quarter of the time left, at most 3s, is kept for what stops after the
// edges). Requests still running then have their context cancelled with
// cause ErrShuttingDown, so they answer 503 rather than lose their
// connection, and Shutdown waits for those answers until ctx ends. It
// returns ctx's error if requests still run then. Safe to call twice.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutOnce.Do(func() {
		s.ready.Store(false)
		s.hooksMu.Lock()
		hooks := s.hooks
		s.hooksMu.Unlock()
		for _, h := range hooks {
			h(ctx)
		}
		grace, cancel := ctx, context.CancelFunc(func() {})
		if d, ok := ctx.Deadline(); ok {
			grace, cancel = context.WithDeadline(ctx, d.Add(-min(time.Until(d)/4, 3*time.Second)))
		}
		err := s.http.Shutdown(grace)
		cancel()
		if err != nil && ctx.Err() == nil {
			s.opts.Log.Warn("answering in-flight requests 503 at the shutdown deadline", "edge", s.opts.Name)
			s.cancelBase(ErrShuttingDown)
			err = s.http.Shutdown(ctx)
		}
		s.cancelBase(ErrShuttingDown)
		s.shutErr = err
		s.opts.Log.Info("edge stopped", "edge", s.opts.Name, "err", s.shutErr)
	})
	return s.shutErr
}

// Draining reports whether Shutdown has started.
func (s *Server) Draining() bool { return !s.ready.Load() }

func (s *Server) middleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		req := c.Request()
		start := time.Now()
		rid := req.Header.Get(echo.HeaderXRequestID)
		if rid == "" || len(rid) > 128 {
			rid = nuid.Next()
			req.Header.Set(echo.HeaderXRequestID, rid)
		}
		c.Response().Header().Set(echo.HeaderXRequestID, rid)
		if stripForwarded(req, s.opts.TrustedProxies) && s.opts.Metrics != nil {
			s.opts.Metrics.forwardedStripped.WithLabelValues(s.opts.Name).Inc()
		}
		if s.opts.Metrics != nil {
			g := s.opts.Metrics.inFlight.WithLabelValues(s.opts.Name)
			g.Inc()
			defer g.Dec()
		}
		defer func() {
			if r := recover(); r != nil {
				if r == http.ErrAbortHandler {
					panic(r)
				}
				s.opts.Log.Error("panic in handler", "edge", s.opts.Name, "req_id", rid,
					"panic", fmt.Sprint(r), "stack", string(debug.Stack()))
				err = apierr.New(http.StatusInternalServerError, apierr.CodeInternal, "internal error")
			}
			if err != nil {
				c.Error(err)
			}
			status := c.Response().Status
			route := c.Path()
			if route == "" || status == http.StatusNotFound && route == "/*" {
				route = "unmatched"
			}
			elapsed := time.Since(start)
			if s.opts.Metrics != nil {
				s.opts.Metrics.observe(s.opts.Name, route, req.Method, status, elapsed.Seconds())
			}
			lvl := slog.LevelInfo
			if status >= 500 {
				lvl = slog.LevelWarn
			}
			if !s.opts.Log.Enabled(req.Context(), lvl) {
				return
			}
			attrs := []slog.Attr{
				slog.String("edge", s.opts.Name), slog.String("req_id", rid),
				slog.String("method", req.Method), slog.String("path", req.URL.Path),
				slog.String("route", route), slog.Int("status", status),
				slog.Int64("bytes_out", c.Response().Size),
				slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
				slog.String("remote", c.RealIP()),
			}
			if more, ok := c.Get(ctxKeyAttrs).([]slog.Attr); ok {
				attrs = append(attrs, more...)
			}
			if e, ok := c.Get(ctxKeyError).(*apierr.Error); ok {
				// The one line of a failed request carries its code and cause.
				attrs = append(attrs, slog.String("code", e.Code))
				if e.Err != nil && status >= 500 {
					attrs = append(attrs, slog.String("err", e.Err.Error()))
				}
			}
			s.opts.Log.LogAttrs(req.Context(), lvl, "http request", attrs...)
		}()
		if h, err := s.methods.dispatch(c); err != nil {
			return err
		} else if h != nil {
			next = h
		}
		if req.ContentLength > s.opts.MaxBodyBytes {
			return apierr.TooLarge(s.opts.MaxBodyBytes)
		}
		if req.Body != nil && req.Body != http.NoBody {
			req.Body = http.MaxBytesReader(c.Response(), req.Body, s.opts.MaxBodyBytes)
		}
		return next(c)
	}
}

// MaxBodyBytes is the body limit of this edge.
func (s *Server) MaxBodyBytes() int64 { return s.opts.MaxBodyBytes }

// ctxKeyError is the echo.Context key of the error a request was answered with.
const ctxKeyError = "switchyard.error"

// ctxKeyAttrs is the echo.Context key of the attributes Annotate added.
const ctxKeyAttrs = "switchyard.log_attrs"

// Annotate adds attributes to the request's one access log line ("http
// request"): the lb edge adds the service and the upstream that answered.
func Annotate(c echo.Context, attrs ...slog.Attr) {
	prev, _ := c.Get(ctxKeyAttrs).([]slog.Attr)
	c.Set(ctxKeyAttrs, append(prev, attrs...))
}

// errorHandler writes every error in the one JSON shape.
func (s *Server) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	e := ToAPIError(err, s.opts.MaxBodyBytes)
	c.Set(ctxKeyError, e) // logged once, on the request's "http request" line
	WriteError(c, e)
}

// ToAPIError maps echo's errors and body-limit errors onto *apierr.Error.
func ToAPIError(err error, maxBody int64) *apierr.Error {
	var he *echo.HTTPError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return apierr.TooLarge(mbe.Limit)
	case errors.As(err, &he):
		msg := http.StatusText(he.Code)
		if m, ok := he.Message.(string); ok && m != "" {
			msg = m
		}
		return &apierr.Error{Status: he.Code, Code: apierr.CodeForStatus(he.Code), Message: msg, Err: he.Internal}
	}
	return apierr.From(err)
}

// WriteError writes e as the JSON error body, with Retry-After when set.
func WriteError(c echo.Context, e *apierr.Error) {
	h := c.Response().Header()
	if e.RetryAfter > 0 {
		h.Set("Retry-After", apierr.RetryAfterSeconds(e.RetryAfter))
	}
	status := e.Status
	if status < 400 || status > 599 {
		status = http.StatusInternalServerError
	}
	body := apierr.Body{Error: apierr.BodyError{Code: e.Code, Message: e.Message, RequestID: h.Get(echo.HeaderXRequestID)}}
	// For a HEAD, net/http sends the headers (Content-Type, Content-Length)
	// of this body and drops the body itself.
	_ = c.JSON(status, body)
}

// healthBody is GET /health's answer.
type healthBody struct {
	Status        string            `json:"status"`
	Service       string            `json:"service"`
	Version       string            `json:"version"`
	UptimeSeconds float64           `json:"uptime_seconds"`
	NATS          *natsState        `json:"nats,omitempty"`
	Checks        map[string]string `json:"checks"`
	Info          map[string]any    `json:"info,omitempty"`
	Reason        string            `json:"reason,omitempty"`
}

type natsState struct {
	Connected  bool   `json:"connected"`
	Status     string `json:"status"`
	URL        string `json:"url,omitempty"`
	ServerID   string `json:"server_id,omitempty"`
	Reconnects uint64 `json:"reconnects"`
	ClusterID  string `json:"cluster_id,omitempty"`
}

func (s *Server) health(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 3*time.Second)
	defer cancel()
	b := healthBody{Status: "ok", Service: s.opts.Name, Version: s.opts.Version,
		UptimeSeconds: time.Since(s.started).Seconds(), Checks: map[string]string{}}
	if nc := s.opts.NC; nc != nil {
		b.NATS = &natsState{Connected: nc.IsConnected(), Status: nc.Status().String(),
			URL: nc.ConnectedUrlRedacted(), ServerID: nc.ConnectedServerId(), Reconnects: nc.Stats().Reconnects,
			ClusterID: s.opts.NATSClusterID}
	}
	names, results := s.opts.Checks.Run(ctx)
	b.Info = s.opts.Checks.Infos()
	for _, n := range names {
		if err := results[n]; err != nil {
			b.Checks[n] = err.Error()
			if b.Reason == "" {
				b.Reason = n + ": " + err.Error()
			}
		} else {
			b.Checks[n] = "ok"
		}
	}
	if s.Draining() {
		b.Reason = "shutting down"
	}
	status := http.StatusOK
	if b.Reason != "" {
		b.Status = "unavailable"
		status = http.StatusServiceUnavailable
	}
	return c.JSON(status, b)
}

// DecodeJSON reads a JSON body into v with the edge's rules: the content
// type must be JSON (415), the body must parse (400) and fit the limit (413).
func DecodeJSON(c echo.Context, v any) error {
	ct := c.Request().Header.Get(echo.HeaderContentType)
	if ct != "" && !isJSON(ct) {
		return apierr.Newf(http.StatusUnsupportedMediaType, apierr.CodeUnsupportedMedia, "content type %q is not application/json", ct)
	}
	dec := json.NewDecoder(c.Request().Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return apierr.TooLarge(mbe.Limit)
		}
		return apierr.Newf(http.StatusBadRequest, apierr.CodeBadRequest, "invalid JSON body: %v", err)
	}
	if dec.More() {
		return apierr.New(http.StatusBadRequest, apierr.CodeBadRequest, "invalid JSON body: data after the JSON value")
	}
	return nil
}

func isJSON(ct string) bool {
	ct, _, _ = strings.Cut(ct, ";")
	// Media types are case-insensitive and may have spaces before ";" (RFC 9110 8.3.1).
	ct = strings.ToLower(strings.TrimSpace(ct))
	return ct == echo.MIMEApplicationJSON || strings.HasSuffix(ct, "+json")
}
