package app_test

import (
	"testing"

	"go.uber.org/goleak"
)

// A clustered nats-server shut down while a stream is being placed leaves
// its flush loop and clock goroutine behind (nats-server's, not ours).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/nats-io/nats-server/v2/server.(*fileStore).flushStreamStateLoop"),
		goleak.IgnoreTopFunction("github.com/nats-io/nats-server/v2/server/ats.Register.func1"))
}
