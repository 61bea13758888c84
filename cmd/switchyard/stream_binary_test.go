package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// waitStreamHealthy polls the stream edge's /health until it answers 200.
func waitStreamHealthy(t *testing.T, p *proc, e *instanceEnv, c *http.Client) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := c.Get(e.url("stream", "/health"))
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-p.done:
			t.Fatalf("switchyard exited (%v); stderr:\n%s", p.err, p.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream /health not 200; stderr:\n%s", p.stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Every chunk answered 202 survives kill -9 of the process that stored
// it: after a restart a subscriber replays each one, with its sequence,
// and a retry with the same X-Chunk-Id names the same chunk.
func TestBinaryStreamChunksSurviveKill(t *testing.T) {
	e := newInstanceEnv(t)
	c := httpClient(t)
	p := startBinary(t, e, "stream")
	waitStreamHealthy(t, p, e, c)

	resp, err := c.Post(e.url("stream", "/stream/create"), "application/json", bytes.NewReader([]byte(`{"type":"parameters","name":"durable"}`)))
	if err != nil {
		t.Fatal(err)
	}
	var created struct{ ID string }
	_ = json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || created.ID == "" {
		t.Fatalf("create = %d %+v", resp.StatusCode, created)
	}
	id := created.ID
	post := func(i int) (int, uint64) {
		req, _ := http.NewRequest(http.MethodPost, e.url("stream", "/stream/"+id+"/chunk"), bytes.NewReader([]byte(fmt.Sprintf(`{"i":%d}`, i))))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Chunk-Id", "chunk-"+strconv.Itoa(i))
		resp, err := c.Do(req)
		if err != nil {
			return 0, 0
		}
		defer resp.Body.Close()
		var v struct{ Seq uint64 }
		_ = json.NewDecoder(resp.Body).Decode(&v)
		return resp.StatusCode, v.Seq
	}

	// Eight clients post until the process is killed under them.
	var mu sync.Mutex
	acked := map[int]uint64{}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; ; i += 8 {
				select {
				case <-stop:
					return
				default:
				}
				st, seq := post(i)
				if st == 0 {
					return // the process is gone
				}
				if st == http.StatusAccepted {
					mu.Lock()
					acked[i] = seq
					mu.Unlock()
				}
			}
		}()
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 300 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d chunks acknowledged; stderr:\n%s", n, p.stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	p.signal(syscall.SIGKILL)
	p.wait(15 * time.Second)
	close(stop)
	wg.Wait()
	t.Logf("%d chunks acknowledged before kill -9", len(acked))

	p = startBinary(t, e, "stream")
	waitStreamHealthy(t, p, e, c)

	ws, r, err := websocket.DefaultDialer.Dial("ws://127.0.0.1:"+strconv.Itoa(e.ports["stream"])+"/stream/"+id+"/subscribe?from=start", nil)
	if err != nil {
		t.Fatalf("subscribe after restart: %v", err)
	}
	r.Body.Close()
	defer ws.Close()
	bySeq := map[uint64]int{}
	var want uint64
	for _, seq := range acked {
		want = max(want, seq)
	}
	for last := uint64(0); last < want; {
		_ = ws.SetReadDeadline(time.Now().Add(15 * time.Second))
		_, data, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("replay stopped after seq %d of %d: %v", last, want, err)
		}
		var f struct {
			Seq  uint64
			Data struct{ I int }
		}
		if err := json.Unmarshal(data, &f); err != nil {
			t.Fatalf("frame %q: %v", data, err)
		}
		if f.Seq <= last {
			t.Fatalf("seq %d after %d: out of order", f.Seq, last)
		}
		last = f.Seq
		bySeq[f.Seq] = f.Data.I
	}
	for i, seq := range acked {
		if got, ok := bySeq[seq]; !ok || got != i {
			t.Errorf("chunk %d acknowledged as seq %d: replayed %v (present %v)", i, seq, got, ok)
		}
	}
	// A client that retries an acknowledged chunk gets the same sequence.
	for i, seq := range acked {
		if st, again := post(i); st != http.StatusAccepted || again != seq {
			t.Errorf("retry of chunk %d after restart = %d seq %d, want 202 seq %d", i, st, again, seq)
		}
		break
	}
	p.signal(syscall.SIGTERM)
	if code := p.wait(15 * time.Second); code != 0 {
		t.Errorf("exit code after SIGTERM = %d; stderr:\n%s", code, p.stderr)
	}
	p.noErrors()
}
