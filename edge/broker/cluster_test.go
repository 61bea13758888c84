package broker_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go/micro"

	"github.com/switchyard/switchyard/edge/broker"
	"github.com/switchyard/switchyard/edge/ws"
)

// services returns GET /services as name -> entry.
func (n *node) services() map[string]map[string]any {
	n.t.Helper()
	st, out := n.get("/services")
	if st != 200 {
		n.t.Fatalf("GET /services: %d %v", st, out)
	}
	m := map[string]map[string]any{}
	for _, s := range out["services"].([]any) {
		e := s.(map[string]any)
		m[e["name"].(string)] = e
	}
	return m
}

// TestTwoBrokerProcesses: a message published through one broker edge
// reaches a connection held by another (NATS routes it), for every path
// and for persistent messages; both see the presence of both.
func TestTwoBrokerProcesses(t *testing.T) {
	ns := startNATS(t)
	o := broker.Options{PresenceInterval: 200 * time.Millisecond, PresenceTTL: 2 * time.Second}
	a := startNode(t, ns, o)
	b := startNode(t, ns, o)
	chat := a.dial("chat", "")
	api := b.dial("api", "")
	a.connected("chat", 1)

	b.publish("chat", "lobby", "via b over http", false)
	checkMessage(t, chat.next(), "chat", "lobby", "", "via b over http", false)
	api.send(map[string]any{"type": "publish", "service": "chat", "topic": "lobby", "payload": "via b over ws"})
	checkMessage(t, chat.next(), "chat", "lobby", "api", "via b over ws", false)
	b.publish("chat", "lobby", "persistent via b", true)
	f := chat.next()
	checkMessage(t, f, "chat", "lobby", "", "persistent via b", true)
	chat.send(map[string]any{"type": "ack", "id": f["id"]})

	// Queue mode spreads over both processes' connections.
	chat2 := b.dial("chat", "")
	b.connected("chat", 1)
	pub := ns.Conn(t)
	const total = 40
	for i := range total {
		if err := pub.Publish("broker.svc.chat.spread", fmt.Appendf(nil, "%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	got := 0
	for got < total {
		select {
		case <-chat.frames:
		case <-chat2.frames:
		case <-time.After(wait):
			t.Fatalf("%d of %d messages arrived", got, total)
		}
		got++
	}
	if a.metric("switchyard_broker_messages_out_total", nil) < 3 || b.metric("switchyard_broker_messages_out_total", nil) == 0 {
		t.Fatal("one broker process delivered nothing")
	}

	for _, n := range []*node{a, b} {
		eventually(t, "presence of both processes", func() bool {
			s := n.services()
			return s["chat"] != nil && s["chat"]["connections"] == 2.0 && s["chat"]["brokers"] == 2.0 &&
				s["api"] != nil && s["api"]["connections"] == 1.0
		})
	}
}

// TestKilledBrokerPresenceExpires: the presence records of a broker
// process that stopped without cleaning up (its NATS connection cut)
// vanish after the TTL; a live process's records stay.
func TestKilledBrokerPresenceExpires(t *testing.T) {
	ns := startNATS(t)
	o := broker.Options{PresenceInterval: 200 * time.Millisecond, PresenceTTL: time.Second}
	live := startNode(t, ns, o)
	doomed := startNode(t, ns, o)
	live.dial("stay", "")
	doomed.dial("ghost", "")
	eventually(t, "both present", func() bool {
		s := live.services()
		return s["stay"] != nil && s["ghost"] != nil
	})
	doomed.nc.Close() // the process is gone: no more heartbeats, no clean removal
	eventually(t, "ghost expired", func() bool { return live.services()["ghost"] == nil })
	// Well past the TTL, the live record is still there (heartbeats).
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if live.services()["stay"] == nil {
			t.Fatal("a live broker's presence expired")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestServicesMergesMicro: GET /services lists WebSocket services with
// their presence and NATS micro services with version, endpoints and
// instance count, merged by name.
func TestServicesMergesMicro(t *testing.T) {
	ns := startNATS(t)
	n := startNode(t, ns, broker.Options{DiscoveryTimeout: 300 * time.Millisecond})
	n.dial("chat", "")
	n.dial("chat", "mode=broadcast")
	n.connected("chat", 2)
	nc := ns.Conn(t)
	for i := range 2 {
		svc, err := micro.AddService(nc, micro.Config{Name: "billing", Version: "1.2.0",
			Endpoint: &micro.EndpointConfig{Subject: "svc.billing.charge", Handler: micro.HandlerFunc(func(r micro.Request) { _ = r.Respond(nil) })}})
		if err != nil {
			t.Fatal(i, err)
		}
		t.Cleanup(func() { _ = svc.Stop() })
	}
	svc, err := micro.AddService(nc, micro.Config{Name: "chat", Version: "0.1.0",
		Endpoint: &micro.EndpointConfig{Subject: "svc.chat.x", Handler: micro.HandlerFunc(func(r micro.Request) { _ = r.Respond(nil) })}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop() })

	var s map[string]map[string]any
	eventually(t, "services listed", func() bool {
		s = n.services()
		return s["chat"] != nil && s["chat"]["connections"] == 2.0 && s["billing"] != nil && s["chat"]["micro"] != nil
	})
	chat := s["chat"]
	if chat["queue"] != 1.0 || chat["broadcast"] != 1.0 || chat["brokers"] != 1.0 || chat["last_seen"] == nil {
		t.Fatalf("chat: %v", chat)
	}
	bm := s["billing"]["micro"].(map[string]any)
	if bm["instances"] != 2.0 || bm["version"] != "1.2.0" {
		t.Fatalf("billing micro: %v", bm)
	}
	eps := bm["endpoints"].([]any)
	if len(eps) != 1 || eps[0].(map[string]any)["subject"] != "svc.billing.charge" {
		t.Fatalf("billing endpoints: %v", eps)
	}
	if s["billing"]["connections"] != 0.0 {
		t.Fatalf("billing has no WebSocket: %v", s["billing"])
	}
}

// TestSlowConnectionClosed: a connection that does not read is closed with
// 4008 "slow" while another connection of the same service keeps getting
// every message.
func TestSlowConnectionClosed(t *testing.T) {
	ns := startNATS(t)
	n := startNode(t, ns, broker.Options{MaxFrameBytes: 4096, WS: ws.Options{QueueBytes: 32 << 10}})
	slow := dialWith(t, n.ws+"/ws/feed?mode=broadcast", 4096, false)
	fast := n.dial("feed", "mode=broadcast")
	n.connected("feed", 2)
	pub := ns.Conn(t)
	payload := `"` + strings.Repeat("x", 4000) + `"`
	sent := 0
	// Publish in rounds, letting the fast reader catch up after each, until
	// the slow one is closed; bounded.
	for round := 0; !n.logs.logged("too slow"); round++ {
		if round == 20000 {
			t.Fatal("the slow connection was never closed")
		}
		// Two rounds of 2 frames of 4 KB fit the 32 KiB queue of the fast
		// connection, whose writer may not have accounted the last round yet.
		for range 2 {
			if err := pub.Publish("broker.svc.feed.tick", []byte(payload)); err != nil {
				t.Fatal(err)
			}
			sent++
		}
		for got := 0; got < 2; got++ {
			fast.next()
		}
	}
	_, _, err := slow.c.ReadMessage()
	for err == nil {
		_, _, err = slow.c.ReadMessage()
	}
	ce, ok := err.(*websocket.CloseError)
	if !ok || ce.Code != 4008 || ce.Text != "slow" {
		t.Fatalf("slow connection ended with %v, want close 4008 slow", err)
	}
	eventually(t, "slow disconnect counted", func() bool {
		return n.metric("switchyard_broker_slow_disconnects_total", nil) == 1
	})
	// The fast one still works.
	if err := pub.Publish("broker.svc.feed.tick", []byte(`"last"`)); err != nil {
		t.Fatal(err)
	}
	if f := fast.next(); f["payload"] != "last" {
		t.Fatalf("after the slow close: %v", f)
	}
}
