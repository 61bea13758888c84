// Package local is the in-process cache tier: one store per configured
// namespace (its own policy, byte bound and maximum age) plus one shared
// store, with per-namespace keys, for every other namespace.
//
// Policies come from well-kept libraries, not a home-made list:
//   - "lru": hashicorp/golang-lru/v2's simplelru behind a mutex, bounded in
//     bytes by evicting the least recently used entries;
//   - "tinylfu": maypok86/otter/v2 (W-TinyLFU, adaptive window), bounded in
//     bytes through its weigher; the better default for skewed loads.
//
// An entry weighs its key, value and content type plus 64 bytes. An entry
// heavier than its store's bound is not kept. Entries expire at their TTL,
// and at the latest after the store's MaxAge, which bounds how long a value
// written behind the coordinator's back may be served.
//
// Values returned by Get are shared with the store: callers must not modify
// them. Set keeps the slice it is given. All methods are safe for
// concurrent use; Close stops otter's clean-up goroutines.
package local
