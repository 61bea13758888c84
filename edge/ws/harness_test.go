package ws_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard/switchyard/edge"
	"github.com/switchyard/switchyard/edge/ws"
)

// wait bounds every wait of these tests; reaching it is a failure.
const wait = 20 * time.Second

// server is a real edge.Server on loopback serving GET /ws through ws.Upgrade.
type server struct {
	t       *testing.T
	url     string // ws://127.0.0.1:port/ws
	httpURL string
	hub     *ws.Hub
	reg     *prometheus.Registry
	metrics *ws.Metrics
	conns   chan *ws.Conn
}

type serverOptions struct {
	writeTimeout time.Duration                    // edge.Options.WriteTimeout
	opts         func(r *http.Request) ws.Options // per-request options; nil: zero Options
	onMessage    func(c *ws.Conn, typ int, data []byte)
	routes       func(e *echo.Echo) // more routes on the edge
}

func echoMessage(c *ws.Conn, typ int, data []byte) { _ = c.Send(typ, data) }

func startServer(t *testing.T, so serverOptions) *server {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	s := &server{t: t, hub: ws.NewHub(), reg: reg, metrics: ws.NewMetrics(reg, "test"),
		conns: make(chan *ws.Conn, 16),
		url:   "ws://" + l.Addr().String() + "/ws", httpURL: "http://" + l.Addr().String() + "/ws"}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	es := edge.New(edge.Options{Name: "test", Listener: l, Log: log, WriteTimeout: so.writeTimeout})
	es.OnShutdown(func(ctx context.Context) {
		if err := s.hub.Shutdown(ctx); err != nil {
			t.Errorf("hub Shutdown: %v", err)
		}
	})
	es.Echo.GET("/ws", func(c echo.Context) error {
		var o ws.Options
		if so.opts != nil {
			o = so.opts(c.Request())
		}
		o.Metrics, o.Log = s.metrics, log.With("edge", "test")
		conn, err := ws.Upgrade(c.Response(), c.Request(), o, so.onMessage)
		if err != nil {
			return nil // the error response is written
		}
		s.hub.Add(conn)
		s.conns <- conn
		return nil
	})
	if so.routes != nil {
		so.routes(es.Echo)
	}
	runErr := make(chan error, 1)
	go func() { runErr <- es.Run(context.Background()) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if err := es.Shutdown(ctx); err != nil {
			t.Errorf("edge Shutdown: %v", err)
		}
		if err := <-runErr; err != nil {
			t.Errorf("edge Run: %v", err)
		}
	})
	return s
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// dial opens a client connection and returns it with its server side.
// rcvBuf > 0 shrinks the client's socket receive buffer.
func (s *server) dial(query string, rcvBuf int) (*websocket.Conn, *ws.Conn) {
	s.t.Helper()
	d := websocket.Dialer{HandshakeTimeout: wait}
	if rcvBuf > 0 {
		// Set before connecting, so that the window scale fits the buffer.
		nd := &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvBuf)
			})
			return errors.Join(err, serr)
		}}
		d.NetDialContext = nd.DialContext
	}
	u := s.url
	if query != "" {
		u += "?" + query
	}
	c, resp, err := d.Dial(u, nil)
	if err != nil {
		s.t.Fatalf("dial: %v", err)
	}
	_ = resp.Body.Close()
	s.t.Cleanup(func() { _ = c.Close() })
	select {
	case sc := <-s.conns:
		return c, sc
	case <-time.After(wait):
		s.t.Fatal("server side of the connection never appeared")
		return nil, nil
	}
}

// closes is switchyard_websocket_closes_total{edge="test",code=code}.
func (s *server) closes(code string) float64 {
	s.t.Helper()
	return s.counter("switchyard_websocket_closes_total", map[string]string{"code": code})
}

func (s *server) counter(name string, labels map[string]string) float64 {
	s.t.Helper()
	mfs, err := s.reg.Gather()
	if err != nil {
		s.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if want, ok := labels[lp.GetName()]; ok && want != lp.GetValue() {
					continue metric
				}
			}
			if m.Counter != nil {
				return m.Counter.GetValue()
			}
			return m.Gauge.GetValue()
		}
	}
	s.t.Fatalf("metric %s%v not found", name, labels)
	return 0
}

// waitDone waits for c to finish.
func waitDone(t *testing.T, c *ws.Conn) {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(wait):
		t.Fatalf("connection still open after %s", wait)
	}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: still false after %s", what, wait)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// readClose reads until an error and returns it as a *websocket.CloseError
// (nil when the connection ended without a close frame) and how many data
// messages came before.
func readClose(t *testing.T, c *websocket.Conn) (*websocket.CloseError, int) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(wait))
	n := 0
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			n++
			continue
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce, n
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("no close after %s", wait)
		}
		return nil, n
	}
}
