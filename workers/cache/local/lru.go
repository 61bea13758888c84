package local

import (
	"math"
	"sync"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// lruStore is golang-lru's simplelru, bounded by weight instead of count.
type lruStore struct {
	mu      sync.Mutex
	l       *simplelru.LRU[string, *item]
	size    int64
	max     int64
	cause   string // cause of the removal in progress ("" for none counted)
	onEvict func(cause string)
}

func newLRU(maxBytes int64, onEvict func(string)) *lruStore {
	s := &lruStore{max: maxBytes, onEvict: onEvict}
	// The count bound is never reached: the weight bound evicts first.
	s.l, _ = simplelru.NewLRU[string, *item](math.MaxInt32, func(k string, it *item) {
		s.size -= it.weight(k)
		if s.cause != "" {
			s.onEvict(s.cause)
		}
	})
	return s
}

func (s *lruStore) get(key string, now int64) (*item, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	it, ok := s.l.Get(key)
	if !ok {
		return nil, false
	}
	if it.exp != 0 && now >= it.exp {
		s.cause = "expired"
		s.l.Remove(key)
		s.cause = ""
		return nil, false
	}
	return it, true
}

func (s *lruStore) set(key string, it *item) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.l.Peek(key); ok {
		s.size -= old.weight(key)
	}
	s.l.Add(key, it)
	s.size += it.weight(key)
	s.cause = "size"
	for s.size > s.max {
		if _, _, ok := s.l.RemoveOldest(); !ok {
			break
		}
	}
	s.cause = ""
}

func (s *lruStore) del(key string) {
	s.mu.Lock()
	s.l.Remove(key)
	s.mu.Unlock()
}

func (s *lruStore) clear() {
	s.mu.Lock()
	s.l.Purge()
	s.size = 0
	s.mu.Unlock()
}

func (s *lruStore) entries() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.l.Len()
}

func (s *lruStore) bytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.size
}

func (s *lruStore) close() {}
