package jetstream_test

import (
	"testing"
	"time"

	"github.com/switchyard/switchyard/jetstream"
	"github.com/switchyard/switchyard/jetstream/jstest"
	"github.com/switchyard/switchyard/subjects"
)

// The job results object store is declared with the jobs, outlives the
// records (TTL one hour longer), is bounded, and survives a second Ensure.
func TestEnsureJobResultsObjectStore(t *testing.T) {
	ns := jstest.Start(t)
	js := newJS(t, ns.Conn(t))
	ctx := ctxT(t)
	var decl []string
	for _, oc := range testAssets.ObjectStores() {
		decl = append(decl, oc.Bucket)
	}
	if len(decl) != 1 || decl[0] != subjects.ObjectStoreJobResults {
		t.Fatalf("object stores declared: %v, want [%s]", decl, subjects.ObjectStoreJobResults)
	}
	for range 2 {
		if err := jetstream.Ensure(ctx, js, testAssets); err != nil {
			t.Fatalf("Ensure: %v", err)
		}
	}
	obs, err := js.ObjectStore(ctx, subjects.ObjectStoreJobResults)
	if err != nil {
		t.Fatalf("object store: %v", err)
	}
	st, err := obs.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.TTL() != testAssets.JobTTL+time.Hour || st.Replicas() != 1 {
		t.Errorf("job-results: ttl %v replicas %d, want %v 1", st.TTL(), st.Replicas(), testAssets.JobTTL+time.Hour)
	}
	s, err := js.Stream(ctx, "OBJ_"+subjects.ObjectStoreJobResults)
	if err != nil {
		t.Fatal(err)
	}
	if mb := s.CachedInfo().Config.MaxBytes; mb <= 0 {
		t.Errorf("job-results is unbounded (max bytes %d)", mb)
	}
}
