package jobs_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard/switchyard/internal/jobs"
	"github.com/switchyard/switchyard/jetstream"
	"github.com/switchyard/switchyard/jetstream/jstest"
)

func TestIDFromKey(t *testing.T) {
	a := jobs.IDFromKey("orders", "key-1")
	if b := jobs.IDFromKey("orders", "key-1"); a != b {
		t.Fatalf("not stable: %q then %q", a, b)
	}
	if len(a) != 24 || !jobs.ValidID(a) {
		t.Fatalf("IDFromKey = %q, want 24 valid characters", a)
	}
	distinct := map[string][2]string{}
	for _, in := range [][2]string{
		{"orders", "key-1"},
		{"billing", "key-1"}, // same key in another service
		{"orders", "key-2"},
		{"orders", ""},
		{"ordersk", "ey-1"}, // the separator keeps service and key apart
		{"orders", "KEY-1"},
	} {
		id := jobs.IDFromKey(in[0], in[1])
		if prev, ok := distinct[id]; ok {
			t.Errorf("IDFromKey%q and IDFromKey%q both give %q", prev, in, id)
		}
		distinct[id] = in
	}
}

func TestNewID(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := jobs.NewID()
		if len(id) != 24 || !jobs.ValidID(id) {
			t.Fatalf("NewID = %q, want 24 valid characters", id)
		}
		if seen[id] {
			t.Fatalf("NewID repeated %q", id)
		}
		seen[id] = true
	}
}

func TestValidID(t *testing.T) {
	tests := []struct {
		id   string
		want bool
	}{
		{jobs.NewID(), true},
		{jobs.IDFromKey("svc", "k"), true},
		{strings.Repeat("a", 24), true},
		{"abcdefghijklmnopqrstuv27", true},
		{"abc", false}, // too short: malformed, not unknown
		{"abcdefghijklmnopqrstuv18", false},
		{strings.Repeat("a", 23), false},
		{strings.Repeat("a", 25), false},
		{"", false},
		{"ABC", false},
		{"abcD", false},
		{"a.b", false},
		{"a-b", false},
		{"a_b", false},
		{"a b", false},
		{"a*", false},
		{"a>", false},
		{"a/b", false},
		{"é", false},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			if got := jobs.ValidID(tt.id); got != tt.want {
				t.Errorf("ValidID(%q) = %v, want %v", tt.id, got, tt.want)
			}
		})
	}
}

func FuzzValidID(f *testing.F) {
	f.Add("abc")
	f.Add("a.b")
	f.Add("")
	f.Add(strings.Repeat("z", 65))
	f.Fuzz(func(t *testing.T, id string) {
		if !jobs.ValidID(id) {
			return
		}
		if len(id) != jobs.IDLen {
			t.Fatalf("accepted %d characters", len(id))
		}
		for _, c := range id {
			if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
				t.Fatalf("accepted %q in %q", c, id)
			}
		}
	})
}

func openStore(t *testing.T) (*jobs.Store, context.Context) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	js, err := natsjs.New(jstest.Start(t).Conn(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := jetstream.Ensure(ctx, js, jetstream.Assets{Replicas: 1, MaxMsgSize: 256 << 10, JobTTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	s, err := jobs.Open(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	return s, ctx
}

func TestOpenWithoutBucket(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	js, err := natsjs.New(jstest.Start(t).Conn(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jobs.Open(ctx, js); !errors.Is(err, natsjs.ErrBucketNotFound) {
		t.Fatalf("Open without the bucket: %v, want %v", err, natsjs.ErrBucketNotFound)
	}
}

func TestStore(t *testing.T) {
	s, ctx := openStore(t)
	now := time.Now().UTC().Truncate(time.Millisecond)
	rec := &jobs.Record{
		ID: jobs.IDFromKey("orders", "k1"), Service: "orders", Method: "POST", Path: "/charge",
		Status: jobs.StatusQueued, SubmittedAt: now, UpdatedAt: now,
	}
	if err := s.Create(ctx, rec); err != nil {
		t.Fatalf("Create: %v", err)
	}
	if rec.Revision == 0 {
		t.Fatal("Create did not set the revision")
	}
	again := *rec
	again.Path = "/other"
	if err := s.Create(ctx, &again); !errors.Is(err, jobs.ErrExists) {
		t.Fatalf("second Create: %v, want %v", err, jobs.ErrExists)
	}
	got, err := s.Get(ctx, rec.ID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if got.Revision != rec.Revision || got.Path != rec.Path || got.Status != rec.Status || !got.SubmittedAt.Equal(rec.SubmittedAt) {
		t.Fatalf("Get after a refused Create:\n got %+v\nwant %+v", got, rec)
	}

	got.Status = jobs.StatusRunning
	got.Attempts = 1
	got.StreamSeq = 7
	if err := s.Update(ctx, got); err != nil {
		t.Fatalf("Update to running: %v", err)
	}
	got.Status = jobs.StatusDone
	got.Response = &jobs.Response{Status: 201, Header: http.Header{"X-A": {"1", "2"}}, Body: []byte{0, 1, 2, 0xff}, BodySize: 4}
	got.UpdatedAt = time.Time{}
	if err := s.Update(ctx, got); err != nil {
		t.Fatalf("Update to done: %v", err)
	}
	if got.UpdatedAt.IsZero() || got.UpdatedAt.Before(rec.SubmittedAt) {
		t.Errorf("Update did not stamp UpdatedAt: %v", got.UpdatedAt)
	}
	updated, err := s.Get(ctx, rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if updated.Status != jobs.StatusDone || updated.Attempts != 1 || updated.StreamSeq != 7 ||
		!reflect.DeepEqual(updated.Response, got.Response) || updated.Revision != got.Revision ||
		!updated.UpdatedAt.Equal(got.UpdatedAt) || !updated.SubmittedAt.Equal(rec.SubmittedAt) {
		t.Errorf("after Update:\n got %+v\nwant %+v", updated, got)
	}

	// Delete only at the current revision.
	if err := s.Delete(ctx, rec.ID, rec.Revision); !errors.Is(err, jobs.ErrConflict) {
		t.Fatalf("Delete at a stale revision: %v, want %v", err, jobs.ErrConflict)
	}
	if err := s.Delete(ctx, rec.ID, updated.Revision); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := s.Get(ctx, rec.ID); !errors.Is(err, jobs.ErrNotFound) {
		t.Fatalf("Get after Delete: %v, want %v", err, jobs.ErrNotFound)
	}
	// A deleted id can be created again (a resubmit after expiry or removal).
	if err := s.Create(ctx, rec); err != nil {
		t.Fatalf("Create after Delete: %v", err)
	}
}

// A writer holding an older revision never overwrites a newer state: a
// late runner's "done" after a takeover, a stale "queued" after "done".
func TestStoreCompareAndSet(t *testing.T) {
	s, ctx := openStore(t)
	rec := &jobs.Record{ID: jobs.NewID(), Service: "ai", Status: jobs.StatusQueued}
	if err := s.Create(ctx, rec); err != nil {
		t.Fatal(err)
	}
	// Two deliveries read the queued record; the first takes it.
	first, _ := s.Get(ctx, rec.ID)
	late, _ := s.Get(ctx, rec.ID)
	first.Status, first.Attempts, first.StreamSeq = jobs.StatusRunning, 1, 1
	if err := s.Update(ctx, first); err != nil {
		t.Fatal(err)
	}
	late.Status, late.Attempts, late.StreamSeq = jobs.StatusRunning, 1, 2
	if err := s.Update(ctx, late); !errors.Is(err, jobs.ErrConflict) {
		t.Fatalf("second claim: %v, want %v", err, jobs.ErrConflict)
	}
	// The first finishes; a stale writer (it read "running") tries to queue it again.
	stale, _ := s.Get(ctx, rec.ID)
	first.Status = jobs.StatusDone
	first.Response = &jobs.Response{Status: 200, Body: []byte("ok"), BodySize: 2}
	if err := s.Update(ctx, first); err != nil {
		t.Fatal(err)
	}
	stale.Status = jobs.StatusQueued
	stale.LastError = &jobs.Failure{Code: "unavailable", Message: "late failure"}
	if err := s.Update(ctx, stale); !errors.Is(err, jobs.ErrConflict) {
		t.Fatalf("stale write: %v, want %v", err, jobs.ErrConflict)
	}
	now, err := s.Get(ctx, rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if now.Status != jobs.StatusDone || now.StreamSeq != 1 || now.LastError != nil || string(now.Response.Body) != "ok" {
		t.Fatalf("after stale writes: %+v", now)
	}
	// Even at the current revision a final state does not move.
	for _, to := range []string{jobs.StatusQueued, jobs.StatusRunning, jobs.StatusFailed} {
		cur, _ := s.Get(ctx, rec.ID)
		cur.Status = to
		if err := s.Update(ctx, cur); !errors.Is(err, jobs.ErrBackwards) {
			t.Errorf("done -> %s: %v, want %v", to, err, jobs.ErrBackwards)
		}
	}
	// Create only makes queued records.
	if err := s.Create(ctx, &jobs.Record{ID: jobs.NewID(), Status: jobs.StatusDone}); !errors.Is(err, jobs.ErrBackwards) {
		t.Errorf("Create done: %v, want %v", err, jobs.ErrBackwards)
	}
}

func TestCanMove(t *testing.T) {
	q, r, d, f := jobs.StatusQueued, jobs.StatusRunning, jobs.StatusDone, jobs.StatusFailed
	allowed := map[[2]string]bool{
		{"", q}: true, {q, r}: true, {q, f}: true,
		{r, r}: true, {r, q}: true, {r, d}: true, {r, f}: true,
	}
	for _, from := range []string{"", q, r, d, f, "bogus"} {
		for _, to := range []string{"", q, r, d, f, "bogus"} {
			if got := jobs.CanMove(from, to); got != allowed[[2]string{from, to}] {
				t.Errorf("CanMove(%q, %q) = %v", from, to, got)
			}
		}
	}
}

// A record over the bucket's value limit is refused with ErrRecordTooLarge
// (nothing written); Fits tells beforehand; the body goes to PutBody.
func TestStoreLargeBodies(t *testing.T) {
	s, ctx := openStore(t)
	rec := &jobs.Record{ID: jobs.NewID(), Service: "ai", Status: jobs.StatusQueued}
	if err := s.Create(ctx, rec); err != nil {
		t.Fatal(err)
	}
	rec.Status = jobs.StatusRunning
	if err := s.Update(ctx, rec); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, s.ValueLimit()) // base64 makes it a third larger
	for i := range body {
		body[i] = byte(i * 7)
	}
	rec.Status = jobs.StatusDone
	rec.Response = &jobs.Response{Status: 200, Body: body, BodySize: int64(len(body))}
	if s.Fits(rec) {
		t.Fatalf("a %d-byte body fits a record limited to %d", len(body), s.ValueLimit())
	}
	if err := s.Update(ctx, rec); !errors.Is(err, jobs.ErrRecordTooLarge) {
		t.Fatalf("Update with a large body: %v, want %v", err, jobs.ErrRecordTooLarge)
	}
	name := jobs.ObjectName(rec.ID, 3, 1)
	if err := s.PutBody(ctx, name, body); err != nil {
		t.Fatal(err)
	}
	rec.Response.Body, rec.Response.Object = nil, name
	if !s.Fits(rec) {
		t.Fatal("the record without its body does not fit")
	}
	if err := s.Update(ctx, rec); err != nil {
		t.Fatal(err)
	}
	r, size, err := s.OpenBody(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	r.Close()
	if err != nil || size != int64(len(body)) || !bytes.Equal(got, body) {
		t.Fatalf("OpenBody: %d bytes (size %d, err %v), want %d equal bytes", len(got), size, err, len(body))
	}
	if err := s.DeleteBody(ctx, name); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteBody(ctx, name); err != nil {
		t.Fatalf("second DeleteBody: %v", err)
	}
	if _, _, err := s.OpenBody(ctx, name); !errors.Is(err, jobs.ErrResultGone) {
		t.Fatalf("OpenBody after delete: %v, want %v", err, jobs.ErrResultGone)
	}
}

func TestStoreErrors(t *testing.T) {
	s, ctx := openStore(t)
	tests := []struct {
		name    string
		id      string
		want    error
		notWant error
	}{
		{"missing", jobs.NewID(), jobs.ErrNotFound, nil},
		{"invalid key", "not a key", natsjs.ErrInvalidKey, jobs.ErrNotFound},
		{"wildcard key", "a.*", natsjs.ErrInvalidKey, jobs.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Get(ctx, tt.id)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Get(%q): %v, want %v", tt.id, err, tt.want)
			}
			if tt.notWant != nil && errors.Is(err, tt.notWant) {
				t.Fatalf("Get(%q): %v must not be %v", tt.id, err, tt.notWant)
			}
		})
	}
	if err := s.Create(ctx, &jobs.Record{ID: "bad key", Status: jobs.StatusQueued}); !errors.Is(err, natsjs.ErrInvalidKey) {
		t.Errorf("Create with an invalid id: %v, want %v", err, natsjs.ErrInvalidKey)
	}
}
