package jetstream

import (
	"context"
	"fmt"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard/switchyard/config"
)

// Assets sizes the declared streams and buckets. Each concern declares its
// own assets in a file of its own (jobs.go, streams.go, broker.go,
// cache.go) as a declarer, collected in the list below; Ensure creates or
// updates them all.
type Assets struct {
	// Replicas of every stream and bucket (1 embedded, 3 in a cluster).
	Replicas int
	// MaxMsgSize bounds one message in every stream (the max body plus headers).
	MaxMsgSize int32
	// JobTTL is how long a job record and an unconsumed job are kept.
	JobTTL time.Duration
	// ScaleUp lets Ensure raise the replicas of existing assets to
	// Replicas; without it a mismatch fails with ErrReplicaMismatch.
	ScaleUp bool
	// Config is the process configuration; nil means config.Default().
	// Declarers read their concern's section from it.
	Config *config.Config
}

// Set is what one concern declares.
type Set struct {
	Streams      []natsjs.StreamConfig
	Buckets      []natsjs.KeyValueConfig
	ObjectStores []natsjs.ObjectStoreConfig
}

// declarer declares one concern's assets.
type declarer func(a Assets, c *config.Config) Set

// declarers lists every concern's declarer: a new concern adds one line.
var declarers = []declarer{jobsAssets, streamsAssets, brokerAssets, cacheAssets}

// ForConfig returns the Assets of a process configuration.
func ForConfig(c *config.Config) Assets {
	return Assets{
		Replicas:   c.NATS.Replicas,
		MaxMsgSize: int32(c.MaxPayloadBytes()),
		JobTTL:     c.LB.JobTTL.D(),
		ScaleUp:    c.NATS.ScaleUp,
		Config:     c,
	}
}

func (a Assets) sets() []Set {
	c := a.Config
	if c == nil {
		c = config.Default()
	}
	out := make([]Set, len(declarers))
	for i, d := range declarers {
		out[i] = d(a, c)
	}
	return out
}

// Streams returns the declaration of every JetStream stream.
func (a Assets) Streams() []natsjs.StreamConfig {
	var out []natsjs.StreamConfig
	for _, s := range a.sets() {
		out = append(out, s.Streams...)
	}
	return out
}

// Buckets returns the declaration of every key-value bucket.
func (a Assets) Buckets() []natsjs.KeyValueConfig {
	var out []natsjs.KeyValueConfig
	for _, s := range a.sets() {
		out = append(out, s.Buckets...)
	}
	return out
}

// ObjectStores returns the declaration of every object store.
func (a Assets) ObjectStores() []natsjs.ObjectStoreConfig {
	var out []natsjs.ObjectStoreConfig
	for _, s := range a.sets() {
		out = append(out, s.ObjectStores...)
	}
	return out
}

// Ensure creates or updates every declared stream, bucket and object
// store. It is idempotent: running it again with the same Assets changes
// nothing. An existing asset with other replicas than a.Replicas fails
// with ErrReplicaMismatch (naming both counts) unless it is a scale-up
// and a.ScaleUp is set.
func Ensure(ctx context.Context, js natsjs.JetStream, a Assets) error {
	if err := checkReplicas(ctx, js, a); err != nil {
		return err
	}
	for _, sc := range a.Streams() {
		if err := each(ctx, func(ctx context.Context) error { _, err := js.CreateOrUpdateStream(ctx, sc); return err }); err != nil {
			return fmt.Errorf("stream %s: %w", sc.Name, err)
		}
	}
	for _, kc := range a.Buckets() {
		if err := each(ctx, func(ctx context.Context) error { _, err := js.CreateOrUpdateKeyValue(ctx, kc); return err }); err != nil {
			return fmt.Errorf("bucket %s: %w", kc.Bucket, err)
		}
	}
	for _, oc := range a.ObjectStores() {
		if err := each(ctx, func(ctx context.Context) error { _, err := js.CreateOrUpdateObjectStore(ctx, oc); return err }); err != nil {
			return fmt.Errorf("object store %s: %w", oc.Bucket, err)
		}
	}
	return nil
}

// assetTimeout bounds the declaration of one asset, so a request nobody
// answers (no leader yet) fails and is retried within the start budget.
const assetTimeout = 10 * time.Second

func each(ctx context.Context, fn func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, assetTimeout)
	defer cancel()
	return fn(ctx)
}
