package microdisc_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go/micro"
	"go.uber.org/goleak"

	"github.com/switchyard/switchyard/internal/microdisc"
	"github.com/switchyard/switchyard/jetstream/jstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestInfosAndStats: every instance answers, each is gathered once.
func TestInfosAndStats(t *testing.T) {
	ns := jstest.Start(t)
	nc := ns.Conn(t)
	if got := microdisc.Infos(nc, 200*time.Millisecond); len(got) != 0 {
		t.Fatalf("no service runs, got %v", got)
	}
	for _, v := range []string{"1.0.0", "1.1.0"} {
		svc, err := micro.AddService(ns.Conn(t), micro.Config{Name: "billing", Version: v,
			Endpoint: &micro.EndpointConfig{Subject: "svc.billing.charge", Handler: micro.HandlerFunc(func(r micro.Request) { _ = r.Respond(nil) })}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = svc.Stop() })
	}
	// A gather ends after a quiet spell; on a loaded machine one instance
	// may answer after it, so ask again until both did (bounded).
	deadline := time.Now().Add(10 * time.Second)
	infos := microdisc.Infos(nc, 2*time.Second)
	for len(infos) < 2 && time.Now().Before(deadline) {
		infos = microdisc.Infos(nc, 2*time.Second)
	}
	if len(infos) != 2 || infos[0].Name != "billing" || len(infos[0].Endpoints) != 1 {
		t.Fatalf("infos %+v", infos)
	}
	stats := microdisc.Stats(nc, 2*time.Second)
	for len(stats) < 2 && time.Now().Before(deadline) {
		stats = microdisc.Stats(nc, 2*time.Second)
	}
	if len(stats) != 2 || stats[0].ID == stats[1].ID {
		t.Fatalf("stats %+v", stats)
	}
}
