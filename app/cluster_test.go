package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard/switchyard/app"
	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/edge/lb"
	ijobs "github.com/switchyard/switchyard/internal/jobs"
	"github.com/switchyard/switchyard/jetstream"
	"github.com/switchyard/switchyard/jetstream/jstest"
	"github.com/switchyard/switchyard/part"
	"github.com/switchyard/switchyard/workers/jobs"
	"github.com/switchyard/switchyard/workers/proxy"
)

const clusterSecret = "s3cret-in-the-url"

// countingUpstream counts each job body it runs; sync calls are counted apart.
type countingUpstream struct {
	mu   sync.Mutex
	runs map[string]int
	sync atomic.Int64
}

func (u *countingUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/health" {
		return
	}
	b, _ := io.ReadAll(r.Body)
	time.Sleep(5 * time.Millisecond)
	if strings.HasPrefix(r.URL.Path, "/job") {
		u.mu.Lock()
		u.runs[string(b)]++
		u.mu.Unlock()
	} else {
		u.sync.Add(1)
	}
	_, _ = w.Write([]byte("ok"))
}

func (u *countingUpstream) count(token string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.runs[token]
}

// proc is one switchyard process of the test.
type proc struct {
	addrs map[string]net.Addr
	stop  func() error
}

func startProc(t *testing.T, cfg *config.Config, log *slog.Logger, parts ...part.Part) *proc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan map[string]net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- app.Run(ctx, app.Options{Config: cfg, Parts: parts, Log: log, Version: "test",
			Ready: func(a map[string]net.Addr) { ready <- a }})
	}()
	p := &proc{}
	select {
	case p.addrs = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("run: %v", err)
	}
	var once sync.Once
	var err error
	p.stop = func() error {
		once.Do(func() { cancel(); err = <-done })
		return err
	}
	t.Cleanup(func() { _ = p.stop() })
	return p
}

// syncResult is one synchronous request of the load.
type syncResult struct {
	start, end time.Time
	status     int
	code       string
}

// TestClusterChaos runs an lb edge and a worker process (proxy and job
// runners) on a 3-node JetStream cluster under steady sync and async
// load, and kills the JOBS leader, then the KV jobs leader, then the
// server the edge is connected to (each restarted before the next kill).
// Every job that got a 202 completes and runs exactly once at the
// upstream; sync errors are confined to requests around a kill and are
// answered well within their timeout; submits resume after each kill; the
// NATS password in NATS_URL never reaches the logs.
func TestClusterChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster chaos test")
	}
	cl := jstest.StartCluster(t, 3, jstest.ClusterOpts{User: "sy", Password: clusterSecret})
	// The edge connects through node E, the workers through node W; X is
	// the third. Leaders are moved to X before the first two kills, so the
	// kills hit what the test names and not the workers' own server.
	const E, W, X = 0, 1, 2
	url := func(i int) string {
		return fmt.Sprintf("nats://sy:%s@127.0.0.1:%d", clusterSecret, cl.ClientPort(i))
	}
	up := &countingUpstream{runs: map[string]int{}}
	ups := httptest.NewServer(up)
	defer ups.Close()

	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	base := func(natsURL string) *config.Config {
		cfg := config.Default()
		cfg.Server.Host = "127.0.0.1"
		cfg.Server.LBPort, cfg.Server.WorkerPort = 0, 0
		cfg.DataDir = t.TempDir()
		cfg.NATS.URL = natsURL
		cfg.NATS.Replicas = 3
		cfg.NATS.StartTimeout = config.Duration(90 * time.Second)
		cfg.Rust.VisionServiceURL = ups.URL
		cfg.Rust.RequestTimeout = config.Duration(20 * time.Second)
		cfg.Rust.HealthCheckInterval = config.Duration(time.Second)
		cfg.LB.JobTimeout = config.Duration(20 * time.Second)
		cfg.Services = map[string]config.Service{}
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	workers := startProc(t, base(url(W)), log.With("proc", "workers"), proxy.Part, jobs.Part)
	edgeProc := startProc(t, base(url(E)), log.With("proc", "edge"), lb.Part)
	_ = workers
	lbURL := "http://" + edgeProc.addrs["lb"].String()

	nc, err := nats.Connect(cl.URLs(), nats.Name("chaos-test"), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := natsjs.New(nc)
	store, err := ijobs.Open(context.Background(), js)
	if err != nil {
		t.Fatal(err)
	}
	quorum := jetstream.NewQuorumWatch(nc, jetstream.ForConfig(base(url(W))), nil, nil)

	// Steady load: sync calls and async submits.
	var (
		mu       sync.Mutex
		accepted = map[string]string{} // job id -> token
		syncs    []syncResult
		stopLoad = make(chan struct{})
		loadWG   sync.WaitGroup
		seq      atomic.Int64
	)
	client := &http.Client{Timeout: 60 * time.Second}
	submit := func() (int, string) {
		tok := fmt.Sprintf("job-%d", seq.Add(1))
		req, _ := http.NewRequest("POST", lbURL+"/vision/job", strings.NewReader(tok))
		req.Header.Set("Prefer", "respond-async")
		resp, err := client.Do(req)
		if err != nil {
			return -1, ""
		}
		defer resp.Body.Close()
		var v struct {
			ID string `json:"id"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&v)
		if resp.StatusCode == http.StatusAccepted {
			mu.Lock()
			accepted[v.ID] = tok
			mu.Unlock()
		}
		return resp.StatusCode, v.ID
	}
	for range 2 {
		loadWG.Add(1)
		go func() {
			defer loadWG.Done()
			for {
				select {
				case <-stopLoad:
					return
				default:
				}
				if st, _ := submit(); st != http.StatusAccepted {
					time.Sleep(50 * time.Millisecond)
				}
			}
		}()
	}
	for range 3 {
		loadWG.Add(1)
		go func() {
			defer loadWG.Done()
			for {
				select {
				case <-stopLoad:
					return
				default:
				}
				r := syncResult{start: time.Now()}
				resp, err := client.Post(lbURL+"/vision/sync", "text/plain", strings.NewReader("s"))
				if err != nil {
					r.status = -1
				} else {
					var body struct {
						Error struct{ Code string } `json:"error"`
					}
					_ = json.NewDecoder(resp.Body).Decode(&body)
					resp.Body.Close()
					r.status, r.code = resp.StatusCode, body.Error.Code
				}
				r.end = time.Now()
				mu.Lock()
				syncs = append(syncs, r)
				mu.Unlock()
				if r.status != http.StatusOK {
					time.Sleep(50 * time.Millisecond)
				}
			}
		}()
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			close(stopLoad)
			loadWG.Wait()
		}
	}
	defer stop()

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	healthy := func(what string) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			quorum.Poll(ctx)
			all := true
			for _, st := range quorum.Info().(map[string]jetstream.AssetState) {
				all = all && st.Quorum && len(st.Current) == 3
			}
			if all {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the cluster did not get every replica current: %v", what, quorum.Info())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	leaderOn := func(stream string, node int) {
		t.Helper()
		want := cl.Name(node)
		for deadline := time.Now().Add(60 * time.Second); ; {
			s, err := js.Stream(ctx, stream)
			if err == nil && s.CachedInfo().Cluster != nil && s.CachedInfo().Cluster.Leader == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("stream %s: leader not moved to %s", stream, want)
			}
			req := fmt.Sprintf(`{"placement":{"preferred":%q}}`, want)
			_, _ = nc.Request("$JS.API.STREAM.LEADER.STEPDOWN."+stream, []byte(req), 5*time.Second)
			time.Sleep(500 * time.Millisecond)
		}
	}
	var kills []time.Time
	killAndRecover := func(what string, node int) {
		t.Helper()
		healthy("before killing the " + what)
		time.Sleep(500 * time.Millisecond) // load runs on a healthy cluster
		at := time.Now()
		kills = append(kills, at)
		cl.Kill(node)
		// Submits resume: a new job is accepted (a generous bound).
		for deadline := at.Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			if st, _ := submit(); st == http.StatusAccepted {
				t.Logf("%s (%s) killed: submits resumed after %s", what, cl.Name(node), time.Since(at).Round(time.Millisecond))
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s killed: no submit accepted within 30s", what)
			}
		}
		time.Sleep(time.Second) // load on two nodes
		cl.Start(node)
	}

	healthy("at start")
	leaderOn("JOBS", X)
	killAndRecover("JOBS leader", X)
	healthy("after the JOBS leader came back")
	leaderOn("KV_jobs", X)
	killAndRecover("KV jobs leader", X)
	// The edge's own server: its connection drops and fails over.
	if !connectedTo(t, cl.Node(E).Server(), "-lb@") {
		t.Fatalf("the lb edge's connection is not on %s", cl.Name(E))
	}
	killAndRecover("edge's server", E)
	healthy("at the end")
	stop()

	// Every job that got a 202 completes, and ran exactly once.
	mu.Lock()
	ids := make(map[string]string, len(accepted))
	for k, v := range accepted {
		ids[k] = v
	}
	results := copyResults(syncs)
	mu.Unlock()
	if len(ids) < 20 {
		t.Fatalf("only %d jobs accepted: the load did not run", len(ids))
	}
	deadline := time.Now().Add(90 * time.Second)
	for id, tok := range ids {
		for {
			rec, err := store.GetLatest(ctx, id)
			if err == nil && rec.Status == ijobs.StatusDone {
				break
			}
			if err == nil && rec.Status == ijobs.StatusFailed {
				t.Errorf("job %s (%s) failed: %s %+v", id, tok, rec.ErrorCode, rec.LastError)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("job %s (%s) not done: %v %v", id, tok, rec, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if n := up.count(tok); n != 1 {
			t.Errorf("job %s (%s) ran %d times at the upstream, want 1", id, tok, n)
		}
	}
	up.mu.Lock()
	for tok, n := range up.runs {
		if n > 1 {
			t.Errorf("%s ran %d times", tok, n)
		}
	}
	up.mu.Unlock()

	// Sync errors: only around a kill, answered well within the 20 s timeout.
	var failed int
	for _, r := range results {
		if r.status == http.StatusOK {
			continue
		}
		failed++
		near := false
		for _, k := range kills {
			near = near || (r.end.After(k) && r.start.Before(k.Add(5*time.Second)))
		}
		if !near {
			t.Errorf("sync request failed away from any kill: %d %s (%s .. %s)", r.status, r.code, r.start.Format(time.StampMilli), r.end.Format(time.StampMilli))
		}
		if took := r.end.Sub(r.start); took > 10*time.Second {
			t.Errorf("sync request failed after %s: %d %s", took, r.status, r.code)
		}
		if r.status != 502 && r.status != 503 {
			t.Errorf("sync request failed with %d %s, want 502 outcome_unknown or 503", r.status, r.code)
		}
	}
	t.Logf("%d jobs accepted, %d sync requests (%d failed), %d sync calls at the upstream", len(ids), len(results), failed, up.sync.Load())

	if err := edgeProc.stop(); err != nil {
		t.Errorf("edge stop: %v", err)
	}
	if err := workers.stop(); err != nil && !errors.Is(err, jobs.ErrShutdownDeadline) {
		t.Errorf("workers stop: %v", err)
	}
	if strings.Contains(logs.String(), clusterSecret) {
		t.Errorf("the NATS password appears in the logs")
	}
	if !strings.Contains(logs.String(), "sy:xxxxx@") {
		t.Errorf("the ready line does not name the (redacted) NATS URL")
	}
}

func copyResults(s []syncResult) []syncResult { return append([]syncResult(nil), s...) }

// connectedTo reports whether srv has a client connection whose name contains part.
func connectedTo(t *testing.T, srv *server.Server, part string) bool {
	t.Helper()
	cz, err := srv.Connz(&server.ConnzOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cz.Conns {
		if strings.Contains(c.Name, part) {
			return true
		}
	}
	return false
}
