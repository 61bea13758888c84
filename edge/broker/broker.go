package broker

import (
	"context"
	"time"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/edge"
	"github.com/switchyard/switchyard/edge/ws"
	"github.com/switchyard/switchyard/part"
)

// Part runs the broker edge.
var Part = part.EdgePart("broker", "message broker edge (WebSocket per service, JetStream delivery)",
	func(c *config.Config) (string, int) { return "BROKER_PORT", c.Server.BrokerPort }, build)

func build(s *edge.Server, d *part.Deps) ([]part.Component, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := New(ctx, OptionsFrom(d.Config.Broker, d))
	if err != nil {
		return nil, err
	}
	b.Register(s)
	return []part.Component{b}, nil
}

// OptionsFrom maps the broker's configuration section onto Options.
func OptionsFrom(c config.Broker, d *part.Deps) Options {
	return Options{
		NC: d.NC, JS: d.JS, Log: d.Log, Registry: d.Registry,
		WS: ws.Options{
			QueueBytes: c.QueueBytes, PingInterval: c.PingInterval.D(),
			ReadBufferSize: c.ReadBufferSize, WriteBufferSize: c.WriteBufferSize,
		},
		MaxFrameBytes:    c.MaxFrameBytes,
		MaxConnections:   c.MaxConnections,
		AckWait:          c.AckWait.D(),
		MaxDeliver:       c.MaxDeliver,
		MaxAckPending:    c.MaxAckPending,
		PresenceInterval: c.PresenceInterval.D(),
		PresenceTTL:      c.PresenceTTL.D(),
	}
}
