package config

import "time"

// Broker configures the message broker edge: WebSocket limits and persistent delivery.
// Environment names start with BROKER_. Every field says what its zero value
// means; defaults sets the rest.
type Broker struct {
	// MaxFrameBytes bounds an inbound WebSocket frame (a larger one closes
	// the connection with 1009) and a POST /publish body (413).
	MaxFrameBytes int64 `yaml:"max_frame_bytes" env:"BROKER_MAX_FRAME_BYTES"`
	// QueueBytes bounds a connection's outbound queue; a connection past it
	// is closed with 4008 "slow".
	QueueBytes int `yaml:"queue_bytes" env:"BROKER_QUEUE_BYTES"`
	// ReadBufferSize and WriteBufferSize are each WebSocket's I/O buffers.
	ReadBufferSize  int `yaml:"read_buffer_size" env:"BROKER_READ_BUFFER_SIZE"`
	WriteBufferSize int `yaml:"write_buffer_size" env:"BROKER_WRITE_BUFFER_SIZE"`
	// PingInterval is how often the broker pings each connection; one
	// silent for 1.5 intervals is dropped.
	PingInterval Duration `yaml:"ping_interval" env:"BROKER_PING_INTERVAL"`
	// MaxConnections bounds the WebSockets of one broker process (503 beyond).
	MaxConnections int `yaml:"max_connections" env:"BROKER_MAX_CONNECTIONS"`
	// AckWait is how long a client has to ack a persistent message before
	// it is delivered again.
	AckWait Duration `yaml:"ack_wait" env:"BROKER_ACK_WAIT"`
	// MaxDeliver is the delivery attempts of a persistent message before it
	// becomes a dead letter.
	MaxDeliver int `yaml:"max_deliver" env:"BROKER_MAX_DELIVER"`
	// MaxAckPending bounds a service's unacknowledged persistent messages.
	MaxAckPending int `yaml:"max_ack_pending" env:"BROKER_MAX_ACK_PENDING"`
	// Retention is how long persistent messages and dead letters are kept.
	Retention Duration `yaml:"retention" env:"BROKER_RETENTION"`
	// MaxBytes bounds the stored persistent messages; when full, persistent
	// publishes are refused with 503.
	MaxBytes int64 `yaml:"max_bytes" env:"BROKER_MAX_BYTES"`
	// PresenceInterval is how often a broker rewrites its presence records.
	PresenceInterval Duration `yaml:"presence_interval" env:"BROKER_PRESENCE_INTERVAL"`
	// PresenceTTL is the per-key TTL of presence records: the records of a
	// broker that stopped heartbeating vanish after it.
	PresenceTTL Duration `yaml:"presence_ttl" env:"BROKER_PRESENCE_TTL"`
}

func (x *Broker) defaults() {
	*x = Broker{
		MaxFrameBytes:    64 << 10,
		QueueBytes:       1 << 20,
		ReadBufferSize:   4 << 10,
		WriteBufferSize:  4 << 10,
		PingInterval:     Duration(20 * time.Second),
		MaxConnections:   10000,
		AckWait:          Duration(30 * time.Second),
		MaxDeliver:       5,
		MaxAckPending:    1000,
		Retention:        Duration(7 * 24 * time.Hour),
		MaxBytes:         1 << 30,
		PresenceInterval: Duration(5 * time.Second),
		PresenceTTL:      Duration(15 * time.Second),
	}
}

func (x *Broker) validate() error {
	switch {
	case x.MaxFrameBytes < 256 || x.MaxFrameBytes > 64<<20:
		return invalid("BROKER_MAX_FRAME_BYTES (broker.max_frame_bytes)", x.MaxFrameBytes, "must be from 256 bytes to 64 MiB")
	case int64(x.QueueBytes) < x.MaxFrameBytes+1024:
		return invalid("BROKER_QUEUE_BYTES (broker.queue_bytes)", x.QueueBytes, "must exceed broker.max_frame_bytes by 1 KiB at least, or the largest message cannot be delivered")
	case x.ReadBufferSize < 0:
		return invalid("BROKER_READ_BUFFER_SIZE (broker.read_buffer_size)", x.ReadBufferSize, "must not be negative (0: 4 KiB)")
	case x.WriteBufferSize < 0:
		return invalid("BROKER_WRITE_BUFFER_SIZE (broker.write_buffer_size)", x.WriteBufferSize, "must not be negative (0: 4 KiB)")
	case x.MaxConnections < 1:
		return invalid("BROKER_MAX_CONNECTIONS (broker.max_connections)", x.MaxConnections, "must be at least 1")
	case x.MaxDeliver < 1:
		return invalid("BROKER_MAX_DELIVER (broker.max_deliver)", x.MaxDeliver, "must be at least 1")
	case x.MaxAckPending < 1:
		return invalid("BROKER_MAX_ACK_PENDING (broker.max_ack_pending)", x.MaxAckPending, "must be at least 1")
	case x.MaxBytes < 1<<20:
		return invalid("BROKER_MAX_BYTES (broker.max_bytes)", x.MaxBytes, "must be at least 1 MiB")
	case x.PresenceTTL.D() < time.Second:
		return invalid("BROKER_PRESENCE_TTL (broker.presence_ttl)", x.PresenceTTL, "must be at least 1s (the NATS per-key TTL minimum)")
	case x.PresenceTTL.D() <= x.PresenceInterval.D():
		return invalid("BROKER_PRESENCE_TTL (broker.presence_ttl)", x.PresenceTTL, "must exceed broker.presence_interval, or live records expire between heartbeats")
	}
	return positive(
		durationKey{"BROKER_PING_INTERVAL (broker.ping_interval)", x.PingInterval},
		durationKey{"BROKER_ACK_WAIT (broker.ack_wait)", x.AckWait},
		durationKey{"BROKER_RETENTION (broker.retention)", x.Retention},
		durationKey{"BROKER_PRESENCE_INTERVAL (broker.presence_interval)", x.PresenceInterval},
	)
}
