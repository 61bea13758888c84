package jetstream

import (
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/subjects"
)

// brokerAssets declares the broker's persistent messages, dead letters and presence.
func brokerAssets(a Assets, c *config.Config) Set {
	// The server refuses a duplicate window longer than the stream's MaxAge.
	dup := 2 * time.Minute
	if r := c.Broker.Retention.D(); r > 0 && r < dup {
		dup = r
	}
	return Set{
		Streams: []natsjs.StreamConfig{
			{
				Name:        subjects.StreamBroker,
				Description: "Persistent broker messages: broker.persist.<service>.<topic>, until a connection of the service acks them",
				Subjects:    []string{subjects.RootBroker + ".persist.>"},
				Retention:   natsjs.WorkQueuePolicy,
				Storage:     natsjs.FileStorage,
				Replicas:    a.Replicas,
				MaxAge:      c.Broker.Retention.D(),
				MaxMsgSize:  a.MaxMsgSize,
				Discard:     natsjs.DiscardNew,
				MaxBytes:    c.Broker.MaxBytes,
				Duplicates:  dup,
			},
			{
				Name:        subjects.StreamBrokerDead,
				Description: "Broker dead letters: broker.dead.<service>.<topic>",
				Subjects:    []string{subjects.RootBroker + ".dead.>"},
				Retention:   natsjs.LimitsPolicy,
				Storage:     natsjs.FileStorage,
				Replicas:    a.Replicas,
				MaxAge:      c.Broker.Retention.D(),
				MaxMsgSize:  a.MaxMsgSize,
				Discard:     natsjs.DiscardOld,
				MaxBytes:    256 << 20,
				Duplicates:  dup,
			},
		},
		Buckets: []natsjs.KeyValueConfig{
			{Bucket: subjects.BucketServices, Description: "Broker presence by <service>.<node>, per-key TTL",
				Storage: natsjs.FileStorage, Replicas: a.Replicas, History: 1, LimitMarkerTTL: time.Minute},
		},
	}
}
