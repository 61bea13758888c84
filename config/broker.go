package config

// Broker configures the message broker edge: WebSocket limits and persistent delivery.
// Environment names start with BROKER_. Every field says what its zero value
// means; defaults sets the rest.
type Broker struct{}

func (x *Broker) defaults() {}

func (x *Broker) validate() error { return nil }
