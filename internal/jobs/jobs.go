// Package jobs holds the durable job record shared by the lb edge (which
// submits jobs and reads them) and the job runners (which execute them).
// Records live in the JetStream KV bucket "jobs", keyed by job id. A Store
// is safe for concurrent use.
package jobs

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard/switchyard/subjects"
)

// ErrNotFound is returned when no job has the id.
var ErrNotFound = errors.New("job not found")

// ErrExists is returned by Create when the id is taken.
var ErrExists = errors.New("job exists")

// Job states.
const (
	StatusQueued  = "queued"
	StatusRunning = "running"
	StatusDone    = "done"
	StatusFailed  = "failed"
)

// Record is one job.
type Record struct {
	ID          string    `json:"id"`
	Service     string    `json:"service"`
	Method      string    `json:"method"`
	Path        string    `json:"path"`
	Status      string    `json:"status"`
	Attempts    int       `json:"attempts"`
	SubmittedAt time.Time `json:"submitted_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	LastError   string    `json:"last_error,omitempty"`
	Response    *Response `json:"response,omitempty"`
}

// Response is the service's answer to a finished job. Body is base64 in JSON.
type Response struct {
	Status int         `json:"status"`
	Header http.Header `json:"headers"`
	Body   []byte      `json:"body"`
}

var enc = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewID returns a random job id: 24 characters of [a-z2-7].
func NewID() string {
	var b [15]byte
	_, _ = rand.Read(b[:])
	return enc.EncodeToString(b[:])
}

// IDFromKey derives the job id of an Idempotency-Key, scoped by service,
// so a retried submit names the same job.
func IDFromKey(service, key string) string {
	h := sha256.Sum256([]byte(service + "\x00" + key))
	return enc.EncodeToString(h[:15])
}

// ValidID reports whether id can be a job id (and a KV key).
func ValidID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// Store reads and writes job records.
type Store struct{ kv natsjs.KeyValue }

// Open binds the jobs bucket (declared by the jetstream package).
func Open(ctx context.Context, js natsjs.JetStream) (*Store, error) {
	kv, err := js.KeyValue(ctx, subjects.BucketJobs)
	if err != nil {
		return nil, fmt.Errorf("jobs bucket: %w", err)
	}
	return &Store{kv: kv}, nil
}

// Create stores a new record; ErrExists when the id is taken.
func (s *Store) Create(ctx context.Context, r *Record) error {
	b, _ := json.Marshal(r)
	if _, err := s.kv.Create(ctx, r.ID, b); err != nil {
		if errors.Is(err, natsjs.ErrKeyExists) {
			return ErrExists
		}
		return fmt.Errorf("create job %s: %w", r.ID, err)
	}
	return nil
}

// Get reads a record; ErrNotFound when there is none.
func (s *Store) Get(ctx context.Context, id string) (*Record, error) {
	e, err := s.kv.Get(ctx, id)
	if err != nil {
		if errors.Is(err, natsjs.ErrKeyNotFound) {
			return nil, ErrNotFound
		}
		return nil, fmt.Errorf("get job %s: %w", id, err)
	}
	var r Record
	if err := json.Unmarshal(e.Value(), &r); err != nil {
		return nil, fmt.Errorf("decode job %s: %w", id, err)
	}
	return &r, nil
}

// Put overwrites a record.
func (s *Store) Put(ctx context.Context, r *Record) error {
	r.UpdatedAt = time.Now().UTC()
	b, _ := json.Marshal(r)
	if _, err := s.kv.Put(ctx, r.ID, b); err != nil {
		return fmt.Errorf("put job %s: %w", r.ID, err)
	}
	return nil
}

// Delete removes a record.
func (s *Store) Delete(ctx context.Context, id string) error {
	if err := s.kv.Delete(ctx, id); err != nil {
		return fmt.Errorf("delete job %s: %w", id, err)
	}
	return nil
}
