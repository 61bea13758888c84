package jetstream_test

import (
	"context"
	"testing"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/jetstream"
	"github.com/switchyard/switchyard/jetstream/jstest"
)

// A store created by an earlier version (bucket "cache" declared as a
// plain KV bucket, without per-key TTLs) is updated in place at start.
func TestCacheBucketUpgradesInPlace(t *testing.T) {
	srv := jstest.Start(t)
	js, _ := natsjs.New(srv.Conn(t))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := js.CreateKeyValue(ctx, natsjs.KeyValueConfig{Bucket: "cache", History: 1, Storage: natsjs.FileStorage})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "default.kept", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := jetstream.Ensure(ctx, js, jetstream.ForConfig(config.Default())); err != nil {
		t.Fatalf("ensure over an earlier cache bucket: %v", err)
	}
	s, err := js.Stream(ctx, "KV_cache")
	if err != nil {
		t.Fatal(err)
	}
	if c := s.CachedInfo().Config; !c.AllowMsgTTL || c.Discard != natsjs.DiscardOld || c.MaxBytes != config.Default().Cache.SharedMaxBytes {
		t.Fatalf("not upgraded: %+v", c)
	}
	if e, err := kv.Get(ctx, "default.kept"); err != nil || string(e.Value()) != "v" {
		t.Fatalf("value lost: %v", err)
	}
}
