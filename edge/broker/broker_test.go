package broker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard/switchyard/edge/broker"
	"github.com/switchyard/switchyard/subjects"
)

// checkMessage asserts the stable fields of a message frame.
func checkMessage(t *testing.T, f map[string]any, service, topic, from string, payload any, persistent bool) {
	t.Helper()
	if f["type"] != "message" || f["service"] != service || f["topic"] != topic || f["from"] != from ||
		f["persistent"] != persistent {
		t.Fatalf("frame %v: want message for %s/%s from %q, persistent %v", f, service, topic, from, persistent)
	}
	want, _ := json.Marshal(payload)
	got, _ := json.Marshal(f["payload"])
	if string(got) != string(want) {
		t.Fatalf("payload %s, want %s", got, want)
	}
	if id, _ := f["id"].(string); id == "" {
		t.Fatalf("frame %v has no id", f)
	}
	if ts, _ := f["ts"].(string); ts == "" {
		t.Fatalf("frame %v has no ts", f)
	} else if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
		t.Fatalf("ts %q: %v", ts, err)
	}
}

// TestThreePublishPaths: HTTP, a WebSocket publish frame and a plain NATS
// publish reach the same connection as the same frame, counted by path.
func TestThreePublishPaths(t *testing.T) {
	ns := startNATS(t)
	n := startNode(t, ns, broker.Options{})
	chat := n.dial("chat", "")
	api := n.dial("api", "")
	n.connected("chat", 1)

	id := n.publish("chat", "rooms.lobby", map[string]any{"via": "http"}, false)
	f := chat.next()
	checkMessage(t, f, "chat", "rooms.lobby", "", map[string]any{"via": "http"}, false)
	if f["id"] != id {
		t.Fatalf("frame id %v, want the id POST /publish answered, %s", f["id"], id)
	}

	api.send(map[string]any{"type": "publish", "service": "chat", "topic": "rooms.lobby", "payload": map[string]any{"via": "ws"}, "ref": "r1"})
	if p := api.next(); p["type"] != "published" || p["ref"] != "r1" || p["id"] == "" {
		t.Fatalf("published frame: %v", p)
	}
	checkMessage(t, chat.next(), "chat", "rooms.lobby", "api", map[string]any{"via": "ws"}, false)

	pub := ns.Conn(t)
	if err := pub.Publish("broker.svc.chat.rooms.lobby", []byte(`{"via":"nats"}`)); err != nil {
		t.Fatal(err)
	}
	checkMessage(t, chat.next(), "chat", "rooms.lobby", "", map[string]any{"via": "nats"}, false)
	// Not JSON: carried as a string.
	if err := pub.Publish("broker.svc.chat.raw", []byte("plain text")); err != nil {
		t.Fatal(err)
	}
	checkMessage(t, chat.next(), "chat", "raw", "", "plain text", false)

	for path, want := range map[string]float64{"http": 1, "ws": 1, "nats": 2} {
		if got := n.metric("switchyard_broker_messages_out_total", map[string]string{"path": path}); got != want {
			t.Errorf("messages_out_total{path=%s} = %v, want %v", path, got, want)
		}
		if got := n.metric("switchyard_broker_messages_in_total", map[string]string{"path": path}); got != want {
			t.Errorf("messages_in_total{path=%s} = %v, want %v", path, got, want)
		}
	}
	if got := n.metric("switchyard_broker_published_total", map[string]string{"path": "ws"}); got != 1 {
		t.Errorf("published_total{path=ws} = %v", got)
	}
	if got := n.metric("switchyard_broker_delivery_latency_seconds", nil); got != 2 {
		t.Errorf("latency observations %v, want 2 (the http and ws messages carry their publish time)", got)
	}
}

// TestQueueAndBroadcast: queue-mode connections of a service share its
// messages round robin; broadcast connections each get every message.
func TestQueueAndBroadcast(t *testing.T) {
	ns := startNATS(t)
	n := startNode(t, ns, broker.Options{})
	q := []*client{n.dial("work", ""), n.dial("work", "mode=queue"), n.dial("work", "")}
	bc := []*client{n.dial("work", "mode=broadcast"), n.dial("work", "mode=broadcast")}
	n.connected("work", 5)
	const total = 30
	pub := ns.Conn(t)
	for i := range total {
		if err := pub.Publish("broker.svc.work.jobs", fmt.Appendf(nil, `{"n":%d}`, i)); err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range q {
		for range total / len(q) {
			c.next()
		}
		select {
		case f := <-c.frames:
			t.Fatalf("queue connection %d got more than its share: %v", i, f)
		case <-time.After(50 * time.Millisecond):
		}
	}
	for i, c := range bc {
		for k := range total {
			f := c.next()
			if got := f["payload"].(map[string]any)["n"].(float64); int(got) != k {
				t.Fatalf("broadcast connection %d: message %d is n=%v (out of order)", i, k, got)
			}
		}
	}
	if st, _ := n.get("/ws/work?mode=fanout"); st != http.StatusBadRequest {
		t.Fatalf("unknown mode: %d, want 400", st)
	}
	if st, _ := n.get("/ws/Bad.Name"); st != http.StatusBadRequest {
		t.Fatalf("bad service name: %d, want 400", st)
	}
}

// TestUndeliverable: a transient message to a service with no connection is
// counted, by path, and not stored.
func TestUndeliverable(t *testing.T) {
	ns := startNATS(t)
	n := startNode(t, ns, broker.Options{})
	n.publish("nobody", "x", 1, false)
	eventually(t, "undeliverable{http}", func() bool {
		return n.metric("switchyard_broker_undeliverable_total", map[string]string{"path": "http"}) == 1
	})
	api := n.dial("api", "")
	api.send(map[string]any{"type": "publish", "service": "nobody", "topic": "x", "payload": 1})
	eventually(t, "undeliverable{ws}", func() bool {
		return n.metric("switchyard_broker_undeliverable_total", map[string]string{"path": "ws"}) == 1
	})
	js, _ := natsjs.New(ns.Conn(t))
	st, err := js.Stream(context.Background(), subjects.StreamBroker)
	if err != nil {
		t.Fatal(err)
	}
	if info, _ := st.Info(context.Background()); info.State.Msgs != 0 {
		t.Fatalf("transient messages were stored: %d", info.State.Msgs)
	}
}

// TestPublishValidation: POST /publish answers 400, 413 and 415 with the JSON error shape.
func TestPublishValidation(t *testing.T) {
	ns := startNATS(t)
	n := startNode(t, ns, broker.Options{MaxFrameBytes: 1024})
	for _, tc := range []struct {
		name, ct, body string
		status         int
	}{
		{"no service", "application/json", `{"topic":"t","payload":1}`, 400},
		{"bad service", "application/json", `{"service":"A B","topic":"t","payload":1}`, 400},
		{"no topic", "application/json", `{"service":"s","payload":1}`, 400},
		{"wildcard topic", "application/json", `{"service":"s","topic":"a.*","payload":1}`, 400},
		{"empty token", "application/json", `{"service":"s","topic":"a..b","payload":1}`, 400},
		{"no payload", "application/json", `{"service":"s","topic":"t"}`, 400},
		{"bad from", "application/json", `{"service":"s","topic":"t","payload":1,"from":"x y"}`, 400},
		{"bad json", "application/json", `{"service":`, 400},
		{"unknown field", "application/json", `{"service":"s","topic":"t","payload":1,"x":1}`, 400},
		{"trailing data", "application/json", `{"service":"s","topic":"t","payload":1} {}`, 400},
		{"not json", "text/plain", `hello`, 415},
		{"too large", "application/json", `{"service":"s","topic":"t","payload":"` + strings.Repeat("x", 2000) + `"}`, 413},
		{"ok", "application/json", `{"service":"s","topic":"t","payload":{"a":[1,2]},"from":"api"}`, 202},
	} {
		st, out := n.post("/publish", tc.ct, []byte(tc.body))
		if st != tc.status {
			t.Errorf("%s: status %d, want %d (%v)", tc.name, st, tc.status, out)
			continue
		}
		if st >= 400 {
			e, _ := out["error"].(map[string]any)
			if e == nil || e["code"] == "" || e["message"] == "" {
				t.Errorf("%s: body %v is not the JSON error shape", tc.name, out)
			}
		}
	}
}

// TestMalformedFrames: every bad frame gets an error frame and the
// connection keeps working.
func TestMalformedFrames(t *testing.T) {
	ns := startNATS(t)
	n := startNode(t, ns, broker.Options{})
	c := n.dial("api", "")
	n.connected("api", 1)
	for _, tc := range []struct {
		frame, code string
	}{
		{`not json`, "bad_frame"},
		{`[1,2]`, "bad_frame"},
		{`{"type":7}`, "bad_frame"},
		{`{}`, "unknown_type"},
		{`{"type":"subscribe"}`, "unknown_type"},
		{`{"type":"publish","topic":"t","payload":1,"ref":"a"}`, "bad_request"},
		{`{"type":"publish","service":"s","topic":"a.>","payload":1}`, "bad_request"},
		{`{"type":"publish","service":"s","topic":"t"}`, "bad_request"},
		{`{"type":"publish","service":"s","topic":"t","payload":1,"reply":true}`, "bad_request"},
		{`{"type":"publish","service":"s","topic":"t","payload":1,"reply":true,"correlation_id":"c1","persistent":true}`, "bad_request"},
		{`{"type":"reply","reply_to":"svc.other.x","payload":1}`, "bad_request"},
		{`{"type":"reply","reply_to":"broker.reply.>","payload":1}`, "bad_request"},
		{`{"type":"ack","id":"nope"}`, "unknown_id"},
		{`{"type":"nack","id":"nope"}`, "unknown_id"},
	} {
		c.sendRaw([]byte(tc.frame))
		f := c.next()
		if f["type"] != "error" || f["code"] != tc.code || f["message"] == "" {
			t.Errorf("frame %s: answer %v, want error %s", tc.frame, f, tc.code)
		}
	}
	if f := func() map[string]any {
		c.sendRaw([]byte(`{"type":"publish","topic":"t","payload":1,"ref":"r9"}`))
		return c.next()
	}(); f["ref"] != "r9" {
		t.Errorf("error frame does not echo the ref: %v", f)
	}
	// Still open and working.
	c.send(map[string]any{"type": "publish", "service": "api", "topic": "self", "payload": "ok"})
	checkMessage(t, c.next(), "api", "self", "api", "ok", false)
	if got := n.metric("switchyard_broker_frame_errors_total", nil); got != 15 {
		t.Errorf("frame_errors_total = %v, want 15", got)
	}
}

// TestFrameLimit: a frame over the limit closes the connection with 1009.
func TestFrameLimit(t *testing.T) {
	ns := startNATS(t)
	n := startNode(t, ns, broker.Options{MaxFrameBytes: 512})
	c := n.dial("api", "")
	n.connected("api", 1)
	c.send(map[string]any{"type": "publish", "service": "api", "topic": "t", "payload": strings.Repeat("x", 400)})
	c.next()
	c.sendRaw([]byte(`{"type":"publish","service":"api","topic":"t","payload":"` + strings.Repeat("x", 600) + `"}`))
	if code := c.closeCode(); code != websocket.CloseMessageTooBig {
		t.Fatalf("close code %d, want 1009", code)
	}
}

// TestRequestReply: a connection sends a request with a correlation id; a
// connection of the target service answers; the reply comes back with the
// correlation id. A request nobody can take gets no_responders.
func TestRequestReply(t *testing.T) {
	ns := startNATS(t)
	n := startNode(t, ns, broker.Options{})
	a := n.dial("frontend", "")
	b := n.dial("pricing", "")
	n.connected("pricing", 1)
	a.send(map[string]any{"type": "publish", "service": "pricing", "topic": "quote", "payload": map[string]any{"sku": 7},
		"reply": true, "correlation_id": "c-17"})
	req := b.next()
	checkMessage(t, req, "pricing", "quote", "frontend", map[string]any{"sku": 7}, false)
	if req["correlation_id"] != "c-17" || req["reply_to"] == nil {
		t.Fatalf("request frame %v lacks reply_to or correlation_id", req)
	}
	b.send(map[string]any{"type": "reply", "reply_to": req["reply_to"], "correlation_id": "c-17", "payload": map[string]any{"price": 12}})
	rep := a.next()
	if rep["type"] != "reply" || rep["correlation_id"] != "c-17" || rep["from"] != "pricing" {
		t.Fatalf("reply frame %v", rep)
	}
	if p := rep["payload"].(map[string]any); p["price"] != 12.0 {
		t.Fatalf("reply payload %v", p)
	}

	a.send(map[string]any{"type": "publish", "service": "absent", "topic": "quote", "payload": 1, "reply": true, "correlation_id": "c-18"})
	if e := a.next(); e["type"] != "error" || e["code"] != "no_responders" || e["correlation_id"] != "c-18" {
		t.Fatalf("request to nobody: %v", e)
	}

	// A plain NATS requester reaches the WebSocket service too.
	nc := ns.Conn(t)
	done := make(chan *nats.Msg, 1)
	go func() {
		m, err := nc.Request("broker.svc.pricing.quote", []byte(`{"sku":8}`), wait)
		if err != nil {
			t.Error(err)
		}
		done <- m
	}()
	req = b.next()
	b.send(map[string]any{"type": "reply", "reply_to": req["reply_to"], "payload": map[string]any{"price": 13}})
	if m := <-done; m == nil || string(m.Data) != `{"price":13}` || m.Header.Get(subjects.HeaderFrom) != "pricing" {
		t.Fatalf("NATS reply: %+v", m)
	}
}

// TestPresenceEvents: join and leave events on broker.presence.<service>.
func TestPresenceEvents(t *testing.T) {
	ns := startNATS(t)
	n := startNode(t, ns, broker.Options{})
	nc := ns.Conn(t)
	events, err := nc.SubscribeSync("broker.presence.chat")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	c := n.dial("chat", "mode=broadcast")
	next := func() broker.Event {
		m, err := events.NextMsg(wait)
		if err != nil {
			t.Fatal(err)
		}
		var e broker.Event
		if err := json.Unmarshal(m.Data, &e); err != nil {
			t.Fatal(err)
		}
		return e
	}
	if e := next(); e.Event != "join" || e.Service != "chat" || e.Mode != "broadcast" || e.Connections != 1 || e.Node != n.b.Node() {
		t.Fatalf("join event %+v", e)
	}
	_ = c.c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	if e := next(); e.Event != "leave" || e.Connections != 0 {
		t.Fatalf("leave event %+v", e)
	}
}

// TestShutdownClosesWith1001: shutting the edge down closes every
// connection with 1001 going away.
func TestShutdownClosesWith1001(t *testing.T) {
	ns := startNATS(t)
	n := startNode(t, ns, broker.Options{})
	cs := []*client{n.dial("a", ""), n.dial("b", "mode=broadcast")}
	n.connected("b", 1)
	n.connected("a", 1)
	go n.stop()
	for _, c := range cs {
		if code := c.closeCode(); code != websocket.CloseGoingAway {
			t.Fatalf("close code %d, want 1001", code)
		}
	}
}

// TestBatchedFrames: with ?batch=true a frame may carry several messages,
// one a line; every message arrives once, in order, intact, even a payload
// published with line breaks in it.
func TestBatchedFrames(t *testing.T) {
	ns := startNATS(t)
	n := startNode(t, ns, broker.Options{})
	c := n.dial("feed", "batch=true")
	n.connected("feed", 1)
	pub := ns.Conn(t)
	const total = 2000
	for i := range total {
		if err := pub.Publish("broker.svc.feed.tick", fmt.Appendf(nil, "{\n  \"n\": %d\n}", i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range total {
		f := c.next()
		if got := f["payload"].(map[string]any)["n"].(float64); int(got) != i {
			t.Fatalf("message %d has n=%v", i, got)
		}
	}
	t.Logf("%d messages in %d frames", total, c.nframes.Load())
	if st, _ := n.get("/ws/feed?batch=maybe"); st != http.StatusBadRequest {
		t.Fatalf("bad batch value: %d, want 400", st)
	}
}
