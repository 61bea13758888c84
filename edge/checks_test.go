package edge_test

import (
	"context"
	"errors"
	"testing"

	"github.com/switchyard/switchyard/edge"
)

func TestChecksWithExtendsWithoutChangingTheParent(t *testing.T) {
	parent := edge.NewChecks()
	parent.Add("nats", func(context.Context) error { return nil })
	child := parent.With("cache", func(context.Context) error { return errors.New("degraded") })
	parent.Add("later", func(context.Context) error { return nil })

	names, res := child.Run(context.Background())
	if len(names) != 3 || res["cache"] == nil || res["nats"] != nil || res["later"] != nil {
		t.Fatalf("child: %v %v", names, res)
	}
	names, _ = parent.Run(context.Background())
	if len(names) != 2 {
		t.Fatalf("parent sees the child's check: %v", names)
	}
}
