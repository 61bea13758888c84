package jetstream

import (
	"context"
	"fmt"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard/switchyard/subjects"
)

// Assets sizes the declared streams and buckets.
type Assets struct {
	// Replicas of every stream and bucket (1 embedded, 3 in a cluster).
	Replicas int
	// MaxMsgSize bounds one message in every stream (the max body plus headers).
	MaxMsgSize int32
	// JobTTL is how long a job record and an unconsumed job are kept.
	JobTTL time.Duration
}

// Streams returns the declaration of every JetStream stream.
func (a Assets) Streams() []natsjs.StreamConfig {
	// The server refuses a duplicate window longer than the stream's MaxAge.
	jobsDup := 24 * time.Hour
	if a.JobTTL > 0 && a.JobTTL < jobsDup {
		jobsDup = a.JobTTL
	}
	return []natsjs.StreamConfig{
		{
			Name:        subjects.StreamJobs,
			Description: "Durable jobs: jobs.<service>.<tokens>, removed once a worker acks them",
			Subjects:    []string{subjects.RootJobs + ".>"},
			Retention:   natsjs.WorkQueuePolicy,
			Storage:     natsjs.FileStorage,
			Replicas:    a.Replicas,
			MaxAge:      a.JobTTL,
			MaxMsgSize:  a.MaxMsgSize,
			Discard:     natsjs.DiscardNew,
			MaxBytes:    4 << 30,
			Duplicates:  jobsDup,
		},
		{
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
		},
		{
			Name:        subjects.StreamBroker,
			Description: "Persistent broker messages: broker.svc.<service>.<topic>",
			Subjects:    []string{subjects.RootBroker + "." + subjects.RootService + ".>"},
			Retention:   natsjs.LimitsPolicy,
			Storage:     natsjs.FileStorage,
			Replicas:    a.Replicas,
			MaxAge:      7 * 24 * time.Hour,
			MaxMsgSize:  a.MaxMsgSize,
			Discard:     natsjs.DiscardOld,
			MaxBytes:    2 << 30,
			Duplicates:  2 * time.Minute,
		},
	}
}

// Buckets returns the declaration of every key-value bucket.
func (a Assets) Buckets() []natsjs.KeyValueConfig {
	return []natsjs.KeyValueConfig{
		{Bucket: subjects.BucketJobs, Description: "Job records by job id", TTL: a.JobTTL,
			Storage: natsjs.FileStorage, Replicas: a.Replicas, History: 1, MaxValueSize: a.MaxMsgSize},
		{Bucket: subjects.BucketStreams, Description: "Stream metadata by stream id",
			Storage: natsjs.FileStorage, Replicas: a.Replicas, History: 1},
		{Bucket: subjects.BucketServices, Description: "Broker presence by service",
			Storage: natsjs.FileStorage, Replicas: a.Replicas, History: 1, TTL: 0},
		{Bucket: subjects.BucketCache, Description: "Shared cache tier by <namespace>.<key>",
			Storage: natsjs.FileStorage, Replicas: a.Replicas, History: 1, MaxValueSize: a.MaxMsgSize},
	}
}

// Ensure creates or updates every declared stream and bucket. It is
// idempotent: running it again with the same Assets changes nothing.
func Ensure(ctx context.Context, js natsjs.JetStream, a Assets) error {
	for _, sc := range a.Streams() {
		if _, err := js.CreateOrUpdateStream(ctx, sc); err != nil {
			return fmt.Errorf("stream %s: %w", sc.Name, err)
		}
	}
	for _, kc := range a.Buckets() {
		if _, err := js.CreateOrUpdateKeyValue(ctx, kc); err != nil {
			return fmt.Errorf("bucket %s: %w", kc.Bucket, err)
		}
	}
	return nil
}

// JobsConsumer declares the durable pull consumer the job workers of one
// service share. Every delivery must be acked within ackWait (workers send
// progress heartbeats while they work); after maxDeliver attempts the job
// is given up.
func JobsConsumer(service string, ackWait time.Duration, maxDeliver int) (natsjs.ConsumerConfig, error) {
	name, err := subjects.JobsConsumer(service)
	if err != nil {
		return natsjs.ConsumerConfig{}, err
	}
	filter, err := subjects.JobsAll(service)
	if err != nil {
		return natsjs.ConsumerConfig{}, err
	}
	return natsjs.ConsumerConfig{
		Durable:       name,
		Description:   "Job workers of service " + service,
		FilterSubject: filter,
		AckPolicy:     natsjs.AckExplicitPolicy,
		AckWait:       ackWait,
		MaxDeliver:    maxDeliver,
		MaxAckPending: 256,
		DeliverPolicy: natsjs.DeliverAllPolicy,
	}, nil
}
