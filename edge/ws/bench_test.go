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
		defer func() { _ = client.Close(); <-c.Done() }() // the client goes first: no close handshake to wait for
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

// BenchmarkBroadcast measures one sender fanning 128-byte messages out to
// 100 connections over loopback, each read by its own gorilla client, in
// the same run as the baseline:
//
//	go test -run '^$' -bench Broadcast -benchmem ./edge/ws/
//
// gorilla: gorilla's chat example, a writer goroutine per connection fed
// by a buffered channel of 256 messages (the sender blocks on a full one).
// ws: Conn.Send to each connection. msgs/s counts messages delivered to
// clients; ratio-to-gorilla is ws's over the baseline's.
func BenchmarkBroadcast(b *testing.B) {
	var baseline float64
	for _, kind := range []string{"gorilla", "ws"} {
		b.Run(kind, func(b *testing.B) {
			rate := benchBroadcast(b, kind, 100, 128)
			b.ReportMetric(rate, "msgs/s")
			if kind == "gorilla" {
				baseline = rate
			} else if baseline > 0 {
				b.ReportMetric(rate/baseline, "ratio-to-gorilla")
			}
		})
	}
}

func benchBroadcast(b *testing.B, kind string, subscribers, size int) float64 {
	// ws: the sender stays within window messages of the clients in all,
	// and a queue holds a whole window, so no client is closed as slow.
	const window, ackEvery = 64 << 10, 64 // acks from all clients must be able to come within a window
	queueBytes := window * (size + 10)
	type gconn struct {
		c    *websocket.Conn
		send chan []byte
		done chan struct{}
	}
	gconns := make(chan *gconn, subscribers)
	wconns := make(chan *ws.Conn, subscribers)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if kind == "gorilla" {
			u := websocket.Upgrader{ReadBufferSize: ws.DefaultBufferSize, WriteBufferSize: ws.DefaultBufferSize}
			c, err := u.Upgrade(w, r, nil)
			if err != nil {
				return
			}
			g := &gconn{c: c, send: make(chan []byte, 256), done: make(chan struct{})}
			go func() {
				defer close(g.done)
				for m := range g.send {
					_ = c.SetWriteDeadline(time.Now().Add(ws.DefaultWriteWait))
					if err := c.WriteMessage(websocket.BinaryMessage, m); err != nil {
						return
					}
				}
			}()
			gconns <- g
			return
		}
		c, err := ws.Upgrade(w, r, ws.Options{QueueBytes: queueBytes}, nil)
		if err == nil {
			wconns <- c
		}
	}))
	defer srv.Close()
	acks := make(chan struct{}, subscribers*(b.N/ackEvery+1))
	received := make(chan error, subscribers)
	var clients []*websocket.Conn
	defer func() {
		for _, c := range clients {
			_ = c.Close()
		}
	}()
	for i := 0; i < subscribers; i++ {
		client, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
		if err != nil {
			b.Fatal(err)
		}
		clients = append(clients, client)
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
	}
	msg := make([]byte, size)
	var gs []*gconn
	var wsc []*ws.Conn
	for i := 0; i < subscribers; i++ {
		if kind == "gorilla" {
			gs = append(gs, <-gconns)
		} else {
			wsc = append(wsc, <-wconns)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	acked := 0 // messages the clients confirmed, in all
	for i := 0; i < b.N; i++ {
		if kind == "gorilla" {
			for _, g := range gs {
				g.send <- msg
			}
			continue
		}
		for i*subscribers-acked >= window {
			<-acks
			acked += ackEvery
		}
		for _, c := range wsc {
			if err := c.Send(ws.BinaryMessage, msg); err != nil {
				b.Fatal(err)
			}
		}
	}
	for i := 0; i < subscribers; i++ {
		if err := <-received; err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	for _, c := range clients { // the clients go first: no close handshake to wait for
		_ = c.Close()
	}
	for _, g := range gs {
		close(g.send)
		<-g.done
		_ = g.c.Close()
	}
	for _, c := range wsc {
		<-c.Done()
	}
	return float64(b.N*subscribers) / b.Elapsed().Seconds()
}
