package stream_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/internal/httpnats"
	"github.com/switchyard/switchyard/workers/proxy"
)

// A NATS worker processes every chunk; results are stored on
// stream.<id>.out in chunk order and read with ?channel=out.
func TestProcessingByNATSWorker(t *testing.T) {
	cfg := testConfig(t)
	cfg.Stream.BacklogLimit = 100
	s := start(t, cfg)
	var mu sync.Mutex
	var seen []httpnats.Request
	worker(t, s.nc, "ai", func(r httpnats.Request) (int, string, []byte) {
		mu.Lock()
		seen = append(seen, r)
		mu.Unlock()
		var in map[string]any
		_ = json.Unmarshal(r.Body, &in)
		return 200, "application/json", []byte(fmt.Sprintf(`{"doubled":%v}`, in["n"].(float64)*2))
	})
	id := s.create(t, `{"type":"parameters","service":"ai"}`)
	out := s.subscribe(t, id, "channel=out&from=start")
	var seqs []uint64
	for i := 1; i <= 6; i++ {
		seqs = append(seqs, s.mustPost(t, id, []byte(fmt.Sprintf(`{"n":%d}`, i))))
	}
	for i := 1; i <= 6; i++ {
		f := out.mustNext()
		if !f.text || f.src != seqs[i-1] || string(f.data) != fmt.Sprintf(`{"doubled":%d}`, 2*i) {
			t.Fatalf("result %d: %+v (%s), want source seq %d", i, f, f.data, seqs[i-1])
		}
	}
	mu.Lock()
	r := seen[0]
	mu.Unlock()
	if r.Method != "POST" || r.Path != "/stream/parameters" || r.Header.Get("X-Stream-Id") != id ||
		r.Header.Get("X-Stream-Seq") != strconv.FormatUint(seqs[0], 10) || r.Header.Get("X-Stream-Type") != "parameters" ||
		r.Header.Get("Content-Type") != "application/json" {
		t.Errorf("the service received %+v", r)
	}
	eventually(t, "done counted", func() bool {
		return s.metric(t, "switchyard_stream_processed_total", `outcome="done"`) == 6
	})
}

// An HTTP upstream serves the processing service through a proxy worker,
// like any Rust service; a binary result is a binary frame.
func TestProcessingByHTTPUpstream(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			return
		}
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write([]byte(fmt.Sprintf("%s:%s:%d", r.URL.Path, r.Header.Get("X-Stream-Seq"), len(b))))
	}))
	t.Cleanup(up.Close)
	cfg := testConfig(t)
	cfg.Server.WorkerPort = 0
	cfg.Services = map[string]config.Service{"vision": {Upstreams: []config.Upstream{{URL: up.URL}}}}
	s := start(t, cfg, proxy.Part)
	id := s.create(t, `{"type":"vision","format":"raw","width":2,"height":2,"channels":1,"service":"vision","path":"/detect"}`)
	seq := s.mustPost(t, id, []byte{1, 2, 3, 4})
	f := s.subscribe(t, id, "channel=out&from=start").mustNext()
	if f.text || f.src != seq || string(f.data) != fmt.Sprintf("/detect:%d:4", seq) {
		t.Fatalf("result %+v %q", f, f.data)
	}
}

// A slow service lets the backlog grow to its limit: chunks then get 429
// with Retry-After, and are accepted again once processing drains it.
func TestBackpressureSlowService(t *testing.T) {
	cfg := testConfig(t)
	cfg.Stream.BacklogLimit = 4
	s := start(t, cfg)
	release := make(chan struct{})
	var calls atomic.Int64
	worker(t, s.nc, "slow", func(r httpnats.Request) (int, string, []byte) {
		calls.Add(1)
		<-release
		return 200, "application/json", []byte(`{}`)
	})
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	id := s.create(t, `{"type":"parameters","service":"slow"}`)
	accepted := 0
	var resp *http.Response
	var body []byte
	for i := 0; i < 50; i++ {
		resp, body = s.do(t, http.MethodPost, "/stream/"+id+"/chunk", []byte(`{}`))
		if resp.StatusCode == http.StatusTooManyRequests {
			break
		}
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("chunk %d: %d %s", i, resp.StatusCode, body)
		}
		accepted++
	}
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || errCode(t, body) != "too_many_requests" {
		t.Fatalf("after %d chunks: %d %s (Retry-After %q), want 429", accepted, resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}
	if accepted < 4 || accepted > 8 {
		t.Errorf("%d chunks accepted before 429, want about the limit of 4", accepted)
	}
	_, lb := s.do(t, http.MethodGet, "/stream/"+id, nil)
	if !strings.Contains(string(lb), `"backlog":`) || strings.Contains(string(lb), `"backlog":0`) {
		t.Errorf("stream view %s shows no backlog", lb)
	}
	close(release)
	eventually(t, "chunks accepted again after the backlog drained", func() bool {
		st, _, _ := s.post(t, id, []byte(`{}`))
		return st == http.StatusAccepted
	})
	if s.metric(t, "switchyard_stream_rejected_chunks_total", `reason="backlog"`) < 1 {
		t.Error("429 not counted")
	}
}

// Retryable failures are retried and stored once; a 4xx poison chunk is
// terminated; a chunk that keeps failing is dropped after max_deliver.
func TestProcessingRetryAndPoison(t *testing.T) {
	cfg := testConfig(t)
	cfg.Stream.MaxDeliver = 2
	s := start(t, cfg)
	var attempts sync.Map // body -> *atomic.Int64
	worker(t, s.nc, "flaky", func(r httpnats.Request) (int, string, []byte) {
		v, _ := attempts.LoadOrStore(string(r.Body), new(atomic.Int64))
		n := v.(*atomic.Int64).Add(1)
		switch string(r.Body) {
		case `{"kind":"once"}`:
			if n == 1 {
				return 503, "", nil
			}
			return 200, "application/json", []byte(`{"ok":1}`)
		case `{"kind":"poison"}`:
			return 422, "", nil
		default:
			return 500, "", nil
		}
	})
	id := s.create(t, `{"type":"parameters","service":"flaky"}`)
	once := s.mustPost(t, id, []byte(`{"kind":"once"}`))
	s.mustPost(t, id, []byte(`{"kind":"poison"}`))
	s.mustPost(t, id, []byte(`{"kind":"never"}`))
	eventually(t, "every chunk settled", func() bool {
		return s.metric(t, "switchyard_stream_processed_total", `outcome="done"`) == 1 &&
			s.metric(t, "switchyard_stream_processed_total", `outcome="rejected"`) == 1 &&
			s.metric(t, "switchyard_stream_processed_total", `outcome="failed"`) == 1
	})
	f := s.subscribe(t, id, "channel=out&from=start").mustNext()
	if f.src != once || string(f.data) != `{"ok":1}` {
		t.Fatalf("result %+v", f)
	}
	count := func(k string) int64 { v, _ := attempts.Load(k); return v.(*atomic.Int64).Load() }
	if count(`{"kind":"poison"}`) != 1 || count(`{"kind":"never"}`) != 2 || count(`{"kind":"once"}`) != 2 {
		t.Errorf("attempts: poison %d, never %d, once %d; want 1, 2, 2",
			count(`{"kind":"poison"}`), count(`{"kind":"never"}`), count(`{"kind":"once"}`))
	}
	eventually(t, "backlog empty", func() bool {
		_, b := s.do(t, http.MethodGet, "/stream/"+id, nil)
		return strings.Contains(string(b), `"backlog":0`)
	})
}

// DELETE closes subscribers with 1000 "deleted", purges the data and the
// record; later chunks get 404.
func TestDeleteClosesSubscribers(t *testing.T) {
	s := start(t, testConfig(t))
	worker(t, s.nc, "ai", func(r httpnats.Request) (int, string, []byte) { return 200, "application/json", []byte(`{}`) })
	id := s.create(t, `{"type":"parameters","service":"ai"}`)
	s.mustPost(t, id, []byte(`{"a":1}`))
	in := s.subscribe(t, id, "from=start")
	out := s.subscribe(t, id, "channel=out")
	in.mustNext()
	if r, b := s.do(t, http.MethodDelete, "/stream/"+id, nil); r.StatusCode != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.StatusCode, b)
	}
	for _, w := range []*wsClient{in, out} {
		if code, reason := w.closed(); code != 1000 || reason != "deleted" {
			t.Errorf("closed with %d %q, want 1000 deleted", code, reason)
		}
	}
	if st, _, _ := s.post(t, id, []byte(`{}`)); st != http.StatusNotFound {
		t.Errorf("chunk after delete: %d, want 404", st)
	}
	for _, p := range []string{"/stream/" + id, "/stream/" + id + "/subscribe"} {
		if r, _ := s.do(t, http.MethodGet, p, nil); r.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s after delete: %d", p, r.StatusCode)
		}
	}
	if r, _ := s.do(t, http.MethodDelete, "/stream/"+id, nil); r.StatusCode != http.StatusNotFound {
		t.Errorf("second delete: %d, want 404", r.StatusCode)
	}
	js, _ := s.nc.JetStream()
	if _, err := js.StreamInfo("STREAM_" + id); err == nil {
		t.Error("the JetStream stream survived the delete")
	}
	kv, _ := js.KeyValue("streams")
	if _, err := kv.Get(id); err == nil {
		t.Error("the record survived the delete")
	}
}

// An idle stream is closed with 4001 "idle"; a stream past max_age with 4002 "expired".
func TestIdleAndExpired(t *testing.T) {
	cfg := testConfig(t)
	cfg.Stream.IdleTimeout = config.Duration(time.Second)
	s := start(t, cfg)
	id := s.create(t, `{"type":"parameters"}`)
	w := s.subscribe(t, id, "")
	if code, reason := w.closed(); code != 4001 || reason != "idle" {
		t.Errorf("idle stream: closed %d %q, want 4001 idle", code, reason)
	}
	eventually(t, "idle stream gone", func() bool {
		r, _ := s.do(t, http.MethodGet, "/stream/"+id, nil)
		return r.StatusCode == 404
	})

	cfg = testConfig(t)
	cfg.Stream.MaxAge = config.Duration(time.Second)
	s = start(t, cfg)
	id = s.create(t, `{"type":"parameters"}`)
	w = s.subscribe(t, id, "")
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // active all along: only its age closes it
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
				_, _, _ = s.post(t, id, []byte(`{}`))
			}
		}
	}()
	code, reason := w.closed()
	close(stop)
	<-done
	if code != 4002 || reason != "expired" {
		t.Errorf("old stream: closed %d %q, want 4002 expired", code, reason)
	}
}

// Shutdown closes subscribers with 1001.
func TestShutdownClosesSubscribers(t *testing.T) {
	s := start(t, testConfig(t))
	id := s.create(t, `{"type":"parameters"}`)
	w := s.subscribe(t, id, "")
	done := make(chan error, 1)
	go func() { done <- s.stop() }()
	if code, _ := w.closed(); code != 1001 {
		t.Errorf("closed %d, want 1001", code)
	}
	if err := <-done; err != nil {
		t.Errorf("stop: %v", err)
	}
}
