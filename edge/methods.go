package edge

import (
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/labstack/echo/v4"

	"github.com/switchyard/switchyard/internal/apierr"
)

// Method handling shared by every edge:
//
//   - HEAD is served wherever GET is: a HEAD request on a path that has no
//     HEAD route of its own runs the GET handler; net/http drops the body
//     because the request it answers is a HEAD.
//   - A path that one of the edge's own routes serves answers any other
//     method 405 with an Allow header, in the JSON error shape. That holds
//     even when a catch-all route (a route registered for every method,
//     such as the lb's /:service/*) would match the path too: the catch-all
//     does not shadow the edge's own routes, so POST /health is 405 on
//     every edge, never a request for a service called "health".
//   - OPTIONS is answered like any other method: 405 with Allow where no
//     OPTIONS route exists (the edges serve no CORS preflight).
//
// Routes are read once, at the first request: register them before the
// edge serves.

// allowOrder is the order of the methods in an Allow header.
var allowOrder = []string{
	http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
	http.MethodPatch, http.MethodDelete, http.MethodOptions,
}

// routeTable is what the method handling needs to know of the routes.
type routeTable struct {
	methods  map[string]map[string]bool // route template -> methods registered on it
	catchAll map[string]bool            // templates registered for every method (echo's Any)
	// firstSegs are the first path segments of the routes that are not
	// catch-alls; paramFirst is set when one of them starts with a
	// parameter. A request whose first segment is in neither cannot be
	// served by an own route, so the lookup is skipped on the hot path.
	firstSegs  map[string]bool
	paramFirst bool
}

type methodRouter struct {
	e     *echo.Echo
	once  sync.Once
	table routeTable
}

func (m *methodRouter) routes() *routeTable {
	m.once.Do(func() {
		t := routeTable{methods: map[string]map[string]bool{}, catchAll: map[string]bool{}, firstSegs: map[string]bool{}}
		for _, r := range m.e.Routes() {
			if t.methods[r.Path] == nil {
				t.methods[r.Path] = map[string]bool{}
			}
			t.methods[r.Path][r.Method] = true
		}
		for path, ms := range t.methods {
			all := true
			for _, meth := range allowOrder {
				all = all && ms[meth]
			}
			if all {
				t.catchAll[path] = true
				continue
			}
			seg := firstSegment(path)
			if strings.HasPrefix(seg, ":") || strings.HasPrefix(seg, "*") {
				t.paramFirst = true
			}
			t.firstSegs[seg] = true
		}
		m.table = t
	})
	return &m.table
}

func firstSegment(path string) string {
	seg, _, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	return seg
}

// staticPrefix is how many bytes of a route template come before its first
// parameter or wildcard: the longer, the more specific the route.
func staticPrefix(template string) int {
	if i := strings.IndexAny(template, ":*"); i >= 0 {
		return i
	}
	return len(template) + 1 // a fully static route beats any with the same prefix
}

// dispatch decides how a routed request is served. It returns nil when
// echo's choice stands, a handler to run instead (HEAD served by the GET
// route), or an error (405 with Allow set).
func (m *methodRouter) dispatch(c echo.Context) (echo.HandlerFunc, error) {
	req := c.Request()
	method, route := req.Method, c.Path()
	t := m.routes()
	registered := t.methods[route][method]
	switch {
	case registered && !t.catchAll[route]:
		return nil, nil // the route that serves this path, for this method
	case registered && t.catchAll[route]:
		if seg := firstSegment(echo.GetPath(req)); !t.paramFirst && !t.firstSegs[seg] {
			return nil, nil // no own route could serve this path
		}
	}
	owner := m.owner(req)
	switch {
	case owner == "":
		return nil, nil // a catch-all, or 404: echo's choice stands
	case owner == route && registered:
		return nil, nil
	case method == http.MethodHead && t.methods[owner][http.MethodGet]:
		// Route as a GET on the same context: path parameters and route
		// template are the GET route's; the request stays a HEAD.
		m.e.Router().Find(http.MethodGet, echo.GetPath(req), c)
		return c.Handler(), nil
	}
	allow := m.allow(owner)
	c.Response().Header().Set(echo.HeaderAllow, strings.Join(allow, ", "))
	c.SetPath(owner) // metrics and logs name the route that owns the path
	return nil, apierr.Newf(http.StatusMethodNotAllowed, apierr.CodeMethodNotAllowed,
		"%s is not allowed on %s (allowed: %s)", methodLabel(method), owner, strings.Join(allow, ", "))
}

// owner returns the most specific of the edge's own routes (not
// catch-alls) that match the request's path for some method, or "".
func (m *methodRouter) owner(req *http.Request) string {
	t := m.routes()
	path := echo.GetPath(req)
	c := m.e.NewContext(req, nil)
	best, bestLen := "", -1
	for _, meth := range allowOrder {
		m.e.Router().Find(meth, path, c)
		tpl := c.Path()
		if !t.methods[tpl][meth] || t.catchAll[tpl] {
			continue
		}
		if n := staticPrefix(tpl); n > bestLen {
			best, bestLen = tpl, n
		}
	}
	return best
}

// allow lists the methods served on a route template: HEAD wherever GET.
func (m *methodRouter) allow(template string) []string {
	ms := m.routes().methods[template]
	var out []string
	for _, meth := range allowOrder {
		if ms[meth] || meth == http.MethodHead && ms[http.MethodGet] {
			out = append(out, meth)
		}
	}
	return slices.Clip(out)
}

// methodLabel keeps an unknown method readable and short in a message.
func methodLabel(m string) string {
	if len(m) > 16 {
		return m[:16] + "..."
	}
	return m
}
