// Command streamstore measures the two ways of storing stream chunks on
// JetStream at N streams (default 1,000), each with its own processing
// consumer, on an embedded nats-server with a file store:
//
//	one:    one JetStream stream STREAMS over stream.*.in|out, per-message
//	        TTL for each stream's max age, purge by subject on delete
//	per-id: one JetStream stream per id over stream.<id>.in|out, with its
//	        own MaxAge/MaxBytes, DeleteStream on delete
//
// It prints, for each layout: time to create the N streams (metadata and
// consumer), server heap and goroutines held, chunk publish rate spread
// over every stream, time to delete one stream's data, and time for the
// server to recover the store on restart.
//
//	go run ./bench/streamstore            # 1,000 streams
//	go run ./bench/streamstore -n 200
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard/switchyard/jetstream"
)

func main() {
	n := flag.Int("n", 1000, "number of streams")
	chunks := flag.Int("chunks", 20, "1 KiB chunks published per stream")
	flag.Parse()
	for _, layout := range []string{"one", "per-id"} {
		r, err := measure(layout, *n, *chunks)
		if err != nil {
			fmt.Fprintln(os.Stderr, layout+":", err)
			os.Exit(1)
		}
		fmt.Printf("%-7s streams=%d create=%v (%.2f ms/stream) heap=+%.1f MiB goroutines=+%d publish=%.0f msgs/s delete_one=%v restart_recover=%v\n",
			layout, *n, r.create.Round(time.Millisecond), float64(r.create.Microseconds())/1000/float64(*n),
			float64(r.heap)/(1<<20), r.goroutines, r.pubRate, r.deleteOne.Round(time.Microsecond), r.recover.Round(time.Millisecond))
	}
}

type result struct {
	create, deleteOne, recover time.Duration
	heap                       int64
	goroutines                 int
	pubRate                    float64
}

func heapNow() (int64, int) {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapInuse), runtime.NumGoroutine()
}

func measure(layout string, n, chunks int) (result, error) {
	var r result
	dir, err := os.MkdirTemp("", "streamstore-")
	if err != nil {
		return r, err
	}
	defer os.RemoveAll(dir)
	start := func() (*jetstream.Embedded, *nats.Conn, natsjs.JetStream, error) {
		emb, err := jetstream.StartEmbedded(jetstream.EmbeddedOptions{Host: "127.0.0.1", Port: -1, StoreDir: dir, ServerName: "bench"}, slog.New(slog.DiscardHandler))
		if err != nil {
			return nil, nil, nil, err
		}
		nc, err := nats.Connect("", nats.InProcessServer(emb.Server()))
		if err != nil {
			emb.Shutdown()
			return nil, nil, nil, err
		}
		js, _ := natsjs.New(nc)
		return emb, nc, js, nil
	}
	emb, nc, js, err := start()
	if err != nil {
		return r, err
	}
	ctx := context.Background()
	if layout == "one" {
		if _, err := js.CreateStream(ctx, natsjs.StreamConfig{Name: "STREAMS", Subjects: []string{"stream.*.in", "stream.*.out"},
			Storage: natsjs.FileStorage, AllowMsgTTL: true, MaxAge: 24 * time.Hour}); err != nil {
			return r, err
		}
	}
	h0, g0 := heapNow()
	t0 := time.Now()
	for i := 0; i < n; i++ {
		id := "s" + strconv.Itoa(i)
		sname := "STREAMS"
		if layout == "per-id" {
			sname = "STREAM_" + id
			if _, err := js.CreateStream(ctx, natsjs.StreamConfig{Name: sname, Subjects: []string{"stream." + id + ".in", "stream." + id + ".out"},
				Storage: natsjs.FileStorage, MaxAge: time.Hour, MaxBytes: 4 << 20, Discard: natsjs.DiscardNew}); err != nil {
				return r, err
			}
		}
		if _, err := js.CreateOrUpdateConsumer(ctx, sname, natsjs.ConsumerConfig{Durable: "proc-" + id, FilterSubject: "stream." + id + ".in",
			AckPolicy: natsjs.AckExplicitPolicy, MaxAckPending: 16}); err != nil {
			return r, err
		}
	}
	r.create = time.Since(t0)
	h1, g1 := heapNow()
	r.heap, r.goroutines = h1-h0, g1-g0

	payload := make([]byte, 1024)
	t0 = time.Now()
	total := 0
	for c := 0; c < chunks; c++ {
		for i := 0; i < n; i++ {
			m := nats.NewMsg("stream.s" + strconv.Itoa(i) + ".in")
			m.Data = payload
			if layout == "one" {
				m.Header.Set("Nats-TTL", "1h")
			}
			if _, err := js.PublishMsgAsync(m); err != nil {
				return r, err
			}
			total++
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		return r, fmt.Errorf("publish acks timed out")
	}
	r.pubRate = float64(total) / time.Since(t0).Seconds()

	t0 = time.Now()
	if layout == "one" {
		s, _ := js.Stream(ctx, "STREAMS")
		if err := s.Purge(ctx, natsjs.WithPurgeSubject("stream.s7.*")); err != nil {
			return r, err
		}
		if err := js.DeleteConsumer(ctx, "STREAMS", "proc-s7"); err != nil {
			return r, err
		}
	} else if err := js.DeleteStream(ctx, "STREAM_s7"); err != nil {
		return r, err
	}
	r.deleteOne = time.Since(t0)

	nc.Close()
	emb.Shutdown()
	t0 = time.Now()
	emb, nc, js, err = start()
	if err != nil {
		return r, err
	}
	// Recovered when every stream answers.
	want := "STREAM_s" + strconv.Itoa(n-1)
	if layout == "one" {
		want = "STREAMS"
	}
	for {
		if _, err := js.Stream(ctx, want); err == nil {
			break
		}
		time.Sleep(time.Millisecond)
	}
	r.recover = time.Since(t0)
	nc.Close()
	emb.Shutdown()
	return r, nil
}
