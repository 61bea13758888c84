package streamproc_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/internal/httpnats"
	"github.com/switchyard/switchyard/internal/streams"
	"github.com/switchyard/switchyard/jetstream"
	"github.com/switchyard/switchyard/jetstream/jstest"
	"github.com/switchyard/switchyard/subjects"
	"github.com/switchyard/switchyard/workers/streamproc"
)

// setup declares the assets and one processed stream, as the edge does.
func setup(t *testing.T, nc *nats.Conn, service string) (natsjs.JetStream, *streams.Record) {
	t.Helper()
	js, _ := natsjs.New(nc)
	ctx := context.Background()
	a := jetstream.ForConfig(config.Default())
	if err := jetstream.Ensure(ctx, js, a); err != nil {
		t.Fatal(err)
	}
	r := &streams.Record{ID: streams.NewID(), Spec: streams.Spec{Type: streams.Parameters, Service: service}, Created: time.Now()}
	if err := r.Normalize(streams.Limits{DefaultMaxAge: time.Hour, DefaultMaxBytes: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	sc, _ := jetstream.StreamOf(a, r.ID, time.Hour, 1<<20)
	if _, err := js.CreateStream(ctx, sc); err != nil {
		t.Fatal(err)
	}
	cc, _ := streamproc.ConsumerConfig(r.ID, 5*time.Second, 5, 1)
	if _, err := js.CreateOrUpdateConsumer(ctx, sc.Name, cc); err != nil {
		t.Fatal(err)
	}
	store, err := streams.Open(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	return js, r
}

func newPool(t *testing.T, nc *nats.Conn, js natsjs.JetStream) *streamproc.Pool {
	t.Helper()
	p, err := streamproc.New(streamproc.Options{NC: nc, JS: js, Timeout: 5 * time.Second,
		Metrics: streams.NewMetrics(prometheus.NewRegistry()), RetryDelay: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// A pool shut down while its service hangs leaves the chunk unacked; the
// next pool processes it, and its result is stored once.
func TestShutdownAbandonsAndNextPoolFinishes(t *testing.T) {
	ns := jstest.Start(t)
	nc := ns.Conn(t)
	js, r := setup(t, nc, "hang")
	in, _ := subjects.StreamIn(r.ID)
	if _, err := js.Publish(context.Background(), in, []byte(`{"n":1}`)); err != nil {
		t.Fatal(err)
	}
	var hang atomic.Bool
	hang.Store(true)
	entered := make(chan struct{}, 16)
	release := make(chan struct{})
	var hung sync.WaitGroup
	sub, err := nc.QueueSubscribe("svc.hang.>", "svc.hang", func(m *nats.Msg) {
		if hang.Load() {
			entered <- struct{}{}
			hung.Add(1)
			go func() { defer hung.Done(); <-release }() // never answers
			return
		}
		_ = m.RespondMsg(httpnats.NewResponseMsg(http.StatusOK, http.Header{"Content-Type": {"application/json"}}, []byte(`{"ok":true}`)))
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	defer hung.Wait()
	defer close(release)

	p1 := newPool(t, nc, js)
	ran1 := make(chan error, 1)
	go func() { ran1 <- p1.Run(context.Background()) }()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the chunk never reached the service")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	err = p1.Shutdown(ctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("shutdown with a chunk in flight: %v, want the deadline", err)
	}
	if err := <-ran1; err != nil {
		t.Errorf("run: %v", err)
	}
	if err := p1.Shutdown(context.Background()); err != nil {
		t.Errorf("second shutdown: %v", err)
	}

	hang.Store(false)
	p2 := newPool(t, nc, js)
	ran2 := make(chan error, 1)
	go func() { ran2 <- p2.Run(context.Background()) }()
	defer func() { _ = p2.Shutdown(context.Background()); <-ran2 }()
	name, _ := subjects.StreamOf(r.ID)
	out, _ := subjects.StreamOut(r.ID)
	deadline := time.Now().Add(15 * time.Second)
	for {
		s, err := js.Stream(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		info, _ := s.Info(context.Background(), natsjs.WithSubjectFilter(out))
		cons, _ := js.Consumer(context.Background(), name, subjects.StreamProcessConsumer)
		ci := cons.CachedInfo()
		if info.State.Subjects[out] == 1 && ci.NumAckPending == 0 && ci.NumPending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("result not stored: %d results, pending %d, ack pending %d", info.State.Subjects[out], ci.NumPending, ci.NumAckPending)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
