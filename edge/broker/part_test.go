package broker_test

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/switchyard/switchyard/app"
	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/edge/broker"
	"github.com/switchyard/switchyard/part"
)

// TestPartUnderAppRun: the broker part as `switchyard broker` runs it,
// configured from its config section, serves the three paths and closes
// its connections with 1001 when the process stops.
func TestPartUnderAppRun(t *testing.T) {
	ns := startNATS(t)
	cfg := config.Default()
	cfg.NATS.URL = ns.URL
	cfg.Server.Host = "127.0.0.1"
	cfg.Server.BrokerPort = 0
	cfg.DataDir = t.TempDir()
	cfg.Broker.MaxFrameBytes = 1024
	cfg.Broker.PresenceInterval = config.Duration(200 * time.Millisecond)
	cfg.Broker.PresenceTTL = config.Duration(time.Second)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan map[string]net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- app.Run(ctx, app.Options{Config: cfg, Parts: []part.Part{broker.Part},
			Log: slog.New(slog.DiscardHandler), Version: "test",
			Ready: func(a map[string]net.Addr) { ready <- a }})
	}()
	var addr string
	select {
	case a := <-ready:
		addr = a["broker"].String()
	case err := <-done:
		cancel()
		t.Fatal(err)
	case <-time.After(wait):
		cancel()
		t.Fatal("app.Run not ready")
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			if err := <-done; err != nil {
				t.Errorf("app.Run: %v", err)
			}
		}
	}
	t.Cleanup(stop)
	n := &node{t: t, url: "http://" + addr, ws: "ws://" + addr}
	c := dialWith(t, n.ws+"/ws/chat", 0, true)
	eventually(t, "chat present", func() bool {
		st, out := n.get("/services")
		if st != 200 {
			return false
		}
		for _, s := range out["services"].([]any) {
			if m := s.(map[string]any); m["name"] == "chat" && m["connections"] == 1.0 {
				return true
			}
		}
		return false
	})
	n.publish("chat", "t", "hi", false)
	checkMessage(t, c.next(), "chat", "t", "", "hi", false)
	// The configured frame limit applies.
	if st, _ := n.post("/publish", "application/json", []byte(`{"service":"chat","topic":"t","payload":"`+strings.Repeat("x", 2000)+`"}`)); st != 413 {
		t.Fatalf("publish over broker.max_frame_bytes: %d, want 413", st)
	}
	stop()
	if code := c.closeCode(); code != 1001 {
		t.Fatalf("close code %d at shutdown, want 1001", code)
	}
}
