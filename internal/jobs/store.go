package jobs

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/nats-io/nats.go"

	"github.com/switchyard/switchyard/subjects"
)

// headroom is kept below the bucket's message limit for the headers of a
// KV write (the expected-revision header and the like).
const headroom = 1 << 10

// Store reads and writes job records and their large result bodies.
type Store struct {
	nc    *nats.Conn
	kv    natsjs.KeyValue
	obs   natsjs.ObjectStore
	limit int
}

// Open binds the jobs bucket and the job-results object store (both
// declared by the jetstream package).
func Open(ctx context.Context, js natsjs.JetStream) (*Store, error) {
	kv, err := js.KeyValue(ctx, subjects.BucketJobs)
	if err != nil {
		return nil, fmt.Errorf("jobs bucket: %w", err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("jobs bucket status: %w", err)
	}
	limit := int(js.Conn().MaxPayload())
	if kvs, ok := st.(*natsjs.KeyValueBucketStatus); ok {
		if m := int(kvs.Config().MaxValueSize); m > 0 && (limit <= 0 || m < limit) {
			limit = m
		}
	}
	if limit <= 0 {
		limit = 1 << 20
	}
	obs, err := js.ObjectStore(ctx, subjects.ObjectStoreJobResults)
	if err != nil {
		return nil, fmt.Errorf("job results object store: %w", err)
	}
	return &Store{nc: js.Conn(), kv: kv, obs: obs, limit: max(limit-headroom, headroom)}, nil
}

// ValueLimit is the largest encoded record the bucket takes.
func (s *Store) ValueLimit() int { return s.limit }

// Fits reports whether r, encoded, is within ValueLimit.
func (s *Store) Fits(r *Record) bool {
	if r.Response != nil && base64.StdEncoding.EncodedLen(len(r.Response.Body)) > s.limit {
		return false // no need to encode it to know
	}
	b, err := json.Marshal(r)
	return err == nil && len(b) <= s.limit
}

func (s *Store) encode(r *Record) ([]byte, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode job %s: %w", r.ID, err)
	}
	if len(b) > s.limit {
		return nil, fmt.Errorf("job %s: %d bytes: %w", r.ID, len(b), ErrRecordTooLarge)
	}
	return b, nil
}

// Create stores a new, queued record and sets r.Revision. It returns
// ErrExists when the id is taken, ErrBackwards when r is not queued.
func (s *Store) Create(ctx context.Context, r *Record) error {
	if !CanMove("", r.Status) {
		return fmt.Errorf("create job %s as %q: %w", r.ID, r.Status, ErrBackwards)
	}
	b, err := s.encode(r)
	if err != nil {
		return err
	}
	rev, err := s.kv.Create(ctx, r.ID, b)
	if err != nil {
		if errors.Is(err, natsjs.ErrKeyExists) {
			return ErrExists
		}
		return fmt.Errorf("create job %s: %w", r.ID, err)
	}
	r.Revision, r.stored = rev, r.Status
	return nil
}

// Get reads a record; ErrNotFound when there is none. Any replica may
// answer, so the record may be older than the last write; a miss is
// confirmed with the leader (see GetLatest) before ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (*Record, error) {
	e, err := s.kv.Get(ctx, id)
	if err != nil {
		if isNotFound(err) {
			return s.GetLatest(ctx, id)
		}
		return nil, fmt.Errorf("get job %s: %w", id, err)
	}
	var r Record
	if err := json.Unmarshal(e.Value(), &r); err != nil {
		return nil, fmt.Errorf("decode job %s: %w", id, err)
	}
	r.Revision, r.stored = e.Revision(), r.Status
	return &r, nil
}

// Update writes r if the stored record is still at r.Revision and the
// move from the status read to r.Status is forward (CanMove). It stamps
// UpdatedAt and, on success, sets r.Revision. Errors: ErrConflict when a
// newer write won (r is unchanged in the bucket), ErrBackwards,
// ErrRecordTooLarge.
func (s *Store) Update(ctx context.Context, r *Record) error {
	if !CanMove(r.stored, r.Status) {
		return fmt.Errorf("job %s %s -> %s: %w", r.ID, r.stored, r.Status, ErrBackwards)
	}
	r.UpdatedAt = time.Now().UTC()
	b, err := s.encode(r)
	if err != nil {
		return err
	}
	rev, err := s.kv.Update(ctx, r.ID, b, r.Revision)
	if err != nil {
		if errors.Is(err, natsjs.ErrKeyRevisionMismatch) || errors.Is(err, natsjs.ErrKeyExists) {
			return fmt.Errorf("update job %s at revision %d: %w", r.ID, r.Revision, ErrConflict)
		}
		return fmt.Errorf("update job %s: %w", r.ID, err)
	}
	r.Revision, r.stored = rev, r.Status
	return nil
}

// Delete removes a record if it is still at revision rev; ErrConflict
// when it changed.
func (s *Store) Delete(ctx context.Context, id string, rev uint64) error {
	if err := s.kv.Delete(ctx, id, natsjs.LastRevision(rev)); err != nil {
		if errors.Is(err, natsjs.ErrKeyRevisionMismatch) || errors.Is(err, natsjs.ErrKeyExists) {
			return fmt.Errorf("delete job %s at revision %d: %w", id, rev, ErrConflict)
		}
		return fmt.Errorf("delete job %s: %w", id, err)
	}
	return nil
}

// PutBody stores a result body in the object store under name.
func (s *Store) PutBody(ctx context.Context, name string, body []byte) error {
	if _, err := s.obs.PutBytes(ctx, name, body); err != nil {
		return fmt.Errorf("store job result %s: %w", name, err)
	}
	return nil
}

// OpenBody returns a reader of the body stored under name and its size;
// the caller closes it. ErrResultGone when there is none.
func (s *Store) OpenBody(ctx context.Context, name string) (io.ReadCloser, int64, error) {
	res, err := s.obs.Get(ctx, name)
	if err != nil {
		if errors.Is(err, natsjs.ErrObjectNotFound) {
			return nil, 0, fmt.Errorf("job result %s: %w", name, ErrResultGone)
		}
		return nil, 0, fmt.Errorf("read job result %s: %w", name, err)
	}
	info, err := res.Info()
	if err != nil {
		_ = res.Close()
		return nil, 0, fmt.Errorf("read job result %s: %w", name, err)
	}
	return res, int64(info.Size), nil
}

// DeleteBody removes the body stored under name (no error if it is gone).
func (s *Store) DeleteBody(ctx context.Context, name string) error {
	if err := s.obs.Delete(ctx, name); err != nil && !errors.Is(err, natsjs.ErrObjectNotFound) {
		return fmt.Errorf("delete job result %s: %w", name, err)
	}
	return nil
}
