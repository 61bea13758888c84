package broker_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/switchyard/switchyard/edge"
	"github.com/switchyard/switchyard/edge/broker"
	"github.com/switchyard/switchyard/jetstream"
	"github.com/switchyard/switchyard/jetstream/jstest"
)

// wait bounds every wait of these tests; they poll, never sleep.
const wait = 10 * time.Second

// node is one running broker edge on its own NATS connection.
type node struct {
	t    *testing.T
	url  string // http://127.0.0.1:port
	ws   string // ws://127.0.0.1:port
	b    *broker.Broker
	srv  *edge.Server
	nc   *nats.Conn
	reg  *prometheus.Registry
	logs *testWriter
	stop func()
}

// startNATS starts a test server and declares the JetStream assets.
func startNATS(t *testing.T) *jstest.Server {
	t.Helper()
	ns := jstest.Start(t)
	ensureAssets(t, ns)
	return ns
}

// ensureAssets declares the JetStream assets on ns.
func ensureAssets(t *testing.T, ns *jstest.Server) {
	t.Helper()
	nc := ns.Conn(t)
	js, err := natsjs.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := jetstream.Ensure(ctx, js, jetstream.Assets{Replicas: 1, MaxMsgSize: 1 << 20}); err != nil {
		t.Fatal(err)
	}
}

// testWriter logs to the test and keeps the lines for logged.
type testWriter struct {
	t     *testing.T
	mu    sync.Mutex
	lines []string
}

func (w *testWriter) Write(p []byte) (int, error) {
	line := strings.TrimSuffix(string(p), "\n")
	w.t.Log(line)
	w.mu.Lock()
	w.lines = append(w.lines, line)
	w.mu.Unlock()
	return len(p), nil
}

func (w *testWriter) logged(s string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, l := range w.lines {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

// startNode runs a broker edge on ns with options o (NC, JS, Log and
// Registry are filled in).
func startNode(t *testing.T, ns *jstest.Server, o broker.Options) *node {
	t.Helper()
	nc, err := nats.Connect(ns.URL, nats.Name("broker-"+t.Name()))
	if err != nil {
		t.Fatal(err)
	}
	js, err := natsjs.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	logs := &testWriter{t: t}
	o.NC, o.JS, o.Log, o.Registry = nc, js, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn})), reg
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	b, err := broker.New(ctx, o)
	if err != nil {
		nc.Close()
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := edge.New(edge.Options{Name: "broker", Listener: l, Log: o.Log, NC: nc, Gatherer: reg})
	b.Register(s)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = s.Run(context.Background()) }()
	go func() { defer wg.Done(); _ = b.Run(context.Background()) }()
	n := &node{t: t, url: "http://" + l.Addr().String(), ws: "ws://" + l.Addr().String(), b: b, srv: s, nc: nc, reg: reg, logs: logs}
	var once sync.Once
	n.stop = func() {
		once.Do(func() {
			sctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			_ = s.Shutdown(sctx)
			_ = b.Shutdown(sctx)
			wg.Wait()
			nc.Close()
		})
	}
	t.Cleanup(n.stop)
	return n
}

// metric sums the samples of metric name whose labels include labels.
func (n *node) metric(name string, labels map[string]string) float64 {
	n.t.Helper()
	mfs, err := n.reg.Gather()
	if err != nil {
		n.t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue next
				}
			}
			sum += value(m)
		}
	}
	return sum
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return 0
}

// client is a real gorilla WebSocket client of the broker.
type client struct {
	t       *testing.T
	c       *websocket.Conn
	frames  chan map[string]any
	nframes atomic.Int64               // WebSocket frames read
	closed  chan *websocket.CloseError // the close the server sent (or nil)
}

// dial connects to GET /ws/<service>?<query> and reads frames in the background.
func (n *node) dial(service, query string) *client {
	n.t.Helper()
	return dialWith(n.t, n.ws+"/ws/"+service+qs(query), 0, true)
}

func qs(q string) string {
	if q == "" {
		return ""
	}
	return "?" + q
}

// dialWith dials url; rcvBuf > 0 shrinks the socket's receive buffer;
// read false leaves frames unread (a slow client).
func dialWith(t *testing.T, url string, rcvBuf int, read bool) *client {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: wait}
	if rcvBuf > 0 {
		nd := &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvBuf)
			})
			return errors.Join(err, serr)
		}}
		d.NetDialContext = nd.DialContext
	}
	c, resp, err := d.Dial(url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	_ = resp.Body.Close()
	cl := &client{t: t, c: c, frames: make(chan map[string]any, 100000), closed: make(chan *websocket.CloseError, 1)}
	split := strings.Contains(url, "batch=true") // several messages a frame, one a line
	done := make(chan struct{})
	t.Cleanup(func() { _ = c.Close(); <-done })
	if !read {
		close(done)
		return cl
	}
	go func() {
		defer close(done)
		for {
			_, data, err := c.ReadMessage()
			if err != nil {
				var ce *websocket.CloseError
				if errors.As(err, &ce) {
					cl.closed <- ce
				} else {
					cl.closed <- nil
				}
				close(cl.frames)
				return
			}
			cl.nframes.Add(1)
			lines := [][]byte{data}
			if split {
				lines = bytes.Split(data, []byte("\n"))
			}
			for _, line := range lines {
				var f map[string]any
				if err := json.Unmarshal(line, &f); err != nil {
					t.Errorf("frame is not JSON: %q", line)
					continue
				}
				cl.frames <- f
			}
		}
	}()
	return cl
}

// next returns the next frame, failing the test after wait.
func (c *client) next() map[string]any {
	c.t.Helper()
	select {
	case f, ok := <-c.frames:
		if !ok {
			c.t.Fatal("connection closed while a frame was expected")
		}
		return f
	case <-time.After(wait):
		c.t.Fatal("no frame within the deadline")
	}
	return nil
}

// send writes v as a JSON text frame.
func (c *client) send(v any) {
	c.t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		c.t.Fatal(err)
	}
	c.sendRaw(data)
}

func (c *client) sendRaw(data []byte) {
	c.t.Helper()
	if err := c.c.WriteMessage(websocket.TextMessage, data); err != nil {
		c.t.Fatal(err)
	}
}

// closeCode waits for the server's close frame and returns its code.
func (c *client) closeCode() int {
	c.t.Helper()
	for {
		select {
		case _, ok := <-c.frames:
			if ok {
				continue
			}
			ce := <-c.closed
			if ce == nil {
				return websocket.CloseAbnormalClosure
			}
			return ce.Code
		case <-time.After(wait):
			c.t.Fatal("connection not closed within the deadline")
			return 0
		}
	}
}

// post sends a JSON body to path and returns the status and decoded body.
func (n *node) post(path, contentType string, body []byte) (int, map[string]any) {
	n.t.Helper()
	resp, err := http.Post(n.url+path, contentType, bytes.NewReader(body))
	if err != nil {
		n.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, out
}

// publish POSTs /publish and requires 202.
func (n *node) publish(service, topic string, payload any, persistent bool) string {
	n.t.Helper()
	body, _ := json.Marshal(map[string]any{"service": service, "topic": topic, "payload": payload, "persistent": persistent})
	st, out := n.post("/publish", "application/json", body)
	if st != http.StatusAccepted {
		n.t.Fatalf("POST /publish: %d %v", st, out)
	}
	return out["id"].(string)
}

func (n *node) get(path string) (int, map[string]any) {
	n.t.Helper()
	resp, err := http.Get(n.url + path)
	if err != nil {
		n.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// eventually polls cond until it holds, failing after wait.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// connected waits until n's presence shows want connections of service
// (joining is asynchronous to the upgrade).
func (n *node) connected(service string, want int) {
	n.t.Helper()
	eventually(n.t, service+" connections", func() bool {
		return n.metric("switchyard_broker_connections", map[string]string{"service": service}) == float64(want)
	})
}
