package jetstream_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard/switchyard/jetstream"
)

func ExampleStartEmbedded() {
	dir, err := os.MkdirTemp("", "switchyard-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	log := slog.New(slog.DiscardHandler)
	emb, err := jetstream.StartEmbedded(jetstream.EmbeddedOptions{
		Host: "127.0.0.1", Port: 0, StoreDir: dir, MaxPayload: 9 << 20,
	}, log)
	if err != nil {
		panic(err)
	}
	defer emb.Shutdown()

	nc, err := jetstream.Connect("example", "", emb, log)
	if err != nil {
		panic(err)
	}
	defer nc.Close()
	js, err := natsjs.New(nc)
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = jetstream.Ensure(ctx, js, jetstream.Assets{Replicas: 1, MaxMsgSize: 9 << 20, JobTTL: 24 * time.Hour})
	fmt.Println("assets declared:", err == nil)
	fmt.Println("max payload at least 9 MiB:", nc.MaxPayload() >= 9<<20)
	// Output:
	// assets declared: true
	// max payload at least 9 MiB: true
}
