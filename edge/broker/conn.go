package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/switchyard/switchyard/edge/ws"
	"github.com/switchyard/switchyard/jetstream"
	"github.com/switchyard/switchyard/subjects"
)

// Connection modes.
const (
	modeQueue     = "queue"
	modeBroadcast = "broadcast"
)

// subPendingMsgs bounds the messages NATS buffers for one subscription of
// the broker before it drops them (counted by the NATS client as slow
// consumer); the per-connection byte queues are the real bound.
const subPendingMsgs = 64 << 10

// client is one WebSocket of a service.
type client struct {
	id        string
	service   string
	broadcast bool
	label     string   // service label of metrics
	conn      *ws.Conn // set before join, never changed
	grouped   bool     // join counted it in its group's refs; guarded by Broker.mu

	mu      sync.Mutex
	pending map[string]pendingMsg // persistent messages awaiting this client's ack, by message id
}

type pendingMsg struct {
	msg natsjs.Msg
	at  time.Time
}

func (c *client) mode() string {
	if c.broadcast {
		return modeBroadcast
	}
	return modeQueue
}

func (c *client) addPending(id string, m natsjs.Msg) {
	c.mu.Lock()
	c.pending[id] = pendingMsg{msg: m, at: time.Now()}
	c.mu.Unlock()
}

func (c *client) takePending(id string) (natsjs.Msg, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.pending[id]
	if ok {
		delete(c.pending, id)
	}
	return p.msg, ok
}

// expire forgets pending messages delivered before cutoff: JetStream
// delivers them again after the ack wait.
func (c *client) expire(cutoff time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, p := range c.pending {
		if p.at.Before(cutoff) {
			delete(c.pending, id)
		}
	}
}

// release naks every pending message so that JetStream delivers it again at once.
func (c *client) release() int {
	c.mu.Lock()
	pending := c.pending
	c.pending = map[string]pendingMsg{}
	c.mu.Unlock()
	for _, p := range pending {
		_ = p.msg.Nak()
	}
	return len(pending)
}

// group is the connections of one service on this broker edge, with the
// subscriptions and the consumer that feed them.
type group struct {
	service string
	refs    int // clients joined or joining; guarded by Broker.mu

	members atomic.Pointer[members] // replaced whole under mu
	rr      atomic.Uint64

	mu   sync.Mutex
	qsub *nats.Subscription // queue group broker.svc.<service>, while a queue-mode client is here
	bsub *nats.Subscription // plain subscription, while a broadcast client is here
	cc   natsjs.ConsumeContext
}

// members is an immutable snapshot of a group's clients.
type members struct {
	queue, broadcast, all []*client
}

func (m *members) with(c *client) *members {
	n := &members{queue: m.queue, broadcast: m.broadcast, all: append(clone(m.all), c)}
	if c.broadcast {
		n.broadcast = append(clone(m.broadcast), c)
	} else {
		n.queue = append(clone(m.queue), c)
	}
	return n
}

func (m *members) without(c *client) *members {
	return &members{queue: remove(m.queue, c), broadcast: remove(m.broadcast, c), all: remove(m.all, c)}
}

func clone(s []*client) []*client { return append([]*client(nil), s...) }

func remove(s []*client, c *client) []*client {
	out := make([]*client, 0, len(s))
	for _, x := range s {
		if x != c {
			out = append(out, x)
		}
	}
	return out
}

// join adds c to its service's group, subscribing and starting the
// service's consumer as needed.
func (b *Broker) join(c *client) error {
	b.mu.Lock()
	if b.closing {
		b.mu.Unlock()
		return ErrShuttingDown
	}
	g := b.groups[c.service]
	if g == nil {
		g = &group{service: c.service}
		g.members.Store(&members{})
		b.groups[c.service] = g
	}
	g.refs++
	c.grouped = true
	b.clients[c.id] = c
	b.mu.Unlock()

	g.mu.Lock()
	defer g.mu.Unlock()
	g.members.Store(g.members.Load().with(c))
	var err error
	subscribed := false
	if !c.broadcast && g.qsub == nil {
		subscribed = true
		subj, _ := subjects.BrokerServiceAll(c.service)
		queue, _ := subjects.BrokerQueue(c.service)
		g.qsub, err = b.o.NC.QueueSubscribe(subj, queue, func(m *nats.Msg) { b.deliverTransient(g, m, false) })
	}
	if c.broadcast && g.bsub == nil && err == nil {
		subscribed = true
		subj, _ := subjects.BrokerServiceAll(c.service)
		g.bsub, err = b.o.NC.Subscribe(subj, func(m *nats.Msg) { b.deliverTransient(g, m, true) })
	}
	for _, s := range []*nats.Subscription{g.qsub, g.bsub} {
		if s != nil {
			_ = s.SetPendingLimits(subPendingMsgs, -1)
		}
	}
	if err == nil && subscribed {
		// Once join returns, the server has the subscription: a message
		// published after it, from any connection, reaches this client.
		err = b.o.NC.FlushTimeout(b.o.PublishTimeout)
	}
	if err != nil {
		g.members.Store(g.members.Load().without(c))
		return fmt.Errorf("%w: subscribe: %w", ErrUnavailable, err)
	}
	if g.cc == nil {
		b.startConsumer(g)
	}
	b.m.connections.WithLabelValues(c.label, c.mode()).Inc()
	b.pres.change(c.service, c.broadcast, +1)
	b.log.Info("connection joined", "service", c.service, "mode", c.mode(), "conn", c.id)
	return nil
}

// leave removes c from its group, releases its pending persistent
// messages, and stops what the group no longer needs.
func (b *Broker) leave(c *client, joined bool) {
	b.mu.Lock()
	g := b.groups[c.service]
	b.mu.Unlock()
	if g != nil && joined {
		g.mu.Lock()
		mem := g.members.Load().without(c)
		g.members.Store(mem)
		if len(mem.queue) == 0 && g.qsub != nil {
			_ = g.qsub.Drain()
			g.qsub = nil
		}
		if len(mem.broadcast) == 0 && g.bsub != nil {
			_ = g.bsub.Drain()
			g.bsub = nil
		}
		if len(mem.all) == 0 && g.cc != nil {
			g.cc.Drain() // buffered messages reach deliverPersistent, which naks them
			g.cc = nil
		}
		g.mu.Unlock()
		b.m.connections.WithLabelValues(c.label, c.mode()).Dec()
		b.pres.change(c.service, c.broadcast, -1)
	}
	released := c.release()
	code := c.conn.CloseCode()
	if code == ws.CloseSlow {
		b.m.slow.Inc()
	}
	b.mu.Lock()
	delete(b.clients, c.id)
	if g != nil && c.grouped {
		c.grouped = false
		g.refs--
		if g.refs == 0 && b.groups[c.service] == g {
			delete(b.groups, c.service)
		}
	}
	b.mu.Unlock()
	b.log.Info("connection left", "service", c.service, "mode", c.mode(), "conn", c.id,
		"code", code, "reason", c.conn.CloseReason(), "released", released)
}

// startConsumer declares the service's durable consumer and consumes it.
// Called with g.mu held; on failure the sweeper tries again.
func (b *Broker) startConsumer(g *group) {
	cfg, err := jetstream.BrokerConsumer(g.service, b.o.AckWait, b.o.MaxDeliver, b.o.MaxAckPending)
	if err != nil {
		b.log.Error("consumer declaration", "service", g.service, "err", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.o.PublishTimeout)
	defer cancel()
	cons, err := b.o.JS.CreateOrUpdateConsumer(ctx, subjects.StreamBroker, cfg)
	if err != nil {
		b.log.Warn("persistent delivery not started, will retry", "service", g.service, "consumer", cfg.Durable, "err", err)
		return
	}
	cc, err := cons.Consume(func(m natsjs.Msg) { b.deliverPersistent(g, m) },
		natsjs.PullMaxMessages(128),
		natsjs.ConsumeErrHandler(func(_ natsjs.ConsumeContext, err error) {
			if !errors.Is(err, natsjs.ErrNoHeartbeat) {
				b.log.Warn("broker consumer error", "service", g.service, "err", err)
			}
		}))
	if err != nil {
		b.log.Warn("persistent delivery not started, will retry", "service", g.service, "consumer", cfg.Durable, "err", err)
		return
	}
	g.cc = cc
}

// envelope reads a broker message's metadata from its headers.
func envelope(h nats.Header, now time.Time) (id, from, origin, corr string, ts time.Time, stamped bool) {
	ts = now
	if h == nil {
		return "", "", pathNATS, "", ts, false
	}
	id = first(h, subjects.HeaderMsgID)
	from = first(h, subjects.HeaderFrom)
	origin = originLabel(first(h, subjects.HeaderOrigin))
	corr = first(h, subjects.HeaderCorrelationID)
	if v := first(h, subjects.HeaderTime); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > 0 {
			ts, stamped = time.Unix(0, n), true
		}
	}
	return id, from, origin, corr, ts, stamped
}

// first reads a header: by its exact name first (what Switchyard sends),
// then case-insensitively, as NATS keeps the sender's spelling.
func first(h nats.Header, k string) string {
	if v := h[k]; len(v) > 0 {
		return v[0]
	}
	for name, v := range h {
		if len(v) > 0 && strings.EqualFold(name, k) {
			return v[0]
		}
	}
	return ""
}

// send queues frame on c; it reports whether c took it.
func (b *Broker) send(c *client, frame []byte, origin string) bool {
	err := c.conn.Send(ws.TextMessage, frame)
	if err == nil {
		b.m.delivered[origin].Inc()
		return true
	}
	if errors.Is(err, ws.ErrFrameTooBig) {
		b.log.Warn("message larger than the connection's queue, not delivered", "service", c.service, "conn", c.id, "bytes", len(frame))
	}
	return false
}

// deliverTransient hands a broker.svc.> message to one queue-mode client
// (round robin) or to every broadcast client of g.
func (b *Broker) deliverTransient(g *group, m *nats.Msg, broadcast bool) {
	now := time.Now()
	id, from, origin, corr, ts, stamped := envelope(m.Header, now)
	b.m.received[origin].Inc()
	mem := g.members.Load()
	list := mem.queue
	if broadcast {
		list = mem.broadcast
	}
	request := m.Reply != "" && !subjects.IsBrokerUndelivered(m.Reply)
	if len(list) == 0 {
		if !broadcast || len(mem.queue) == 0 {
			b.undeliverable(origin, m, request)
		}
		return
	}
	sm, err := subjects.ParseBroker(m.Subject)
	if err != nil {
		return
	}
	if id == "" {
		id = nuid.Next()
	}
	msg := message{Type: typeMessage, ID: id, Service: sm.Service, Topic: sm.Topic, From: from,
		Payload: m.Data, TS: ts}
	if request {
		msg.ReplyTo, msg.CorrelationID = m.Reply, corr
	}
	frame := appendMessage(make([]byte, 0, 192+len(sm.Topic)+len(m.Data)), &msg)
	sent := 0
	if broadcast {
		for _, c := range list {
			if b.send(c, frame, origin) {
				sent++
			}
		}
	} else {
		n := uint64(len(list))
		start := g.rr.Add(1)
		for i := uint64(0); i < n; i++ {
			if b.send(list[(start+i)%n], frame, origin) {
				sent++
				break
			}
		}
	}
	if sent == 0 {
		b.undeliverable(origin, m, request)
		return
	}
	if stamped {
		b.m.latency[false].Observe(time.Since(ts).Seconds())
	}
}

// undeliverable counts a transient message no connection took, and
// answers a request with a no_responders error.
func (b *Broker) undeliverable(origin string, m *nats.Msg, request bool) {
	b.m.undeliver[origin].Inc()
	if !request {
		return
	}
	body, _ := json.Marshal(map[string]any{"error": map[string]string{
		"code": codeNoResponders, "message": "no connection of the service took the request"}})
	_ = b.o.NC.PublishMsg(&nats.Msg{Subject: m.Reply, Data: body, Header: nats.Header{
		subjects.HeaderStatus: {"503"}, subjects.HeaderErrorCode: {codeNoResponders}}})
}

// deliverPersistent hands a broker.persist.> message to one client of g
// (round robin over every mode); it is pending on that client until acked.
func (b *Broker) deliverPersistent(g *group, jm natsjs.Msg) {
	now := time.Now()
	md, err := jm.Metadata()
	if err != nil {
		_ = jm.Term()
		return
	}
	id, from, origin, corr, ts, stamped := envelope(jm.Headers(), now)
	b.m.received[origin].Inc()
	if md.NumDelivered > 1 {
		b.m.redelivered.Inc()
	}
	list := g.members.Load().all
	if len(list) == 0 {
		_ = jm.Nak()
		return
	}
	sm, err := subjects.ParseBroker(jm.Subject())
	if err != nil {
		_ = jm.Term()
		return
	}
	if id == "" {
		id = "seq-" + strconv.FormatUint(md.Sequence.Stream, 10)
	}
	msg := message{Type: typeMessage, ID: id, Service: sm.Service, Topic: sm.Topic, From: from,
		Payload: jm.Data(), TS: ts, Persistent: true, Delivery: md.NumDelivered, CorrelationID: corr}
	frame := appendMessage(make([]byte, 0, 208+len(sm.Topic)+len(jm.Data())), &msg)
	n := uint64(len(list))
	start := g.rr.Add(1)
	for i := uint64(0); i < n; i++ {
		c := list[(start+i)%n]
		c.addPending(id, jm)
		if b.send(c, frame, origin) {
			if stamped && md.NumDelivered == 1 {
				b.m.latency[true].Observe(time.Since(ts).Seconds())
			}
			return
		}
		c.takePending(id)
	}
	_ = jm.Nak()
}
