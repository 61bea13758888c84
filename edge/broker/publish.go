package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"

	"github.com/switchyard/switchyard/edge/ws"
	"github.com/switchyard/switchyard/subjects"
)

// maxRefLen bounds a frame's ref.
const maxRefLen = 128

// outgoing is a message to publish, from any path.
type outgoing struct {
	Service    string
	Topic      []string
	Payload    []byte
	Persistent bool
	From       string
	Origin     string // pathHTTP or pathWS
	// Reply, for a request, is broker.reply.<node>.<conn>.<correlation>.
	Reply         string
	CorrelationID string
}

// errInvalid wraps validation failures of publish input.
var errInvalid = errors.New("invalid")

// publish publishes o and returns its message id: a JetStream publish to
// broker.persist.> (returning once stored) or a core publish to broker.svc.>.
func (b *Broker) publish(ctx context.Context, o *outgoing) (string, error) {
	if !b.o.NC.IsConnected() {
		return "", fmt.Errorf("%w: not connected to NATS", ErrUnavailable)
	}
	id := nuid.Next()
	h := nats.Header{
		subjects.HeaderMsgID:  {id},
		subjects.HeaderTime:   {strconv.FormatInt(time.Now().UnixNano(), 10)},
		subjects.HeaderOrigin: {o.Origin},
	}
	if o.From != "" {
		h[subjects.HeaderFrom] = []string{o.From}
	}
	if o.CorrelationID != "" {
		h[subjects.HeaderCorrelationID] = []string{o.CorrelationID}
	}
	if o.Persistent {
		subj, err := subjects.BrokerPersistent(o.Service, o.Topic...)
		if err != nil {
			return "", fmt.Errorf("%w: %w", errInvalid, err)
		}
		ctx, cancel := context.WithTimeout(ctx, b.o.PublishTimeout)
		defer cancel()
		if _, err := b.o.JS.PublishMsg(ctx, &nats.Msg{Subject: subj, Header: h, Data: o.Payload}); err != nil {
			return "", fmt.Errorf("%w: persistent message not stored: %w", ErrUnavailable, err)
		}
	} else {
		subj, err := subjects.BrokerService(o.Service, o.Topic...)
		if err != nil {
			return "", fmt.Errorf("%w: %w", errInvalid, err)
		}
		reply := o.Reply
		if reply == "" {
			reply = b.reply[o.Origin]
		}
		if err := b.o.NC.PublishMsg(&nats.Msg{Subject: subj, Reply: reply, Header: h, Data: o.Payload}); err != nil {
			return "", fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
	}
	b.m.published.WithLabelValues(o.Origin, strconv.FormatBool(o.Persistent)).Inc()
	return id, nil
}

// onUndelivered counts the no-responders answers to transient publishes.
func (b *Broker) onUndelivered(m *nats.Msg) {
	if first(m.Header, "Status") != "503" {
		return
	}
	path := m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]
	b.m.undeliver[originLabel(path)].Inc()
}

// onReply hands a reply (or NATS's no-responders answer) to the requesting connection.
func (b *Broker) onReply(m *nats.Msg) {
	connID, corr, err := subjects.ParseBrokerReply(b.node, m.Subject)
	if err != nil {
		return
	}
	b.mu.Lock()
	c := b.clients[connID]
	b.mu.Unlock()
	if c == nil {
		return // the requester left
	}
	if first(m.Header, "Status") == "503" {
		b.sendError(c.conn, codeNoResponders, "no connection of the service took the request",
			&inFrame{CorrelationID: corr})
		return
	}
	if code := first(m.Header, subjects.HeaderErrorCode); code != "" {
		var body struct {
			Error struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		_ = json.Unmarshal(m.Data, &body)
		b.sendError(c.conn, code, body.Error.Message, &inFrame{CorrelationID: corr})
		return
	}
	id, from, origin, _, ts, _ := envelope(m.Header, time.Now())
	if id == "" {
		id = nuid.Next()
	}
	msg := message{Type: typeReply, ID: id, Service: c.service, From: from, Payload: m.Data, TS: ts, CorrelationID: corr}
	b.send(c, appendMessage(make([]byte, 0, 192+len(m.Data)), &msg), origin)
}

// sendError answers a frame with an error frame.
func (b *Broker) sendError(c *ws.Conn, code, msg string, in *inFrame) {
	if code != codeNoResponders {
		b.m.frameErrors.WithLabelValues(code).Inc()
	}
	_ = c.Send(ws.TextMessage, errorFrame(code, msg, in))
}

// onFrame handles one inbound frame of client c (wc is its connection).
func (b *Broker) onFrame(c *client, wc *ws.Conn, data []byte) {
	var f inFrame
	if err := json.Unmarshal(data, &f); err != nil {
		b.sendError(wc, codeBadFrame, "a frame is one JSON object: "+err.Error(), nil)
		return
	}
	if len(f.Ref) > maxRefLen {
		b.sendError(wc, codeBadRequest, fmt.Sprintf("ref is longer than %d bytes", maxRefLen), nil)
		return
	}
	switch f.Type {
	case typePublish:
		b.framePublish(c, wc, &f)
	case typeReply:
		b.frameReply(c, wc, &f)
	case typeAck, typeNack:
		m, ok := c.takePending(f.ID)
		if !ok {
			b.sendError(wc, codeUnknownID, "no message "+strconv.Quote(f.ID)+" awaits an ack on this connection", &f)
			return
		}
		if f.Type == typeAck {
			_ = m.Ack()
			b.m.acked.Inc()
		} else {
			_ = m.Nak()
		}
	default:
		b.sendError(wc, codeUnknownType, `"type" must be one of publish, reply, ack, nack`, &f)
	}
}

func (b *Broker) framePublish(c *client, wc *ws.Conn, f *inFrame) {
	if err := subjects.ValidName(f.Service); err != nil {
		b.sendError(wc, codeBadRequest, "service: "+err.Error(), f)
		return
	}
	toks, err := subjects.BrokerTopic(f.Topic)
	if err != nil {
		b.sendError(wc, codeBadRequest, err.Error(), f)
		return
	}
	if len(f.Payload) == 0 {
		b.sendError(wc, codeBadRequest, "payload is required (any JSON value)", f)
		return
	}
	o := &outgoing{Service: f.Service, Topic: toks, Payload: f.Payload, Persistent: f.Persistent,
		From: c.service, Origin: pathWS, CorrelationID: f.CorrelationID}
	if f.Reply {
		if f.Persistent {
			b.sendError(wc, codeBadRequest, "a request (reply: true) cannot be persistent", f)
			return
		}
		o.Reply, err = subjects.BrokerReply(b.node, c.id, f.CorrelationID)
		if err != nil {
			b.sendError(wc, codeBadRequest, "a request needs a correlation_id of 1 to 128 printable characters other than '.', '*', '>': "+err.Error(), f)
			return
		}
	}
	id, err := b.publish(context.Background(), o)
	if err != nil {
		code := codeUnavailable
		if errors.Is(err, errInvalid) {
			code = codeBadRequest
		}
		b.sendError(wc, code, err.Error(), f)
		return
	}
	if f.Reply {
		b.m.requestsSent.Inc()
	}
	if f.Ref != "" {
		out, _ := json.Marshal(outPublished{Type: typePublished, Ref: f.Ref, ID: id, Persistent: f.Persistent})
		_ = wc.Send(ws.TextMessage, out)
	}
}

func (b *Broker) frameReply(c *client, wc *ws.Conn, f *inFrame) {
	if err := subjects.ValidReplyTo(f.ReplyTo); err != nil {
		b.sendError(wc, codeBadRequest, err.Error(), f)
		return
	}
	payload := []byte(f.Payload)
	if len(payload) == 0 {
		payload = []byte("null")
	}
	id := nuid.Next()
	h := nats.Header{
		subjects.HeaderMsgID:  {id},
		subjects.HeaderFrom:   {c.service},
		subjects.HeaderTime:   {strconv.FormatInt(time.Now().UnixNano(), 10)},
		subjects.HeaderOrigin: {pathWS},
	}
	if f.CorrelationID != "" {
		h[subjects.HeaderCorrelationID] = []string{f.CorrelationID}
	}
	if err := b.o.NC.PublishMsg(&nats.Msg{Subject: f.ReplyTo, Header: h, Data: payload}); err != nil {
		b.sendError(wc, codeUnavailable, err.Error(), f)
		return
	}
	b.m.repliesSent.Inc()
	if f.Ref != "" {
		out, _ := json.Marshal(outPublished{Type: typePublished, Ref: f.Ref, ID: id})
		_ = wc.Send(ws.TextMessage, out)
	}
}
