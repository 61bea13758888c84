package broker_test

import (
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/switchyard/switchyard/edge/broker"
	"github.com/switchyard/switchyard/jetstream/jstest"
)

// TestConnectionLimit: past MaxConnections the upgrade answers 503 with
// Retry-After at once; a freed slot is usable again.
func TestConnectionLimit(t *testing.T) {
	ns := startNATS(t)
	n := startNode(t, ns, broker.Options{MaxConnections: 1})
	first := n.dial("a", "")
	n.connected("a", 1)
	_, resp, err := websocket.DefaultDialer.Dial(n.ws+"/ws/b", nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("second connection: %v %+v", err, resp)
	}
	_ = first.c.Close()
	n.connected("a", 0)
	n.dial("b", "")
	n.connected("b", 1)
}

// TestPersistentPublishFrame: a persistent publish frame is answered with
// a published frame once stored, and delivered like any other.
func TestPersistentPublishFrame(t *testing.T) {
	ns := startNATS(t)
	n := startNode(t, ns, broker.Options{})
	api := n.dial("api", "")
	api.send(map[string]any{"type": "publish", "service": "billing", "topic": "t", "payload": []int{1}, "persistent": true, "ref": "p1"})
	p := api.next()
	if p["type"] != "published" || p["ref"] != "p1" || p["persistent"] != true {
		t.Fatalf("published frame %v", p)
	}
	b := n.dial("billing", "")
	f := b.next()
	checkMessage(t, f, "billing", "t", "api", []int{1}, true)
	if f["id"] != p["id"] {
		t.Fatalf("id %v, want %v", f["id"], p["id"])
	}
}

// TestNATSRestart: while NATS is down, publishing answers 503 at once; once
// it is back, the connections that stayed open receive again.
func TestNATSRestart(t *testing.T) {
	dir := t.TempDir()
	ns := jstest.StartIn(t, dir)
	ensureAssets(t, ns)
	n := startNode(t, ns, broker.Options{})
	c := n.dial("chat", "")
	n.connected("chat", 1)
	n.publish("chat", "t", "before", false)
	checkMessage(t, c.next(), "chat", "t", "", "before", false)

	port := ns.Server().Addr().(*net.TCPAddr).Port
	ns.Shutdown()
	eventually(t, "broker disconnected", func() bool { return !n.nc.IsConnected() })
	// Answered, not held until NATS returns (the client gives up after wait).
	hc := &http.Client{Timeout: wait}
	resp, err := hc.Post(n.url+"/publish", "application/json", strings.NewReader(`{"service":"chat","topic":"t","payload":1}`))
	if err != nil {
		t.Fatalf("publish while NATS is down: %v", err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("publish while NATS is down: %d %v", resp.StatusCode, resp.Header)
	}
	jstest.StartAt(t, dir, port)
	eventually(t, "broker reconnected", func() bool { return n.nc.IsConnected() })
	eventually(t, "delivery after the restart", func() bool {
		n.publish("chat", "t", "after", false)
		select {
		case f := <-c.frames:
			return f["payload"] == "after"
		case <-time.After(200 * time.Millisecond):
			return false
		}
	})
}
