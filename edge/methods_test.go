package edge_test

import (
	"net/http"
	"strconv"
	"testing"

	"github.com/labstack/echo/v4"
)

// catchAllRoutes are an edge's own routes plus a catch-all on every method,
// as the lb edge has for its services.
func catchAllRoutes(e *echo.Echo) {
	e.GET("/items/:id", func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]string{"id": c.Param("id"), "method": c.Request().Method})
	})
	e.DELETE("/items/:id", func(c echo.Context) error { return c.NoContent(http.StatusNoContent) })
	e.POST("/items", func(c echo.Context) error { return c.NoContent(http.StatusCreated) })
	e.GET("/own/:id", func(c echo.Context) error { return c.String(http.StatusOK, "get") })
	e.HEAD("/own/:id", func(c echo.Context) error {
		c.Response().Header().Set("X-Own-Head", "1")
		return c.NoContent(http.StatusOK)
	})
	svc := func(c echo.Context) error {
		c.Response().Header().Set("X-Method", c.Request().Method)
		return c.String(http.StatusOK, "svc:"+c.Param("service"))
	}
	e.Any("/:service", svc)
	e.Any("/:service/*", svc)
}

func TestMethodsNotShadowedByCatchAll(t *testing.T) {
	h := start(t, options{routes: catchAllRoutes})
	tests := []struct {
		method, path string
		status       int
		allow        string // want an Allow header with a 405
		handler      string // want the catch-all's X-Method (it served the request)
	}{
		{"POST", "/health", 405, "GET, HEAD", ""},
		{"PUT", "/health", 405, "GET, HEAD", ""},
		{"OPTIONS", "/health", 405, "GET, HEAD", ""},
		{"POST", "/metrics", 405, "GET, HEAD", ""},
		{"POST", "/items/1", 405, "GET, HEAD, DELETE", ""},
		{"OPTIONS", "/items/1", 405, "GET, HEAD, DELETE", ""},
		{"GET", "/items", 405, "POST", ""},
		{"BREW", "/items/1", 405, "GET, HEAD, DELETE", ""},
		// Paths no own route serves go to the catch-all, with every method.
		{"POST", "/vision/x", 200, "", "POST"},
		{"HEAD", "/vision/x", 200, "", "HEAD"},
		{"OPTIONS", "/vision", 200, "", "OPTIONS"},
		{"DELETE", "/healthz/x", 200, "", "DELETE"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			r := h.do(t, tt.method, tt.path, nil)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			if got := r.header.Get("X-Method"); got != tt.handler {
				t.Errorf("served by the catch-all as %q, want %q", got, tt.handler)
			}
			if tt.status != 405 {
				return
			}
			if got := r.header.Get("Allow"); got != tt.allow {
				t.Errorf("Allow %q, want %q", got, tt.allow)
			}
			if e := apiError(t, r); e.Error.Code != "method_not_allowed" {
				t.Errorf("code %q", e.Error.Code)
			}
		})
	}
}

func TestHeadServedWhereGetIs(t *testing.T) {
	for _, withCatchAll := range []bool{false, true} {
		t.Run("catch-all "+strconv.FormatBool(withCatchAll), func(t *testing.T) {
			routes := itemRoutes
			if withCatchAll {
				routes = catchAllRoutes
			}
			h := start(t, options{routes: routes})
			for _, path := range []string{"/health", "/metrics", "/items/7"} {
				get := h.do(t, http.MethodGet, path, nil)
				head := h.do(t, http.MethodHead, path, nil)
				if get.status != http.StatusOK || head.status != http.StatusOK {
					t.Fatalf("%s: GET %d, HEAD %d: %s", path, get.status, head.status, head.body)
				}
				if len(head.body) != 0 {
					t.Errorf("HEAD %s has a body: %q", path, head.body)
				}
				if head.header.Get("Content-Type") != get.header.Get("Content-Type") || head.header.Get("X-Method") != "" {
					t.Errorf("HEAD %s headers %v, GET's %v", path, head.header, get.header)
				}
				if cl, _ := strconv.Atoi(head.header.Get("Content-Length")); path != "/metrics" && cl == 0 {
					t.Errorf("HEAD %s: no Content-Length", path)
				}
			}
			if !withCatchAll {
				return
			}
			// The GET handler ran for the HEAD and saw it as a HEAD: the
			// length is that of the body it would have sent.
			want := len(`{"id":"7","method":"HEAD"}` + "\n")
			if r := h.do(t, http.MethodHead, "/items/7", nil); r.header.Get("Content-Length") != strconv.Itoa(want) {
				t.Errorf("HEAD /items/7 Content-Length %q, want %d", r.header.Get("Content-Length"), want)
			}
			// An explicit HEAD route is used as it is.
			if r := h.do(t, http.MethodHead, "/own/1", nil); r.status != http.StatusOK || r.header.Get("X-Own-Head") != "1" {
				t.Errorf("HEAD /own/1: %d %v", r.status, r.header)
			}
		})
	}
}

func TestHeadLogsAndCountsHead(t *testing.T) {
	h := start(t, options{routes: catchAllRoutes})
	h.do(t, http.MethodHead, "/items/1", nil)
	h.do(t, http.MethodPost, "/health", nil)
	got := httpRequests(t, h)
	if got[metricKey{"/items/:id", "HEAD", "200"}] != 1 || got[metricKey{"/health", "POST", "405"}] != 1 {
		t.Errorf("requests by route, method and status: %v", got)
	}
}

type metricKey struct{ route, method, status string }

// httpRequests reads switchyard_http_requests_total by route, method and status.
func httpRequests(t *testing.T, h *harness) map[metricKey]float64 {
	t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[metricKey]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "switchyard_http_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			lbl := map[string]string{}
			for _, lp := range m.GetLabel() {
				lbl[lp.GetName()] = lp.GetValue()
			}
			got[metricKey{lbl["route"], lbl["method"], lbl["status"]}] = m.GetCounter().GetValue()
		}
	}
	return got
}
