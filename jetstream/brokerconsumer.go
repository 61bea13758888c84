package jetstream

import (
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard/switchyard/subjects"
)

// BrokerConsumer declares the durable pull consumer on StreamBroker that
// every broker edge holding connections of service shares. A delivery not
// acknowledged within ackWait is delivered again; after maxDeliver attempts
// the server publishes the max-deliveries advisory and the message becomes
// a dead letter. At most maxAckPending messages are unacknowledged at once.
// The consumer is removed after a week without any broker edge pulling.
func BrokerConsumer(service string, ackWait time.Duration, maxDeliver, maxAckPending int) (natsjs.ConsumerConfig, error) {
	name, err := subjects.BrokerConsumer(service)
	if err != nil {
		return natsjs.ConsumerConfig{}, err
	}
	filter, err := subjects.BrokerPersistentAll(service)
	if err != nil {
		return natsjs.ConsumerConfig{}, err
	}
	return natsjs.ConsumerConfig{
		Durable:           name,
		Description:       "Broker connections of service " + service,
		FilterSubject:     filter,
		AckPolicy:         natsjs.AckExplicitPolicy,
		AckWait:           ackWait,
		MaxDeliver:        maxDeliver,
		MaxAckPending:     maxAckPending,
		DeliverPolicy:     natsjs.DeliverAllPolicy,
		InactiveThreshold: 7 * 24 * time.Hour,
	}, nil
}
