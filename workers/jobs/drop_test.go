package jobs_test

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard/switchyard/internal/apierr"
	ijobs "github.com/switchyard/switchyard/internal/jobs"
	"github.com/switchyard/switchyard/workers/jobs"
)

// When the runner's own connection drops while a service holds a job, the
// answer cannot come: the attempt ends at once (not at its 60 s timeout),
// and a job that is not replayable (POST without an Idempotency-Key) fails
// with outcome_unknown instead of running again.
func TestRunnerConnectionDropEndsCallAtOnce(t *testing.T) {
	e := newEnv(t)
	var got atomic.Int64
	sub, err := e.nc.QueueSubscribe("svc.hold.>", "svc.hold", func(*nats.Msg) { got.Add(1) }) // never answers
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	_ = e.nc.Flush()

	nc, err := nats.Connect(e.ns.URL, nats.Name("runner"), nats.ReconnectWait(50*time.Millisecond), nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := natsjs.New(nc)
	r, err := jobs.New(jobs.Options{NC: nc, JS: js, Services: []string{"hold"}, Timeout: time.Minute, AckWait: 30 * time.Second,
		Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = r.Shutdown(ctx)
	}()

	id := e.submit(t, "hold", "x")
	for deadline := time.Now().Add(20 * time.Second); got.Load() == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the service never received the job")
		}
	}
	cid, err := nc.GetClientID()
	if err != nil {
		t.Fatal(err)
	}
	dropped := time.Now()
	if err := e.ns.Server().DisconnectClientByID(cid); err != nil {
		t.Fatal(err)
	}
	rec := e.waitStatus(t, id, ijobs.StatusFailed) // waits 20 s at most, far below the 60 s timeout
	if rec.ErrorCode != apierr.CodeOutcomeUnknown || rec.LastError == nil || !strings.Contains(rec.LastError.Message, "outcome is") {
		t.Errorf("job failed with %s: %+v, want outcome_unknown", rec.ErrorCode, rec.LastError)
	}
	if n := got.Load(); n != 1 {
		t.Errorf("the service received the job %d times, want 1", n)
	}
	t.Logf("failed %s after the drop", time.Since(dropped).Round(time.Millisecond))
}
