package ws_test

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/switchyard/switchyard/edge/ws"
)

// TestJoinText: with JoinText, text messages queued together arrive in
// fewer frames, one message a line, all of them, in order; binary
// messages are never joined.
func TestJoinText(t *testing.T) {
	s := startServer(t, serverOptions{opts: func(*http.Request) ws.Options {
		return ws.Options{JoinText: true, QueueBytes: 8 << 20}
	}})
	c, sc := s.dial("", 0)
	const total = 5000
	for i := range total {
		if err := sc.Send(ws.TextMessage, []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := sc.Send(ws.BinaryMessage, []byte("bin")); err != nil {
		t.Fatal(err)
	}
	next, frames := 0, 0
	for next < total {
		typ, data, err := c.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		frames++
		if typ != websocket.TextMessage {
			t.Fatalf("frame %d is not text", frames)
		}
		for _, line := range bytes.Split(data, []byte("\n")) {
			if string(line) != strconv.Itoa(next) {
				t.Fatalf("message %d is %q", next, line)
			}
			next++
		}
	}
	typ, data, err := c.ReadMessage()
	if err != nil || typ != websocket.BinaryMessage || string(data) != "bin" {
		t.Fatalf("binary message: %d %q %v", typ, data, err)
	}
	if frames >= total {
		t.Fatalf("%d messages sent at once came in %d frames: none joined", total, frames)
	}
	t.Log(fmt.Sprintf("%d messages in %d frames", total, frames))
}
