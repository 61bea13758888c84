package broker

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
	"unicode/utf8"
)

// TestFrameFormat pins the message frame: these keys, in this order.
func TestFrameFormat(t *testing.T) {
	ts := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	got := string(appendMessage(nil, &message{Type: typeMessage, ID: "m1", Service: "chat", Topic: "rooms.lobby",
		From: "api", Payload: []byte(`{"text":"hi"}`), TS: ts}))
	want := `{"type":"message","id":"m1","service":"chat","topic":"rooms.lobby","from":"api","payload":{"text":"hi"},"ts":"2026-01-02T03:04:05.000006Z","persistent":false}`
	if got != want {
		t.Fatalf("frame\n%s\nwant\n%s", got, want)
	}
	got = string(appendMessage(nil, &message{Type: typeMessage, ID: "m2", Service: "s", Topic: "t",
		Payload: []byte("not json \"quoted\"\n"), TS: ts, Persistent: true, Delivery: 3, ReplyTo: "_INBOX.x", CorrelationID: "c1"}))
	want = `{"type":"message","id":"m2","service":"s","topic":"t","from":"","payload":"not json \"quoted\"\n","ts":"2026-01-02T03:04:05.000006Z","persistent":true,"delivery":3,"reply_to":"_INBOX.x","correlation_id":"c1"}`
	if got != want {
		t.Fatalf("frame\n%s\nwant\n%s", got, want)
	}
	if got := string(appendMessage(nil, &message{Type: typeMessage, TS: ts})); !json.Valid([]byte(got)) {
		t.Fatalf("empty payload: %s", got)
	}
}

// FuzzAppendMessage: any strings and payload give one valid JSON object
// whose fields read back as written (invalid UTF-8 as U+FFFD).
func FuzzAppendMessage(f *testing.F) {
	f.Add("id", "svc", "a.b", "from", []byte(`{"x":1}`))
	f.Add("\x00\"\\", "\xff", "\u2028", "é", []byte("\x00raw"))
	f.Fuzz(func(t *testing.T, id, service, topic, from string, payload []byte) {
		m := &message{Type: typeMessage, ID: id, Service: service, Topic: topic, From: from, Payload: payload, TS: time.Unix(0, 1)}
		out := appendMessage(nil, m)
		var back struct {
			ID, Service, Topic, From string
			Payload                  json.RawMessage
		}
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("invalid JSON %q: %v", out, err)
		}
		for _, p := range [][2]string{{back.ID, id}, {back.Service, service}, {back.Topic, topic}, {back.From, from}} {
			if want := []rune(p[1]); utf8.ValidString(p[1]) && p[0] != p[1] || !utf8.ValidString(p[1]) && len([]rune(p[0])) != len(want) {
				t.Fatalf("field %q read back as %q", p[1], p[0])
			}
		}
		if len(payload) > 0 && json.Valid(payload) {
			var a, b bytes.Buffer
			_ = json.Compact(&a, payload)
			_ = json.Compact(&b, back.Payload)
			if a.String() != b.String() {
				t.Fatalf("JSON payload %q changed to %q", payload, back.Payload)
			}
		}
	})
}
