package jetstream

import (
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/subjects"
)

// cacheAssets declares the shared cache tier: KV bucket "cache", declared
// as its stream KV_cache so that it can be bounded with DiscardOld (a full
// bucket drops its oldest writes; KeyValueConfig would refuse new ones).
// AllowMsgTTL is what the KV API's LimitMarkerTTL turns on: every key has
// its own TTL (Nats-TTL), and expired keys leave a marker for a minute.
func cacheAssets(a Assets, c *config.Config) Set {
	return Set{Streams: []natsjs.StreamConfig{CacheBucket(a.Replicas, c.Cache.SharedMaxBytes, a.MaxMsgSize)}}
}

// CacheBucket returns the stream of the shared cache tier's KV bucket.
func CacheBucket(replicas int, maxBytes int64, maxMsgSize int32) natsjs.StreamConfig {
	return natsjs.StreamConfig{
		Name:        "KV_" + subjects.BucketCache,
		Description: "Shared cache tier: KV bucket cache, keyed by <namespace>.<key>",
		Subjects:    []string{"$KV." + subjects.BucketCache + ".>"},
		// KV semantics: one value per key, direct gets, rollup purges.
		MaxMsgsPerSubject: 1,
		AllowDirect:       true,
		AllowRollup:       true,
		DenyDelete:        true,
		MaxMsgs:           -1,
		MaxConsumers:      -1,
		MaxBytes:          maxBytes,
		MaxMsgSize:        maxMsgSize,
		Discard:           natsjs.DiscardOld,
		Storage:           natsjs.FileStorage,
		Replicas:          replicas,
		Duplicates:        2 * time.Minute,
		// Per-key TTLs (the KV bucket's LimitMarkerTTL).
		AllowMsgTTL:            true,
		SubjectDeleteMarkerTTL: time.Minute,
	}
}
