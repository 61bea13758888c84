package jetstream_test

import (
	"fmt"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/jetstream"
)

// Connecting to an external server with a user and password; NATS_CREDS,
// NATS_NKEY, NATS_TOKEN and NATS_TLS_* work the same way.
func ExampleClientOptions() {
	cfg, err := config.Load("", map[string]string{
		"NATS_URL": "nats://nats.internal:4222", "NATS_USER": "switchyard", "NATS_PASSWORD": "s3cret",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	opts, err := jetstream.ClientOptions(&cfg.NATS)
	if err != nil {
		fmt.Println(err)
		return
	}
	// Every connection of the process then adds them:
	//   nc, err := jetstream.Connect(cfg.ClientName(), cfg.NATS.URL, nil, log, opts...)
	fmt.Println("auth:", jetstream.AuthMode(&cfg.NATS), "options:", len(opts))
	// Output: auth: user options: 2
}
