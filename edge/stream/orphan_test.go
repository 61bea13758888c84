package stream_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard/switchyard/edge"
	"github.com/switchyard/switchyard/edge/stream"
	"github.com/switchyard/switchyard/internal/streams"
	"github.com/switchyard/switchyard/jetstream"
	"github.com/switchyard/switchyard/jetstream/jstest"
)

// A STREAM_<id> JetStream stream with no record (a create that died half
// way) is deleted by the janitor; streams with a record are kept.
func TestOrphanStreamDeleted(t *testing.T) {
	ns := jstest.Start(t)
	nc := ns.Conn(t)
	js, _ := natsjs.New(nc)
	ctx := context.Background()
	cfg := testConfig(t)
	a := jetstream.ForConfig(cfg)
	if err := jetstream.Ensure(ctx, js, a); err != nil {
		t.Fatal(err)
	}
	sc, _ := jetstream.StreamOf(a, "orphan1", time.Hour, 1<<20)
	if _, err := js.CreateStream(ctx, sc); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := edge.New(edge.Options{Name: "stream", Listener: l, Log: testLog(t)})
	h, err := stream.New(ctx, srv, stream.Options{Config: cfg.Stream, NC: nc, JS: js, Assets: a,
		Metrics: streams.NewMetrics(prometheus.NewRegistry()), Log: testLog(t),
		JanitorInterval: 50 * time.Millisecond, OrphanAge: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{}, 2)
	go func() { _ = srv.Run(ctx); done <- struct{}{} }()
	go func() { _ = h.Run(ctx); done <- struct{}{} }()
	defer func() {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		_ = h.Shutdown(sctx)
		<-done
		<-done
	}()
	s := &sys{url: "http://" + l.Addr().String(), http: &http.Client{Timeout: wait}}
	id := s.create(t, `{"type":"parameters"}`)
	eventually(t, "orphan deleted", func() bool {
		_, err := js.Stream(ctx, "STREAM_orphan1")
		return errors.Is(err, natsjs.ErrStreamNotFound)
	})
	if _, err := js.Stream(ctx, "STREAM_"+id); err != nil {
		t.Fatalf("the stream with a record was deleted: %v", err)
	}
	s.mustPost(t, id, []byte(`{}`))
}
