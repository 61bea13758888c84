package local_test

import (
	"context"
	"fmt"
	"time"

	"github.com/switchyard/switchyard/workers/cache/local"
	"github.com/switchyard/switchyard/workers/cache/tier"
)

// A local tier with an LRU store of its own for "sessions" and a W-TinyLFU
// store shared by every other namespace.
func ExampleNew() {
	t, err := local.New(local.Options{
		Spaces: map[string]local.Space{"sessions": {Policy: local.LRU, MaxBytes: 16 << 20, MaxAge: time.Minute}},
		Other:  local.Space{Policy: local.TinyLFU, MaxBytes: 64 << 20},
	})
	if err != nil {
		panic(err)
	}
	defer t.Close()
	ctx := context.Background()
	_ = t.Set(ctx, "sessions", "abc", tier.Entry{Value: []byte(`{"user":1}`), ContentType: "application/json"}, time.Hour)
	e, _ := t.Get(ctx, "sessions", "abc")
	fmt.Println(string(e.Value), e.ContentType, t.SpaceOf("sessions"), t.SpaceOf("prices"))
	// Output: {"user":1} application/json sessions _other
}
