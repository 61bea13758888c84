package main

import (
	"github.com/switchyard/switchyard/edge/broker"
	"github.com/switchyard/switchyard/edge/cache"
	"github.com/switchyard/switchyard/edge/lb"
	"github.com/switchyard/switchyard/edge/stream"
	"github.com/switchyard/switchyard/part"
	"github.com/switchyard/switchyard/workers/jobs"
	"github.com/switchyard/switchyard/workers/proxy"
)

// parts lists every edge and worker pool, in start order. `run` starts
// them all; each name is also a subcommand that starts that part alone.
func parts() []part.Part {
	return []part.Part{
		broker.Part,
		lb.Part,
		cache.Part,
		stream.Part,
		proxy.Part,
		jobs.Part,
	}
}
