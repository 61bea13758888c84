package config_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/switchyard/switchyard/config"
)

func TestLBOverloadKeys(t *testing.T) {
	c, err := config.Load("", map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	if c.LB.QueueWait.D() != 100*time.Millisecond || c.LB.EdgeMaxInFlight != 4096 || c.LB.EdgeMaxBodyMemory != 256<<20 {
		t.Fatalf("defaults: %+v", c.LB)
	}
	c, err = config.Load("", map[string]string{
		"LB_QUEUE_WAIT": "0", "LB_EDGE_MAX_IN_FLIGHT": "8", "LB_EDGE_MAX_BODY_MEMORY": "2048",
	})
	if err != nil || c.LB.QueueWait != 0 || c.LB.EdgeMaxInFlight != 8 || c.LB.EdgeMaxBodyMemory != 2048 {
		t.Fatalf("from the environment: %+v %v", c.LB, err)
	}
	for _, tc := range []struct{ key, val string }{
		{"LB_QUEUE_WAIT", "11s"},
		{"LB_EDGE_MAX_IN_FLIGHT", "0"},
		{"LB_EDGE_MAX_BODY_MEMORY", "100"},
	} {
		_, err := config.Load("", map[string]string{tc.key: tc.val})
		if !errors.Is(err, config.ErrInvalid) || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%s=%s: %v, want an error naming the key", tc.key, tc.val, err)
		}
	}
}
