// Package cache is the cache coordinator edge (default port 8083): a local
// tier and a shared tier (JetStream KV, or Redis when configured) with
// namespaces per service. It serves /health and /metrics.
package cache

import (
	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/part"
)

// Part runs the cache edge.
var Part = part.EdgePart("cache", "cache coordinator edge (local + shared tier)",
	func(c *config.Config) (string, int) { return "CACHE_PORT", c.Server.CachePort }, nil)
