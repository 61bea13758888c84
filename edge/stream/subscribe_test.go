package stream_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Chunks arrive in order, one frame each, with the sequence their 202
// answered; ?from replays from JetStream.
func TestSubscribeOrderAndReplay(t *testing.T) {
	s := start(t, testConfig(t))
	id := s.create(t, `{"type":"audio","codec":"pcm_s16le","sample_rate":8000,"channels":1}`)
	var seqs []uint64
	chunk := func(i int) []byte {
		b := make([]byte, 64)
		binary.BigEndian.PutUint32(b, uint32(i))
		return b
	}
	for i := 0; i < 20; i++ {
		seqs = append(seqs, s.mustPost(t, id, chunk(i)))
	}
	live := s.subscribe(t, id, "") // only chunks after it subscribed
	start := s.subscribe(t, id, "from=start")
	for i := 0; i < 20; i++ {
		f := start.mustNext()
		if f.text || f.seq != seqs[i] || !bytes.Equal(f.data, chunk(i)) {
			t.Fatalf("frame %d: seq %d text %v data %x, want seq %d", i, f.seq, f.text, f.data[:4], seqs[i])
		}
	}
	from := s.subscribe(t, id, "from="+strconv.FormatUint(seqs[15], 10))
	for i := 15; i < 20; i++ {
		if f := from.mustNext(); f.seq != seqs[i] {
			t.Fatalf("from=%d: frame seq %d, want %d", seqs[15], f.seq, seqs[i])
		}
	}
	latest := s.subscribe(t, id, "from=latest")
	if f := latest.mustNext(); f.seq != seqs[19] {
		t.Fatalf("from=latest: seq %d, want %d", f.seq, seqs[19])
	}
	next := s.mustPost(t, id, chunk(20))
	for _, w := range []*wsClient{live, start, from, latest} {
		if f := w.mustNext(); f.seq != next || !bytes.Equal(f.data, chunk(20)) {
			t.Fatalf("live chunk: seq %d, want %d", f.seq, next)
		}
	}

	// Parameters travel as text frames {"seq":..,"data":{..}}.
	pid := s.create(t, `{"type":"parameters"}`)
	pseq := s.mustPost(t, pid, []byte(`{"gain": 2}`))
	f := s.subscribe(t, pid, "from=start").mustNext()
	if !f.text || f.seq != pseq || string(f.data) != `{"gain": 2}` {
		t.Fatalf("parameters frame %+v", f)
	}

	for _, q := range []string{"from=0", "from=x", "channel=side", "channel=out"} {
		resp, b := s.do(t, http.MethodGet, "/stream/"+id+"/subscribe?"+q, nil, "Connection", "Upgrade", "Upgrade", "websocket",
			"Sec-WebSocket-Version", "13", "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("?%s: %d %s, want 400", q, resp.StatusCode, b)
		}
	}
	if resp, _ := s.do(t, http.MethodGet, "/stream/nosuch/subscribe", nil); resp.StatusCode != 404 {
		t.Errorf("unknown stream: %d", resp.StatusCode)
	}
}

// A client that disconnects resumes with ?from=<last+1> and misses nothing.
func TestSubscribeResumeAfterDisconnect(t *testing.T) {
	s := start(t, testConfig(t))
	id := s.create(t, `{"type":"parameters"}`)
	post := func(i int) uint64 { return s.mustPost(t, id, []byte(fmt.Sprintf(`{"i":%d}`, i))) }
	w := s.subscribe(t, id, "from=start")
	var all []uint64
	for i := 0; i < 5; i++ {
		all = append(all, post(i))
	}
	var last uint64
	for i := 0; i < 5; i++ {
		last = w.mustNext().seq
	}
	_ = w.c.Close()
	for i := 5; i < 10; i++ { // sent while the client is away
		all = append(all, post(i))
	}
	w = s.subscribe(t, id, "from="+strconv.FormatUint(last+1, 10))
	for i := 5; i < 10; i++ {
		f := w.mustNext()
		if f.seq != all[i] || string(f.data) != fmt.Sprintf(`{"i":%d}`, i) {
			t.Fatalf("after resume: %+v, want seq %d", f, all[i])
		}
	}
}

// A stalled subscriber is closed with 4008 "slow" while a healthy one
// beside it receives every chunk, and ingest never waits; the stalled one
// resumes by sequence without a gap.
func TestSlowSubscriberBesideHealthy(t *testing.T) {
	cfg := testConfig(t)
	cfg.Stream.MaxChunkBytes = 16 << 10
	cfg.Stream.AudioBufferBytes = 64 << 10
	s := start(t, cfg)
	id := s.create(t, `{"type":"audio","codec":"pcm_s16le","sample_rate":8000,"channels":1,"retention":{"max_bytes":67108864}}`)
	stalled := s.subscribeWith(t, id, "", 4096) // reads nothing until told
	healthy := s.subscribe(t, id, "")
	const n = 1500 // 24 MiB: far past the stalled socket's buffers and queue
	got := make(chan error, 1)
	go func() {
		for i := 0; i < n; i++ {
			f, err := healthy.next()
			if err != nil {
				got <- err
				return
			}
			if int(binary.BigEndian.Uint32(f.data)) != i {
				got <- fmt.Errorf("healthy frame %d holds chunk %d", i, binary.BigEndian.Uint32(f.data))
				return
			}
		}
		got <- nil
	}()
	// The stalled client starts reading once it has been closed as slow:
	// it gets what reached its socket, then the close frame.
	type end struct {
		last uint64
		code int
	}
	stalledEnd := make(chan end, 1)
	go func() {
		deadline := time.Now().Add(wait)
		for s.metricNoFail("switchyard_stream_slow_disconnects_total", `type="audio"`) < 1 {
			if time.Now().After(deadline) {
				stalledEnd <- end{}
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		var e end
		for {
			f, err := stalled.next()
			if err != nil {
				if ce, ok := err.(*websocket.CloseError); ok {
					e.code = ce.Code
				}
				break
			}
			e.last = f.seq
		}
		stalledEnd <- e
	}()
	var seqs []uint64
	chunk := make([]byte, 16<<10)
	for i := 0; i < n; i++ {
		c := append([]byte(nil), chunk...)
		binary.BigEndian.PutUint32(c, uint32(i))
		seqs = append(seqs, s.mustPost(t, id, c))
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	e := <-stalledEnd
	if e.code != 4008 {
		t.Fatalf("stalled subscriber closed with %d, want 4008", e.code)
	}
	last := e.last
	from := seqs[0]
	if last != 0 {
		from = last + 1
	}
	resumed := s.subscribe(t, id, "from="+strconv.FormatUint(from, 10))
	for _, want := range seqs {
		if want < from {
			continue
		}
		if f := resumed.mustNext(); f.seq != want {
			t.Fatalf("resumed: seq %d, want %d", f.seq, want)
		}
	}
}
