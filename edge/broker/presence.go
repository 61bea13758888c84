package broker

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard/switchyard/subjects"
)

// Record is one broker edge's presence record of one service, the value
// of key <service>.<node> in bucket services.
type Record struct {
	Service     string    `json:"service"`
	Node        string    `json:"node"`
	Connections int       `json:"connections"`
	Queue       int       `json:"queue"`
	Broadcast   int       `json:"broadcast"`
	Since       time.Time `json:"since"`
	LastSeen    time.Time `json:"last_seen"`
}

// Event is published on broker.presence.<service> when a connection joins
// or leaves; Connections counts the service's connections on Node after it.
type Event struct {
	Event       string    `json:"event"` // "join" or "leave"
	Service     string    `json:"service"`
	Node        string    `json:"node"`
	Mode        string    `json:"mode"`
	Connections int       `json:"connections"`
	TS          time.Time `json:"ts"`
}

// presence keeps this process's records in bucket services: written at
// every change and every interval with a per-key TTL, so the records of a
// process that died expire, and purged when a service's last connection
// leaves.
type presence struct {
	js       natsjs.JetStream
	kv       natsjs.KeyValue
	nc       *nats.Conn
	node     string
	interval time.Duration
	ttl      time.Duration
	log      *slog.Logger

	mu      sync.Mutex
	entries map[string]*entry
	kick    chan struct{}
}

type entry struct {
	queue, broadcast int
	since            time.Time
	dirty            bool
}

func newPresence(ctx context.Context, js natsjs.JetStream, nc *nats.Conn, node string, interval, ttl time.Duration, log *slog.Logger) (*presence, error) {
	kv, err := js.KeyValue(ctx, subjects.BucketServices)
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", subjects.BucketServices, err)
	}
	return &presence{js: js, kv: kv, nc: nc, node: node, interval: interval, ttl: ttl, log: log,
		entries: map[string]*entry{}, kick: make(chan struct{}, 1)}, nil
}

// change records a connection joining (+1) or leaving (-1) and publishes the event.
func (p *presence) change(service string, broadcast bool, delta int) {
	p.mu.Lock()
	e := p.entries[service]
	if e == nil {
		e = &entry{since: time.Now()}
		p.entries[service] = e
	}
	mode := modeQueue
	if broadcast {
		e.broadcast += delta
		mode = modeBroadcast
	} else {
		e.queue += delta
	}
	e.dirty = true
	n := e.queue + e.broadcast
	p.mu.Unlock()
	select {
	case p.kick <- struct{}{}:
	default:
	}
	ev := Event{Event: "join", Service: service, Node: p.node, Mode: mode, Connections: n, TS: time.Now().UTC()}
	if delta < 0 {
		ev.Event = "leave"
	}
	subj, err := subjects.Presence(service)
	if err != nil {
		return
	}
	data, _ := json.Marshal(ev)
	_ = p.nc.Publish(subj, data)
}

// run writes dirty records at once and every record every interval, until stop.
func (p *presence) run(stop <-chan struct{}) {
	t := time.NewTicker(p.interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-p.kick:
			p.write(false)
		case <-t.C:
			p.write(true)
		}
	}
}

func (p *presence) write(all bool) {
	type w struct {
		service string
		rec     *Record
	}
	now := time.Now().UTC()
	var todo []w
	p.mu.Lock()
	for svc, e := range p.entries {
		if !all && !e.dirty {
			continue
		}
		e.dirty = false
		if e.queue+e.broadcast <= 0 {
			delete(p.entries, svc)
			todo = append(todo, w{svc, nil})
			continue
		}
		todo = append(todo, w{svc, &Record{Service: svc, Node: p.node, Connections: e.queue + e.broadcast,
			Queue: e.queue, Broadcast: e.broadcast, Since: e.since.UTC(), LastSeen: now}})
	}
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), p.interval)
	defer cancel()
	for _, x := range todo {
		var err error
		if x.rec == nil {
			err = p.remove(ctx, x.service)
		} else {
			err = p.put(ctx, x.rec)
		}
		if err != nil {
			p.log.Warn("presence write failed", "service", x.service, "err", err)
			p.mu.Lock()
			if e := p.entries[x.service]; e != nil {
				e.dirty = true
			}
			p.mu.Unlock()
		}
	}
}

// put writes rec with a per-key TTL: a raw publish to the key's subject,
// as the KV API sets a TTL only on Create.
func (p *presence) put(ctx context.Context, rec *Record) error {
	subj, err := subjects.PresenceKeySubject(rec.Service, p.node)
	if err != nil {
		return err
	}
	data, _ := json.Marshal(rec)
	_, err = p.js.PublishMsg(ctx, &nats.Msg{Subject: subj, Data: data}, natsjs.WithMsgTTL(p.ttl))
	return err
}

func (p *presence) remove(ctx context.Context, service string) error {
	key, err := subjects.PresenceKey(service, p.node)
	if err != nil {
		return err
	}
	return p.kv.Purge(ctx, key, natsjs.PurgeTTL(p.ttl))
}

// clear removes every record of this process (on shutdown).
func (p *presence) clear(ctx context.Context) {
	p.mu.Lock()
	services := make([]string, 0, len(p.entries))
	for svc := range p.entries {
		services = append(services, svc)
	}
	p.entries = map[string]*entry{}
	p.mu.Unlock()
	for _, svc := range services {
		if err := p.remove(ctx, svc); err != nil {
			p.log.Warn("presence record not removed; it expires", "service", svc, "err", err)
		}
	}
}

// list reads every live record of every broker edge.
func (p *presence) list(ctx context.Context) ([]Record, error) {
	w, err := p.kv.WatchAll(ctx, natsjs.IgnoreDeletes())
	if err != nil {
		return nil, err
	}
	defer func() { _ = w.Stop() }()
	var out []Record
	cutoff := time.Now().Add(-p.ttl)
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return nil, fmt.Errorf("presence watch closed")
			}
			if e == nil {
				sort.Slice(out, func(i, j int) bool {
					if out[i].Service != out[j].Service {
						return out[i].Service < out[j].Service
					}
					return out[i].Node < out[j].Node
				})
				return out, nil
			}
			var r Record
			if json.Unmarshal(e.Value(), &r) != nil || r.LastSeen.Before(cutoff) {
				continue
			}
			out = append(out, r)
		}
	}
}
