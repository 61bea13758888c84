package lb_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/edge/lb"
	"github.com/switchyard/switchyard/part"
	"github.com/switchyard/switchyard/workers/jobs"
	"github.com/switchyard/switchyard/workers/proxy"
)

type jobView struct {
	ID       string `json:"id"`
	Status   string `json:"status"`
	Attempts int    `json:"attempts"`
	Location string `json:"location"`
	Error    *struct {
		Status  int    `json:"status"`
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"last_error"`
	ErrorCode string `json:"error_code"`
	Response  *struct {
		Status   int         `json:"status"`
		Header   http.Header `json:"headers"`
		Body     []byte      `json:"body"`
		BodySize int64       `json:"body_size"`
		Object   string      `json:"object"`
	} `json:"response"`
}

// withJobs are the parts of a deployment with HTTP upstreams: the edge,
// the proxy workers and the job runners.
var withJobs = []part.Part{lb.Part, proxy.Part, jobs.Part}

func submit(t *testing.T, url string, body string, hdr ...string) (jobView, *http.Response) {
	t.Helper()
	resp := do(t, "POST", url, []byte(body), append([]string{"Prefer", "respond-async"}, hdr...)...)
	var v jobView
	_ = json.NewDecoder(resp.Body).Decode(&v)
	resp.Body.Close()
	return v, resp
}

func waitJob(t *testing.T, base, id string, want string) jobView {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp := do(t, "GET", base+"/jobs/"+id, nil)
		var v jobView
		_ = json.NewDecoder(resp.Body).Decode(&v)
		resp.Body.Close()
		if v.Status == want {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s: status %q (last error %+v), want %q", id, v.Status, v.Error, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestAsyncJobSubmitPollAndDedupe(t *testing.T) {
	up, hits := echoUpstream(t, "one")
	cfg := baseConfig(t)
	cfg.Rust.AIServiceURL = up.URL
	s := startSys(t, cfg, withJobs...)

	v, resp := submit(t, s.url+"/ai/generate?n=1", "prompt", "Idempotency-Key", "k-1")
	if resp.StatusCode != 202 || v.ID == "" || resp.Header.Get("Location") != "/jobs/"+v.ID {
		t.Fatalf("submit: %d %+v %v", resp.StatusCode, v, resp.Header)
	}
	again, resp2 := submit(t, s.url+"/ai/generate?n=1", "prompt", "Idempotency-Key", "k-1")
	if resp2.StatusCode != 202 || again.ID != v.ID {
		t.Fatalf("retried submit made another job: %s vs %s", again.ID, v.ID)
	}
	done := waitJob(t, s.url, v.ID, "done")
	if done.Response == nil || done.Response.Status != 200 {
		t.Fatalf("response %+v", done.Response)
	}
	var got seen
	if err := json.Unmarshal(done.Response.Body, &got); err != nil || got.Body != "prompt" || got.Path != "/generate" ||
		got.RawQuery != "n=1" || got.Header.Get("Prefer") != "" {
		t.Fatalf("upstream saw %+v (%v)", got, err)
	}
	// The raw result.
	r := do(t, "GET", s.url+"/jobs/"+v.ID+"/result", nil)
	b, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != 200 || r.Header.Get("X-Upstream") != "one" || len(b) == 0 {
		t.Fatalf("result: %d %v", r.StatusCode, r.Header)
	}
	// A third submit after completion still names the finished job.
	third, _ := submit(t, s.url+"/ai/generate?n=1", "prompt", "Idempotency-Key", "k-1")
	if third.ID != v.ID || third.Status != "done" {
		t.Fatalf("third submit: %+v", third)
	}
	// The key reused for another request: 422, with a clear code, whether
	// the body or the query differs; the job is not touched.
	for _, tc := range []struct{ url, body string }{
		{"/ai/generate?n=1", "another prompt"},
		{"/ai/generate?n=2", "prompt"},
	} {
		resp := do(t, "POST", s.url+tc.url, []byte(tc.body), "Prefer", "respond-async", "Idempotency-Key", "k-1")
		if code := apiError(t, resp); resp.StatusCode != 422 || code != "idempotency_key_reused" {
			t.Errorf("key reused for %s %q: %d %s, want 422 idempotency_key_reused", tc.url, tc.body, resp.StatusCode, code)
		}
	}
	if n := hits.Load(); n != 1 {
		t.Fatalf("upstream called %d times for one idempotent job", n)
	}
	// Bad input.
	if _, resp := submit(t, s.url+"/nosuch/x", ""); resp.StatusCode != 404 {
		t.Errorf("async to unknown service: %d", resp.StatusCode)
	}
}

// A job whose worker dies mid-run is redelivered and finished by another.
func TestAsyncJobRedeliveredAfterWorkerDies(t *testing.T) {
	cfg := baseConfig(t)
	cfg.Services["reports"] = config.Service{} // served by a NATS worker
	s := startSys(t, cfg, lb.Part)             // the edge alone: runners below

	// The service: a NATS worker that answers after a pause.
	svcConn := s.nats.Conn(t)
	var calls atomic.Int64
	sub, _ := svcConn.QueueSubscribe("svc.reports.>", "svc.reports", func(m *nats.Msg) {
		calls.Add(1)
		time.Sleep(300 * time.Millisecond)
		_ = m.Respond([]byte("report ready"))
	})
	defer sub.Unsubscribe()

	runner := func(nc *nats.Conn) *jobs.Runner { return reportsRunner(t, nc, 5*time.Second, 5) }
	// Runner 1 takes the job, then its process dies (connection gone, no ack).
	nc1, err := nats.Connect(s.nats.URL)
	if err != nil {
		t.Fatal(err)
	}
	r1 := runner(nc1)
	go func() { _ = r1.Run(t.Context()) }()
	v, resp := submit(t, s.url+"/reports/monthly", "")
	if resp.StatusCode != 202 {
		t.Fatalf("submit %d", resp.StatusCode)
	}
	waitJob(t, s.url, v.ID, "running")
	nc1.Close()
	_ = r1.Shutdown(t.Context())

	nc2 := s.nats.Conn(t)
	r2 := runner(nc2)
	go func() { _ = r2.Run(t.Context()) }()
	t.Cleanup(func() { _ = r2.Shutdown(t.Context()) })
	done := waitJob(t, s.url, v.ID, "done")
	if done.Attempts < 2 || string(done.Response.Body) != "report ready" {
		t.Fatalf("job %+v", done)
	}
}

// A job nobody can serve fails after MaxDeliver attempts with the last error.
func TestAsyncJobFailsAfterMaxDeliver(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	cfg := baseConfig(t)
	cfg.Rust.AnalyticsServiceURL = deadURL
	cfg.LB.JobMaxDeliver = 2
	s := startSys(t, cfg, withJobs...)
	v, resp := submit(t, s.url+"/analytics/run", "{}")
	if resp.StatusCode != 202 {
		t.Fatalf("submit %d", resp.StatusCode)
	}
	failed := waitJob(t, s.url, v.ID, "failed")
	if failed.Attempts != 2 || failed.Error == nil || failed.ErrorCode != "attempts_exhausted" {
		t.Fatalf("failed job %+v", failed)
	}
	// The last error as fields: the worker's 503 no_healthy_upstream, its
	// message in words, not its JSON body nested as escaped text.
	if e := failed.Error; e.Status != 503 || e.Code != "no_healthy_upstream" || e.Message == "" || strings.Contains(e.Message, "{") {
		t.Errorf("last_error %+v", e)
	}
	r := do(t, "GET", s.url+"/jobs/"+v.ID+"/result", nil)
	if r.StatusCode != 502 || apiError(t, r) != "job_failed" {
		t.Fatalf("result of failed job: %d", r.StatusCode)
	}
}

// A job whose runner dies during its last attempt is marked failed (from
// JetStream's max-deliveries advisory) instead of staying "running".
func TestAsyncJobFailsWhenRunnerDiesOnLastAttempt(t *testing.T) {
	cfg := baseConfig(t)
	cfg.Services["reports"] = config.Service{}
	s := startSys(t, cfg, lb.Part)
	svcConn := s.nats.Conn(t)
	entered := make(chan struct{}, 1)
	sub, _ := svcConn.QueueSubscribe("svc.reports.>", "svc.reports", func(m *nats.Msg) {
		select {
		case entered <- struct{}{}:
		default:
		}
		// Never answers: the runner waits until it dies.
	})
	defer sub.Unsubscribe()
	runner := func(nc *nats.Conn) *jobs.Runner { return reportsRunner(t, nc, time.Minute, 1) }
	// Runner 1 alone takes the job, then its process dies mid-attempt.
	nc1, err := nats.Connect(s.nats.URL)
	if err != nil {
		t.Fatal(err)
	}
	r1 := runner(nc1)
	go func() { _ = r1.Run(t.Context()) }()
	v, resp := submit(t, s.url+"/reports/yearly", "")
	if resp.StatusCode != 202 {
		t.Fatalf("submit %d", resp.StatusCode)
	}
	<-entered
	// Runner 2 survives and hears the advisory when the attempt times out.
	r2 := runner(s.nats.Conn(t))
	go func() { _ = r2.Run(t.Context()) }()
	t.Cleanup(func() { _ = r2.Shutdown(t.Context()) })
	nc1.Close()
	_ = r1.Shutdown(t.Context())
	failed := waitJob(t, s.url, v.ID, "failed")
	if failed.Error == nil || failed.Error.Code != "runner_lost" || failed.Attempts != 1 || failed.ErrorCode != "runner_lost" {
		t.Fatalf("failed job: %+v", failed)
	}
}

// reportsRunner is a job runner of service "reports" on its own connection,
// with a one-second ack wait.
func reportsRunner(t *testing.T, nc *nats.Conn, timeout time.Duration, maxDeliver int) *jobs.Runner {
	t.Helper()
	js, _ := natsjs.New(nc)
	r, err := jobs.New(jobs.Options{NC: nc, JS: js, Services: []string{"reports"}, Timeout: timeout,
		AckWait: time.Second, MaxDeliver: maxDeliver, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// A job whose service took the request and did not answer in time may
// have run: an unkeyed POST is failed with "timeout" after one call, not
// called again; a keyed one is retried.
func TestAsyncJobTimeoutRunsAgainOnlyWhenReplayable(t *testing.T) {
	cfg := baseConfig(t)
	cfg.Services["reports"] = config.Service{} // served by a NATS worker
	s := startSys(t, cfg, lb.Part)             // the edge alone: the runner below

	svcConn := s.nats.Conn(t)
	var calls atomic.Int64
	sub, _ := svcConn.QueueSubscribe("svc.reports.>", "svc.reports", func(m *nats.Msg) {
		calls.Add(1) // takes it, never answers
	})
	defer sub.Unsubscribe()
	r := reportsRunner(t, s.nats.Conn(t), 300*time.Millisecond, 3)
	go func() { _ = r.Run(t.Context()) }()
	t.Cleanup(func() { _ = r.Shutdown(t.Context()) })

	v, resp := submit(t, s.url+"/reports/monthly", "")
	if resp.StatusCode != 202 {
		t.Fatalf("submit %d", resp.StatusCode)
	}
	failed := waitJob(t, s.url, v.ID, "failed")
	if failed.ErrorCode != "timeout" || failed.Attempts != 1 || calls.Load() != 1 {
		t.Fatalf("unkeyed job %+v after %d calls, want failed with timeout after 1", failed, calls.Load())
	}
	v, _ = submit(t, s.url+"/reports/monthly", "", "Idempotency-Key", "monthly-1")
	failed = waitJob(t, s.url, v.ID, "failed")
	if failed.ErrorCode != "attempts_exhausted" || failed.Attempts != 3 || calls.Load() != 1+3 {
		t.Fatalf("keyed job %+v after %d calls, want attempts_exhausted after 3 more", failed, calls.Load()-1)
	}
}
