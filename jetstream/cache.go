package jetstream

import (
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/subjects"
)

// cacheAssets declares the shared cache tier.
func cacheAssets(a Assets, _ *config.Config) Set {
	return Set{
		Buckets: []natsjs.KeyValueConfig{
			{Bucket: subjects.BucketCache, Description: "Shared cache tier by <namespace>.<key>",
				Storage: natsjs.FileStorage, Replicas: a.Replicas, History: 1, MaxValueSize: a.MaxMsgSize},
		},
	}
}
