package ws_test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/switchyard/switchyard/edge/ws"
)

// BenchmarkSend measures messages to one connection over loopback, received
// by a gorilla client, against the baseline in the same run:
//
//	go test -run '^$' -bench Send -benchmem ./edge/ws/
//
// gorilla: the handler goroutine writes each message itself with
// WriteMessage under a write deadline (blocking, no queue: the chat
// example's writer without its channel). ws: Conn.Send into the byte-bounded
// queue, written by the connection's writer goroutine; the sender keeps at
// most half the 1 MiB queue ahead of the client, so that it never
// overflows. ratio-to-gorilla is ws's throughput over the baseline's.
func BenchmarkSend(b *testing.B) {
	for _, size := range []int{128, 4096} {
		var baseline float64
		for _, kind := range []string{"gorilla", "ws"} {
			b.Run(kind+"/"+strconv.Itoa(size)+"B", func(b *testing.B) {
				rate := benchSend(b, kind, size)
				b.ReportMetric(rate, "msgs/s")
				if kind == "gorilla" {
					baseline = rate
				} else if baseline > 0 {
					b.ReportMetric(rate/baseline, "ratio-to-gorilla")
				}
			})
		}
	}
}

func benchSend(b *testing.B, kind string, size int) float64 {
	// The sender stays within half the queue of the client.
	window := ws.DefaultQueueBytes / 2 / (size + 10)
	ackEvery := window / 8
	gconns := make(chan *websocket.Conn, 1)
	wconns := make(chan *ws.Conn, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if kind == "gorilla" {
			u := websocket.Upgrader{ReadBufferSize: ws.DefaultBufferSize, WriteBufferSize: ws.DefaultBufferSize}
			c, err := u.Upgrade(w, r, nil)
			if err == nil {
				gconns <- c
			}
			return
		}
		c, err := ws.Upgrade(w, r, ws.Options{}, nil)
		if err == nil {
			wconns <- c
		}
	}))
	defer srv.Close()
	client, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	acks := make(chan struct{}, b.N/ackEvery+1)
	received := make(chan error, 1)
	go func() {
		for i := 1; i <= b.N; i++ {
			if _, _, err := client.ReadMessage(); err != nil {
				received <- err
				return
			}
			if i%ackEvery == 0 {
				acks <- struct{}{}
			}
		}
		received <- nil
	}()
	msg := make([]byte, size)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	switch kind {
	case "gorilla":
		c := <-gconns
		defer c.Close()
		for i := 0; i < b.N; i++ {
			_ = c.SetWriteDeadline(time.Now().Add(ws.DefaultWriteWait))
			if err := c.WriteMessage(websocket.BinaryMessage, msg); err != nil {
				b.Fatal(err)
			}
		}
	case "ws":
		c := <-wconns
		defer func() { c.Close(ws.CloseNormal, ""); <-c.Done() }()
		acked := 0
		for i := 0; i < b.N; i++ {
			for i-acked*ackEvery >= window {
				<-acks
				acked++
			}
			if err := c.Send(ws.BinaryMessage, msg); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := <-received; err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	return float64(b.N) / b.Elapsed().Seconds()
}
