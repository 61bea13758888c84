package jobs_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard/switchyard/internal/httpnats"
	ijobs "github.com/switchyard/switchyard/internal/jobs"
	"github.com/switchyard/switchyard/jetstream"
	"github.com/switchyard/switchyard/subjects"
	"github.com/switchyard/switchyard/workers/jobs"
)

// A runner for service "reports", served by a NATS worker; a job is
// submitted the way the lb edge does it (record, then publish).
func ExampleNew() {
	dir, _ := os.MkdirTemp("", "switchyard-jobs-example")
	defer os.RemoveAll(dir)
	log := slog.New(slog.DiscardHandler)
	emb, err := jetstream.StartEmbedded(jetstream.EmbeddedOptions{Host: "127.0.0.1", StoreDir: dir, MaxPayload: 1 << 20}, log)
	if err != nil {
		panic(err)
	}
	defer emb.Shutdown()
	nc, _ := jetstream.Connect("example", "", emb, log)
	defer nc.Close()
	js, _ := natsjs.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := jetstream.Ensure(ctx, js, jetstream.Assets{Replicas: 1, MaxMsgSize: 1 << 20, JobTTL: time.Hour}); err != nil {
		panic(err)
	}

	// The service: any NATS client in queue group svc.reports.
	sub, _ := nc.QueueSubscribe("svc.reports.>", "svc.reports", func(m *nats.Msg) {
		_ = m.Respond([]byte("report for " + m.Header.Get(subjects.HeaderPath)))
	})
	defer sub.Unsubscribe()

	r, err := jobs.New(jobs.Options{NC: nc, JS: js, Services: []string{"reports"},
		AckWait: 30 * time.Second, Concurrency: 4, PollWait: 200 * time.Millisecond, Log: log})
	if err != nil {
		panic(err)
	}
	if err := r.Start(ctx); err != nil {
		panic(err)
	}
	defer r.Shutdown(ctx)

	store, _ := ijobs.Open(ctx, js)
	id := ijobs.IDFromKey("reports", "nov")
	_ = store.Create(ctx, &ijobs.Record{ID: id, Service: "reports", Method: "GET", Path: "/monthly",
		Status: ijobs.StatusQueued, SubmittedAt: time.Now().UTC()})
	msg := httpnats.NewRequestMsg("jobs.reports.monthly", "GET", "/monthly", "", nil, nil)
	msg.Header.Set(subjects.HeaderJobID, id)
	msg.Header.Set(subjects.HeaderMsgID, id)
	if _, err := js.PublishMsg(ctx, msg); err != nil {
		panic(err)
	}
	for {
		rec, err := store.Get(ctx, id)
		if err == nil && ijobs.Final(rec.Status) {
			fmt.Println(rec.Status, rec.Attempts, string(rec.Response.Body))
			return
		}
		if ctx.Err() != nil {
			fmt.Println("job not finished:", err)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Output: done 1 report for /monthly
}
