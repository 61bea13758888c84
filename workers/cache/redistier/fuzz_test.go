package redistier_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/switchyard/switchyard/workers/cache/redistier"
	"github.com/switchyard/switchyard/workers/cache/tier"
)

func FuzzEnvelope(f *testing.F) {
	f.Add([]byte("value"), "text/plain", int64(0))
	f.Add([]byte{0, 1, 2}, "", int64(1764262800123))
	f.Fuzz(func(t *testing.T, v []byte, ct string, ms int64) {
		var exp time.Time
		if ms > 0 {
			exp = time.UnixMilli(ms)
		}
		e, err := redistier.Decode(redistier.Encode(tier.Entry{Value: v, ContentType: ct}, exp))
		if err != nil || !bytes.Equal(e.Value, v) || e.ContentType != ct || !e.ExpiresAt.Equal(exp) {
			t.Fatalf("round trip: %+v %v", e, err)
		}
		_, _ = redistier.Decode(v) // never panics on stored garbage
	})
}
