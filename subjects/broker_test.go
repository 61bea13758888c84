package subjects_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/switchyard/switchyard/subjects"
)

func TestBrokerTopic(t *testing.T) {
	for _, tc := range []struct {
		topic string
		toks  int
		ok    bool
	}{
		{"lobby", 1, true},
		{"rooms.lobby", 2, true},
		{"a-b_C:1", 1, true},
		{"", 0, false},
		{"a..b", 0, false},
		{".a", 0, false},
		{"a.", 0, false},
		{"a.*", 0, false},
		{"a.>", 0, false},
		{"a b", 0, false},
		{strings.Repeat("a.", 16) + "a", 0, false},
		{strings.Repeat("x", 257), 0, false},
	} {
		toks, err := subjects.BrokerTopic(tc.topic)
		if tc.ok != (err == nil) || tc.ok && len(toks) != tc.toks {
			t.Errorf("BrokerTopic(%q) = %v, %v", tc.topic, toks, err)
		}
		if err != nil && !errors.Is(err, subjects.ErrInvalid) {
			t.Errorf("BrokerTopic(%q): %v is not ErrInvalid", tc.topic, err)
		}
	}
}

func TestParseBroker(t *testing.T) {
	for _, tc := range []struct {
		subject          string
		service, topic   string
		persistent, dead bool
		ok               bool
	}{
		{"broker.svc.chat.rooms.lobby", "chat", "rooms.lobby", false, false, true},
		{"broker.persist.billing.x", "billing", "x", true, false, true},
		{"broker.dead.billing.x.y", "billing", "x.y", false, true, true},
		{"broker.svc.chat", "", "", false, false, false},
		{"broker.svc.Chat.x", "", "", false, false, false},
		{"broker.presence.chat", "", "", false, false, false},
		{"svc.chat.x", "", "", false, false, false},
	} {
		m, err := subjects.ParseBroker(tc.subject)
		if tc.ok != (err == nil) {
			t.Errorf("ParseBroker(%q): %v", tc.subject, err)
			continue
		}
		if tc.ok && (m.Service != tc.service || m.Topic != tc.topic || m.Persistent != tc.persistent || m.Dead != tc.dead) {
			t.Errorf("ParseBroker(%q) = %+v", tc.subject, m)
		}
	}
}

func TestBrokerReplyRoundTrip(t *testing.T) {
	s, err := subjects.BrokerReply("node1", "conn1", "c-17")
	if err != nil {
		t.Fatal(err)
	}
	conn, corr, err := subjects.ParseBrokerReply("node1", s)
	if err != nil || conn != "conn1" || corr != "c-17" {
		t.Fatalf("ParseBrokerReply(%q) = %q, %q, %v", s, conn, corr, err)
	}
	if _, _, err := subjects.ParseBrokerReply("node2", s); err == nil {
		t.Fatal("a reply subject of another node was accepted")
	}
	for _, bad := range []string{"", "a.b", "a*", "a>", "a b"} {
		if _, err := subjects.BrokerReply("node1", "conn1", bad); err == nil {
			t.Errorf("correlation %q accepted", bad)
		}
	}
	if err := subjects.ValidReplyTo(s); err != nil {
		t.Fatal(err)
	}
	for _, ok := range []string{"_INBOX.abc", "_INBOX.abc.def"} {
		if err := subjects.ValidReplyTo(ok); err != nil {
			t.Errorf("ValidReplyTo(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "svc.x.y", "broker.reply.>", "_INBOX.*", "_INBOX..a", "broker.replyx.a", "_INBOX." + strings.Repeat("a", 600)} {
		if err := subjects.ValidReplyTo(bad); err == nil {
			t.Errorf("ValidReplyTo(%q) accepted", bad)
		}
	}
	u, _ := subjects.BrokerUndelivered("node1", "http")
	if !subjects.IsBrokerUndelivered(u) || subjects.IsBrokerUndelivered(s) {
		t.Fatal("IsBrokerUndelivered")
	}
}

func FuzzBrokerTopic(f *testing.F) {
	for _, s := range []string{"a", "a.b", "a..b", "*", "a.>", "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, topic string) {
		toks, err := subjects.BrokerTopic(topic)
		if err != nil {
			return
		}
		subj, err := subjects.BrokerService("svc", toks...)
		if err != nil {
			t.Fatalf("BrokerTopic accepted %q but BrokerService refused it: %v", topic, err)
		}
		m, err := subjects.ParseBroker(subj)
		if err != nil || m.Topic != topic || m.Service != "svc" {
			t.Fatalf("round trip of %q: %+v %v", topic, m, err)
		}
	})
}
