package jetstream

import (
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/subjects"
)

// jobsAssets declares the durable jobs: the JOBS work queue, the job
// records, and the object store of result bodies too large for a record.
func jobsAssets(a Assets, _ *config.Config) Set {
	// The server refuses a duplicate window longer than the stream's MaxAge.
	jobsDup := 24 * time.Hour
	if a.JobTTL > 0 && a.JobTTL < jobsDup {
		jobsDup = a.JobTTL
	}
	return Set{
		Streams: []natsjs.StreamConfig{{
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
		}},
		Buckets: []natsjs.KeyValueConfig{
			{Bucket: subjects.BucketJobs, Description: "Job records by job id", TTL: a.JobTTL,
				Storage: natsjs.FileStorage, Replicas: a.Replicas, History: 1, MaxValueSize: a.MaxMsgSize},
		},
		ObjectStores: []natsjs.ObjectStoreConfig{{
			Bucket:      subjects.ObjectStoreJobResults,
			Description: "Job result bodies too large for their record, by <job id>-<stream seq>-<attempt>",
			// It outlives the record that names it, which is written after it.
			TTL:      resultsTTL(a.JobTTL),
			MaxBytes: 4 << 30,
			Storage:  natsjs.FileStorage,
			Replicas: a.Replicas,
		}},
	}
}

// resultsTTL is the age at which a stored result body is removed: an hour
// more than its record's TTL (0: kept until deleted, like the record).
func resultsTTL(jobTTL time.Duration) time.Duration {
	if jobTTL <= 0 {
		return 0
	}
	return jobTTL + time.Hour
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
