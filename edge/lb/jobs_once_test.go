package lb_test

import (
	"bytes"
	"context"
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

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/edge/lb"
	ijobs "github.com/switchyard/switchyard/internal/jobs"
	"github.com/switchyard/switchyard/jetstream/jstest"
	"github.com/switchyard/switchyard/subjects"
	"github.com/switchyard/switchyard/workers/jobs"
)

// jobUpstream counts executions per request body and answers after
// delay (0: at once) with answer(body).
type jobUpstream struct {
	*httptest.Server
	mu   sync.Mutex
	runs map[string]int
}

func newJobUpstream(t *testing.T, delay time.Duration, answer func(body string) []byte) *jobUpstream {
	t.Helper()
	u := &jobUpstream{runs: map[string]int{}}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			return
		}
		b, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.runs[string(b)]++
		u.mu.Unlock()
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("X-Upstream", "counting")
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(answer(string(b)))
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *jobUpstream) count(body string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.runs[body]
}

func (u *jobUpstream) total() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	n := 0
	for _, c := range u.runs {
		n += c
	}
	return n
}

// getJob reads GET /jobs/<id>.
func getJob(t *testing.T, base, id string) jobView {
	t.Helper()
	resp := do(t, "GET", base+"/jobs/"+id, nil)
	defer resp.Body.Close()
	var v jobView
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatalf("GET /jobs/%s: %d %v", id, resp.StatusCode, err)
	}
	return v
}

// jobMetric returns the value of the sample of name whose labels contain all
// of labels (as `k="v"`), from GET /metrics; -1 when absent.
func jobMetric(t *testing.T, base, name string, labels ...string) float64 {
	t.Helper()
	resp := do(t, "GET", base+"/metrics", nil)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(line, l)
		}
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err == nil {
			return v
		}
	}
	return -1
}

// 80 jobs, each longer than the ack wait: each runs exactly once. A
// runner pulls only into free slots and heartbeats every job it holds, so
// no job waits unheartbeated past its ack wait and none is redelivered.
func TestAsyncJobsLongerThanAckWaitRunOnce(t *testing.T) {
	const n = 80
	up := newJobUpstream(t, 3*time.Second, func(b string) []byte { return []byte("ran " + b) })
	cfg := baseConfig(t)
	cfg.Rust.AIServiceURL = up.URL
	cfg.LB.JobAckWait = config.Duration(2 * time.Second) // shorter than every job; long enough that a loaded CI machine still heartbeats in time
	cfg.LB.JobConcurrency = 16                           // 80 jobs wait their turn
	cfg.LB.JobMaxDeliver = 5
	s := startSys(t, cfg, withJobs...)

	ids := make([]string, n)
	for i := range n {
		v, resp := submit(t, s.url+"/ai/slow", "job-"+strconv.Itoa(i))
		if resp.StatusCode != 202 || v.ID == "" {
			t.Fatalf("submit %d: %d", i, resp.StatusCode)
		}
		ids[i] = v.ID
	}
	deadline := time.Now().Add(3 * time.Minute)
	for i, id := range ids {
		for {
			v := getJob(t, s.url, id)
			if v.Status == "done" {
				if v.Attempts != 1 || string(v.Response.Body) != "ran job-"+strconv.Itoa(i) {
					t.Errorf("job %d: attempts %d, body %q", i, v.Attempts, v.Response.Body)
				}
				break
			}
			if v.Status == "failed" || time.Now().After(deadline) {
				t.Fatalf("job %d: %s (%+v)", i, v.Status, v.Error)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	for i := range n {
		if c := up.count("job-" + strconv.Itoa(i)); c != 1 {
			t.Errorf("job %d ran %d times at the upstream", i, c)
		}
	}
	if got := up.total(); got != n {
		t.Errorf("the upstream ran %d jobs, want %d", got, n)
	}
	if got := jobMetric(t, s.url, "switchyard_jobs_attempts_total", `service="ai"`, `outcome="done"`); got != n {
		t.Errorf("switchyard_jobs_attempts_total{outcome=done} = %v, want %d", got, n)
	}
	if got := jobMetric(t, s.url, "switchyard_jobs_attempts_total", `service="ai"`, `outcome="skipped"`); got > 0 {
		t.Errorf("%v deliveries were redelivered and skipped", got)
	}
}

// A 7 MiB result is over the bucket's value limit once in base64: its body
// goes to the object store and /jobs/<id>/result serves it whole.
func TestAsyncJobLargeResultServedWhole(t *testing.T) {
	big := make([]byte, 7<<20)
	for i := range big {
		big[i] = byte(i*31 + i>>11)
	}
	up := newJobUpstream(t, 0, func(string) []byte { return big })
	cfg := baseConfig(t)
	cfg.Rust.VisionServiceURL = up.URL
	s := startSys(t, cfg, withJobs...)

	v, resp := submit(t, s.url+"/vision/render", "scene", "Idempotency-Key", "render-1")
	if resp.StatusCode != 202 {
		t.Fatalf("submit: %d", resp.StatusCode)
	}
	done := waitJob(t, s.url, v.ID, "done")
	if done.Attempts != 1 || done.Response == nil || done.Response.Object == "" || len(done.Response.Body) != 0 ||
		done.Response.BodySize != int64(len(big)) || done.Response.Status != 200 {
		t.Fatalf("record of a large result: attempts %d, response %+v", done.Attempts, done.Response)
	}
	r := do(t, "GET", s.url+"/jobs/"+v.ID+"/result", nil)
	got, err := io.ReadAll(r.Body)
	r.Body.Close()
	if err != nil || r.StatusCode != 200 || !bytes.Equal(got, big) || r.ContentLength != int64(len(big)) ||
		r.Header.Get("X-Upstream") != "counting" {
		t.Fatalf("result: %d, %d bytes (content-length %d, err %v), equal %v, headers %v",
			r.StatusCode, len(got), r.ContentLength, err, bytes.Equal(got, big), r.Header)
	}
	if c := up.total(); c != 1 {
		t.Fatalf("the job ran %d times", c)
	}
	if got := jobMetric(t, s.url, "switchyard_jobs_results_total", `service="vision"`, `where="object_store"`); got != 1 {
		t.Errorf("switchyard_jobs_results_total{where=object_store} = %v, want 1", got)
	}
}

// An answer over the job result limit fails the job at once with a clear
// code; it is not run again.
func TestAsyncJobResultOverLimitFailsOnce(t *testing.T) {
	up := newJobUpstream(t, 0, func(string) []byte { return make([]byte, 300<<10) })
	cfg := baseConfig(t)
	cfg.Rust.VisionServiceURL = up.URL
	cfg.LB.JobMaxResultBytes = 256 << 10
	s := startSys(t, cfg, withJobs...)

	v, resp := submit(t, s.url+"/vision/render", "huge")
	if resp.StatusCode != 202 {
		t.Fatalf("submit: %d", resp.StatusCode)
	}
	failed := waitJob(t, s.url, v.ID, "failed")
	if failed.ErrorCode != ijobs.CodeResultTooLarge || failed.Attempts != 1 || failed.Error == nil || failed.Error.Code != ijobs.CodeResultTooLarge || !strings.Contains(failed.Error.Message, "262144") {
		t.Fatalf("failed job: %+v", failed)
	}
	r := do(t, "GET", s.url+"/jobs/"+v.ID+"/result", nil)
	if r.StatusCode != 502 || apiError(t, r) != ijobs.CodeResultTooLarge {
		t.Fatalf("result of an oversized job: %d", r.StatusCode)
	}
	if c := up.total(); c != 1 {
		t.Fatalf("the job ran %d times", c)
	}
}

// An answer the proxy worker refuses itself (502 response_too_large: over
// what NATS can carry) fails the job at once: it is not done, and not run
// again; last_error names the worker's code.
func TestAsyncJobResponseTooLargeFails(t *testing.T) {
	cfg := baseConfig(t)
	ns := jstest.Start(t)
	size := int(ns.Conn(t).MaxPayload()) + 1<<20
	up := newJobUpstream(t, 0, func(string) []byte { return make([]byte, size) })
	cfg.Rust.VisionServiceURL = up.URL
	s := startOn(t, ns, cfg, withJobs...)

	v, resp := submit(t, s.url+"/vision/render", "huge")
	if resp.StatusCode != 202 {
		t.Fatalf("submit: %d", resp.StatusCode)
	}
	failed := waitJob(t, s.url, v.ID, "failed")
	if failed.ErrorCode != ijobs.CodeResultTooLarge || failed.Attempts != 1 || failed.Error == nil ||
		failed.Error.Status != 502 || failed.Error.Code != "response_too_large" || strings.Contains(failed.Error.Message, "{") {
		t.Fatalf("failed job: %+v (last_error %+v)", failed, failed.Error)
	}
	if c := up.total(); c != 1 {
		t.Fatalf("the job ran %d times", c)
	}
}

// A process that crashed after writing the record and before publishing
// left a queued record and no message. A retry with the same
// Idempotency-Key publishes it: it runs, once; a further retry is a
// duplicate.
func TestAsyncJobCrashBetweenRecordAndPublish(t *testing.T) {
	up := newJobUpstream(t, 0, func(b string) []byte { return []byte("charged " + b) })
	cfg := baseConfig(t)
	cfg.Rust.AnalyticsServiceURL = up.URL
	s := startSys(t, cfg, withJobs...)

	// What the crashed edge left: the record, as submitJob writes it, and nothing in JOBS.
	nc := s.nats.Conn(t)
	js, _ := natsjs.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	store, err := ijobs.Open(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	id := ijobs.IDFromKey("analytics", "order-17")
	now := time.Now().UTC()
	if err := store.Create(ctx, &ijobs.Record{ID: id, Service: "analytics", Method: "POST", Path: "/charge",
		Status: ijobs.StatusQueued, SubmittedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(ctx, subjects.StreamJobs)
	if err != nil {
		t.Fatal(err)
	}
	if info, _ := stream.Info(ctx); info.State.Msgs != 0 {
		t.Fatalf("JOBS holds %d messages before the retry", info.State.Msgs)
	}
	if v := getJob(t, s.url, id); v.Status != "queued" {
		t.Fatalf("orphan record: %+v", v)
	}

	v, resp := submit(t, s.url+"/analytics/charge", "order-17", "Idempotency-Key", "order-17")
	if resp.StatusCode != 202 || v.ID != id {
		t.Fatalf("keyed retry: %d, id %q want %q", resp.StatusCode, v.ID, id)
	}
	done := waitJob(t, s.url, id, "done")
	if string(done.Response.Body) != "charged order-17" || done.Attempts != 1 {
		t.Fatalf("revived job: %+v", done)
	}
	again, resp := submit(t, s.url+"/analytics/charge", "order-17", "Idempotency-Key", "order-17")
	if resp.StatusCode != 202 || again.ID != id || again.Status != "done" {
		t.Fatalf("retry after completion: %d %+v", resp.StatusCode, again)
	}
	if c := up.count("order-17"); c != 1 {
		t.Fatalf("the revived job ran %d times", c)
	}
	if got := jobMetric(t, s.url, "switchyard_lb_jobs_submitted_total", `service="analytics"`, `result="revived"`); got != 1 {
		t.Errorf("switchyard_lb_jobs_submitted_total{result=revived} = %v, want 1", got)
	}
	if got := jobMetric(t, s.url, "switchyard_lb_jobs_submitted_total", `service="analytics"`, `result="duplicate"`); got != 1 {
		t.Errorf("switchyard_lb_jobs_submitted_total{result=duplicate} = %v, want 1", got)
	}
}

// A keyed retry of a job that is queued and published is a duplicate for
// JetStream (Nats-Msg-Id): it is not stored twice and runs once.
func TestAsyncJobKeyedRetryWhileQueuedRunsOnce(t *testing.T) {
	cfg := baseConfig(t)
	cfg.Services["reports"] = config.Service{}
	s := startSys(t, cfg, lb.Part) // no runner yet: the job stays queued
	for range 3 {
		if _, resp := submit(t, s.url+"/reports/monthly", "m", "Idempotency-Key", "m-1"); resp.StatusCode != 202 {
			t.Fatalf("submit: %d", resp.StatusCode)
		}
	}
	js, _ := natsjs.New(s.nats.Conn(t))
	stream, err := js.Stream(t.Context(), subjects.StreamJobs)
	if err != nil {
		t.Fatal(err)
	}
	if info, _ := stream.Info(t.Context()); info.State.Msgs != 1 {
		t.Fatalf("JOBS holds %d messages after three keyed submits, want 1", info.State.Msgs)
	}
	var calls atomic.Int64
	sub, _ := s.nats.Conn(t).QueueSubscribe("svc.reports.>", "svc.reports", func(m *nats.Msg) {
		calls.Add(1)
		_ = m.Respond([]byte("ok"))
	})
	defer sub.Unsubscribe()
	startOn(t, s.nats, cfg, jobs.Part)
	waitJob(t, s.url, ijobs.IDFromKey("reports", "m-1"), "done")
	if c := calls.Load(); c != 1 {
		t.Fatalf("the job ran %d times", c)
	}
}

// A write that lost the compare-and-set (here: the record was failed by
// another writer while the service worked) does not overwrite the newer
// state: the result is dropped, counted and logged, and the job is not
// run again.
func TestAsyncJobLateWriterLoses(t *testing.T) {
	cfg := baseConfig(t)
	cfg.Services["reports"] = config.Service{}
	s := startSys(t, cfg, lb.Part, jobs.Part) // NATS workers only: no proxy worker
	nc := s.nats.Conn(t)
	entered, release := make(chan struct{}, 1), make(chan struct{})
	var calls atomic.Int64
	sub, _ := nc.QueueSubscribe("svc.reports.>", "svc.reports", func(m *nats.Msg) {
		calls.Add(1)
		entered <- struct{}{}
		<-release
		_ = m.Respond([]byte("late answer"))
	})
	defer sub.Unsubscribe()
	v, resp := submit(t, s.url+"/reports/q3", "")
	if resp.StatusCode != 202 {
		t.Fatalf("submit %d", resp.StatusCode)
	}
	<-entered
	js, _ := natsjs.New(nc)
	store, err := ijobs.Open(t.Context(), js)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := store.Get(t.Context(), v.ID)
	if err != nil || rec.Status != ijobs.StatusRunning {
		t.Fatalf("record while running: %+v %v", rec, err)
	}
	rec.Status, rec.ErrorCode, rec.LastError = ijobs.StatusFailed, "cancelled_by_test", &ijobs.Failure{Code: "cancelled_by_test", Message: "newer state"}
	if err := store.Update(t.Context(), rec); err != nil {
		t.Fatal(err)
	}
	close(release)

	deadline := time.Now().Add(20 * time.Second)
	for jobMetric(t, s.url, "switchyard_jobs_record_conflicts_total", `service="reports"`, `transition="done"`) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the late write was not counted as a conflict")
		}
		time.Sleep(50 * time.Millisecond)
	}
	got := getJob(t, s.url, v.ID)
	if got.Status != "failed" || got.ErrorCode != "cancelled_by_test" || got.Response != nil {
		t.Fatalf("the late write overwrote the newer state: %+v", got)
	}
	// The message is acked (the job is final), so it is never delivered again.
	stream, _ := js.Stream(t.Context(), subjects.StreamJobs)
	for {
		info, err := stream.Info(t.Context())
		if err == nil && info.State.Msgs == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("JOBS still holds the job: %+v", info.State)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if c := calls.Load(); c != 1 {
		t.Fatalf("the job ran %d times", c)
	}
}

// A deployment whose services are NATS workers (Rust, Node) runs jobs
// with the edge and `switchyard jobs` alone, no proxy worker.
func TestAsyncJobsWithoutProxyWorkers(t *testing.T) {
	cfg := baseConfig(t)
	cfg.Services["reports"] = config.Service{}
	s := startSys(t, cfg, lb.Part)
	startOn(t, s.nats, cfg, jobs.Part) // its own process
	sub, _ := s.nats.Conn(t).QueueSubscribe("svc.reports.>", "svc.reports", func(m *nats.Msg) {
		_ = m.Respond([]byte(fmt.Sprintf("report of %s", m.Header.Get(subjects.HeaderPath))))
	})
	defer sub.Unsubscribe()
	v, resp := submit(t, s.url+"/reports/weekly", "")
	if resp.StatusCode != 202 {
		t.Fatalf("submit %d", resp.StatusCode)
	}
	done := waitJob(t, s.url, v.ID, "done")
	if string(done.Response.Body) != "report of /weekly" {
		t.Fatalf("job %+v", done)
	}
}
