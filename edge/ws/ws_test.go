package ws_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/labstack/echo/v4"

	"github.com/switchyard/switchyard/edge/ws"
	"github.com/switchyard/switchyard/internal/apierr"
)

func TestEchoRoundTrip(t *testing.T) {
	s := startServer(t, serverOptions{onMessage: echoMessage})
	c, sc := s.dial("", 0)
	for _, m := range []struct {
		typ  int
		data []byte
	}{{websocket.TextMessage, []byte("hello")}, {websocket.BinaryMessage, bytes.Repeat([]byte{7}, 40<<10)}, {websocket.TextMessage, nil}} {
		if err := c.WriteMessage(m.typ, m.data); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(wait))
		typ, got, err := c.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if typ != m.typ || !bytes.Equal(got, m.data) {
			t.Fatalf("echo: got type %d, %d bytes; want type %d, %d bytes", typ, len(got), m.typ, len(m.data))
		}
	}
	if got := s.counter("switchyard_websocket_connections", nil); got != 1 {
		t.Errorf("connections = %v, want 1", got)
	}
	if s.hub.Len() != 1 {
		t.Errorf("hub Len = %d, want 1", s.hub.Len())
	}
	// The client closes: the server records the code it received.
	err := c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "done"), time.Now().Add(wait))
	if err != nil {
		t.Fatal(err)
	}
	if ce, _ := readClose(t, c); ce == nil || ce.Code != ws.CloseNormal {
		t.Fatalf("close reply = %v, want 1000", ce)
	}
	waitDone(t, sc)
	if sc.CloseCode() != ws.CloseNormal || sc.CloseReason() != "done" {
		t.Errorf("CloseCode = %d %q, want 1000 done", sc.CloseCode(), sc.CloseReason())
	}
	if err := sc.Send(ws.TextMessage, []byte("late")); !errors.Is(err, ws.ErrClosed) {
		t.Errorf("Send after close = %v, want ErrClosed", err)
	}
	eventually(t, "hub forgets the closed connection", func() bool { return s.hub.Len() == 0 })
	for name, want := range map[string]float64{
		"switchyard_websocket_frames_in_total": 3, "switchyard_websocket_frames_out_total": 3,
		"switchyard_websocket_bytes_in_total": 5 + 40<<10, "switchyard_websocket_bytes_out_total": 5 + 40<<10,
		"switchyard_websocket_connections": 0,
	} {
		if got := s.counter(name, nil); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if got := s.closes("1000"); got != 1 {
		t.Errorf("closes{code=1000} = %v, want 1", got)
	}
}

func TestOversizeMessageCloses1009(t *testing.T) {
	s := startServer(t, serverOptions{onMessage: echoMessage,
		opts: func(*http.Request) ws.Options { return ws.Options{ReadLimit: 1024} }})
	c, sc := s.dial("", 0)
	if err := c.WriteMessage(websocket.BinaryMessage, make([]byte, 1024)); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(wait))
	if _, got, err := c.ReadMessage(); err != nil || len(got) != 1024 {
		t.Fatalf("a message at the limit: %d bytes, %v", len(got), err)
	}
	if err := c.WriteMessage(websocket.BinaryMessage, make([]byte, 1025)); err != nil {
		t.Fatal(err)
	}
	ce, _ := readClose(t, c)
	if ce == nil || ce.Code != websocket.CloseMessageTooBig {
		t.Fatalf("close = %v, want 1009", ce)
	}
	waitDone(t, sc)
	if sc.CloseCode() != ws.CloseTooBig {
		t.Errorf("CloseCode = %d, want 1009", sc.CloseCode())
	}
	if got := s.closes("1009"); got != 1 {
		t.Errorf("closes{code=1009} = %v, want 1", got)
	}
}

// seqFrame is a frame of size bytes that starts with its sequence number.
func seqFrame(i, size int) []byte {
	b := make([]byte, size)
	binary.BigEndian.PutUint64(b, uint64(i))
	return b
}

// fillSocket sends numbered frames one at a time while the writer keeps up,
// until one stays queued: the socket buffers are full and the writer is
// blocked. It returns the number of frames sent.
func fillSocket(t *testing.T, sc *ws.Conn, size int) int {
	t.Helper()
	for sent := 0; ; sent++ {
		if err := sc.Send(ws.BinaryMessage, seqFrame(sent, size)); err != nil {
			t.Fatalf("Send %d: %v", sent, err)
		}
		if sent > 1<<16 {
			t.Fatal("the socket never filled")
		}
		// Frames before this one were all written: from the second on,
		// one that stays queued for 100ms means the socket is full (or the
		// writer slow, which the callers' assertions tolerate).
		patience := wait
		if sent > 0 {
			patience = 100 * time.Millisecond
		}
		for deadline := time.Now().Add(patience); sc.Queued() > 0; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				if sent == 0 {
					t.Fatal("the first frame was never written")
				}
				return sent + 1
			}
		}
	}
}

// A client that stops reading is closed with 4008 once its queue is full;
// when it reads again it gets what was written, in order, then the close.
func TestSlowClientGets4008(t *testing.T) {
	const size, queue = 16 << 10, 64 << 10
	s := startServer(t, serverOptions{
		opts: func(*http.Request) ws.Options { return ws.Options{QueueBytes: queue, WriteWait: wait} }})
	c, sc := s.dial("", 16<<10)
	sent := fillSocket(t, sc, size)
	for ; ; sent++ {
		err := sc.Send(ws.BinaryMessage, seqFrame(sent, size))
		if errors.Is(err, ws.ErrSlow) {
			break
		}
		if err != nil {
			t.Fatalf("Send %d: %v", sent, err)
		}
	}
	if err := sc.Send(ws.BinaryMessage, []byte("x")); !errors.Is(err, ws.ErrClosed) {
		t.Errorf("Send after ErrSlow = %v, want ErrClosed", err)
	}
	_ = c.SetReadDeadline(time.Now().Add(wait))
	got := 0
	for {
		_, data, err := c.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != ws.CloseSlow || ce.Text != "slow" {
				t.Fatalf("after %d frames: %v, want close 4008 slow", got, err)
			}
			break
		}
		if len(data) != size || binary.BigEndian.Uint64(data) != uint64(got) {
			t.Fatalf("frame %d: %d bytes, seq %d", got, len(data), binary.BigEndian.Uint64(data))
		}
		got++
	}
	if got == 0 || got > sent {
		t.Fatalf("received %d frames of %d accepted", got, sent)
	}
	waitDone(t, sc)
	if sc.CloseCode() != ws.CloseSlow || sc.CloseReason() != "slow" {
		t.Errorf("CloseCode = %d %q, want 4008 slow", sc.CloseCode(), sc.CloseReason())
	}
	if got := s.closes("4008"); got != 1 {
		t.Errorf("closes{code=4008} = %v, want 1", got)
	}
	t.Logf("%d frames accepted, %d delivered before the close", sent, got)
}

// A client that never reads is closed with 4008 while another client on the
// same Hub receives every frame sent to it, in order.
func TestStalledReaderDoesNotHoldBackOthers(t *testing.T) {
	const size, window = 16 << 10, 16
	s := startServer(t, serverOptions{opts: func(r *http.Request) ws.Options {
		if r.URL.Query().Has("stalled") {
			return ws.Options{QueueBytes: 4 * size, WriteWait: 2 * time.Second}
		}
		return ws.Options{QueueBytes: 2 * window * size}
	}})
	stalled, sstalled := s.dial("stalled", 16<<10)
	fast, sfast := s.dial("", 0)
	if s.hub.Len() != 2 {
		t.Fatalf("hub Len = %d, want 2", s.hub.Len())
	}
	fillSocket(t, sstalled, size)

	recv := make(chan int, 1<<16)
	readErr := make(chan error, 1)
	go func() {
		for {
			_, data, err := fast.ReadMessage()
			if err != nil {
				readErr <- err
				close(recv)
				return
			}
			recv <- int(binary.BigEndian.Uint64(data))
		}
	}()
	next := 0 // next sequence number the fast client must receive
	expect := func() {
		t.Helper()
		select {
		case seq, ok := <-recv:
			if !ok {
				t.Fatalf("fast client: %v", <-readErr)
			}
			if seq != next {
				t.Fatalf("fast client got frame %d, want %d", seq, next)
			}
			next++
		case <-time.After(wait):
			t.Fatalf("fast client: frame %d not received", next)
		}
	}
	deadline := time.Now().Add(wait)
	sent := 0
	for stalledOpen := true; stalledOpen; sent++ {
		f := seqFrame(sent, size)
		if err := sfast.Send(ws.BinaryMessage, f); err != nil {
			t.Fatalf("fast Send %d: %v", sent, err)
		}
		if err := sstalled.Send(ws.BinaryMessage, f); err != nil && !errors.Is(err, ws.ErrSlow) && !errors.Is(err, ws.ErrClosed) {
			t.Fatalf("stalled Send: %v", err)
		}
		if sent >= window {
			expect() // pace the sender on the fast client only
		}
		select {
		case <-sstalled.Done():
			stalledOpen = false
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the stalled client is still open after %d frames", sent)
		}
	}
	for i := 0; i < 10; i, sent = i+1, sent+1 {
		if err := sfast.Send(ws.BinaryMessage, seqFrame(sent, size)); err != nil {
			t.Fatal(err)
		}
	}
	for next < sent {
		expect()
	}
	if sstalled.CloseCode() != ws.CloseSlow {
		t.Errorf("stalled CloseCode = %d %q, want 4008", sstalled.CloseCode(), sstalled.CloseReason())
	}
	if got := s.closes("4008"); got != 1 {
		t.Errorf("closes{code=4008} = %v, want 1", got)
	}
	// The stalled client's connection is gone: reading ends in an error,
	// the close frame if the full socket let it through, or EOF in the
	// middle of a frame (gorilla's 1006).
	ce, n := readClose(t, stalled)
	if ce != nil && ce.Code != ws.CloseSlow && ce.Code != websocket.CloseAbnormalClosure {
		t.Errorf("stalled client got close %d, want 4008 or 1006", ce.Code)
	}
	eventually(t, "hub keeps only the fast client", func() bool { return s.hub.Len() == 1 })
	t.Logf("%d frames to each; the stalled client got %d before the end; end: %v", sent, n, ce)
}

// Send returns at once whatever the client does: a loop of sends to a
// client that never reads completes.
func TestSendNeverBlocks(t *testing.T) {
	const queue = 256 << 10
	s := startServer(t, serverOptions{opts: func(*http.Request) ws.Options {
		return ws.Options{QueueBytes: queue, WriteWait: time.Hour}
	}})
	_, sc := s.dial("", 16<<10)
	frame := make([]byte, 4<<10)
	done := make(chan [3]int, 1)
	go func() {
		var n [3]int                 // accepted, ErrSlow, ErrClosed
		for i := 0; i < 20000; i++ { // 80 MiB, far beyond the socket buffers
			switch err := sc.Send(ws.BinaryMessage, frame); {
			case err == nil:
				n[0]++
			case errors.Is(err, ws.ErrSlow):
				n[1]++
			case errors.Is(err, ws.ErrClosed):
				n[2]++
			}
		}
		done <- n
	}()
	var n [3]int
	select {
	case n = <-done:
	case <-time.After(wait):
		t.Fatal("Send blocked")
	}
	if n[1] != 1 || n[0]+n[1]+n[2] != 20000 {
		t.Fatalf("accepted %d, ErrSlow %d, ErrClosed %d; want exactly one ErrSlow", n[0], n[1], n[2])
	}
	// The writer is stuck on the full socket with an hour to go: a hub
	// shutdown with a short deadline closes the socket and still returns.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := s.hub.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("hub Shutdown = %v, want DeadlineExceeded", err)
	}
	waitDone(t, sc)
	if sc.CloseCode() != ws.CloseSlow {
		t.Errorf("CloseCode = %d, want 4008", sc.CloseCode())
	}
}

func TestSendRefusesBadFrames(t *testing.T) {
	s := startServer(t, serverOptions{opts: func(*http.Request) ws.Options { return ws.Options{QueueBytes: 100} }})
	c, sc := s.dial("", 0)
	if err := sc.Send(websocket.PingMessage, nil); !errors.Is(err, ws.ErrMessageType) {
		t.Errorf("Send(ping) = %v, want ErrMessageType", err)
	}
	if err := sc.Send(ws.BinaryMessage, make([]byte, 91)); !errors.Is(err, ws.ErrFrameTooBig) {
		t.Errorf("Send(91 bytes) = %v, want ErrFrameTooBig", err)
	}
	if err := sc.Send(ws.BinaryMessage, make([]byte, 90)); err != nil {
		t.Errorf("Send(90 bytes) = %v, want nil (connection still open)", err)
	}
	_ = c.SetReadDeadline(time.Now().Add(wait))
	if _, got, err := c.ReadMessage(); err != nil || len(got) != 90 {
		t.Fatalf("read: %d bytes, %v", len(got), err)
	}
}

func TestKeepAlive(t *testing.T) {
	opts := func(*http.Request) ws.Options {
		return ws.Options{PingInterval: 100 * time.Millisecond, PongWait: time.Second}
	}

	t.Run("idle connection stays open", func(t *testing.T) {
		s := startServer(t, serverOptions{onMessage: echoMessage, opts: opts})
		c, sc := s.dial("", 0)
		var pings atomic.Int32
		c.SetPingHandler(func(data string) error {
			pings.Add(1)
			return c.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(wait))
		})
		msgs := make(chan string, 1)
		go func() {
			defer close(msgs)
			for {
				_, data, err := c.ReadMessage()
				if err != nil {
					return
				}
				msgs <- string(data)
			}
		}()
		// 25 pings take at least 2.4s: over twice PongWait.
		eventually(t, "25 pings", func() bool { return pings.Load() >= 25 })
		select {
		case <-sc.Done():
			t.Fatalf("closed while idle: %d %q", sc.CloseCode(), sc.CloseReason())
		default:
		}
		if err := c.WriteMessage(websocket.TextMessage, []byte("still here")); err != nil {
			t.Fatal(err)
		}
		select {
		case m := <-msgs:
			if m != "still here" {
				t.Fatalf("echo %q", m)
			}
		case <-time.After(wait):
			t.Fatal("no echo")
		}
		_ = c.Close()
		waitDone(t, sc)
	})

	t.Run("peer that stops answering pings is dropped", func(t *testing.T) {
		s := startServer(t, serverOptions{opts: opts})
		c, sc := s.dial("", 0)
		c.SetPingHandler(func(string) error { return nil }) // no pong
		go func() {
			for {
				if _, _, err := c.ReadMessage(); err != nil {
					return
				}
			}
		}()
		waitDone(t, sc)
		if sc.CloseCode() != ws.CloseAbnormal || sc.CloseReason() != "pong timeout" {
			t.Errorf("CloseCode = %d %q, want 1006 pong timeout", sc.CloseCode(), sc.CloseReason())
		}
		if got := s.closes("1006"); got != 1 {
			t.Errorf("closes{code=1006} = %v, want 1", got)
		}
	})
}

// The edge's HTTP WriteTimeout (200ms here) does not cut a WebSocket.
func TestWriteTimeoutExemption(t *testing.T) {
	const writeTimeout = 200 * time.Millisecond
	s := startServer(t, serverOptions{writeTimeout: writeTimeout, onMessage: echoMessage,
		opts: func(*http.Request) ws.Options {
			return ws.Options{PingInterval: 50 * time.Millisecond, PongWait: wait}
		},
		routes: func(e *echo.Echo) {
			e.GET("/late", func(c echo.Context) error {
				time.Sleep(3 * writeTimeout)
				return c.String(http.StatusOK, "too late")
			})
		}})
	// The edge does cut a plain response at its write timeout.
	resp, err := http.Get(strings.TrimSuffix(s.httpURL, "/ws") + "/late")
	if err == nil {
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		t.Fatalf("a plain response past the write timeout arrived: %d %q", resp.StatusCode, body)
	}
	http.DefaultClient.CloseIdleConnections()

	c, sc := s.dial("", 0)
	start := time.Now()
	var pings atomic.Int32
	c.SetPingHandler(func(data string) error {
		pings.Add(1)
		return c.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(wait))
	})
	got := make(chan []byte, 1)
	go func() {
		defer close(got)
		for {
			_, data, err := c.ReadMessage()
			if err != nil {
				return
			}
			got <- data
		}
	}()
	eventually(t, "pings past three write timeouts", func() bool {
		return pings.Load() >= 4 && time.Since(start) > 3*writeTimeout
	})
	big := bytes.Repeat([]byte("x"), 60<<10)
	for i := 0; i < 3; i++ {
		if err := c.WriteMessage(websocket.TextMessage, big); err != nil {
			t.Fatal(err)
		}
		select {
		case m, ok := <-got:
			if !ok || !bytes.Equal(m, big) {
				t.Fatalf("echo %d after %s: %d bytes, open %v", i, time.Since(start), len(m), ok)
			}
		case <-time.After(wait):
			t.Fatal("no echo")
		}
	}
	select {
	case <-sc.Done():
		t.Fatalf("closed: %d %q", sc.CloseCode(), sc.CloseReason())
	default:
	}
}

func TestHubShutdownSends1001(t *testing.T) {
	s := startServer(t, serverOptions{onMessage: echoMessage})
	type pair struct {
		c  *websocket.Conn
		sc *ws.Conn
	}
	var ps []pair
	for i := 0; i < 3; i++ {
		c, sc := s.dial("", 0)
		ps = append(ps, pair{c, sc})
	}
	// What was queued before the shutdown is delivered before the close.
	type result struct {
		msgs []string
		ce   *websocket.CloseError
		err  error
	}
	results := make(chan result, len(ps))
	for _, p := range ps {
		if err := p.sc.Send(ws.TextMessage, []byte("last words")); err != nil {
			t.Fatal(err)
		}
		go func(c *websocket.Conn) {
			var r result
			_ = c.SetReadDeadline(time.Now().Add(wait))
			for {
				_, m, err := c.ReadMessage()
				if err != nil {
					if !errors.As(err, &r.ce) {
						r.err = err
					}
					results <- r
					return
				}
				r.msgs = append(r.msgs, string(m))
			}
		}(p.c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := s.hub.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if s.hub.Len() != 0 {
		t.Errorf("hub Len = %d after Shutdown", s.hub.Len())
	}
	for range ps {
		r := <-results
		if len(r.msgs) != 1 || r.msgs[0] != "last words" || r.ce == nil || r.ce.Code != ws.CloseGoingAway {
			t.Fatalf("client got %q then %v %v, want \"last words\" then 1001", r.msgs, r.ce, r.err)
		}
	}
	for _, p := range ps {
		if p.sc.CloseCode() != ws.CloseGoingAway {
			t.Errorf("CloseCode = %d", p.sc.CloseCode())
		}
	}
	if err := s.hub.Shutdown(ctx); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
	// A connection upgraded after the shutdown is closed on Add.
	c, sc := s.dial("", 0)
	if ce, _ := readClose(t, c); ce == nil || ce.Code != ws.CloseGoingAway {
		t.Fatalf("late connection: close = %v, want 1001", ce)
	}
	waitDone(t, sc)
	if got := s.closes("1001"); got != 4 {
		t.Errorf("closes{code=1001} = %v, want 4", got)
	}
}

func TestCloseAfterClose(t *testing.T) {
	s := startServer(t, serverOptions{onMessage: func(c *ws.Conn, _ int, data []byte) {
		if !json.Valid(data) {
			c.Close(ws.ClosePolicy, "malformed JSON")
			return
		}
		_ = c.Send(ws.TextMessage, data)
	}})
	c, sc := s.dial("", 0)
	if err := c.WriteMessage(websocket.TextMessage, []byte("{nope")); err != nil {
		t.Fatal(err)
	}
	ce, _ := readClose(t, c)
	if ce == nil || ce.Code != ws.ClosePolicy || ce.Text != "malformed JSON" {
		t.Fatalf("close = %v, want 1008 malformed JSON", ce)
	}
	waitDone(t, sc)
	sc.Close(ws.CloseNormal, "again")
	sc.Close(ws.CloseGoingAway, "and again")
	if sc.CloseCode() != ws.ClosePolicy {
		t.Errorf("CloseCode = %d, want the first one, 1008", sc.CloseCode())
	}
	if err := sc.Send(ws.TextMessage, []byte("{}")); !errors.Is(err, ws.ErrClosed) {
		t.Errorf("Send = %v, want ErrClosed", err)
	}

	// Close twice on an open connection: one close frame, the first code;
	// an invalid code is sent as 1011, a long reason is cut to 123 bytes.
	c, sc = s.dial("", 0)
	sc.Close(5000, strings.Repeat("é", 100))
	sc.Close(ws.CloseNormal, "second")
	ce, _ = readClose(t, c)
	if ce == nil || ce.Code != ws.CloseInternal || len(ce.Text) != 122 {
		t.Fatalf("close = %v, want 1011 with a 122-byte reason", ce)
	}
	waitDone(t, sc)
}

func TestContextEndCloses1001(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := startServer(t, serverOptions{opts: func(*http.Request) ws.Options { return ws.Options{Context: ctx} }})
	c, sc := s.dial("", 0)
	cancel()
	if ce, _ := readClose(t, c); ce == nil || ce.Code != ws.CloseGoingAway {
		t.Fatalf("close = %v, want 1001", ce)
	}
	waitDone(t, sc)
}

func TestHandlerPanicCloses1011(t *testing.T) {
	s := startServer(t, serverOptions{onMessage: func(*ws.Conn, int, []byte) { panic("boom") }})
	c, sc := s.dial("", 0)
	if err := c.WriteMessage(websocket.TextMessage, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if ce, _ := readClose(t, c); ce == nil || ce.Code != ws.CloseInternal {
		t.Fatalf("close = %v, want 1011", ce)
	}
	waitDone(t, sc)
}

func TestPeerGone(t *testing.T) {
	s := startServer(t, serverOptions{onMessage: echoMessage})
	c, sc := s.dial("", 0)
	_ = c.NetConn().Close() // no close frame
	waitDone(t, sc)
	if sc.CloseCode() != ws.CloseAbnormal {
		t.Errorf("CloseCode = %d, want 1006", sc.CloseCode())
	}
	eventually(t, "hub forgets the connection", func() bool { return s.hub.Len() == 0 })
	if got := s.counter("switchyard_websocket_connections", nil); got != 0 {
		t.Errorf("connections = %v", got)
	}
}

func TestUpgradeRefusals(t *testing.T) {
	s := startServer(t, serverOptions{opts: func(r *http.Request) ws.Options {
		switch {
		case r.URL.Query().Has("bad"):
			return ws.Options{PingInterval: time.Second, PongWait: time.Second}
		case r.URL.Query().Has("origin"):
			return ws.Options{CheckOrigin: func(*http.Request) bool { return false }}
		}
		return ws.Options{}
	}})
	for _, tc := range []struct {
		query   string
		upgrade bool
		status  int
		code    string
	}{
		{"", false, http.StatusBadRequest, apierr.CodeBadRequest},
		{"origin", true, http.StatusForbidden, apierr.CodeBadRequest},
		{"bad", true, http.StatusInternalServerError, apierr.CodeInternal},
	} {
		req, _ := http.NewRequest(http.MethodGet, s.httpURL+"?"+tc.query, nil)
		if tc.upgrade {
			req.Header.Set("Connection", "Upgrade")
			req.Header.Set("Upgrade", "websocket")
			req.Header.Set("Sec-WebSocket-Version", "13")
			req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
			req.Header.Set("Origin", "http://elsewhere.example")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body apierr.Body
		err = json.NewDecoder(resp.Body).Decode(&body)
		_ = resp.Body.Close()
		if resp.StatusCode != tc.status || err != nil || body.Error.Code != tc.code || body.Error.RequestID == "" {
			t.Errorf("%q: %d %+v (%v), want %d %s with a request id", tc.query, resp.StatusCode, body, err, tc.status, tc.code)
		}
	}
	http.DefaultClient.CloseIdleConnections()
}

func TestOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		o  ws.Options
		ok bool
	}{
		{ws.Options{}, true},
		{ws.Options{PingInterval: -1}, true},
		{ws.Options{PingInterval: time.Second, PongWait: 2 * time.Second}, true},
		{ws.Options{PingInterval: time.Second, PongWait: time.Second}, false},
		{ws.Options{PongWait: 5 * time.Second}, false}, // below the default 20s interval
		{ws.Options{ReadLimit: -1}, false},
		{ws.Options{QueueBytes: -1}, false},
		{ws.Options{WriteWait: -1}, false},
		{ws.Options{ReadBufferSize: -1}, false},
	} {
		err := tc.o.Validate()
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ws.ErrOptions)) {
			t.Errorf("%+v: %v", tc.o, err)
		}
	}
}
