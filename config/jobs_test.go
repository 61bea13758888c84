package config_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/switchyard/switchyard/config"
)

func TestJobRunnerKeys(t *testing.T) {
	d := config.Default()
	if d.LB.JobConcurrency != 32 || d.LB.JobMaxResultBytes != 0 || d.JobResultLimit() != d.Server.MaxBodyBytes {
		t.Fatalf("defaults: concurrency %d, max result %d, limit %d", d.LB.JobConcurrency, d.LB.JobMaxResultBytes, d.JobResultLimit())
	}
	c := mustLoad(t, "lb:\n  job_concurrency: 4\n  job_max_result_bytes: 2048\n", nil)
	if c.LB.JobConcurrency != 4 || c.JobResultLimit() != 2048 {
		t.Errorf("yaml: concurrency %d, limit %d", c.LB.JobConcurrency, c.JobResultLimit())
	}
	c = mustLoad(t, "", map[string]string{"LB_JOB_CONCURRENCY": "7", "LB_JOB_MAX_RESULT_BYTES": "4096"})
	if c.LB.JobConcurrency != 7 || c.JobResultLimit() != 4096 {
		t.Errorf("env: concurrency %d, limit %d", c.LB.JobConcurrency, c.JobResultLimit())
	}
	// Over the body limit: clamped, since a NATS reply carries the whole answer.
	c = mustLoad(t, "", map[string]string{"LB_JOB_MAX_RESULT_BYTES": "1000000000", "MAX_BODY_BYTES": "65536"})
	if c.JobResultLimit() != 65536 {
		t.Errorf("limit %d, want the body limit 65536", c.JobResultLimit())
	}
	for _, tc := range []struct{ key, val, want string }{
		{"LB_JOB_CONCURRENCY", "0", "1 to 1024"},
		{"LB_JOB_CONCURRENCY", "1025", "1 to 1024"},
		{"LB_JOB_MAX_RESULT_BYTES", "-1", "must not be negative"},
	} {
		_, err := load(t, "", map[string]string{tc.key: tc.val})
		if !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), tc.key) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s=%s: %v, want an error naming the key and %q", tc.key, tc.val, err, tc.want)
		}
	}
}
