// Package cache is the cache coordinator edge (default port 8083):
//
//	GET|HEAD /cache/<key>   the value, its Content-Type, X-Cache: HIT-LOCAL|HIT-SHARED (404 when absent)
//	POST|PUT /cache/<key>   the body is the value; ?ttl= or X-Cache-TTL (seconds); 204
//	DELETE   /cache/<key>   204, also when the key is absent
//	POST     /cache/batch   {"op":"get|set|delete","ns":...,"keys":[...]|"items":[...]}
//	GET      /cache/stats   per namespace and per tier, shared-tier latency
//
// The namespace comes from ?ns= or X-Cache-Namespace (default "default").
//
// The edge holds the process's cache coordinator (workers/cache) in
// process: a local hit never leaves the process, and a miss goes straight
// to the shared tier (JetStream KV, or Redis when REDIS_ADDR is set).
// The same coordinator serves the NATS micro service "cache" on
// cache.<op>.<namespace> for Node and Rust callers, and keeps its local
// tier coherent with every other process through cache.inval.<namespace>.
// Going through NATS to reach a coordinator of the same process would only
// add a hop: the NATS path exists for callers outside the process, and any
// number of cache processes share one shared tier. /health of this edge
// (only) reports the coordinator's degraded mode.
package cache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/edge"
	"github.com/switchyard/switchyard/internal/apierr"
	"github.com/switchyard/switchyard/part"
	wcache "github.com/switchyard/switchyard/workers/cache"
	"github.com/switchyard/switchyard/workers/cache/tier"
)

// Part runs the cache edge and its coordinator.
var Part = part.Part{
	Name: "cache", Kind: part.KindEdge,
	Summary: "cache coordinator edge (local + shared tier) and the NATS cache service",
	Port:    func(c *config.Config) (string, int) { return "CACHE_PORT", c.Server.CachePort },
	Build:   build,
}

// Request headers and query parameters.
const (
	HeaderNamespace = "X-Cache-Namespace"
	HeaderTTL       = "X-Cache-TTL"
	HeaderTier      = "X-Cache"
)

func build(d *part.Deps) ([]part.Component, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	co, err := NewCoordinator(ctx, d)
	if err != nil {
		return nil, err
	}
	o := d.EdgeOptions("cache")
	o.Checks = d.Checks.With("cache", co.C.Check)
	s := edge.New(o)
	Register(s.Echo, co.C, d.Config.Cache.MaxValueBytes)
	co.srv = s
	return []part.Component{s, co}, nil
}

// Register adds the cache routes to e.
func Register(e *echo.Echo, c *wcache.Coordinator, maxValue int) {
	h := &handler{c: c, maxValue: maxValue}
	e.GET("/cache/stats", h.stats)
	e.POST("/cache/batch", h.batch)
	e.GET("/cache/*", h.get)
	e.HEAD("/cache/*", h.get)
	e.POST("/cache/*", h.set)
	e.PUT("/cache/*", h.set)
	e.DELETE("/cache/*", h.del)
}

// Shared header values (never modified).
var (
	hitLocal  = []string{string(wcache.SourceLocal)}
	hitShared = []string{string(wcache.SourceShared)}
)

type handler struct {
	c        *wcache.Coordinator
	maxValue int
}

func namespace(c echo.Context) string {
	if c.Request().URL.RawQuery != "" {
		if ns := c.QueryParam("ns"); ns != "" {
			return ns
		}
	}
	if ns := c.Request().Header.Get(HeaderNamespace); ns != "" {
		return ns
	}
	return wcache.DefaultNamespace
}

// key is the decoded path after /cache/: /cache/a%2Fb and /cache/a/b are
// the key "a/b".
func key(c echo.Context) string {
	return strings.TrimPrefix(c.Request().URL.Path, "/cache/")
}

func fail(err error) error { return wcache.APIError(err) }

func (h *handler) get(c echo.Context) error {
	e, src, err := h.c.Get(c.Request().Context(), namespace(c), key(c))
	if err != nil {
		return fail(err)
	}
	ct := e.ContentType
	if ct == "" {
		ct = echo.MIMEOctetStream
	}
	hd := c.Response().Header()
	if src == wcache.SourceLocal {
		hd[HeaderTier] = hitLocal
	} else {
		hd[HeaderTier] = hitShared
	}
	if c.Request().Method == http.MethodHead {
		hd.Set(echo.HeaderContentType, ct)
		hd.Set(echo.HeaderContentLength, strconv.Itoa(len(e.Value)))
		return c.NoContent(http.StatusOK)
	}
	return c.Blob(http.StatusOK, ct, e.Value)
}

func (h *handler) set(c echo.Context) error {
	req := c.Request()
	ttlStr := c.QueryParam("ttl")
	if ttlStr == "" {
		ttlStr = req.Header.Get(HeaderTTL)
	}
	ttl, err := wcache.ParseTTL(ttlStr)
	if err != nil {
		return fail(err)
	}
	if req.ContentLength > int64(h.maxValue) {
		return fail(fmt.Errorf("%w: %d bytes exceeds the limit of %d", wcache.ErrTooLarge, req.ContentLength, h.maxValue))
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, int64(h.maxValue)+1))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return fail(fmt.Errorf("%w: body exceeds %d bytes", wcache.ErrTooLarge, mbe.Limit))
		}
		return apierr.Newf(http.StatusBadRequest, apierr.CodeBadRequest, "reading the body: %v", err)
	}
	if len(body) > h.maxValue {
		return fail(fmt.Errorf("%w: the value exceeds the limit of %d bytes", wcache.ErrTooLarge, h.maxValue))
	}
	e := tier.Entry{Value: body, ContentType: req.Header.Get(echo.HeaderContentType)}
	if err := h.c.Set(req.Context(), namespace(c), key(c), e, ttl); err != nil {
		return fail(err)
	}
	return c.NoContent(http.StatusNoContent)
}

func (h *handler) del(c echo.Context) error {
	if err := h.c.Delete(c.Request().Context(), namespace(c), key(c)); err != nil {
		return fail(err)
	}
	return c.NoContent(http.StatusNoContent)
}

func (h *handler) batch(c echo.Context) error {
	var req wcache.BatchRequest
	if err := edge.DecodeJSON(c, &req); err != nil {
		return err
	}
	if req.NS == "" {
		req.NS = namespace(c)
	}
	resp, err := h.c.Batch(c.Request().Context(), req)
	if err != nil {
		return fail(err)
	}
	return c.JSON(http.StatusOK, resp)
}

func (h *handler) stats(c echo.Context) error {
	return c.JSON(http.StatusOK, h.c.Stats())
}
