package jobs_test

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard/switchyard/internal/httpnats"
	ijobs "github.com/switchyard/switchyard/internal/jobs"
	"github.com/switchyard/switchyard/jetstream"
	"github.com/switchyard/switchyard/jetstream/jstest"
	"github.com/switchyard/switchyard/subjects"
	"github.com/switchyard/switchyard/workers/jobs"
)

type env struct {
	nc    *nats.Conn
	js    natsjs.JetStream
	store *ijobs.Store
	ns    *jstest.Server
}

func newEnv(t testing.TB) *env {
	t.Helper()
	ns := jstest.Start(t)
	nc := ns.Conn(t)
	js, err := natsjs.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := jetstream.Ensure(ctx, js, jetstream.Assets{Replicas: 1, MaxMsgSize: 1 << 20, JobTTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	store, err := ijobs.Open(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	return &env{nc: nc, js: js, store: store, ns: ns}
}

// submit does what the lb edge does: record, then publish.
func (e *env) submit(t testing.TB, service, token string) string {
	t.Helper()
	id := ijobs.NewID()
	if err := e.store.Create(t.Context(), &ijobs.Record{ID: id, Service: service, Method: "POST", Path: "/" + token,
		Status: ijobs.StatusQueued, SubmittedAt: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	subj, err := subjects.Job(service, token)
	if err != nil {
		t.Fatal(err)
	}
	msg := httpnats.NewRequestMsg(subj, "POST", "/"+token, "", nil, []byte(token))
	msg.Header.Set(subjects.HeaderJobID, id)
	msg.Header.Set(subjects.HeaderMsgID, id)
	if _, err := e.js.PublishMsg(t.Context(), msg); err != nil {
		t.Fatal(err)
	}
	return id
}

func (e *env) runner(t testing.TB, o jobs.Options) *jobs.Runner {
	t.Helper()
	nc := e.ns.Conn(t)
	js, _ := natsjs.New(nc)
	o.NC, o.JS = nc, js
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	r, err := jobs.New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	return r
}

func (e *env) waitStatus(t *testing.T, id, want string) *ijobs.Record {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		rec, err := e.store.Get(t.Context(), id)
		if err == nil && rec.Status == want {
			return rec
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s: %+v (%v), want %s", id, rec, err, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func consumerInfo(t testing.TB, js natsjs.JetStream, service string) *natsjs.ConsumerInfo {
	t.Helper()
	name, _ := subjects.JobsConsumer(service)
	c, err := js.Consumer(t.Context(), subjects.StreamJobs, name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// A runner holds no more jobs than it has slots: the rest stay in the
// stream, pending, where another runner can take them.
func TestRunnerPullsOnlyIntoFreeSlots(t *testing.T) {
	e := newEnv(t)
	release := make(chan struct{})
	var calls atomic.Int64
	sub, _ := e.nc.QueueSubscribe("svc.reports.>", "svc.reports", func(m *nats.Msg) {
		calls.Add(1)
		go func() { // a subscription's callbacks run one at a time
			<-release
			_ = m.Respond([]byte("ok"))
		}()
	})
	defer sub.Unsubscribe()
	ids := make([]string, 5)
	for i := range ids {
		ids[i] = e.submit(t, "reports", "r"+string(rune('a'+i)))
	}
	r := e.runner(t, jobs.Options{Services: []string{"reports"}, Concurrency: 2, AckWait: time.Second, MaxDeliver: 3,
		Timeout: time.Minute, PollWait: 200 * time.Millisecond})
	deadline := time.Now().Add(20 * time.Second)
	for calls.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("%d jobs started, want 2", calls.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Several ack waits pass: the runner holds 2, heartbeats them, and takes no more.
	for range 3 {
		info := consumerInfo(t, e.js, "reports")
		if info.NumAckPending != 2 || info.NumPending != 3 || info.NumRedelivered != 0 {
			t.Fatalf("ack pending %d, pending %d, redelivered %d; want 2, 3, 0", info.NumAckPending, info.NumPending, info.NumRedelivered)
		}
		time.Sleep(time.Second)
	}
	close(release)
	for _, id := range ids {
		e.waitStatus(t, id, ijobs.StatusDone)
	}
	if c := calls.Load(); c != 5 {
		t.Fatalf("%d calls for 5 jobs", c)
	}
	if err := r.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// Shutdown waits for running jobs until its deadline, then hands them back
// (naked): another runner takes the record over and finishes the job.
func TestRunnerShutdownDeadlineHandsJobsBack(t *testing.T) {
	e := newEnv(t)
	var calls atomic.Int64
	sub, _ := e.nc.QueueSubscribe("svc.reports.>", "svc.reports", func(m *nats.Msg) {
		if calls.Add(1) == 1 {
			return // the first attempt never gets an answer
		}
		_ = m.Respond([]byte("second"))
	})
	defer sub.Unsubscribe()
	o := jobs.Options{Services: []string{"reports"}, AckWait: time.Second, MaxDeliver: 3, Timeout: time.Minute,
		PollWait: 200 * time.Millisecond}
	r1 := e.runner(t, o)
	id := e.submit(t, "reports", "x")
	e.waitStatus(t, id, ijobs.StatusRunning)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if err := r1.Shutdown(ctx); !errors.Is(err, jobs.ErrShutdownDeadline) {
		t.Fatalf("Shutdown with a job running: %v, want %v", err, jobs.ErrShutdownDeadline)
	}
	if err := r1.Shutdown(t.Context()); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
	r2 := e.runner(t, o)
	defer r2.Shutdown(t.Context())
	rec := e.waitStatus(t, id, ijobs.StatusDone)
	if rec.Attempts != 2 || string(rec.Response.Body) != "second" {
		t.Fatalf("record %+v", rec)
	}
}

// A job whose record is already final (it finished before a crash lost
// its ack) is acked without running.
func TestRunnerSkipsFinishedJobs(t *testing.T) {
	e := newEnv(t)
	var calls atomic.Int64
	sub, _ := e.nc.QueueSubscribe("svc.reports.>", "svc.reports", func(m *nats.Msg) {
		calls.Add(1)
		_ = m.Respond([]byte("ran"))
	})
	defer sub.Unsubscribe()
	id := e.submit(t, "reports", "y")
	rec, _ := e.store.Get(t.Context(), id)
	rec.Status = ijobs.StatusRunning
	if err := e.store.Update(t.Context(), rec); err != nil {
		t.Fatal(err)
	}
	rec.Status = ijobs.StatusDone
	rec.Response = &ijobs.Response{Status: 200, Body: []byte("before")}
	if err := e.store.Update(t.Context(), rec); err != nil {
		t.Fatal(err)
	}
	r := e.runner(t, jobs.Options{Services: []string{"reports"}, AckWait: time.Second, PollWait: 200 * time.Millisecond})
	defer r.Shutdown(t.Context())
	deadline := time.Now().Add(20 * time.Second)
	for consumerInfo(t, e.js, "reports").NumPending+uint64(consumerInfo(t, e.js, "reports").NumAckPending) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the finished job was not acked")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if c := calls.Load(); c != 0 {
		t.Fatalf("a finished job ran %d times", c)
	}
	if got, _ := e.store.Get(t.Context(), id); string(got.Response.Body) != "before" {
		t.Fatalf("record changed: %+v", got)
	}
}
