// Command streambench measures the stream processor in one run against
// the baselines a user would pick instead, and prints the ratios:
//
//	(a) 16 KiB chunks through POST /stream/:id/chunk, 32 concurrent
//	    clients, acknowledged (202) chunks/s
//	(b) JetStream publish of 16 KiB messages to the same kind of embedded
//	    server: `nats bench js pub` when the nats CLI is on PATH (or -nats),
//	    else a Go publisher with async publish and a window of 256 acks
//	(c) fan-out of 128 B chunks to 100 WebSocket subscribers of
//	    GET /stream/:id/subscribe, delivered frames/s
//	(d) a minimal gorilla/websocket broadcast of the same messages to 100
//	    clients: one writer goroutine and a bounded channel per client
//
// Everything listens on 127.0.0.1, ports 19400 to 19499.
//
//	go run ./bench/streambench
//	go run ./bench/streambench -duration 20s -fanout 50000
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard/switchyard/app"
	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/edge/stream"
	"github.com/switchyard/switchyard/part"
)

const (
	streamPort   = 19401
	natsPort     = 19402
	gorillaPort  = 19403
	chunkBytes   = 16 << 10
	fanoutBytes  = 128
	clients      = 32
	asyncWindow  = 256
	fanoutClient = 100
)

func main() {
	duration := flag.Duration("duration", 10*time.Second, "length of (a) and (b)")
	fanout := flag.Int("fanout", 20000, "chunks each of the 100 subscribers receives in (c) and (d)")
	natsCLI := flag.String("nats", "", "path of the nats CLI for (b) (default: nats on PATH, else a Go publisher)")
	wrkPath := flag.String("wrk", "", "path of wrk for (a) (default: wrk on PATH, else Go HTTP clients)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of (a) to this file")
	fanProfile := flag.String("fanoutprofile", "", "write a CPU profile of (c) to this file")
	flag.Parse()
	profile, fanoutProfile = *cpuProfile, *fanProfile
	wrkBin = *wrkPath
	if err := run(*duration, *fanout, *natsCLI); err != nil {
		fmt.Fprintln(os.Stderr, "streambench:", err)
		os.Exit(1)
	}
}

var profile, fanoutProfile, wrkBin string

func run(d time.Duration, fanout int, natsCLI string) error {
	dir, err := os.MkdirTemp("", "streambench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg := config.Default()
	cfg.Server.Host = "127.0.0.1"
	cfg.Server.StreamPort = streamPort
	cfg.NATS.Port = natsPort
	cfg.DataDir = dir
	cfg.Log.Level = "warn"
	cfg.Stream.RetentionMaxBytesLimit = 8 << 30
	cfg.Stream.IdleTimeout = 0
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- app.Run(ctx, app.Options{Config: cfg, Parts: []part.Part{stream.Part},
			Log:   slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
			Ready: func(map[string]net.Addr) { close(ready) }})
	}()
	select {
	case <-ready:
	case err := <-done:
		cancel()
		return err
	}
	defer func() { cancel(); <-done }()
	base := "http://127.0.0.1:" + strconv.Itoa(streamPort)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}

	// (a) POST /stream/:id/chunk.
	id, err := create(hc, base, `{"type":"audio","codec":"pcm_s16le","sample_rate":48000,"channels":2,"retention":{"max_age":"10m","max_bytes":8589934592}}`)
	if err != nil {
		return err
	}
	if profile != "" {
		f, err := os.Create(profile)
		if err != nil {
			return err
		}
		_ = pprof.StartCPUProfile(f)
	}
	if wrkBin == "" {
		wrkBin, _ = exec.LookPath("wrk")
	}
	var a float64
	how := "Go HTTP clients"
	if wrkBin != "" {
		a, err = postChunksWrk(wrkBin, base+"/stream/"+id+"/chunk", d)
		how = "wrk -t2"
	} else {
		a, err = postChunks(hc, base, id, d)
	}
	if profile != "" {
		pprof.StopCPUProfile()
	}
	if err != nil {
		return err
	}
	fmt.Printf("(a) POST /stream/:id/chunk, 16 KiB, %d connections (%s): %9.0f chunks/s\n", clients, how, a)

	// (b) JetStream publish of the same messages to the same server.
	b, how, err := jsPublish(d, natsCLI)
	if err != nil {
		return err
	}
	fmt.Printf("(b) JetStream publish, 16 KiB (%s): %9.0f msgs/s\n", how, b)
	fmt.Printf("    (a)/(b) = %.2fx (target at least 0.5x)\n", a/b)

	// (c) fan-out to 100 subscribers.
	fid, err := create(hc, base, `{"type":"audio","codec":"pcm_s16le","sample_rate":48000,"channels":1,"retention":{"max_age":"10m","max_bytes":1073741824}}`)
	if err != nil {
		return err
	}
	if err := preload(hc, base, fid, fanout); err != nil {
		return err
	}
	if fanoutProfile != "" {
		f, err := os.Create(fanoutProfile)
		if err != nil {
			return err
		}
		_ = pprof.StartCPUProfile(f)
	}
	c, err := fanoutStream(fid, fanout)
	if fanoutProfile != "" {
		pprof.StopCPUProfile()
	}
	if err != nil {
		return err
	}
	fmt.Printf("(c) fan-out, 128 B, %d stream subscribers:           %9.0f frames/s\n", fanoutClient, c)
	dd, err := gorillaBroadcast(fanout)
	if err != nil {
		return err
	}
	fmt.Printf("(d) minimal gorilla broadcast, 128 B, %d clients:    %9.0f frames/s\n", fanoutClient, dd)
	fmt.Printf("    (c)/(d) = %.2fx (target at least 0.7x)\n", c/dd)
	return nil
}

func create(hc *http.Client, base, spec string) (string, error) {
	resp, err := hc.Post(base+"/stream/create", "application/json", strings.NewReader(spec))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var v struct{ ID string }
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("create: %d %v", resp.StatusCode, err)
	}
	return v.ID, nil
}

func postChunks(hc *http.Client, base, id string, d time.Duration) (float64, error) {
	body := make([]byte, chunkBytes)
	var n atomic.Int64
	var firstErr atomic.Value
	deadline := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < clients; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				resp, err := hc.Post(base+"/stream/"+id+"/chunk", "application/octet-stream", bytes.NewReader(body))
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				var sink [256]byte
				for {
					if _, err := resp.Body.Read(sink[:]); err != nil {
						break
					}
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted {
					firstErr.CompareAndSwap(nil, fmt.Errorf("chunk: status %d", resp.StatusCode))
					return
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return 0, err
	}
	return float64(n.Load()) / time.Since(start).Seconds(), nil
}

// postChunksWrk runs wrk with 32 connections POSTing 16 KiB chunks and
// returns the 202s per second; any other answer fails the run.
func postChunksWrk(bin, url string, d time.Duration) (float64, error) {
	script, err := os.CreateTemp("", "streambench-*.lua")
	if err != nil {
		return 0, err
	}
	defer os.Remove(script.Name())
	fmt.Fprintf(script, "wrk.method = \"POST\"\nwrk.body = string.rep(\"a\", %d)\nwrk.headers[\"Content-Type\"] = \"application/octet-stream\"\n", chunkBytes)
	script.Close()
	out, err := exec.Command(bin, "-t2", "-c"+strconv.Itoa(clients), "-d"+strconv.Itoa(int(d.Seconds()))+"s",
		"-s", script.Name(), url).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("wrk: %v: %s", err, out)
	}
	if strings.Contains(string(out), "Non-2xx") {
		return 0, fmt.Errorf("wrk saw answers other than 202:\n%s", out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(l); len(f) == 2 && f[0] == "Requests/sec:" {
			return strconv.ParseFloat(f[1], 64)
		}
	}
	return 0, fmt.Errorf("no Requests/sec in wrk output:\n%s", out)
}

// jsPublish measures JetStream publishing to the embedded server over TCP.
func jsPublish(d time.Duration, natsCLI string) (float64, string, error) {
	url := "nats://127.0.0.1:" + strconv.Itoa(natsPort)
	nc, err := nats.Connect(url)
	if err != nil {
		return 0, "", err
	}
	defer nc.Close()
	js, _ := natsjs.New(nc, natsjs.WithPublishAsyncMaxPending(asyncWindow))
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, natsjs.StreamConfig{Name: "BENCH", Subjects: []string{"bench.>"},
		Storage: natsjs.FileStorage, MaxBytes: 8 << 30, MaxMsgSize: 1 << 20}); err != nil {
		return 0, "", err
	}
	defer func() { _ = js.DeleteStream(ctx, "BENCH") }()
	if natsCLI == "" {
		natsCLI, _ = exec.LookPath("nats")
	}
	if natsCLI != "" {
		if r, err := natsBench(natsCLI, url, d); err == nil {
			return r, "nats bench js pub, async, 1 client", nil
		} else {
			fmt.Fprintln(os.Stderr, "nats bench failed, using the Go publisher:", err)
		}
	}
	msg := make([]byte, chunkBytes)
	var n int
	start := time.Now()
	for time.Since(start) < d {
		if _, err := js.PublishAsync("bench.x", msg, natsjs.WithStallWait(time.Minute)); err != nil {
			return 0, "", err
		}
		n++
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		return 0, "", fmt.Errorf("publish acks timed out")
	}
	return float64(n) / time.Since(start).Seconds(), "Go async publish, window 256, 1 client", nil
}

// natsBench runs `nats bench js pub` against the BENCH stream and reads its msgs/sec.
func natsBench(cli, url string, d time.Duration) (float64, error) {
	msgs := int(d.Seconds() * 20000)
	out, err := exec.Command(cli, "--server", url, "bench", "js", "pub", "async", "bench.x", "--stream", "BENCH",
		"--size", strconv.Itoa(chunkBytes), "--msgs", strconv.Itoa(msgs), "--batch", strconv.Itoa(asyncWindow),
		"--no-progress").CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("%v: %s", err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if i := strings.Index(l, " msgs/sec"); i > 0 && strings.Contains(strings.ToLower(l), "stats:") {
			f := strings.Fields(l[:i])
			v, err := strconv.ParseFloat(strings.ReplaceAll(f[len(f)-1], ",", ""), 64)
			if err == nil {
				return v, nil
			}
		}
	}
	return 0, fmt.Errorf("no msgs/sec in %s", out)
}

func preload(hc *http.Client, base, id string, n int) error {
	body := make([]byte, fanoutBytes)
	var next atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for w := 0; w < clients; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				resp, err := hc.Post(base+"/stream/"+id+"/chunk", "application/octet-stream", bytes.NewReader(body))
				if err != nil || resp.StatusCode != http.StatusAccepted {
					firstErr.CompareAndSwap(nil, fmt.Errorf("preload: %v", err))
					if resp != nil {
						resp.Body.Close()
					}
					return
				}
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return err
	}
	return nil
}

// receive dials count clients of url, waits until each read n messages,
// and returns the delivered frames per second, from the first dial.
func receive(url string, count, n int, startFn func()) (float64, error) {
	conns := make([]*websocket.Conn, count)
	for i := range conns {
		c, resp, err := websocket.DefaultDialer.Dial(url, nil)
		if err != nil {
			return 0, fmt.Errorf("dial %s: %w", url, err)
		}
		resp.Body.Close()
		conns[i] = c
	}
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	var wg sync.WaitGroup
	var firstErr atomic.Value
	start := time.Now()
	if startFn != nil {
		startFn()
	}
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Minute))
			for i := 0; i < n; i++ {
				if _, _, err := c.ReadMessage(); err != nil {
					firstErr.CompareAndSwap(nil, fmt.Errorf("after %d frames: %w", i, err))
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return 0, err
	}
	return float64(count*n) / time.Since(start).Seconds(), nil
}

func fanoutStream(id string, n int) (float64, error) {
	return receive("ws://127.0.0.1:"+strconv.Itoa(streamPort)+"/stream/"+id+"/subscribe?from=start", fanoutClient, n, nil)
}

// gorillaBroadcast is the baseline: a hub that sends every message to
// each client's bounded channel, drained by one writer goroutine per client.
func gorillaBroadcast(n int) (float64, error) {
	var mu sync.Mutex
	var chans []chan []byte
	all := make(chan struct{})
	up := websocket.Upgrader{}
	var writers sync.WaitGroup
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		ch := make(chan []byte, 256)
		mu.Lock()
		chans = append(chans, ch)
		if len(chans) == fanoutClient {
			close(all)
		}
		mu.Unlock()
		writers.Add(1)
		go func() {
			defer writers.Done()
			defer c.Close()
			for m := range ch {
				if err := c.WriteMessage(websocket.BinaryMessage, m); err != nil {
					for range ch {
					}
					return
				}
			}
		}()
	})}
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(gorillaPort))
	if err != nil {
		return 0, err
	}
	go func() { _ = srv.Serve(l) }()
	defer func() {
		_ = srv.Close()
		writers.Wait()
	}()
	msg := make([]byte, fanoutBytes+8) // the same frame as the stream edge sends
	var bwg sync.WaitGroup
	r, err := receive("ws://127.0.0.1:"+strconv.Itoa(gorillaPort)+"/", fanoutClient, n, func() {
		bwg.Add(1)
		go func() {
			defer bwg.Done()
			<-all
			for i := 0; i < n; i++ {
				for _, ch := range chans {
					ch <- msg
				}
			}
			for _, ch := range chans {
				close(ch)
			}
		}()
	})
	bwg.Wait()
	return r, err
}
