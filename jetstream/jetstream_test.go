package jetstream_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/jetstream"
	"github.com/switchyard/switchyard/jetstream/jstest"
	"github.com/switchyard/switchyard/subjects"
)

var testAssets = jetstream.Assets{Replicas: 1, MaxMsgSize: 1 << 20, JobTTL: time.Hour}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newJS(t *testing.T, nc *nats.Conn) natsjs.JetStream {
	t.Helper()
	js, err := natsjs.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// snapshot returns the server's view of every declared stream and of the
// streams backing every declared bucket, by name.
func snapshot(t *testing.T, ctx context.Context, js natsjs.JetStream, a jetstream.Assets) map[string]natsjs.StreamInfo {
	t.Helper()
	out := map[string]natsjs.StreamInfo{}
	names := []string{}
	for _, sc := range a.Streams() {
		names = append(names, sc.Name)
	}
	for _, kc := range a.Buckets() {
		names = append(names, "KV_"+kc.Bucket)
	}
	for _, n := range names {
		s, err := js.Stream(ctx, n)
		if err != nil {
			t.Fatalf("stream %s: %v", n, err)
		}
		out[n] = *s.CachedInfo()
	}
	return out
}

func TestEnsureIdempotent(t *testing.T) {
	ns := jstest.Start(t)
	js := newJS(t, ns.Conn(t))
	ctx := ctxT(t)

	if err := jetstream.Ensure(ctx, js, testAssets); err != nil {
		t.Fatalf("first Ensure: %v", err)
	}
	first := snapshot(t, ctx, js, testAssets)
	if err := jetstream.Ensure(ctx, js, testAssets); err != nil {
		t.Fatalf("second Ensure: %v", err)
	}
	second := snapshot(t, ctx, js, testAssets)

	if len(first) != len(testAssets.Streams())+len(testAssets.Buckets()) {
		t.Fatalf("got %d streams, want one per stream and bucket", len(first))
	}
	for name, a := range first {
		b := second[name]
		if !reflect.DeepEqual(a.Config, b.Config) {
			t.Errorf("%s: config changed by the second Ensure:\n first %+v\nsecond %+v", name, a.Config, b.Config)
		}
		if !a.Created.Equal(b.Created) {
			t.Errorf("%s: recreated by the second Ensure (created %v then %v)", name, a.Created, b.Created)
		}
	}

	for _, want := range testAssets.Streams() {
		got := second[want.Name].Config
		if got.Replicas != 1 {
			t.Errorf("%s: replicas %d, want 1", want.Name, got.Replicas)
		}
		if !reflect.DeepEqual(got.Subjects, want.Subjects) || got.Retention != want.Retention ||
			got.Storage != want.Storage || got.MaxAge != want.MaxAge || got.MaxMsgSize != want.MaxMsgSize ||
			got.Discard != want.Discard || got.MaxBytes != want.MaxBytes || got.Duplicates != want.Duplicates ||
			got.Description != want.Description {
			t.Errorf("%s: server config differs from the declaration:\n got %+v\nwant %+v", want.Name, got, want)
		}
	}
	for _, want := range testAssets.Buckets() {
		kv, err := js.KeyValue(ctx, want.Bucket)
		if err != nil {
			t.Fatalf("bucket %s: %v", want.Bucket, err)
		}
		st, err := kv.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.TTL() != want.TTL || st.History() != int64(want.History) {
			t.Errorf("bucket %s: ttl %v history %d, want %v %d", want.Bucket, st.TTL(), st.History(), want.TTL, want.History)
		}
		sc := second["KV_"+want.Bucket].Config
		if sc.Replicas != 1 || sc.Storage != want.Storage {
			t.Errorf("bucket %s: replicas %d storage %v, want 1 %v", want.Bucket, sc.Replicas, sc.Storage, want.Storage)
		}
		wantSize := want.MaxValueSize
		if wantSize == 0 {
			wantSize = -1
		}
		if sc.MaxMsgSize != wantSize {
			t.Errorf("bucket %s: max value size %d, want %d", want.Bucket, sc.MaxMsgSize, wantSize)
		}
	}
}

func TestEnsureUpdatesChangedAssets(t *testing.T) {
	ns := jstest.Start(t)
	js := newJS(t, ns.Conn(t))
	ctx := ctxT(t)
	if err := jetstream.Ensure(ctx, js, testAssets); err != nil {
		t.Fatal(err)
	}
	bigger := testAssets
	bigger.MaxMsgSize = 2 << 20
	bigger.JobTTL = 2 * time.Hour
	if err := jetstream.Ensure(ctx, js, bigger); err != nil {
		t.Fatalf("Ensure with changed assets: %v", err)
	}
	got := snapshot(t, ctx, js, bigger)
	if c := got[subjects.StreamJobs].Config; c.MaxMsgSize != 2<<20 || c.MaxAge != 2*time.Hour {
		t.Errorf("JOBS not updated: max msg size %d, max age %v", c.MaxMsgSize, c.MaxAge)
	}
	if c := got["KV_"+subjects.BucketJobs].Config; c.MaxMsgSize != 2<<20 || c.MaxAge != 2*time.Hour {
		t.Errorf("jobs bucket not updated: max value size %d, ttl %v", c.MaxMsgSize, c.MaxAge)
	}
}

func TestJobsConsumer(t *testing.T) {
	cc, err := jetstream.JobsConsumer("orders", 30*time.Second, 5)
	if err != nil {
		t.Fatal(err)
	}
	want := natsjs.ConsumerConfig{
		Durable:       "jobs-orders",
		Description:   "Job workers of service orders",
		FilterSubject: "jobs.orders.>",
		AckPolicy:     natsjs.AckExplicitPolicy,
		AckWait:       30 * time.Second,
		MaxDeliver:    5,
		MaxAckPending: 256,
		DeliverPolicy: natsjs.DeliverAllPolicy,
	}
	if !reflect.DeepEqual(cc, want) {
		t.Fatalf("JobsConsumer:\n got %+v\nwant %+v", cc, want)
	}

	// The declaration is accepted by a real server on the declared stream,
	// and declaring it again changes nothing.
	ns := jstest.Start(t)
	js := newJS(t, ns.Conn(t))
	ctx := ctxT(t)
	if err := jetstream.Ensure(ctx, js, testAssets); err != nil {
		t.Fatal(err)
	}
	c1, err := js.CreateOrUpdateConsumer(ctx, subjects.StreamJobs, cc)
	if err != nil {
		t.Fatalf("create consumer: %v", err)
	}
	c2, err := js.CreateOrUpdateConsumer(ctx, subjects.StreamJobs, cc)
	if err != nil {
		t.Fatalf("create consumer again: %v", err)
	}
	got := c2.CachedInfo().Config
	if got.Durable != want.Durable || got.FilterSubject != want.FilterSubject || got.AckPolicy != want.AckPolicy ||
		got.AckWait != want.AckWait || got.MaxDeliver != want.MaxDeliver || got.MaxAckPending != want.MaxAckPending {
		t.Errorf("server consumer config %+v, want %+v", got, want)
	}
	if !c1.CachedInfo().Created.Equal(c2.CachedInfo().Created) {
		t.Error("second declaration recreated the consumer")
	}
}

func TestJobsConsumerInvalidService(t *testing.T) {
	for _, svc := range []string{"", "a.b", "a b", "a*", strings.Repeat("x", 65)} {
		t.Run(strconv.Quote(svc), func(t *testing.T) {
			_, err := jetstream.JobsConsumer(svc, time.Second, 1)
			if !errors.Is(err, subjects.ErrInvalid) {
				t.Fatalf("JobsConsumer(%q) error %v, want %v", svc, err, subjects.ErrInvalid)
			}
		})
	}
}

func TestStartEmbeddedPortInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	emb, err := jetstream.StartEmbedded(jetstream.EmbeddedOptions{
		Host: "127.0.0.1", Port: port, StoreDir: t.TempDir(),
	}, discard())
	if err == nil {
		emb.Shutdown()
		t.Fatal("StartEmbedded on a taken port succeeded")
	}
	if !errors.Is(err, jetstream.ErrPortInUse) {
		t.Fatalf("error %v does not wrap ErrPortInUse", err)
	}
	if !strings.Contains(err.Error(), strconv.Itoa(port)) {
		t.Errorf("error %q does not name port %d", err, port)
	}
}

func TestRepoNATSConfParses(t *testing.T) {
	opts, err := server.ProcessConfigFile("../nats.conf")
	if err != nil {
		t.Fatalf("../nats.conf: %v", err)
	}
	if opts.MaxPayload < 8<<20+64<<10 {
		t.Errorf("max_payload %d is below the 8 MiB body limit plus 64 KiB of headers", opts.MaxPayload)
	}
}

func writeConf(t *testing.T, body string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "nats.conf")
	if err := os.WriteFile(f, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestStartEmbeddedConfigFile(t *testing.T) {
	store := t.TempDir()
	tests := []struct {
		name string
		conf string
	}{
		// The file leaves the port unset: EmbeddedOptions.Port (0, random) applies.
		{"port unset", "server_name: from-file\nhost: 127.0.0.1\nmax_payload: 2MB\njetstream { store_dir: %q }\n"},
		// nats-server's own "random port" in the file still opens a client port.
		{"port -1", "server_name: from-file\nlisten: 127.0.0.1:-1\nmax_payload: 2MB\njetstream { store_dir: %q }\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conf := writeConf(t, fmt.Sprintf(tt.conf, store))
			emb, err := jetstream.StartEmbedded(jetstream.EmbeddedOptions{
				ConfigFile: conf, StoreDir: t.TempDir(), ServerName: "from-options", MaxPayload: 1 << 20,
			}, discard())
			if err != nil {
				t.Fatalf("StartEmbedded: %v", err)
			}
			defer emb.Shutdown()
			if got := emb.Server().Name(); got != "from-file" {
				t.Errorf("server name %q, want the file's", got)
			}
			if got := emb.StoreDir(); !strings.HasPrefix(got, store) {
				t.Errorf("store dir %q, want under the file's %q", got, store)
			}
			// Over TCP, not in-process: the client port is open.
			nc, err := nats.Connect(emb.ClientURL())
			if err != nil {
				t.Fatalf("connect to %s: %v", emb.ClientURL(), err)
			}
			defer nc.Close()
			if got := nc.MaxPayload(); got != 2<<20 {
				t.Errorf("max payload %d, want the file's 2 MiB (larger than requested)", got)
			}
			if _, err := newJS(t, nc).AccountInfo(ctxT(t)); err != nil {
				t.Errorf("JetStream not enabled: %v", err)
			}
		})
	}
}

func TestStartEmbeddedBadConfigFile(t *testing.T) {
	for name, path := range map[string]string{
		"missing": filepath.Join(t.TempDir(), "nope.conf"),
		"invalid": writeConf(t, "port: {{{\n"),
	} {
		t.Run(name, func(t *testing.T) {
			emb, err := jetstream.StartEmbedded(jetstream.EmbeddedOptions{ConfigFile: path, StoreDir: t.TempDir()}, discard())
			if err == nil {
				emb.Shutdown()
				t.Fatal("StartEmbedded with a bad config file succeeded")
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
}

func TestStartEmbeddedMaxPayload(t *testing.T) {
	const want = 12 << 20
	emb, err := jetstream.StartEmbedded(jetstream.EmbeddedOptions{
		Host: "127.0.0.1", StoreDir: t.TempDir(), MaxPayload: want,
	}, discard())
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Shutdown()
	nc, err := nats.Connect(emb.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if got := nc.MaxPayload(); got < want {
		t.Fatalf("max payload %d, want at least %d", got, want)
	}
	// A message of that size really passes: max_pending was raised too.
	sub, err := nc.SubscribeSync("big")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Publish("big", make([]byte, want-1024)); err != nil {
		t.Fatal(err)
	}
	m, err := sub.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatalf("large message: %v", err)
	}
	if len(m.Data) != want-1024 {
		t.Fatalf("got %d bytes", len(m.Data))
	}
}

// Acknowledged writes survive a restart on the same store.
func TestPersistenceAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	ctx := ctxT(t)
	ns := jstest.StartIn(t, dir)
	nc := ns.Conn(t)
	js := newJS(t, nc)
	if err := jetstream.Ensure(ctx, js, testAssets); err != nil {
		t.Fatal(err)
	}
	subj := "jobs.persist.run"
	ack, err := js.Publish(ctx, subj, []byte("job-payload"), natsjs.WithMsgID("m-1"))
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	if ack.Stream != subjects.StreamJobs {
		t.Fatalf("acked by stream %q, want %q", ack.Stream, subjects.StreamJobs)
	}
	kv, err := js.KeyValue(ctx, subjects.BucketJobs)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "job1", []byte("record")); err != nil {
		t.Fatal(err)
	}
	nc.Close()
	ns.Shutdown()

	ns2 := jstest.StartIn(t, dir)
	js2 := newJS(t, ns2.Conn(t))
	s, err := js2.Stream(ctx, subjects.StreamJobs)
	if err != nil {
		t.Fatalf("JOBS after restart: %v", err)
	}
	raw, err := s.GetMsg(ctx, ack.Sequence)
	if err != nil {
		t.Fatalf("message %d after restart: %v", ack.Sequence, err)
	}
	if raw.Subject != subj || string(raw.Data) != "job-payload" {
		t.Errorf("after restart: %s %q", raw.Subject, raw.Data)
	}
	kv2, err := js2.KeyValue(ctx, subjects.BucketJobs)
	if err != nil {
		t.Fatalf("bucket after restart: %v", err)
	}
	e, err := kv2.Get(ctx, "job1")
	if err != nil {
		t.Fatalf("key after restart: %v", err)
	}
	if string(e.Value()) != "record" {
		t.Errorf("key after restart: %q", e.Value())
	}
	// Ensure on a restarted server keeps the data.
	if err := jetstream.Ensure(ctx, js2, testAssets); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetMsg(ctx, ack.Sequence); err != nil {
		t.Errorf("message lost by Ensure after restart: %v", err)
	}
}

func TestConnectInProcess(t *testing.T) {
	emb, err := jetstream.StartEmbedded(jetstream.EmbeddedOptions{Port: -1, StoreDir: t.TempDir()}, discard())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emb.Shutdown)
	if emb.Server().Addr() != nil {
		t.Errorf("port -1 opened a client port: %v", emb.Server().Addr())
	}
	nc, err := jetstream.Connect("inproc", "nats://127.0.0.1:1", emb, discard())
	if err != nil {
		t.Fatalf("Connect in-process: %v", err)
	}
	t.Cleanup(nc.Close)
	sub, err := nc.Subscribe("svc.echo", func(m *nats.Msg) { _ = m.Respond(append([]byte("re:"), m.Data...)) })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	resp, err := nc.Request("svc.echo", []byte("hi"), 5*time.Second)
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	if string(resp.Data) != "re:hi" {
		t.Fatalf("reply %q", resp.Data)
	}
	if _, err := newJS(t, nc).AccountInfo(ctxT(t)); err != nil {
		t.Errorf("JetStream in-process: %v", err)
	}
}

func TestConnectURL(t *testing.T) {
	ns := jstest.Start(t)
	nc, err := jetstream.Connect("tcp", ns.URL, nil, discard())
	if err != nil {
		t.Fatalf("Connect %s: %v", ns.URL, err)
	}
	defer nc.Close()
	if !nc.IsConnected() {
		t.Fatal("not connected")
	}
}

func TestConnectDeadURL(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "nats://" + l.Addr().String()
	l.Close()
	nc, err := jetstream.Connect("dead", url, nil, discard())
	if err == nil {
		nc.Close()
		t.Fatal("Connect to a dead URL succeeded")
	}
	if !errors.Is(err, nats.ErrNoServers) {
		t.Errorf("error %v, want it to wrap %v", err, nats.ErrNoServers)
	}
	if !strings.Contains(err.Error(), url) {
		t.Errorf("error %q does not name the URL", err)
	}
}

// Every JobTTL the config accepts gives declarations the server accepts
// (a duplicate window never exceeds a stream's max age).
func TestEnsureJobTTL(t *testing.T) {
	ns := jstest.Start(t)
	js := newJS(t, ns.Conn(t))
	ctx := ctxT(t)
	for _, ttl := range []time.Duration{time.Minute, time.Hour, 24 * time.Hour, 48 * time.Hour, 0} {
		t.Run(ttl.String(), func(t *testing.T) {
			a := jetstream.Assets{Replicas: 1, MaxMsgSize: 1 << 20, JobTTL: ttl}
			for _, sc := range a.Streams() {
				if sc.MaxAge > 0 && sc.Duplicates > sc.MaxAge {
					t.Errorf("%s: duplicate window %v exceeds max age %v", sc.Name, sc.Duplicates, sc.MaxAge)
				}
			}
			if err := jetstream.Ensure(ctx, js, a); err != nil {
				t.Fatalf("Ensure: %v", err)
			}
			s, err := js.Stream(ctx, subjects.StreamJobs)
			if err != nil {
				t.Fatal(err)
			}
			if got := s.CachedInfo().Config.MaxAge; got != ttl {
				t.Errorf("JOBS max age %v, want %v", got, ttl)
			}
		})
	}
}

// warnRecorder counts the log records at warn and above.
type warnRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnRecorder) Enabled(_ context.Context, l slog.Level) bool { return true }
func (w *warnRecorder) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		w.mu.Lock()
		w.msgs = append(w.msgs, r.Message)
		w.mu.Unlock()
	}
	return nil
}
func (w *warnRecorder) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w *warnRecorder) WithGroup(string) slog.Handler      { return w }

// A default start logs no warning: the default body limit keeps
// max_payload at the 8 MiB nats-server recommends, and the server's
// banner is debug output.
func TestDefaultEmbeddedStartLogsNoWarning(t *testing.T) {
	rec := &warnRecorder{}
	a := jetstream.ForConfig(config.Default())
	emb, err := jetstream.StartEmbedded(jetstream.EmbeddedOptions{
		Host: "127.0.0.1", Port: 0, StoreDir: t.TempDir(), MaxPayload: a.MaxMsgSize, ServerName: "quiet",
	}, slog.New(rec))
	if err != nil {
		t.Fatal(err)
	}
	emb.Shutdown()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.msgs) > 0 {
		t.Errorf("a default start logged warnings: %q", rec.msgs)
	}
}

// A store directory that cannot be created fails at once, naming the cause.
func TestEmbeddedBadStoreDirNamesCause(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := jetstream.StartEmbedded(jetstream.EmbeddedOptions{
		Host: "127.0.0.1", Port: 0, StoreDir: filepath.Join(file, "store"), ServerName: "bad",
	}, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Fatalf("err = %v, want the store error naming its cause", err)
	}
}
