package jetstream_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/jetstream"
	"github.com/switchyard/switchyard/jetstream/jstest"
)

// clusterAssets is every declared asset at replicas r.
func clusterAssets(r int, scaleUp bool) jetstream.Assets {
	cfg := config.Default()
	cfg.NATS.Replicas = r
	a := jetstream.ForConfig(cfg)
	a.ScaleUp = scaleUp
	return a
}

func clusterConn(t *testing.T, urls string) (*nats.Conn, natsjs.JetStream) {
	t.Helper()
	nc, err := nats.Connect(urls, nats.Name(t.Name()), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := natsjs.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// TestClusterStartBeforeLeader declares R3 assets while only one node of
// three runs: the start waits (retrying) and succeeds once the others join.
func TestClusterStartBeforeLeader(t *testing.T) {
	// A cluster of three of which only the first node is up.
	c3 := jstest.StartCluster(t, 3, jstest.ClusterOpts{})
	c3.Kill(1)
	c3.Kill(2)
	_, js := clusterConn(t, c3.URL(0))
	var logs syncBuf
	log := slog.New(slog.NewTextHandler(&logs, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var retries int
	var mu sync.Mutex
	done := make(chan error, 1)
	go func() {
		done <- jetstream.EnsureRetry(ctx, js, clusterAssets(3, false), log, func(string) { mu.Lock(); retries++; mu.Unlock() })
	}()
	// It must be waiting, not failed, while the cluster has no quorum.
	waitFor(t, 30*time.Second, "a retried attempt", func() bool { mu.Lock(); defer mu.Unlock(); return retries > 0 })
	select {
	case err := <-done:
		t.Fatalf("Ensure ended before the cluster formed: %v", err)
	default:
	}
	c3.Start(1)
	c3.Start(2)
	if err := <-done; err != nil {
		t.Fatalf("Ensure on a forming cluster: %v", err)
	}
	if !strings.Contains(logs.String(), "waiting for JetStream") {
		t.Errorf("no log line says what the start waits for:\n%s", logs.String())
	}
	si, err := js.Stream(ctx, "JOBS")
	if err != nil {
		t.Fatal(err)
	}
	if r := si.CachedInfo().Config.Replicas; r != 3 {
		t.Errorf("JOBS replicas %d, want 3", r)
	}
}

// TestClusterReplicaMismatch: R3 assets are never scaled down by a process
// configured for R1, and are raised from R1 only with ScaleUp.
func TestClusterReplicaMismatch(t *testing.T) {
	c := jstest.StartCluster(t, 3, jstest.ClusterOpts{})
	_, js := clusterConn(t, c.URLs())
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	log := slog.New(slog.DiscardHandler)
	if err := jetstream.EnsureRetry(ctx, js, clusterAssets(1, false), log, nil); err != nil {
		t.Fatalf("R1: %v", err)
	}
	err := jetstream.EnsureRetry(ctx, js, clusterAssets(3, false), log, nil)
	if !errors.Is(err, jetstream.ErrReplicaMismatch) || !strings.Contains(err.Error(), "has 1 replicas but NATS_REPLICAS=3") ||
		!strings.Contains(err.Error(), "-scale-up") {
		t.Fatalf("R1 -> R3 without scale-up: %v, want ErrReplicaMismatch naming both counts and the flag", err)
	}
	if err := jetstream.EnsureRetry(ctx, js, clusterAssets(3, true), log, nil); err != nil {
		t.Fatalf("R1 -> R3 with scale-up: %v", err)
	}
	for _, name := range []string{"JOBS", "KV_jobs", "OBJ_job-results"} {
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if r := s.CachedInfo().Config.Replicas; r != 3 {
			t.Errorf("%s replicas %d after scale-up, want 3", name, r)
		}
	}
	err = jetstream.Ensure(ctx, js, clusterAssets(1, true))
	if !errors.Is(err, jetstream.ErrReplicaMismatch) || !strings.Contains(err.Error(), "has 3 replicas but NATS_REPLICAS=1: refusing to scale it down") {
		t.Fatalf("R3 -> R1: %v, want a refused scale-down", err)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("mismatch error spans lines: %q", err)
	}
	s, _ := js.Stream(ctx, "JOBS")
	if r := s.CachedInfo().Config.Replicas; r != 3 {
		t.Errorf("JOBS replicas %d after a refused scale-down, want 3", r)
	}
}

// TestClusterQuorumWatch: the check fails soon after two of three nodes
// die and passes again once they are back; the state names the leader.
func TestClusterQuorumWatch(t *testing.T) {
	c := jstest.StartCluster(t, 3, jstest.ClusterOpts{User: "sy", Password: "routes-and-clients"})
	nc, js := clusterConn(t, c.URLs())
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	a := clusterAssets(3, false)
	if err := jetstream.EnsureRetry(ctx, js, a, slog.New(slog.DiscardHandler), nil); err != nil {
		t.Fatal(err)
	}
	q := jetstream.NewQuorumWatch(nc, a, nil, slog.New(slog.DiscardHandler))
	runDone := make(chan error, 1)
	go func() { runDone <- q.Run(ctx) }()
	defer func() { _ = q.Shutdown(context.Background()); <-runDone }()
	waitFor(t, 30*time.Second, "quorum on every asset", func() bool { return q.Check(ctx) == nil })
	st := q.Info().(map[string]jetstream.AssetState)["JOBS"]
	if st.Leader == "" || len(st.Current) < 2 || st.Replicas != 3 {
		t.Fatalf("JOBS state %+v, want a leader and current replicas", st)
	}
	// One node down: still a quorum.
	c.Kill(2)
	time.Sleep(2 * q.Interval)
	// Two down: no quorum. The client stays on node 1, the only one left.
	c.Kill(1)
	lost := time.Now()
	waitFor(t, 10*time.Second, "the check to fail", func() bool { return q.Check(ctx) != nil })
	t.Logf("quorum loss seen after %s", time.Since(lost).Round(time.Millisecond))
	c.Start(1)
	waitFor(t, 60*time.Second, "the check to pass again", func() bool { return q.Check(ctx) == nil })
}

// TestEmbeddedClusterRoutesNeedCredentialsWhenExposed: a cluster port
// beyond loopback without credentials is refused, as the client port is.
func TestEmbeddedClusterRoutesNeedCredentialsWhenExposed(t *testing.T) {
	_, err := jetstream.StartEmbedded(jetstream.EmbeddedOptions{Host: "0.0.0.0", Port: -1, StoreDir: t.TempDir(), ServerName: "x",
		Cluster: jetstream.ClusterOptions{Port: 1, Routes: []*url.URL{{Scheme: "nats-route", Host: "127.0.0.1:1"}}}}, nil)
	if !errors.Is(err, jetstream.ErrRoutesExposedWithoutAuth) {
		t.Fatalf("exposed routes without credentials: %v, want ErrRoutesExposedWithoutAuth", err)
	}
}

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	for end := time.Now().Add(d); !ok(); {
		if time.Now().After(end) {
			t.Fatalf("no %s within %s", what, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestConnectRetryRedactsPassword: a start that cannot connect retries,
// logs what it waits for, and neither the log nor the error shows the
// password of NATS_URL.
func TestConnectRetryRedactsPassword(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close() // nothing listens there now
	const secret = "pa55-in-url"
	var logs syncBuf
	var retries int
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err = jetstream.ConnectRetry(ctx, "t", "nats://u:"+secret+"@"+addr, nil, slog.New(slog.NewTextHandler(&logs, nil)),
		func(string) { retries++ }, nats.Timeout(200*time.Millisecond))
	if err == nil {
		t.Fatal("connected to a closed port")
	}
	if retries == 0 || !strings.Contains(logs.String(), "waiting for NATS") {
		t.Errorf("no retry logged: %d retries, logs %s", retries, logs.String())
	}
	if strings.Contains(err.Error(), secret) || strings.Contains(logs.String(), secret) {
		t.Errorf("the password shows: err %v, logs %s", err, logs.String())
	}
	if !strings.Contains(err.Error(), "NATS_START_TIMEOUT") {
		t.Errorf("error %v does not name the start budget", err)
	}
}
