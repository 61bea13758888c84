package config

// Stream configures the stream processor: chunk limits, subscriptions and processing.
// Environment names start with STREAM_. Every field says what its zero value
// means; defaults sets the rest.
type Stream struct{}

func (x *Stream) defaults() {}

func (x *Stream) validate() error { return nil }
