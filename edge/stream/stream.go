// Package stream is the stream processor edge (default port 8084): streams
// of vision, audio and parameter chunks with WebSocket subscriptions and
// backpressure. It serves /health and /metrics.
package stream

import (
	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/part"
)

// Part runs the stream edge.
var Part = part.EdgePart("stream", "stream processor edge (vision, audio and parameter chunks)",
	func(c *config.Config) (string, int) { return "STREAM_PORT", c.Server.StreamPort }, nil)
