package subjects_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/switchyard/switchyard/subjects"
)

func TestJobCall(t *testing.T) {
	tests := []struct {
		in, svc, call string
		ok            bool
	}{
		{"jobs.ai.generate", "ai", "svc.ai.generate", true},
		{"jobs.reports.monthly.2026_11", "reports", "svc.reports.monthly.2026_11", true},
		{"jobs.ai", "", "", false},         // no token
		{"svc.ai.generate", "", "", false}, // not a job
		{"jobs..x", "", "", false},
		{"jobs.AI.x", "", "", false},
		{"jobs.ai.x..y", "", "", false},
		{"jobs.ai.*", "", "", false},
		{"", "", "", false},
	}
	for _, tt := range tests {
		svc, call, err := subjects.JobCall(tt.in)
		if tt.ok != (err == nil) || svc != tt.svc || call != tt.call {
			t.Errorf("JobCall(%q) = %q, %q, %v; want %q, %q, ok %v", tt.in, svc, call, err, tt.svc, tt.call, tt.ok)
		}
		if err != nil && !errors.Is(err, subjects.ErrInvalid) {
			t.Errorf("JobCall(%q): %v is not ErrInvalid", tt.in, err)
		}
	}
}

// JobCall inverts Job: every subject Job builds maps back to the same
// service and tokens under svc.
func FuzzJobCall(f *testing.F) {
	f.Add("ai", "generate.x")
	f.Add("r", "a")
	f.Fuzz(func(t *testing.T, svc, tokens string) {
		toks := strings.Split(tokens, ".")
		subj, err := subjects.Job(svc, toks...)
		if err != nil {
			return
		}
		gotSvc, call, err := subjects.JobCall(subj)
		if err != nil {
			t.Fatalf("JobCall(%q): %v", subj, err)
		}
		want, _ := subjects.Service(svc, toks...)
		if gotSvc != svc || call != want {
			t.Fatalf("JobCall(%q) = %q, %q; want %q, %q", subj, gotSvc, call, svc, want)
		}
	})
}
