package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/switchyard/switchyard/app"
	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/part"
	"github.com/switchyard/switchyard/subjects"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testConfig is the default configuration on random loopback ports.
func testConfig(t *testing.T) *config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.Server.Host = "127.0.0.1"
	cfg.Server.BrokerPort, cfg.Server.LBPort, cfg.Server.CachePort, cfg.Server.StreamPort = 0, 0, 0, 0
	cfg.NATS.Port = 0
	cfg.DataDir = t.TempDir()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

type running struct {
	addrs map[string]net.Addr
	stop  func() error
}

// start runs every part in-process and stops it in t.Cleanup.
func start(t *testing.T, cfg *config.Config) *running {
	t.Helper()
	return startParts(t, cfg, parts()...)
}

// startParts runs the given parts in-process and stops them in t.Cleanup.
func startParts(t *testing.T, cfg *config.Config, ps ...part.Part) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan map[string]net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- app.Run(ctx, app.Options{
			Config: cfg, Parts: ps, Log: slog.New(slog.DiscardHandler), Version: "test",
			Ready: func(a map[string]net.Addr) { ready <- a },
		})
	}()
	r := &running{}
	select {
	case r.addrs = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("run: %v", err)
	case <-time.After(60 * time.Second):
		cancel()
		t.Fatal("not ready within 60s")
	}
	var stopped bool
	var stopErr error
	r.stop = func() error {
		if !stopped {
			stopped = true
			cancel()
			stopErr = <-done
		}
		return stopErr
	}
	t.Cleanup(func() { _ = r.stop() })
	return r
}

func (r *running) url(part, path string) string {
	return "http://" + r.addrs[part].String() + path
}

func TestRunAllEdgesHealthyWithMetrics(t *testing.T) {
	r := start(t, testConfig(t))
	// Readiness checks (the stream records, say) may take a moment after
	// the start: wait until the first edge is ready.
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(r.url("broker", "/health"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("broker /health = %d for 20s", resp.StatusCode)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, edge := range []string{"broker", "lb", "cache", "stream"} {
		resp, err := http.Get(r.url(edge, "/health"))
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Status  string `json:"status"`
			Service string `json:"service"`
			Version string `json:"version"`
			NATS    struct {
				Connected bool
				URL       string
			}
			Checks map[string]string `json:"checks"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != 200 || body.Status != "ok" || body.Service != edge || body.Version != "test" ||
			!body.NATS.Connected || body.Checks["jetstream"] != "ok" {
			t.Errorf("%s /health = %d %+v", edge, resp.StatusCode, body)
		}
		// The embedded server runs on a random port: /health names it.
		if _, port, _ := net.SplitHostPort(r.addrs["nats"].String()); !strings.HasSuffix(body.NATS.URL, ":"+port) {
			t.Errorf("%s /health reports NATS at %q, the server listens on %s", edge, body.NATS.URL, r.addrs["nats"])
		}
	}
	scrapeOnce(t, r, []string{"broker", "lb", "cache", "stream"}, "broker")
	// JetStream assets exist, reachable over TCP like the nats CLI.
	nc, err := nats.Connect("nats://" + r.addrs["nats"].String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := natsjs.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range []string{subjects.StreamJobs, subjects.StreamBroker} {
		if _, err := js.Stream(ctx, s); err != nil {
			t.Errorf("stream %s: %v", s, err)
		}
	}
	for _, b := range []string{subjects.BucketJobs, subjects.BucketStreams, subjects.BucketServices, subjects.BucketCache} {
		if _, err := js.KeyValue(ctx, b); err != nil {
			t.Errorf("bucket %s: %v", b, err)
		}
	}
	if err := r.stop(); err != nil {
		t.Fatalf("clean shutdown: %v", err)
	}
}

func TestErrorsShareOneJSONShape(t *testing.T) {
	r := start(t, testConfig(t))
	cases := []struct {
		method, path string
		status       int
		code         string
	}{
		{"GET", "/nope", 404, "not_found"},
		{"POST", "/health", 405, "method_not_allowed"},
	}
	for _, tc := range cases {
		req, _ := http.NewRequest(tc.method, r.url("broker", tc.path), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || body.Error.Code != tc.code || body.Error.Message == "" ||
			!strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Errorf("%s %s = %d %+v", tc.method, tc.path, resp.StatusCode, body)
		}
	}
	// A body over the limit is refused with 413 before it is read.
	big := bytes.Repeat([]byte("x"), int(config.Default().Server.MaxBodyBytes)+1)
	resp, err := http.Post(r.url("lb", "/vision/x"), "application/octet-stream", bytes.NewReader(big))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Errorf("oversized body = %d, want 413", resp.StatusCode)
	}
}

func TestSecondInstanceOnSamePortsFails(t *testing.T) {
	cfg := testConfig(t)
	r := start(t, cfg)
	cfg2 := *cfg
	cfg2.DataDir = t.TempDir()
	_, port, _ := net.SplitHostPort(r.addrs["broker"].String())
	cfg2.Server.BrokerPort = atoi(port)
	err := app.Run(context.Background(), app.Options{Config: &cfg2, Parts: parts(), Log: slog.New(slog.DiscardHandler)})
	if err == nil || !strings.Contains(err.Error(), "BROKER_PORT") || !strings.Contains(err.Error(), port) {
		t.Fatalf("second instance: %v", err)
	}
	cfg3 := *cfg
	cfg3.DataDir = t.TempDir()
	_, nport, _ := net.SplitHostPort(r.addrs["nats"].String())
	cfg3.NATS.Port = atoi(nport)
	err = app.Run(context.Background(), app.Options{Config: &cfg3, Parts: parts(), Log: slog.New(slog.DiscardHandler)})
	if err == nil || !strings.Contains(err.Error(), "NATS_PORT") {
		t.Fatalf("second NATS: %v", err)
	}
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

func TestCommandLine(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"--help"}, &out, &errb); code != 0 {
		t.Fatalf("--help exit %d", code)
	}
	for _, sub := range []string{"run", "broker", "lb", "cache", "stream", "proxy"} {
		if !strings.Contains(errb.String()+out.String(), "  "+sub) {
			t.Errorf("--help does not list %s", sub)
		}
	}
	errb.Reset()
	if code := run([]string{"frobnicate"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "unknown command") {
		t.Errorf("unknown command: exit %d, %q", code, errb.String())
	}
	t.Setenv("NATS_URL", "bogus://x")
	errb.Reset()
	code := run([]string{"run"}, &out, &errb)
	lines := strings.Split(strings.TrimSpace(errb.String()), "\n")
	if code == 0 || len(lines) != 1 || !strings.Contains(lines[0], "NATS_URL") || !strings.Contains(lines[0], "bogus://x") {
		t.Errorf("NATS_URL=bogus://x: exit %d, stderr %q", code, errb.String())
	}
	t.Setenv("NATS_URL", "")
	t.Setenv("BROKER_PORT", "abc")
	errb.Reset()
	code = run([]string{"run"}, &out, &errb)
	if code == 0 || !strings.Contains(errb.String(), `BROKER_PORT="abc"`) {
		t.Errorf("BROKER_PORT=abc: exit %d, stderr %q", code, errb.String())
	}
}

// A process of worker pools only serves /health and /metrics on WORKER_PORT.
func TestWorkersAloneServeHealthAndMetrics(t *testing.T) {
	cfg := testConfig(t)
	cfg.Server.WorkerPort = 0
	var proxyPart part.Part
	for _, p := range parts() {
		if p.Name == "proxy" {
			proxyPart = p
		}
	}
	r := startParts(t, cfg, proxyPart)
	defer func() {
		if err := r.stop(); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	}()
	base := r.url("proxy", "")
	resp, err := http.Get(base + "/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("/health = %d", resp.StatusCode)
	}
	resp, err = http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Contains(b, []byte("switchyard_proxy_upstream_healthy")) {
		t.Errorf("/metrics lacks the proxy worker's metrics")
	}
}

func TestVersionHelpAndConfigCheck(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"-version"}, {"version"}} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "switchyard ") {
			t.Errorf("%v: exit %d, stdout %q", args, code, out.String())
		}
	}
	var out, errb bytes.Buffer
	if code := run([]string{"run", "--help"}, &out, &errb); code != 0 ||
		!strings.Contains(out.String(), "Usage: switchyard run") || !strings.Contains(out.String(), "-config") {
		t.Errorf("run --help: exit %d, stdout %q", code, out.String())
	}

	t.Setenv("NATS_URL", "nats://user:hunter2@127.0.0.1:4222")
	out.Reset()
	errb.Reset()
	if code := run([]string{"config", "check"}, &out, &errb); code != 0 {
		t.Fatalf("config check: exit %d, stderr %q", code, errb.String())
	}
	if strings.Contains(out.String(), "hunter2") || !strings.Contains(out.String(), "user:REDACTED@127.0.0.1:4222") ||
		!strings.Contains(out.String(), "configuration is valid") {
		t.Errorf("config check output does not mask the password:\n%s", out.String())
	}
	t.Setenv("NATS_URL", "")
	t.Setenv("LB_PORT", "70000")
	errb.Reset()
	if code := run([]string{"config", "check"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "LB_PORT") {
		t.Errorf("config check of a bad config: exit %d, stderr %q", code, errb.String())
	}
	errb.Reset()
	if code := run([]string{"config"}, &out, &errb); code != 2 {
		t.Errorf("config without check: exit %d", code)
	}
}

// scrapeOnce scrapes /metrics of every target, as a Prometheus configured
// with all of them would, and checks the process is one scrape target:
// only owner serves the registry, the others answer 404 naming it, and
// every series is seen once, with the metrics of every edge among them.
func scrapeOnce(t *testing.T, r *running, targets []string, owner string) {
	t.Helper()
	for _, edge := range targets {
		if resp, err := http.Get(r.url(edge, "/health")); err == nil {
			resp.Body.Close()
		}
	}
	seen := map[string]string{} // series -> target that served it
	for _, target := range targets {
		resp, err := http.Get(r.url(target, "/metrics"))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if target != owner {
			if resp.StatusCode != 404 || !bytes.Contains(b, []byte("serves its metrics once")) {
				t.Errorf("%s /metrics = %d %s, want 404 naming where the metrics are", target, resp.StatusCode, b)
			}
			continue
		}
		if resp.StatusCode != 200 {
			t.Fatalf("%s /metrics = %d", target, resp.StatusCode)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			series := line[:strings.LastIndexByte(line, ' ')]
			if prev, ok := seen[series]; ok {
				t.Errorf("series %s served by %s and %s", series, prev, target)
			}
			seen[series] = target
		}
	}
	var all strings.Builder
	for s := range seen {
		all.WriteString(s + "\n")
	}
	for _, edge := range targets {
		if edge == "metrics" {
			continue
		}
		want := `switchyard_http_requests_total{edge="` + edge + `",method="GET",route="/health",status=`
		if !strings.Contains(all.String(), want) {
			t.Errorf("no scrape shows %s", want)
		}
	}
	for _, want := range []string{"go_goroutines", "process_resident_memory_bytes", "switchyard_proxy_", "switchyard_cache_", "switchyard_broker_"} {
		if !strings.Contains(all.String(), want) {
			t.Errorf("no scrape shows %s*", want)
		}
	}
}

// With metrics.port set, that port is the process's one scrape target and
// every edge's /metrics names it.
func TestRunMetricsPortIsTheOneTarget(t *testing.T) {
	cfg := testConfig(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Metrics.Port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	r := start(t, cfg)
	scrapeOnce(t, r, []string{"broker", "lb", "cache", "stream", "metrics"}, "metrics")
}
