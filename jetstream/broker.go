package jetstream

import (
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/subjects"
)

// brokerAssets declares the broker's persistent messages and presence.
func brokerAssets(a Assets, _ *config.Config) Set {
	return Set{
		Streams: []natsjs.StreamConfig{{
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
		}},
		Buckets: []natsjs.KeyValueConfig{
			{Bucket: subjects.BucketServices, Description: "Broker presence by service",
				Storage: natsjs.FileStorage, Replicas: a.Replicas, History: 1, TTL: 0},
		},
	}
}
