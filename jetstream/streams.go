package jetstream

import (
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/subjects"
)

// streamsAssets declares the stream processor's chunks and metadata.
func streamsAssets(a Assets, _ *config.Config) Set {
	return Set{
		Streams: []natsjs.StreamConfig{{
			Name:        subjects.StreamStreams,
			Description: "Stream chunks: stream.<id>.in and stream.<id>.out, kept for replay",
			Subjects:    []string{subjects.RootStream + ".*.in", subjects.RootStream + ".*.out"},
			Retention:   natsjs.LimitsPolicy,
			Storage:     natsjs.FileStorage,
			Replicas:    a.Replicas,
			MaxAge:      time.Hour,
			MaxMsgSize:  a.MaxMsgSize,
			Discard:     natsjs.DiscardOld,
			MaxBytes:    2 << 30,
			Duplicates:  2 * time.Minute,
		}},
		Buckets: []natsjs.KeyValueConfig{
			{Bucket: subjects.BucketStreams, Description: "Stream metadata by stream id",
				Storage: natsjs.FileStorage, Replicas: a.Replicas, History: 1},
		},
	}
}
