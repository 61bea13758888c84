package stream_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"testing"

	"github.com/switchyard/switchyard/internal/httpnats"
	"github.com/switchyard/switchyard/jetstream/jstest"
)

// NATS restarts under the edge: chunks answer 503 at once while it is
// down, are accepted again once it is back, and a subscriber connected
// all along receives every acknowledged chunk in order, without a gap;
// processing resumes too.
func TestNATSRestart(t *testing.T) {
	dir := t.TempDir()
	ns := jstest.StartIn(t, dir)
	u, _ := url.Parse(ns.URL)
	port, _ := strconv.Atoi(u.Port())
	cfg := testConfig(t)
	cfg.Stream.BacklogLimit = 100
	s := startOn(t, ns, cfg)
	id := s.create(t, `{"type":"parameters","service":"ai"}`)
	w := s.subscribe(t, id, "from=start")
	var acked []uint64
	for i := 0; i < 3; i++ {
		acked = append(acked, s.mustPost(t, id, []byte(fmt.Sprintf(`{"i":%d}`, i))))
	}

	ns.Shutdown()
	eventually(t, "503 while NATS is down", func() bool {
		resp, b := s.do(t, http.MethodPost, "/stream/"+id+"/chunk", []byte(`{"down":true}`))
		if resp.StatusCode == http.StatusAccepted {
			t.Fatalf("accepted while NATS is down: %s", b)
		}
		return resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != ""
	})

	ns2 := jstest.StartAt(t, dir, port)
	s.nc = ns2.Conn(t)
	eventually(t, "chunks accepted again", func() bool {
		st, seq, _ := s.post(t, id, []byte(`{"i":3}`))
		if st == http.StatusAccepted {
			acked = append(acked, seq)
			return true
		}
		return false
	})
	for i, want := range acked {
		f := w.mustNext()
		if f.seq != want {
			t.Fatalf("frame %d: seq %d, want %d", i, f.seq, want)
		}
	}
	// The processing consumer survived: a worker joining now processes
	// every chunk stored before and after the restart.
	worker(t, s.nc, "ai", func(r httpnats.Request) (int, string, []byte) { return 200, "application/json", []byte(`{}`) })
	out := s.subscribe(t, id, "channel=out&from=start")
	for _, want := range acked {
		if f := out.mustNext(); f.src != want {
			t.Fatalf("result for %d, want %d", f.src, want)
		}
	}
}
