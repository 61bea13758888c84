package broker_test

import (
	"context"
	"testing"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard/switchyard/edge/broker"
	"github.com/switchyard/switchyard/jetstream/jstest"
	"github.com/switchyard/switchyard/subjects"
)

func streamMsgs(t *testing.T, ns *jstest.Server, name string) uint64 {
	t.Helper()
	js, _ := natsjs.New(ns.Conn(t))
	st, err := js.Stream(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// TestPersistentToOfflineService: a persistent message published while its
// service has no connection waits in BROKER and is delivered when one
// connects; the client's ack removes it. A persistent message published
// straight to NATS is delivered the same way.
func TestPersistentToOfflineService(t *testing.T) {
	ns := startNATS(t)
	n := startNode(t, ns, broker.Options{})
	id := n.publish("billing", "invoices.created", map[string]any{"n": 1}, true)
	pub := ns.Conn(t)
	if err := pub.Publish("broker.persist.billing.invoices.created", []byte(`{"n":2}`)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "both stored", func() bool { return streamMsgs(t, ns, subjects.StreamBroker) == 2 })

	c := n.dial("billing", "")
	f := c.next()
	checkMessage(t, f, "billing", "invoices.created", "", map[string]any{"n": 1.0}, true)
	if f["id"] != id || f["delivery"] != 1.0 {
		t.Fatalf("frame %v: want id %s, delivery 1", f, id)
	}
	g := c.next()
	checkMessage(t, g, "billing", "invoices.created", "", map[string]any{"n": 2.0}, true)
	c.send(map[string]any{"type": "ack", "id": f["id"]})
	c.send(map[string]any{"type": "ack", "id": g["id"]})
	eventually(t, "acked messages removed", func() bool { return streamMsgs(t, ns, subjects.StreamBroker) == 0 })
	if got := n.metric("switchyard_broker_acks_total", nil); got != 2 {
		t.Fatalf("acks_total %v", got)
	}
	// An ack of an acked message is an error frame.
	c.send(map[string]any{"type": "ack", "id": f["id"]})
	if e := c.next(); e["code"] != "unknown_id" {
		t.Fatalf("second ack: %v", e)
	}
}

// TestRedeliveryWhenNotAcked: an unacked persistent message comes again
// after the ack wait, and at once when its connection closes.
func TestRedeliveryWhenNotAcked(t *testing.T) {
	ns := startNATS(t)
	n := startNode(t, ns, broker.Options{AckWait: time.Second, MaxDeliver: 10})
	c := n.dial("billing", "")
	n.connected("billing", 1)
	n.publish("billing", "t", "x", true)
	first := c.next()
	again := c.next() // after the ack wait, with no ack
	if again["id"] != first["id"] || again["delivery"] != 2.0 {
		t.Fatalf("redelivery %v of %v", again, first)
	}
	if got := n.metric("switchyard_broker_redeliveries_total", nil); got != 1 {
		t.Fatalf("redeliveries_total %v", got)
	}
	// Close without acking: the other connection gets it at once (well
	// within the ack wait, which this test does not assert on: it checks
	// the delivery count instead).
	other := n.dial("billing", "")
	n.connected("billing", 2)
	_ = c.c.Close()
	var f map[string]any
	for f = other.next(); f["id"] != first["id"]; f = other.next() {
	}
	if f["delivery"].(float64) < 3 {
		t.Fatalf("delivery %v after the close, want 3 or more", f["delivery"])
	}
	other.send(map[string]any{"type": "ack", "id": f["id"]})
	eventually(t, "acked", func() bool { return streamMsgs(t, ns, subjects.StreamBroker) == 0 })
}

// TestDeadLetterAfterMaxDeliver: a message never acked goes to
// broker.dead.<service>.<topic> in BROKER_DEAD after MaxDeliver attempts,
// readable with a plain JetStream consumer (what the nats CLI uses), and
// leaves BROKER.
func TestDeadLetterAfterMaxDeliver(t *testing.T) {
	ns := startNATS(t)
	n := startNode(t, ns, broker.Options{AckWait: time.Second, MaxDeliver: 2})
	c := n.dial("billing", "")
	n.connected("billing", 1)
	id := n.publish("billing", "invoices.failed", map[string]any{"n": 1}, true)
	for want := 1.0; want <= 2; want++ {
		f := c.next()
		if f["id"] != id || f["delivery"] != want {
			t.Fatalf("delivery %v: %v", want, f)
		}
	}
	eventually(t, "dead letter stored", func() bool { return streamMsgs(t, ns, subjects.StreamBrokerDead) == 1 })
	eventually(t, "original removed", func() bool { return streamMsgs(t, ns, subjects.StreamBroker) == 0 })

	js, _ := natsjs.New(ns.Conn(t))
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, subjects.StreamBrokerDead, natsjs.OrderedConsumerConfig{FilterSubjects: []string{"broker.dead.>"}})
	if err != nil {
		t.Fatal(err)
	}
	m, err := cons.Next(natsjs.FetchMaxWait(wait))
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject() != "broker.dead.billing.invoices.failed" || string(m.Data()) != `{"n":1}` ||
		m.Headers().Get(subjects.HeaderDeliveries) != "2" || m.Headers().Get(subjects.HeaderMsgID) != id {
		t.Fatalf("dead letter %s %s %v", m.Subject(), m.Data(), m.Headers())
	}
	if got := n.metric("switchyard_broker_dead_letters_total", nil); got != 1 {
		t.Fatalf("dead_letters_total %v", got)
	}
	// The connection stays usable and gets no third delivery.
	select {
	case f := <-c.frames:
		t.Fatalf("unexpected frame after the last attempt: %v", f)
	case <-time.After(100 * time.Millisecond):
	}
}

// TestPersistentPublishUnavailable: with JetStream gone, a persistent
// publish answers 503 with Retry-After at once rather than hanging.
func TestPersistentPublishUnavailable(t *testing.T) {
	ns := startNATS(t)
	n := startNode(t, ns, broker.Options{PublishTimeout: 2 * time.Second})
	js, _ := natsjs.New(ns.Conn(t))
	if err := js.DeleteStream(context.Background(), subjects.StreamBroker); err != nil {
		t.Fatal(err)
	}
	st, out := n.post("/publish", "application/json", []byte(`{"service":"s","topic":"t","payload":1,"persistent":true}`))
	if st != 503 {
		t.Fatalf("status %d %v, want 503", st, out)
	}
	if e := out["error"].(map[string]any); e["code"] != "unavailable" {
		t.Fatalf("error %v", e)
	}
}
