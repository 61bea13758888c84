package cache_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/switchyard/switchyard/jetstream/jstest"
	"github.com/switchyard/switchyard/subjects"
	"github.com/switchyard/switchyard/workers/cache"
)

// With every slot waiting on the shared tier, the next request that needs
// it is answered 503 with Retry-After at once; a local hit still answers.
func TestServiceFullAnswersAtOnce(t *testing.T) {
	srv := jstest.Start(t)
	nc, kv := kvShared(t, srv)
	g := &gated{Tier: kv, gate: make(chan struct{})}
	c := newCoord(t, nc, g, func(o *cache.Options) { o.SharedTimeout = 20 * time.Second })
	mustSet(t, c, "busy", "hot", "local", 0)
	svc, err := c.StartService(nc, "test", 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop(context.Background()) })
	client := srv.Conn(t)

	first := make(chan *nats.Msg, 1)
	go func() {
		m, err := client.Request("cache.get.busy", []byte("cold-1"), 20*time.Second)
		if err != nil {
			t.Error(err)
		}
		first <- m
	}()
	waitFor(t, 10*time.Second, "the first miss to wait on the shared tier", func() bool { return g.gets.Load() == 1 })

	m, err := client.Request("cache.get.busy", []byte("cold-2"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if m.Header.Get(subjects.HeaderStatus) != "503" || m.Header.Get(subjects.HeaderRetryAfter) == "" {
		t.Fatalf("request beyond the bound: %v %s", m.Header, m.Data)
	}
	if m, err := client.Request("cache.get.busy", []byte("hot"), 5*time.Second); err != nil || string(m.Data) != "local" {
		t.Fatalf("local hit while full: %v %v", m, err)
	}
	close(g.gate)
	if m := <-first; m == nil || m.Header.Get(subjects.HeaderStatus) != "404" {
		t.Fatalf("first request: %v", m)
	}
}
