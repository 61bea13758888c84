// Package microdisc asks NATS which micro services run: it publishes the
// micro protocol's discovery requests ($SRV.INFO, $SRV.STATS) and gathers
// every instance's answer within a time window. The lb and broker edges
// share it. Functions are safe for concurrent use; each call uses its own
// inbox subscription.
package microdisc

import (
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/switchyard/switchyard/subjects"
)

// Infos gathers $SRV.INFO from every micro service instance.
func Infos(nc *nats.Conn, timeout time.Duration) []micro.Info {
	var out []micro.Info
	Gather(nc, subjects.DiscoveryInfo, timeout, func(b []byte) {
		var i micro.Info
		if json.Unmarshal(b, &i) == nil {
			out = append(out, i)
		}
	})
	return out
}

// Stats gathers $SRV.STATS from every micro service instance.
func Stats(nc *nats.Conn, timeout time.Duration) []micro.Stats {
	var out []micro.Stats
	Gather(nc, subjects.DiscoveryStats, timeout, func(b []byte) {
		var s micro.Stats
		if json.Unmarshal(b, &s) == nil {
			out = append(out, s)
		}
	})
	return out
}

// Gather publishes a request on subject and calls each, on the calling
// goroutine, for every reply, until none has come for a fifth of timeout
// or timeout has passed. It gathers nothing when NATS refuses the request.
func Gather(nc *nats.Conn, subject string, timeout time.Duration, each func([]byte)) {
	inbox := nc.NewInbox()
	ch := make(chan *nats.Msg, 256)
	sub, err := nc.ChanSubscribe(inbox, ch)
	if err != nil {
		return
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc.PublishRequest(subject, inbox, nil); err != nil {
		return
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	idle := time.NewTimer(timeout)
	defer idle.Stop()
	for {
		select {
		case m := <-ch:
			each(m.Data)
			idle.Reset(timeout / 5)
		case <-idle.C:
			return
		case <-deadline.C:
			return
		}
	}
}
