package lb_test

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/edge/lb"
	ijobs "github.com/switchyard/switchyard/internal/jobs"
	"github.com/switchyard/switchyard/jetstream"
	"github.com/switchyard/switchyard/subjects"
	"github.com/switchyard/switchyard/workers/jobs"
)

// submitWithin posts an async request with a client deadline; it returns
// the status, or 0 when the client gave up first.
func submitWithin(t *testing.T, d time.Duration, url, body string, hdr ...string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", url, strings.NewReader(body))
	req.Header.Set("Prefer", "respond-async")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// A publish whose outcome is unknown (JetStream never acknowledges it:
// here JOBS is gone and a silent subscriber takes the message) never
// leaves a job a keyed retry cannot revive: without a key the record is
// failed (submit_failed) so the job cannot run behind the 503; with a key
// the record stays queued and the retry queues it once JOBS is back.
func TestAsyncJobUnconfirmedPublish(t *testing.T) {
	cfg := baseConfig(t)
	cfg.Services["reports"] = config.Service{}
	s := startSys(t, cfg, lb.Part)
	nc := s.nats.Conn(t)
	js, _ := natsjs.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := js.DeleteStream(ctx, subjects.StreamJobs); err != nil {
		t.Fatal(err)
	}
	ids := make(chan string, 4)
	silent, err := nc.Subscribe("jobs.>", func(m *nats.Msg) { ids <- m.Header.Get(subjects.HeaderJobID) })
	if err != nil {
		t.Fatal(err)
	}
	store, err := ijobs.Open(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	waitRecord := func(id string, ok func(*ijobs.Record) bool) *ijobs.Record {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			rec, err := store.Get(ctx, id)
			if err == nil && ok(rec) {
				return rec
			}
			if time.Now().After(deadline) {
				t.Fatalf("job %s: %+v %v", id, rec, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	// Without a key: the client gives up; the edge settles the record anyway.
	if code := submitWithin(t, 500*time.Millisecond, s.url+"/reports/a", "a"); code != 0 {
		t.Fatalf("unconfirmed submit answered %d before the client gave up", code)
	}
	id := <-ids
	rec := waitRecord(id, func(r *ijobs.Record) bool { return r.Status == ijobs.StatusFailed })
	if rec.ErrorCode != ijobs.CodeSubmitFailed {
		t.Fatalf("unkeyed unconfirmed job: %+v", rec)
	}

	// With a key: the record stays queued.
	if code := submitWithin(t, 500*time.Millisecond, s.url+"/reports/b", "b", "Idempotency-Key", "b-1"); code != 0 {
		t.Fatalf("unconfirmed keyed submit answered %d", code)
	}
	keyed := <-ids
	if keyed != ijobs.IDFromKey("reports", "b-1") {
		t.Fatalf("keyed job id %s", keyed)
	}
	if err := silent.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	if err := jetstream.Ensure(ctx, js, jetstream.ForConfig(cfg)); err != nil {
		t.Fatal(err)
	}
	if rec, err := store.Get(ctx, keyed); err != nil || rec.Status != ijobs.StatusQueued {
		t.Fatalf("keyed unconfirmed job: %+v %v", rec, err)
	}
	var calls atomic.Int64
	sub, _ := nc.QueueSubscribe("svc.reports.>", "svc.reports", func(m *nats.Msg) {
		calls.Add(1)
		_ = m.Respond([]byte("ran " + string(m.Data)))
	})
	defer sub.Unsubscribe()
	startOn(t, s.nats, cfg, jobs.Part)
	v, resp := submit(t, s.url+"/reports/b", "b", "Idempotency-Key", "b-1")
	if resp.StatusCode != 202 || v.ID != keyed {
		t.Fatalf("keyed retry: %d %+v", resp.StatusCode, v)
	}
	done := waitJob(t, s.url, keyed, "done")
	if string(done.Response.Body) != "ran b" {
		t.Fatalf("revived job: %+v", done)
	}
	if c := calls.Load(); c != 1 {
		t.Fatalf("%d runs; the unkeyed job must not run, the keyed one once", c)
	}
	if got := jobMetric(t, s.url, "switchyard_lb_jobs_submitted_total", `service="reports"`, `result="unconfirmed"`); got != 2 {
		t.Errorf("unconfirmed submits counted %v, want 2", got)
	}
}

// A publish JetStream refuses (JOBS full) answers 503 and removes the
// record, so the job id is free: a keyed retry later creates and runs it.
func TestAsyncJobRefusedPublish(t *testing.T) {
	cfg := baseConfig(t)
	cfg.Services["reports"] = config.Service{}
	s := startSys(t, cfg, lb.Part)
	nc := s.nats.Conn(t)
	js, _ := natsjs.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	stream, err := js.Stream(ctx, subjects.StreamJobs)
	if err != nil {
		t.Fatal(err)
	}
	full := stream.CachedInfo().Config
	full.MaxMsgs = 1
	if _, err := js.UpdateStream(ctx, full); err != nil {
		t.Fatal(err)
	}
	first, resp := submit(t, s.url+"/reports/first", "1")
	if resp.StatusCode != 202 {
		t.Fatalf("first submit: %d", resp.StatusCode)
	}
	_, resp = submit(t, s.url+"/reports/second", "2", "Idempotency-Key", "second")
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("submit into a full JOBS: %d", resp.StatusCode)
	}
	id := ijobs.IDFromKey("reports", "second")
	if r := do(t, "GET", s.url+"/jobs/"+id, nil); r.StatusCode != 404 {
		r.Body.Close()
		t.Fatalf("the refused job's record is still there: %d", r.StatusCode)
	} else {
		r.Body.Close()
	}
	if err := jetstream.Ensure(ctx, js, jetstream.ForConfig(cfg)); err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int64
	sub, _ := nc.QueueSubscribe("svc.reports.>", "svc.reports", func(m *nats.Msg) {
		calls.Add(1)
		_ = m.Respond([]byte("ok"))
	})
	defer sub.Unsubscribe()
	startOn(t, s.nats, cfg, jobs.Part)
	if v, resp := submit(t, s.url+"/reports/second", "2", "Idempotency-Key", "second"); resp.StatusCode != 202 || v.ID != id {
		t.Fatalf("retry: %d %+v", resp.StatusCode, v)
	}
	waitJob(t, s.url, id, "done")
	waitJob(t, s.url, first.ID, "done")
	if c := calls.Load(); c != 2 {
		t.Fatalf("%d runs for two jobs", c)
	}
	if got := jobMetric(t, s.url, "switchyard_lb_jobs_submitted_total", `service="reports"`, `result="rejected"`); got != 1 {
		t.Errorf("rejected submits counted %v, want 1", got)
	}
}
