package jetstream_test

import (
	"testing"

	"go.uber.org/goleak"
)

// A clustered nats-server that is shut down while a stream is still being
// placed leaves the stream's flush loop and its clock goroutine behind
// (nats-server's own, not ours); the cluster tests shut nodes down under load.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/nats-io/nats-server/v2/server.(*fileStore).flushStreamStateLoop"),
		goleak.IgnoreTopFunction("github.com/nats-io/nats-server/v2/server/ats.Register.func1"))
}
