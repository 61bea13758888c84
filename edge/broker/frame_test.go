package broker

import (
	"bytes"
	"encoding/json"
	"strings"
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
		if bytes.ContainsAny(out, "\r\n") {
			t.Fatalf("frame %q holds a raw line break", out)
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

// FuzzValidJSON: validJSON agrees with encoding/json.Valid.
func FuzzValidJSON(f *testing.F) {
	for _, s := range []string{`{}`, `[]`, `{"a":[1,2.5e-3,-0,true,false,null,"\u00e9\n"]}`, ` 1 `, `01`, `1.`, `-`, `"\x"`,
		`{"a" 1}`, `[1,]`, `{"a":1,}`, "\"\x01\"", `"\ud800"`, `1e+`, `tru`, `nul`, `[[[[]]]]`, `{"t":123,"p":"xx"}`, "\xff"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		if got, want := validJSON(p), json.Valid(p); got != want {
			t.Fatalf("validJSON(%q) = %v, json.Valid says %v", p, got, want)
		}
	})
}

func BenchmarkValidJSON(b *testing.B) {
	p := []byte(`{"t":1764262800000000000,"p":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}`)
	b.Run("validJSON", func(b *testing.B) {
		for b.Loop() {
			validJSON(p)
		}
	})
	b.Run("json.Valid", func(b *testing.B) {
		for b.Loop() {
			json.Valid(p)
		}
	})
}

func TestValidJSONDepth(t *testing.T) {
	for _, n := range []int{9999, 10000, 10001, 10002} {
		for _, p := range [][]byte{
			[]byte(strings.Repeat("[", n) + strings.Repeat("]", n)),
			[]byte(strings.Repeat("[", n) + "1" + strings.Repeat("]", n)),
			[]byte(strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n)),
		} {
			if got, want := validJSON(p), json.Valid(p); got != want {
				t.Errorf("depth %d %.8s: validJSON %v, json.Valid %v", n, p, got, want)
			}
		}
	}
}
