package stream_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"

	"github.com/switchyard/switchyard/app"
	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/edge/stream"
	"github.com/switchyard/switchyard/internal/httpnats"
	"github.com/switchyard/switchyard/jetstream/jstest"
	"github.com/switchyard/switchyard/part"
)

const wait = 15 * time.Second

func testLog(t testing.TB) *slog.Logger {
	if os.Getenv("SY_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// testConfig is the default config with small limits, so bounds are reached fast.
func testConfig(t testing.TB) *config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.Server.Host = "127.0.0.1"
	cfg.Server.StreamPort = 0
	cfg.DataDir = t.TempDir()
	s := &cfg.Stream
	s.MaxChunkBytes = 64 << 10
	s.VisionBufferBytes = 256 << 10
	s.AudioBufferBytes = 256 << 10
	s.ParametersBufferBytes = 256 << 10
	s.BacklogLimit = 4
	s.ProcessTimeout = config.Duration(3 * time.Second)
	s.MaxDeliver = 3
	s.IdleTimeout = 0
	s.MaxAge = 0
	s.RetentionMaxBytes = 16 << 20
	return cfg
}

// sys is a running stream part (edge and processing workers) on a test NATS server.
type sys struct {
	url  string
	ws   string
	ns   *jstest.Server
	nc   *nats.Conn
	http *http.Client
	stop func() error
}

func start(t testing.TB, cfg *config.Config, parts ...part.Part) *sys {
	t.Helper()
	return startOn(t, jstest.Start(t), cfg, parts...)
}

func startOn(t testing.TB, ns *jstest.Server, cfg *config.Config, parts ...part.Part) *sys {
	t.Helper()
	c := *cfg
	c.NATS.URL = ns.URL
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan map[string]net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- app.Run(ctx, app.Options{Config: &c, Parts: append([]part.Part{stream.Part}, parts...), Log: testLog(t),
			Version: "test", Ready: func(a map[string]net.Addr) { ready <- a }})
	}()
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	s := &sys{ns: ns, nc: ns.Conn(t), http: &http.Client{Transport: tr, Timeout: wait}}
	select {
	case a := <-ready:
		s.url = "http://" + a["stream"].String()
		s.ws = "ws://" + a["stream"].String()
	case err := <-done:
		cancel()
		t.Fatalf("run: %v", err)
	}
	var once sync.Once
	var err error
	s.stop = func() error {
		once.Do(func() { cancel(); err = <-done; tr.CloseIdleConnections() })
		return err
	}
	t.Cleanup(func() { _ = s.stop() })
	return s
}

func (s *sys) do(t testing.TB, method, path string, body []byte, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, s.url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := s.http.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, b
}

// create creates a stream from a JSON spec and returns its id.
func (s *sys) create(t testing.TB, spec string) string {
	t.Helper()
	resp, b := s.do(t, http.MethodPost, "/stream/create", []byte(spec), "Content-Type", "application/json")
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create %s: %d %s", spec, resp.StatusCode, b)
	}
	var v struct{ ID string }
	if err := json.Unmarshal(b, &v); err != nil || v.ID == "" {
		t.Fatalf("create: body %s", b)
	}
	return v.ID
}

// post sends a chunk and returns the status, and the sequence of a 202.
func (s *sys) post(t testing.TB, id string, body []byte, hdr ...string) (int, uint64, []byte) {
	t.Helper()
	resp, b := s.do(t, http.MethodPost, "/stream/"+id+"/chunk", body, hdr...)
	if resp.StatusCode != http.StatusAccepted {
		return resp.StatusCode, 0, b
	}
	var v struct{ Seq uint64 }
	if err := json.Unmarshal(b, &v); err != nil || v.Seq == 0 {
		t.Fatalf("202 body %s", b)
	}
	return resp.StatusCode, v.Seq, b
}

// mustPost posts and fails unless 202.
func (s *sys) mustPost(t testing.TB, id string, body []byte, hdr ...string) uint64 {
	t.Helper()
	st, seq, b := s.post(t, id, body, hdr...)
	if st != http.StatusAccepted {
		t.Fatalf("post chunk: %d %s", st, b)
	}
	return seq
}

// errCode checks the JSON error shape and returns its code.
func errCode(t testing.TB, b []byte) string {
	t.Helper()
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if err := json.Unmarshal(b, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
		t.Fatalf("not the JSON error shape: %s", b)
	}
	return e.Error.Code
}

// metric returns the sum of the samples of name whose labels contain all of labels.
func (s *sys) metric(t testing.TB, name string, labels ...string) float64 {
	t.Helper()
	_, b := s.do(t, http.MethodGet, "/metrics", nil)
	return sumMetric(b, name, labels...)
}

func sumMetric(b []byte, name string, labels ...string) float64 {
	var sum float64
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if !strings.HasPrefix(l, name+"{") && !strings.HasPrefix(l, name+" ") {
			continue
		}
		ok := true
		for _, lb := range labels {
			if !strings.Contains(l, lb) {
				ok = false
			}
		}
		if !ok {
			continue
		}
		v, _ := strconv.ParseFloat(l[strings.LastIndexByte(l, ' ')+1:], 64)
		sum += v
	}
	return sum
}

// metricNoFail is metric for goroutines other than the test's: 0 on error.
func (s *sys) metricNoFail(name string, labels ...string) float64 {
	resp, err := s.http.Get(s.url + "/metrics")
	if err != nil {
		return 0
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return sumMetric(b, name, labels...)
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", wait, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// frame is one decoded subscriber message.
type frame struct {
	seq, src uint64
	text     bool
	data     []byte
}

// wsClient is a real gorilla WebSocket client of GET /stream/:id/subscribe.
type wsClient struct {
	t   testing.TB
	c   *websocket.Conn
	out bool
}

func (s *sys) subscribe(t testing.TB, id, query string) *wsClient {
	t.Helper()
	return s.subscribeWith(t, id, query, 0)
}

// subscribeWith dials with a receive buffer of rcvBuf bytes (0: default).
func (s *sys) subscribeWith(t testing.TB, id, query string, rcvBuf int) *wsClient {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: wait, ReadBufferSize: 1024}
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
	u := s.ws + "/stream/" + id + "/subscribe"
	if query != "" {
		u += "?" + query
	}
	c, resp, err := d.Dial(u, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", u, err)
	}
	_ = resp.Body.Close()
	t.Cleanup(func() { _ = c.Close() })
	return &wsClient{t: t, c: c, out: strings.Contains(query, "channel=out")}
}

// next reads one frame; it returns the close error when the server closed.
func (w *wsClient) next() (frame, error) {
	w.t.Helper()
	_ = w.c.SetReadDeadline(time.Now().Add(wait))
	typ, data, err := w.c.ReadMessage()
	if err != nil {
		return frame{}, err
	}
	if typ == websocket.TextMessage {
		var v struct {
			Seq       uint64          `json:"seq"`
			SourceSeq uint64          `json:"source_seq"`
			Data      json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(data, &v); err != nil || v.Seq == 0 {
			w.t.Fatalf("text frame %q: %v", data, err)
		}
		return frame{seq: v.Seq, src: v.SourceSeq, text: true, data: v.Data}, nil
	}
	head := 8
	if w.out {
		head = 16
	}
	if len(data) < head {
		w.t.Fatalf("binary frame of %d bytes", len(data))
	}
	f := frame{seq: binary.BigEndian.Uint64(data), data: data[head:]}
	if w.out {
		f.src = binary.BigEndian.Uint64(data[8:])
	}
	return f, nil
}

// mustNext reads one frame and fails on error.
func (w *wsClient) mustNext() frame {
	w.t.Helper()
	f, err := w.next()
	if err != nil {
		w.t.Fatalf("read frame: %v", err)
	}
	return f
}

// closed reads until the server closes and returns the close code and reason.
func (w *wsClient) closed() (int, string) {
	w.t.Helper()
	for {
		_, err := w.next()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code, ce.Text
		}
		w.t.Fatalf("connection ended without a close frame: %v", err)
	}
}

// worker serves svc.<service>.> on NATS like a Rust processing service:
// fn returns the status and body for each request.
func worker(t testing.TB, nc *nats.Conn, service string, fn func(r httpnats.Request) (int, string, []byte)) {
	t.Helper()
	sub, err := nc.QueueSubscribe("svc."+service+".>", "svc."+service, func(m *nats.Msg) {
		r := httpnats.DecodeRequest(m)
		status, ct, body := fn(r)
		h := http.Header{}
		if ct != "" {
			h.Set("Content-Type", ct)
		}
		_ = m.RespondMsg(httpnats.NewResponseMsg(status, h, body))
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}
