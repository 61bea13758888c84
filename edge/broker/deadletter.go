package broker

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard/switchyard/subjects"
)

// deadLetters turns JetStream's max-deliveries advisories on BROKER into
// messages on broker.dead.<service>.<topic> (stream BROKER_DEAD), and
// removes the original from BROKER.
type deadLetters struct {
	js     natsjs.JetStream
	stream natsjs.Stream
	m      *metrics
	log    *slog.Logger
}

func newDeadLetters(ctx context.Context, js natsjs.JetStream, m *metrics, log *slog.Logger) (*deadLetters, error) {
	st, err := js.Stream(ctx, subjects.StreamBroker)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", subjects.StreamBroker, err)
	}
	return &deadLetters{js: js, stream: st, m: m, log: log}, nil
}

// onAdvisory handles one $JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.BROKER.* message.
func (d *deadLetters) onAdvisory(m *nats.Msg) {
	var a struct {
		Stream     string `json:"stream"`
		Consumer   string `json:"consumer"`
		StreamSeq  uint64 `json:"stream_seq"`
		Deliveries uint64 `json:"deliveries"`
	}
	if err := json.Unmarshal(m.Data, &a); err != nil || a.StreamSeq == 0 || !strings.HasPrefix(a.Consumer, "broker-") {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	log := d.log.With("consumer", a.Consumer, "stream_seq", a.StreamSeq, "deliveries", a.Deliveries)
	raw, err := d.stream.GetMsg(ctx, a.StreamSeq)
	if err != nil {
		return // acked meanwhile, or handled by another broker edge
	}
	sm, err := subjects.ParseBroker(raw.Subject)
	if err != nil || !sm.Persistent {
		return
	}
	toks, err := subjects.BrokerTopic(sm.Topic)
	if err != nil {
		return
	}
	subj, err := subjects.BrokerDead(sm.Service, toks...)
	if err != nil {
		return
	}
	h := nats.Header{}
	for k, v := range raw.Header {
		h[k] = v
	}
	h[subjects.HeaderDeliveries] = []string{strconv.FormatUint(a.Deliveries, 10)}
	if _, err := d.js.PublishMsg(ctx, &nats.Msg{Subject: subj, Header: h, Data: raw.Data}); err != nil {
		log.Warn("dead letter not stored; the message stays in the stream", "err", err)
		return
	}
	if err := d.stream.DeleteMsg(ctx, a.StreamSeq); err != nil {
		log.Warn("dead letter stored but the original not removed", "err", err)
	}
	d.m.deadLetters.Inc()
	log.Warn("persistent message dead-lettered", "service", sm.Service, "subject", subj)
}
