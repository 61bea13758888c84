package jobs_test

import (
	"context"
	"errors"
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
		{"abc123", true},
		{"a", true},
		{strings.Repeat("a", 64), true},
		{"", false},
		{strings.Repeat("a", 65), false},
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
		if len(id) < 1 || len(id) > 64 {
			t.Fatalf("accepted %d characters", len(id))
		}
		for _, c := range id {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
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
	if err := jetstream.Ensure(ctx, js, jetstream.Assets{Replicas: 1, MaxMsgSize: 1 << 20, JobTTL: time.Hour}); err != nil {
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
	again := *rec
	again.Path = "/other"
	if err := s.Create(ctx, &again); !errors.Is(err, jobs.ErrExists) {
		t.Fatalf("second Create: %v, want %v", err, jobs.ErrExists)
	}
	got, err := s.Get(ctx, rec.ID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if !reflect.DeepEqual(got, rec) {
		t.Fatalf("Get after a refused Create:\n got %+v\nwant %+v", got, rec)
	}

	got.Status = jobs.StatusDone
	got.Attempts = 2
	got.Response = &jobs.Response{Status: 201, Header: http.Header{"X-A": {"1", "2"}}, Body: []byte{0, 1, 2, 0xff}}
	got.UpdatedAt = time.Time{}
	if err := s.Put(ctx, got); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if got.UpdatedAt.IsZero() || got.UpdatedAt.Before(rec.SubmittedAt) {
		t.Errorf("Put did not stamp UpdatedAt: %v", got.UpdatedAt)
	}
	updated, err := s.Get(ctx, rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if updated.Status != jobs.StatusDone || updated.Attempts != 2 || !reflect.DeepEqual(updated.Response, got.Response) ||
		!updated.UpdatedAt.Equal(got.UpdatedAt) || !updated.SubmittedAt.Equal(rec.SubmittedAt) {
		t.Errorf("after Put:\n got %+v\nwant %+v", updated, got)
	}

	if err := s.Delete(ctx, rec.ID); err != nil {
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
	if err := s.Create(ctx, &jobs.Record{ID: "bad key"}); !errors.Is(err, natsjs.ErrInvalidKey) {
		t.Errorf("Create with an invalid id: %v, want %v", err, natsjs.ErrInvalidKey)
	}
}
