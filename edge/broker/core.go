package broker

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard/switchyard/edge/ws"
	"github.com/switchyard/switchyard/subjects"
)

// Sentinel errors; match them with errors.Is.
var (
	// ErrUnavailable: NATS or JetStream could not take a message (not
	// connected, no JetStream answer, stream full). Retry later.
	ErrUnavailable = errors.New("broker: unavailable")
	// ErrShuttingDown: the broker is closing its connections.
	ErrShuttingDown = errors.New("broker: shutting down")
	// ErrTooManyConnections: the broker holds Options.MaxConnections connections.
	ErrTooManyConnections = errors.New("broker: too many connections")
)

// Options configures a Broker. The zero value of every duration and limit
// means the default noted beside it.
type Options struct {
	NC       *nats.Conn
	JS       natsjs.JetStream
	Log      *slog.Logger
	Registry prometheus.Registerer // nil: a private registry
	// WS configures every connection: read limit, outbound queue bytes,
	// pings, buffer sizes. ReadLimit defaults to MaxFrameBytes.
	WS ws.Options
	// MaxFrameBytes bounds an inbound frame and a POST /publish body. Zero: 64 KiB.
	MaxFrameBytes int64
	// MaxConnections bounds this edge's WebSockets (503 beyond). Zero: 10000.
	MaxConnections int
	// AckWait is how long a client has to ack a persistent message before
	// it is delivered again. Zero: 30s.
	AckWait time.Duration
	// MaxDeliver is the number of delivery attempts of a persistent message
	// before it becomes a dead letter. Zero: 5.
	MaxDeliver int
	// MaxAckPending bounds a service's unacknowledged persistent messages
	// over all broker edges. Zero: 1000.
	MaxAckPending int
	// PresenceInterval is how often presence records are rewritten. Zero: 5s.
	PresenceInterval time.Duration
	// PresenceTTL is the per-key TTL of presence records. Zero: 3x PresenceInterval.
	PresenceTTL time.Duration
	// PublishTimeout bounds waiting for JetStream's ack of a persistent publish. Zero: 5s.
	PublishTimeout time.Duration
	// DiscoveryTimeout bounds gathering micro services for GET /services. Zero: 500ms.
	DiscoveryTimeout time.Duration
}

func (o *Options) defaults() {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	if o.MaxFrameBytes == 0 {
		o.MaxFrameBytes = 64 << 10
	}
	if o.WS.ReadLimit == 0 {
		o.WS.ReadLimit = o.MaxFrameBytes
	}
	if o.MaxConnections == 0 {
		o.MaxConnections = 10000
	}
	if o.AckWait == 0 {
		o.AckWait = 30 * time.Second
	}
	if o.MaxDeliver == 0 {
		o.MaxDeliver = 5
	}
	if o.MaxAckPending == 0 {
		o.MaxAckPending = 1000
	}
	if o.PresenceInterval == 0 {
		o.PresenceInterval = 5 * time.Second
	}
	if o.PresenceTTL == 0 {
		o.PresenceTTL = 3 * o.PresenceInterval
	}
	if o.PublishTimeout == 0 {
		o.PublishTimeout = 5 * time.Second
	}
	if o.DiscoveryTimeout == 0 {
		o.DiscoveryTimeout = 500 * time.Millisecond
	}
}

// Broker is the broker edge's state: the connections of this process,
// grouped by service, and their NATS subscriptions and JetStream
// consumers. Safe for concurrent use.
type Broker struct {
	o     Options
	node  string
	log   *slog.Logger
	m     *metrics
	hub   *ws.Hub
	pres  *presence
	dead  *deadLetters
	reply map[string]string // path -> broker.undelivered.<node>.<path>

	mu      sync.Mutex
	groups  map[string]*group
	clients map[string]*client
	closing bool

	subs     []*nats.Subscription
	conns    sync.WaitGroup // one goroutine per connection, until it left
	loops    sync.WaitGroup // presence and sweeper
	stop     chan struct{}
	shutOnce sync.Once
	shutErr  error
}

// New subscribes the broker's NATS subjects and returns it; Run starts its
// background loops. The BROKER and BROKER_DEAD streams and the services
// bucket must exist (jetstream.Ensure).
func New(ctx context.Context, o Options) (*Broker, error) {
	o.defaults()
	node := randomName()
	b := &Broker{
		o: o, node: node, log: o.Log.With("edge", "broker", "node", node),
		m:       newMetrics(o.Registry),
		hub:     ws.NewHub(),
		reply:   map[string]string{},
		groups:  map[string]*group{},
		clients: map[string]*client{},
		stop:    make(chan struct{}),
	}
	if b.o.WS.Metrics == nil {
		b.o.WS.Metrics = ws.NewMetrics(o.Registry, "broker")
	}
	if b.o.WS.Log == nil {
		b.o.WS.Log = b.log
	}
	for _, p := range []string{pathHTTP, pathWS} {
		s, err := subjects.BrokerUndelivered(node, p)
		if err != nil {
			return nil, err
		}
		b.reply[p] = s
	}
	var err error
	if b.pres, err = newPresence(ctx, o.JS, o.NC, node, o.PresenceInterval, o.PresenceTTL, b.log); err != nil {
		return nil, err
	}
	if b.dead, err = newDeadLetters(ctx, o.JS, b.m, b.log); err != nil {
		return nil, err
	}
	replies, _ := subjects.BrokerReplyAll(node)
	undelivered, _ := subjects.BrokerUndeliveredAll(node)
	for _, s := range []struct {
		subject, queue string
		fn             nats.MsgHandler
	}{
		{replies, "", b.onReply},
		{undelivered, "", b.onUndelivered},
		{subjects.BrokerMaxDeliveries, subjects.BrokerAdvisoryQueue, b.dead.onAdvisory},
	} {
		sub, err := o.NC.QueueSubscribe(s.subject, s.queue, s.fn)
		if err != nil {
			b.unsubscribe()
			return nil, fmt.Errorf("subscribe %s: %w", s.subject, err)
		}
		b.subs = append(b.subs, sub)
	}
	return b, nil
}

// Node is this broker edge's random id, as in its presence keys.
func (b *Broker) Node() string { return b.node }

// Run runs the presence heartbeat and the sweeper of stale pending acks
// until Shutdown.
func (b *Broker) Run(ctx context.Context) error {
	b.mu.Lock()
	if b.closing {
		b.mu.Unlock()
		return nil
	}
	b.loops.Add(2) // under mu, before Shutdown waits
	b.mu.Unlock()
	go func() { defer b.loops.Done(); b.pres.run(b.stop) }()
	go func() { defer b.loops.Done(); b.sweep() }()
	<-b.stop
	return nil
}

// Shutdown closes every connection with 1001 "going away" (their
// unacknowledged persistent messages are released for redelivery), stops
// the consumers and subscriptions, and removes this process's presence
// records. Safe to call twice.
func (b *Broker) Shutdown(ctx context.Context) error {
	b.shutOnce.Do(func() {
		b.mu.Lock()
		b.closing = true
		b.mu.Unlock()
		b.shutErr = b.hub.Shutdown(ctx)
		done := make(chan struct{})
		go func() { b.conns.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			b.shutErr = errors.Join(b.shutErr, fmt.Errorf("broker: connections still leaving: %w", ctx.Err()))
		}
		b.unsubscribe()
		close(b.stop)
		b.loops.Wait()
		b.pres.clear(ctx)
		<-done
	})
	return b.shutErr
}

// CloseConnections closes every connection with 1001; edge.Server runs it
// on shutdown, before in-flight requests drain.
func (b *Broker) CloseConnections(ctx context.Context) {
	b.mu.Lock()
	b.closing = true
	b.mu.Unlock()
	_ = b.hub.Shutdown(ctx)
}

func (b *Broker) unsubscribe() {
	for _, s := range b.subs {
		_ = s.Unsubscribe()
	}
}

// sweep forgets pending acks older than the ack wait (JetStream delivers
// those again anyway) and retries consumers that could not start.
func (b *Broker) sweep() {
	every := b.o.AckWait / 2
	if every > 5*time.Second {
		every = 5 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
		}
		cutoff := time.Now().Add(-b.o.AckWait)
		b.mu.Lock()
		clients := make([]*client, 0, len(b.clients))
		for _, c := range b.clients {
			clients = append(clients, c)
		}
		groups := make([]*group, 0, len(b.groups))
		for _, g := range b.groups {
			groups = append(groups, g)
		}
		b.mu.Unlock()
		for _, c := range clients {
			c.expire(cutoff)
		}
		for _, g := range groups {
			g.mu.Lock()
			if g.cc == nil && len(g.members.Load().all) > 0 {
				b.startConsumer(g)
			}
			g.mu.Unlock()
		}
	}
}

var nameEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// randomName is 16 random characters of a-z2-7: a valid subject token,
// unguessable.
func randomName() string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return nameEncoding.EncodeToString(b[:])
}
