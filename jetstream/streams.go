package jetstream

import (
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/subjects"
)

// streamsAssets declares the stream processor's metadata bucket. Each
// stream's chunks live in a JetStream stream of its own, declared by
// StreamOf when the stream is created (see edge/stream's package doc for
// why one stream per id rather than one for all).
func streamsAssets(a Assets, _ *config.Config) Set {
	return Set{
		Buckets: []natsjs.KeyValueConfig{
			{Bucket: subjects.BucketStreams, Description: "Stream metadata by stream id",
				Storage: natsjs.FileStorage, Replicas: a.Replicas, History: 1},
		},
	}
}

// StreamDuplicates is the window in which a chunk's Nats-Msg-Id
// (X-Chunk-Id) is remembered, so a retried POST stores it once.
const StreamDuplicates = 2 * time.Minute

// StreamOf declares the JetStream stream STREAM_<id> of stream id: its
// chunks (stream.<id>.in) and results (stream.<id>.out) for replay, kept
// maxAge and up to maxBytes. When full it refuses new messages (the edge
// answers 507) rather than dropping old ones unseen.
func StreamOf(a Assets, id string, maxAge time.Duration, maxBytes int64) (natsjs.StreamConfig, error) {
	name, err := subjects.StreamOf(id)
	if err != nil {
		return natsjs.StreamConfig{}, err
	}
	all, err := subjects.StreamAll(id)
	if err != nil {
		return natsjs.StreamConfig{}, err
	}
	dup := StreamDuplicates
	if maxAge < dup {
		dup = maxAge
	}
	return natsjs.StreamConfig{
		Name:        name,
		Description: "Chunks and results of stream " + id,
		Subjects:    []string{all},
		Retention:   natsjs.LimitsPolicy,
		Storage:     natsjs.FileStorage,
		Replicas:    a.Replicas,
		MaxAge:      maxAge,
		MaxBytes:    maxBytes,
		MaxMsgSize:  a.MaxMsgSize,
		Discard:     natsjs.DiscardNew,
		Duplicates:  dup,
	}, nil
}

// StreamConsumer declares the durable pull consumer "process" on
// STREAM_<id> that the processing workers share: explicit acks, at most
// maxAckPending chunks in flight, maxDeliver attempts each.
func StreamConsumer(id string, ackWait time.Duration, maxDeliver, maxAckPending int) (natsjs.ConsumerConfig, error) {
	in, err := subjects.StreamIn(id)
	if err != nil {
		return natsjs.ConsumerConfig{}, err
	}
	return natsjs.ConsumerConfig{
		Durable:       subjects.StreamProcessConsumer,
		Description:   "Processing workers of stream " + id,
		FilterSubject: in,
		AckPolicy:     natsjs.AckExplicitPolicy,
		AckWait:       ackWait,
		MaxDeliver:    maxDeliver,
		MaxAckPending: maxAckPending,
		DeliverPolicy: natsjs.DeliverAllPolicy,
	}, nil
}
