// Package broker is the message broker edge (default port 8081): a
// WebSocket per service, publishing and persistent delivery through
// JetStream, presence and discovery. It serves /health and /metrics.
package broker

import (
	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/part"
)

// Part runs the broker edge.
var Part = part.EdgePart("broker", "message broker edge (WebSocket per service, JetStream delivery)",
	func(c *config.Config) (string, int) { return "BROKER_PORT", c.Server.BrokerPort }, nil)
