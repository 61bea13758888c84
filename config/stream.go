package config

import "time"

// Stream configures the stream processor: chunk limits, subscriptions and processing.
// Environment names start with STREAM_. Every field says what its zero value
// means; defaults sets the rest.
type Stream struct {
	// MaxChunkBytes bounds one chunk (413 beyond). The default, 8 MiB less
	// 64 KiB, is the largest chunk the default NATS max_payload (8 MiB, the
	// most nats-server runs without a warning) carries; a larger value
	// raises the embedded server's max_payload to fit, e.g. 16 MiB.
	MaxChunkBytes int64 `yaml:"max_chunk_bytes" env:"STREAM_MAX_CHUNK_BYTES"`
	// VisionBufferBytes, AudioBufferBytes and ParametersBufferBytes bound
	// the outbound queue of one subscriber of a stream of that type, in
	// bytes; a subscriber whose queue passes it is closed with 4008 "slow".
	// Each must hold at least one chunk (max_chunk_bytes plus 1 KiB).
	VisionBufferBytes     int64 `yaml:"vision_buffer_bytes" env:"STREAM_VISION_BUFFER_BYTES"`
	AudioBufferBytes      int64 `yaml:"audio_buffer_bytes" env:"STREAM_AUDIO_BUFFER_BYTES"`
	ParametersBufferBytes int64 `yaml:"parameters_buffer_bytes" env:"STREAM_PARAMETERS_BUFFER_BYTES"`
	// SlowAfter is how long a subscriber's queue may stay too full for the
	// next chunk before the subscriber is closed with 4008 "slow". Until
	// then the subscriber simply reads from JetStream later.
	SlowAfter Duration `yaml:"slow_after" env:"STREAM_SLOW_AFTER"`
	// SubscriberWindow is how many chunks one subscriber pulls from
	// JetStream ahead of its WebSocket queue; the pull is also bounded by
	// the subscriber's buffer bytes.
	SubscriberWindow int `yaml:"subscriber_window" env:"STREAM_SUBSCRIBER_WINDOW"`
	// Concurrency is how many chunks of one stream a process hands to the
	// stream's processing service at once; 1 keeps results in chunk order.
	Concurrency int `yaml:"concurrency" env:"STREAM_CONCURRENCY"`
	// Workers bounds the chunks one process is processing at once, over all streams.
	Workers int `yaml:"workers" env:"STREAM_WORKERS"`
	// BacklogLimit is the processing backlog (chunks stored, not yet
	// processed) past which POST /stream/:id/chunk answers 429.
	BacklogLimit int `yaml:"backlog_limit" env:"STREAM_BACKLOG_LIMIT"`
	// ProcessTimeout bounds one call to a processing service.
	ProcessTimeout Duration `yaml:"process_timeout" env:"STREAM_PROCESS_TIMEOUT"`
	// MaxDeliver is how many attempts a chunk gets before it is dropped from processing.
	MaxDeliver int `yaml:"max_deliver" env:"STREAM_MAX_DELIVER"`
	// IdleTimeout closes a stream that received no chunk for this long
	// (subscribers get close code 4001 "idle"). Zero: never.
	IdleTimeout Duration `yaml:"idle_timeout" env:"STREAM_IDLE_TIMEOUT"`
	// MaxAge closes a stream this long after it was created (subscribers
	// get close code 4002 "expired"). Zero: never.
	MaxAge Duration `yaml:"max_age" env:"STREAM_MAX_AGE"`
	// RetentionMaxAge and RetentionMaxBytes are a new stream's retention
	// when its create request sets none.
	RetentionMaxAge   Duration `yaml:"retention_max_age" env:"STREAM_RETENTION_MAX_AGE"`
	RetentionMaxBytes int64    `yaml:"retention_max_bytes" env:"STREAM_RETENTION_MAX_BYTES"`
	// RetentionMaxAgeLimit and RetentionMaxBytesLimit cap what a create request may ask for.
	RetentionMaxAgeLimit   Duration `yaml:"retention_max_age_limit" env:"STREAM_RETENTION_MAX_AGE_LIMIT"`
	RetentionMaxBytesLimit int64    `yaml:"retention_max_bytes_limit" env:"STREAM_RETENTION_MAX_BYTES_LIMIT"`
	// MaxStreams bounds the open streams (507 beyond).
	MaxStreams int `yaml:"max_streams" env:"STREAM_MAX_STREAMS"`
}

func (x *Stream) defaults() {
	*x = Stream{
		MaxChunkBytes:          DefaultMaxBodyBytes,
		VisionBufferBytes:      32 << 20,
		AudioBufferBytes:       16 << 20,
		ParametersBufferBytes:  16 << 20,
		SlowAfter:              Duration(2 * time.Second),
		SubscriberWindow:       256,
		Concurrency:            1,
		Workers:                64,
		BacklogLimit:           256,
		ProcessTimeout:         Duration(30 * time.Second),
		MaxDeliver:             5,
		IdleTimeout:            Duration(10 * time.Minute),
		MaxAge:                 Duration(24 * time.Hour),
		RetentionMaxAge:        Duration(time.Hour),
		RetentionMaxBytes:      64 << 20,
		RetentionMaxAgeLimit:   Duration(7 * 24 * time.Hour),
		RetentionMaxBytesLimit: 1 << 30,
		MaxStreams:             1000,
	}
}

func (x *Stream) validate() error {
	if x.MaxChunkBytes < 1024 || x.MaxChunkBytes > 64<<20 {
		return invalid("STREAM_MAX_CHUNK_BYTES (stream.max_chunk_bytes)", x.MaxChunkBytes, "must be 1 KiB to 64 MiB (the NATS payload limit)")
	}
	for _, b := range []struct {
		key string
		val int64
	}{
		{"STREAM_VISION_BUFFER_BYTES (stream.vision_buffer_bytes)", x.VisionBufferBytes},
		{"STREAM_AUDIO_BUFFER_BYTES (stream.audio_buffer_bytes)", x.AudioBufferBytes},
		{"STREAM_PARAMETERS_BUFFER_BYTES (stream.parameters_buffer_bytes)", x.ParametersBufferBytes},
	} {
		if b.val < x.MaxChunkBytes+1024 {
			return invalid(b.key, b.val, "must hold one chunk: at least stream.max_chunk_bytes + 1024")
		}
	}
	ints := []struct {
		key      string
		val, min int
	}{
		{"STREAM_SUBSCRIBER_WINDOW (stream.subscriber_window)", x.SubscriberWindow, 1},
		{"STREAM_CONCURRENCY (stream.concurrency)", x.Concurrency, 1},
		{"STREAM_WORKERS (stream.workers)", x.Workers, 1},
		{"STREAM_BACKLOG_LIMIT (stream.backlog_limit)", x.BacklogLimit, 1},
		{"STREAM_MAX_DELIVER (stream.max_deliver)", x.MaxDeliver, 1},
		{"STREAM_MAX_STREAMS (stream.max_streams)", x.MaxStreams, 1},
	}
	for _, i := range ints {
		if i.val < i.min {
			return invalid(i.key, i.val, "must be at least 1")
		}
	}
	if x.IdleTimeout < 0 {
		return invalid("STREAM_IDLE_TIMEOUT (stream.idle_timeout)", x.IdleTimeout, "must not be negative (0 disables it)")
	}
	if x.MaxAge < 0 {
		return invalid("STREAM_MAX_AGE (stream.max_age)", x.MaxAge, "must not be negative (0 disables it)")
	}
	if x.RetentionMaxBytes < 1024 || x.RetentionMaxBytes > x.RetentionMaxBytesLimit {
		return invalid("STREAM_RETENTION_MAX_BYTES (stream.retention_max_bytes)", x.RetentionMaxBytes,
			"must be at least 1024 and at most stream.retention_max_bytes_limit")
	}
	if x.RetentionMaxAge < Duration(time.Second) || x.RetentionMaxAge > x.RetentionMaxAgeLimit {
		return invalid("STREAM_RETENTION_MAX_AGE (stream.retention_max_age)", x.RetentionMaxAge,
			"must be at least 1s and at most stream.retention_max_age_limit")
	}
	return positive(durationKey{"STREAM_PROCESS_TIMEOUT (stream.process_timeout)", x.ProcessTimeout},
		durationKey{"STREAM_SLOW_AFTER (stream.slow_after)", x.SlowAfter})
}

// MaxPayloadBytes is the largest NATS message the process needs: the
// larger of a request body and a stream chunk, plus room for headers.
func (c *Config) MaxPayloadBytes() int64 {
	return max(c.Server.MaxBodyBytes, c.Stream.MaxChunkBytes) + 64<<10
}
