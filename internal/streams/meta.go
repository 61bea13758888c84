package streams

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard/switchyard/subjects"
)

// Stream states. A stream is open until something closes it; closing
// records the reason, then its JetStream stream and its record go.
const (
	StateOpen    = "open"
	StateClosing = "closing"
)

// Reasons a stream is closed, sent to its subscribers as the close reason.
const (
	ReasonDeleted = "deleted" // DELETE /stream/:id
	ReasonIdle    = "idle"    // no chunk within the idle timeout
	ReasonExpired = "expired" // older than the maximum stream age
)

// Record is one stream's metadata, the value of key <id> in bucket streams.
type Record struct {
	ID string `json:"id"`
	Spec
	Created time.Time `json:"created"`
	State   string    `json:"state"`
	Reason  string    `json:"reason,omitempty"`
	// Revision is the record's KV revision (not stored).
	Revision uint64 `json:"-"`
}

// Store reads and writes stream records with compare-and-set on the
// revision, so a record only moves forward (open, then closing, then gone).
type Store struct{ kv natsjs.KeyValue }

// Open binds the streams bucket (declared by the jetstream package).
func Open(ctx context.Context, js natsjs.JetStream) (*Store, error) {
	kv, err := js.KeyValue(ctx, subjects.BucketStreams)
	if err != nil {
		return nil, fmt.Errorf("streams bucket: %w", err)
	}
	return &Store{kv: kv}, nil
}

// Create stores a new open record; ErrExists when the id is taken.
func (s *Store) Create(ctx context.Context, r *Record) error {
	r.State = StateOpen
	b, _ := json.Marshal(r)
	rev, err := s.kv.Create(ctx, r.ID, b)
	if err != nil {
		if errors.Is(err, natsjs.ErrKeyExists) {
			return ErrExists
		}
		return fmt.Errorf("create stream record %s: %w", r.ID, err)
	}
	r.Revision = rev
	return nil
}

// Get reads a record; ErrNotFound when there is none.
func (s *Store) Get(ctx context.Context, id string) (*Record, error) {
	e, err := s.kv.Get(ctx, id)
	if err != nil {
		if errors.Is(err, natsjs.ErrKeyNotFound) {
			return nil, ErrNotFound
		}
		return nil, fmt.Errorf("get stream record %s: %w", id, err)
	}
	return decode(e)
}

func decode(e natsjs.KeyValueEntry) (*Record, error) {
	var r Record
	if err := json.Unmarshal(e.Value(), &r); err != nil {
		return nil, fmt.Errorf("decode stream record %s: %w", e.Key(), err)
	}
	r.Revision = e.Revision()
	return &r, nil
}

// MarkClosing moves r from open to closing with reason, with
// compare-and-set on r.Revision. It returns ErrConflict when the record
// changed meanwhile (reread it) and ErrNotFound when it is gone.
func (s *Store) MarkClosing(ctx context.Context, r *Record, reason string) error {
	c := *r
	c.State, c.Reason = StateClosing, reason
	b, _ := json.Marshal(&c)
	rev, err := s.kv.Update(ctx, r.ID, b, r.Revision)
	if err != nil {
		if errors.Is(err, natsjs.ErrKeyNotFound) {
			return ErrNotFound
		}
		if wrongLast(err) {
			return ErrConflict
		}
		return fmt.Errorf("close stream record %s: %w", r.ID, err)
	}
	r.State, r.Reason, r.Revision = c.State, c.Reason, rev
	return nil
}

// Remove deletes the record if it is still at revision rev.
func (s *Store) Remove(ctx context.Context, id string, rev uint64) error {
	if err := s.kv.Delete(ctx, id, natsjs.LastRevision(rev)); err != nil {
		if wrongLast(err) {
			return ErrConflict
		}
		return fmt.Errorf("delete stream record %s: %w", id, err)
	}
	return nil
}

func wrongLast(err error) bool {
	var apiErr *natsjs.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == natsjs.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == natsjs.JSErrCodeStreamWrongLastSequenceConstant)
}

// Replica is an in-memory copy of every record, kept current by a KV
// watch: chunk requests look their stream up here, not in the bucket.
// Safe for concurrent use.
type Replica struct {
	kv  natsjs.KeyValue
	log *slog.Logger

	mu      sync.RWMutex
	recs    map[string]*Record
	ready   chan struct{}
	onEvent func(r *Record, deleted bool)
}

// NewReplica returns a replica of s; it fills once Run has started.
// onEvent, when set, is called for every change after the initial load
// (and for every record of it), from Run's goroutine: a new or updated
// record, or deleted=true with the last record known.
func (s *Store) NewReplica(log *slog.Logger, onEvent func(r *Record, deleted bool)) *Replica {
	return &Replica{kv: s.kv, log: log, recs: map[string]*Record{}, ready: make(chan struct{}), onEvent: onEvent}
}

// Run watches the bucket until ctx ends, re-watching after errors.
func (p *Replica) Run(ctx context.Context) error {
	first := true
	for ctx.Err() == nil {
		err := p.watch(ctx, &first)
		if ctx.Err() != nil {
			return nil
		}
		p.log.Warn("streams watch ended, restarting", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
	return nil
}

func (p *Replica) watch(ctx context.Context, first *bool) error {
	w, err := p.kv.WatchAll(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = w.Stop() }()
	seen := map[string]bool{}
	initial := true
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				return errors.New("watcher closed")
			}
			if e == nil { // end of the initial values
				initial = false
				p.mu.Lock()
				for id, r := range p.recs {
					if !seen[id] { // deleted while we were not watching
						delete(p.recs, id)
						if p.onEvent != nil {
							defer p.onEvent(r, true)
						}
					}
				}
				p.mu.Unlock()
				if *first {
					*first = false
					close(p.ready)
				}
				continue
			}
			if initial {
				seen[e.Key()] = true
			}
			p.apply(e)
		}
	}
}

func (p *Replica) apply(e natsjs.KeyValueEntry) {
	if e.Operation() != natsjs.KeyValuePut {
		p.mu.Lock()
		r := p.recs[e.Key()]
		delete(p.recs, e.Key())
		p.mu.Unlock()
		if r != nil && p.onEvent != nil {
			p.onEvent(r, true)
		}
		return
	}
	r, err := decode(e)
	if err != nil {
		p.log.Warn("bad stream record", "stream", e.Key(), "err", err)
		return
	}
	p.mu.Lock()
	p.recs[r.ID] = r
	p.mu.Unlock()
	if p.onEvent != nil {
		p.onEvent(r, false)
	}
}

// Ready is closed once the initial records are loaded.
func (p *Replica) Ready() <-chan struct{} { return p.ready }

// Get returns the record of id (a copy) or nil.
func (p *Replica) Get(id string) *Record {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if r := p.recs[id]; r != nil {
		c := *r
		return &c
	}
	return nil
}

// Put records r at once (after a local create or close), ahead of the
// watch that will confirm it; an older revision never replaces a newer one.
func (p *Replica) Put(r *Record) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if old := p.recs[r.ID]; old == nil || old.Revision < r.Revision {
		c := *r
		p.recs[r.ID] = &c
	}
}

// List returns every record, oldest first.
func (p *Replica) List() []*Record {
	p.mu.RLock()
	out := make([]*Record, 0, len(p.recs))
	for _, r := range p.recs {
		c := *r
		out = append(out, &c)
	}
	p.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.Before(out[j].Created)
		}
		return out[i].ID < out[j].ID
	})
	return out
}
