// Package cache is the cache coordinator: it serves get, set, delete and
// batch operations over two tiers, a bounded in-process local tier
// (package local: lru or tinylfu per namespace) and a shared tier (package
// kvtier: JetStream KV, the default; package redistier: Redis when
// REDIS_ADDR is set), both behind the one interface of package tier.
//
// Where it runs. Every `switchyard cache` (and `switchyard run`) process
// holds one Coordinator. The cache edge (edge/cache) calls it in process,
// so a local hit never touches NATS and a miss goes straight to the shared
// tier; the same Coordinator serves the micro service "switchyard-cache"
// on cache.<op>.<namespace> (queue group "cache-workers") for Node and
// Rust callers. There is no separate cache worker process: a process is
// both, and any number of them share one shared tier. An edge that handed
// its misses to a worker in another process over NATS would add a hop and
// a second copy of the local tier for nothing the shared tier does not
// already give.
//
// Package natstier is a Go client of that service in the shape of a tier;
// it passes the conformance suite (package tiertest) like the local, KV and
// Redis tiers, which tests the NATS contract end to end.
//
// Reads: the local tier first (only while the invalidation channel is
// connected), then the shared tier. Concurrent misses on one key make one
// shared-tier read (x/sync/singleflight); the value fills the local tier
// unless an invalidation of the key arrived during the read (a per-key
// sequence, sharded, is compared before and after).
//
// Writes and deletes go to the shared tier first; once it acknowledged,
// the local tier follows and an invalidation (a JSON array of keys) is
// published on cache.inval.<namespace> with the writer's origin id. Every
// other coordinator drops those keys from its local tier, so no process
// serves a value another overwrote or deleted once the message arrived
// (about a millisecond on one NATS server; see the coherence test). A
// coordinator that loses its NATS connection stops reading its local tier
// (unless degraded: then nothing fresher exists), and clears it on
// reconnect, since invalidations sent meanwhile are lost;
// dropped invalidations (slow consumer) clear it too. Entries also expire
// from a local tier after cache.local_max_age, which bounds what a write
// that bypassed the coordinators (straight into the bucket or Redis) can
// leave behind.
//
// Degraded mode: a shared-tier error of kind tier.ErrUnavailable (refused
// connection, timeout, NATS down) switches the coordinator to degraded
// mode at once: local hits still answer, misses and writes fail fast with
// ErrUnavailable (503, Retry-After), Check reports it (the cache edge's
// /health answers 503 "degraded"), and the shared tier is probed every
// ProbeInterval until it answers, which ends degraded mode by itself.
//
// Concurrency: every method of Coordinator is safe for concurrent use.
// Start launches one goroutine (connection watch and probes), owned and
// waited for by Shutdown; shared-tier reads run on singleflight's
// goroutines under SharedTimeout. The NATS service answers local hits on
// the endpoint's goroutine and runs everything else on a goroutine per
// request, at most maxInFlight at once (further requests wait in NATS).
package cache
