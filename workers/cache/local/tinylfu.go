package local

import (
	"math"
	"time"

	"github.com/maypok86/otter/v2"
)

// tinyStore is otter's W-TinyLFU cache bounded by weight.
type tinyStore struct {
	c *otter.Cache[string, *item]
}

// never is the expiry of entries without a TTL (otter needs a duration).
const never = 100 * 365 * 24 * time.Hour

func newTinyLFU(maxBytes int64, onEvict func(string)) (*tinyStore, error) {
	c, err := otter.New(&otter.Options[string, *item]{
		MaximumWeight: uint64(maxBytes),
		Weigher: func(k string, it *item) uint32 {
			w := it.weight(k)
			if w > math.MaxUint32 {
				return math.MaxUint32
			}
			return uint32(w)
		},
		ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[string, *item]) time.Duration {
			if e.Value.exp == 0 {
				return never
			}
			return time.Until(time.Unix(0, e.Value.exp))
		}),
		OnDeletion: func(e otter.DeletionEvent[string, *item]) {
			switch e.Cause {
			case otter.CauseOverflow:
				onEvict("size")
			case otter.CauseExpiration:
				onEvict("expired")
			}
		},
	})
	if err != nil {
		return nil, err
	}
	return &tinyStore{c: c}, nil
}

func (s *tinyStore) get(key string, now int64) (*item, bool) {
	it, ok := s.c.GetIfPresent(key)
	if !ok || it.exp != 0 && now >= it.exp {
		return nil, false
	}
	return it, true
}

func (s *tinyStore) set(key string, it *item) { s.c.Set(key, it) }
func (s *tinyStore) del(key string)           { s.c.Invalidate(key) }
func (s *tinyStore) clear()                   { s.c.InvalidateAll() }
func (s *tinyStore) entries() int             { return s.c.EstimatedSize() }
func (s *tinyStore) bytes() int64             { return int64(s.c.WeightedSize()) }
func (s *tinyStore) close()                   { s.c.StopAllGoroutines() }
