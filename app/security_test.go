package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard/switchyard/app"
	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/edge"
	"github.com/switchyard/switchyard/edge/lb"
	"github.com/switchyard/switchyard/jetstream/jstest"
	"github.com/switchyard/switchyard/part"
	"github.com/switchyard/switchyard/workers/proxy"
)

// syncBuffer collects log lines written from many goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// probe is a part that keeps its Deps, to look at what app.Run gave it.
type probe struct {
	mu   sync.Mutex
	deps *part.Deps
}

func (p *probe) part() part.Part {
	return part.EdgePart("probe", "test edge", func(*config.Config) (string, int) { return "PROBE_PORT", 0 },
		func(_ *edge.Server, d *part.Deps) ([]part.Component, error) {
			p.mu.Lock()
			defer p.mu.Unlock()
			p.deps = d
			return nil, nil
		})
}

type running struct {
	addrs map[string]net.Addr
	reg   *prometheus.Registry
	stop  func() error
}

// testConfig is the default configuration on random loopback ports and a
// temporary store.
func testConfig(t *testing.T) *config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.Server.Host = "127.0.0.1"
	cfg.Server.LBPort, cfg.Server.WorkerPort = 0, 0
	cfg.NATS.Port = 0
	cfg.DataDir = t.TempDir()
	cfg.Services = map[string]config.Service{}
	return cfg
}

// run starts app.Run with parts and stops it in t.Cleanup. It returns the
// error of a start that failed.
func run(t *testing.T, cfg *config.Config, log *slog.Logger, parts ...part.Part) (*running, error) {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	reg := prometheus.NewRegistry()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan map[string]net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- app.Run(ctx, app.Options{Config: cfg, Parts: parts, Log: log, Version: "test", Registry: reg,
			Ready: func(a map[string]net.Addr) { ready <- a }})
	}()
	r := &running{reg: reg}
	select {
	case r.addrs = <-ready:
	case err := <-done:
		cancel()
		return nil, err
	case <-time.After(60 * time.Second):
		cancel()
		t.Fatal("not ready within 60s")
	}
	var once sync.Once
	var err error
	r.stop = func() error {
		once.Do(func() { cancel(); err = <-done })
		return err
	}
	t.Cleanup(func() { _ = r.stop() })
	return r, nil
}

func mustRun(t *testing.T, cfg *config.Config, log *slog.Logger, parts ...part.Part) *running {
	t.Helper()
	r, err := run(t, cfg, log, parts...)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return r
}

// otherLocalAddr is an IPv4 address of this machine that is not loopback
// (invalid when it has none).
func otherLocalAddr(t *testing.T) netip.Addr {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Unmap().Is4() && !ip.Unmap().IsLoopback() {
				return ip.Unmap()
			}
		}
	}
	return netip.Addr{}
}

// With the default configuration the embedded NATS listens on loopback
// only: its port is closed on the machine's other addresses.
func TestRunNATSOnLoopbackByDefault(t *testing.T) {
	var p probe
	cfg := testConfig(t)
	cfg.NATS.MaxReconnects = 3
	r := mustRun(t, cfg, nil, p.part())
	if got := p.deps.NC.Opts.MaxReconnect; got != 3 {
		t.Errorf("nats.max_reconnects 3 gave MaxReconnect %d", got)
	}
	na, ok := r.addrs["nats"].(*net.TCPAddr)
	if !ok {
		t.Fatalf("no NATS address: %v", r.addrs)
	}
	if !na.IP.IsLoopback() {
		t.Fatalf("embedded NATS listens on %s, want loopback", na)
	}
	other := otherLocalAddr(t)
	if !other.IsValid() {
		t.Log("no non-loopback address on this machine: checked the bound address only")
		return
	}
	if c, err := net.DialTimeout("tcp", net.JoinHostPort(other.String(), strconv.Itoa(na.Port)), 5*time.Second); err == nil {
		c.Close()
		t.Fatalf("embedded NATS port %d is reachable on %s", na.Port, other)
	}
}

// Exposed without credentials, the start stops with one line naming the key.
func TestRunRefusesExposedNATSWithoutCredentials(t *testing.T) {
	cfg := testConfig(t)
	cfg.NATS.Host = "0.0.0.0"
	var p probe
	_, err := run(t, cfg, nil, p.part())
	if err == nil {
		t.Fatal("started an exposed NATS server with no credentials")
	}
	msg := err.Error()
	if !strings.Contains(msg, "NATS_HOST (nats.host)") || !strings.Contains(msg, "NATS_USER") || strings.Contains(msg, "\n") {
		t.Errorf("error %q: want one line naming NATS_HOST and the credentials to set", msg)
	}
}

// Exposed with credentials: every part connects (in-process, with them);
// a client without them is refused, a client with them works.
func TestRunExposedNATSRequiresCredentials(t *testing.T) {
	cfg := testConfig(t)
	cfg.NATS.Host, cfg.NATS.User, cfg.NATS.Password = "0.0.0.0", "switchyard", "s3cret"
	var p probe
	r := mustRun(t, cfg, nil, p.part())
	if !p.deps.NC.IsConnected() {
		t.Fatal("the part's in-process connection is not connected")
	}
	host := "127.0.0.1"
	if a := otherLocalAddr(t); a.IsValid() {
		host = a.String()
	}
	url := "nats://" + net.JoinHostPort(host, strconv.Itoa(r.addrs["nats"].(*net.TCPAddr).Port))
	if nc, err := nats.Connect(url, nats.MaxReconnects(0)); err == nil {
		nc.Close()
		t.Fatal("a client without credentials was accepted")
	} else if !errors.Is(err, nats.ErrAuthorization) {
		t.Errorf("without credentials: %v, want %v", err, nats.ErrAuthorization)
	}
	nc, err := nats.Connect(url, nats.UserInfo("switchyard", "s3cret"))
	if err != nil {
		t.Fatalf("with credentials: %v", err)
	}
	defer nc.Close()
	// The nats CLI's view: JetStream answers.
	if _, err := nc.Request("$JS.API.INFO", nil, 5*time.Second); err != nil {
		t.Errorf("$JS.API.INFO: %v", err)
	}
}

// The seed's config.yaml, loaded verbatim (only the NATS URL and the
// metrics port are moved, through the environment, onto what the test
// runs), and each key's effect.
func TestSeedConfigEffects(t *testing.T) {
	ns := jstest.Start(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metricsPort := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cfg, err := config.Load("../examples/config.seed.yaml", map[string]string{
		"NATS_URL": ns.URL, "METRICS_PORT": strconv.Itoa(metricsPort), "HOST": "127.0.0.1", "WORKER_PORT": "0",
	})
	if err != nil {
		t.Fatalf("seed config: %v", err)
	}
	cfg.DataDir = t.TempDir()
	logs := &syncBuffer{}
	var p probe
	r := mustRun(t, cfg, slog.New(slog.NewJSONHandler(logs, nil)), p.part())

	// service.name: the prefix of every NATS connection name, and the
	// service attribute of every log line.
	cz, err := ns.Server().Connz(&server.ConnzOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range cz.Conns {
		names = append(names, c.Name)
	}
	for _, want := range []string{"go-integration-service", "go-integration-service-probe"} {
		found := false
		for _, n := range names {
			// The process identity follows: <name>@<host>:<pid>.
			found = found || strings.HasPrefix(n, want+"@")
		}
		if !found {
			t.Errorf("no NATS connection named %q (connections %v)", want, names)
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec["app"] != "go-integration-service" {
			t.Errorf("log line without app=go-integration-service: %s", line)
		}
	}
	// nats.max_reconnects: -1 reaches nats.go as "forever".
	if got := p.deps.NC.Opts.MaxReconnect; got != -1 {
		t.Errorf("MaxReconnects = %d, want -1", got)
	}
	// nats.cluster_id: a label, in the start log and on /health.
	if !strings.Contains(logs.String(), `"cluster_id":"test-cluster"`) {
		t.Errorf("the start log does not show cluster_id: %s", logs.String())
	}
	resp, err := http.Get("http://" + r.addrs["probe"].String() + "/health")
	if err != nil {
		t.Fatal(err)
	}
	var health struct {
		NATS struct {
			ClusterID string `json:"cluster_id"`
		} `json:"nats"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&health)
	resp.Body.Close()
	if health.NATS.ClusterID != "test-cluster" {
		t.Errorf("/health nats.cluster_id = %q, want test-cluster", health.NATS.ClusterID)
	}
	// metrics.port and metrics.path: the process's whole registry there.
	if got := r.addrs["metrics"].(*net.TCPAddr).Port; got != metricsPort {
		t.Errorf("metrics listens on %d, want %d", got, metricsPort)
	}
	body := get(t, "http://127.0.0.1:"+strconv.Itoa(metricsPort)+"/metrics", http.StatusOK)
	if !strings.Contains(body, "switchyard_http_requests_total") {
		t.Errorf("metrics.port does not serve the process's metrics:\n%.500s", body)
	}
	get(t, "http://127.0.0.1:"+strconv.Itoa(metricsPort)+"/other", http.StatusNotFound)
}

func get(t *testing.T, url string, want int) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("GET %s: %d %s, want %d", url, resp.StatusCode, b, want)
	}
	return string(b)
}

// Forwarding headers a client made up never reach the upstream: the edge
// replaces them with what it saw, unless the peer is a trusted proxy.
func TestSpoofedForwardedHeaders(t *testing.T) {
	var mu sync.Mutex
	var seen http.Header
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			return
		}
		mu.Lock()
		seen = r.Header.Clone()
		mu.Unlock()
	}))
	t.Cleanup(up.Close)
	spoofed := map[string]string{
		"X-Forwarded-For":   "6.6.6.6",
		"X-Forwarded-Host":  "evil.example",
		"X-Forwarded-Proto": "https",
		"X-Real-Ip":         "6.6.6.6",
		"Forwarded":         "for=6.6.6.6;host=evil.example;proto=https",
	}
	call := func(t *testing.T, trusted []string) (http.Header, string, *running) {
		ns := jstest.Start(t)
		cfg := testConfig(t)
		cfg.NATS.URL = ns.URL
		cfg.Rust.VisionServiceURL = up.URL
		cfg.Server.TrustedProxies = trusted
		r := mustRun(t, cfg, nil, lb.Part, proxy.Part)
		edgeAddr := r.addrs["lb"].String()
		req, _ := http.NewRequest(http.MethodGet, "http://"+edgeAddr+"/vision/items/1", nil)
		for k, v := range spoofed {
			req.Header.Set(k, v)
		}
		var resp *http.Response
		var err error
		deadline := time.Now().Add(30 * time.Second)
		for { // the proxy worker may not have subscribed yet
			resp, err = http.DefaultClient.Do(req)
			if err == nil && resp.StatusCode == http.StatusOK || time.Now().After(deadline) {
				break
			}
			if err == nil {
				resp.Body.Close()
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("request through the lb: %v %v", resp, err)
		}
		resp.Body.Close()
		mu.Lock()
		defer mu.Unlock()
		return seen, edgeAddr, r
	}

	t.Run("untrusted peer", func(t *testing.T) {
		h, edgeAddr, r := call(t, nil)
		want := map[string]string{
			"X-Forwarded-For": "127.0.0.1", "X-Forwarded-Host": edgeAddr, "X-Forwarded-Proto": "http",
			"X-Real-Ip": "", "Forwarded": "",
		}
		for k, v := range want {
			if got := strings.Join(h.Values(k), ","); got != v {
				t.Errorf("upstream saw %s: %q, want %q", k, got, v)
			}
		}
		if got := counter(t, r.reg, "switchyard_http_forwarded_headers_stripped_total", "lb"); got < 1 {
			t.Errorf("switchyard_http_forwarded_headers_stripped_total{edge=lb} = %v, want at least 1", got)
		}
	})
	t.Run("trusted proxy", func(t *testing.T) {
		h, _, _ := call(t, []string{"10.0.0.0/8", "127.0.0.1"})
		want := map[string]string{
			"X-Forwarded-For": "6.6.6.6, 127.0.0.1", "X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https",
			"Forwarded": spoofed["Forwarded"],
		}
		for k, v := range want {
			if got := strings.Join(h.Values(k), ","); got != v {
				t.Errorf("upstream saw %s: %q, want %q", k, got, v)
			}
		}
	})
}

// counter is the value of the counter name{edge} in reg (0 when absent).
func counter(t *testing.T, reg *prometheus.Registry, name, edge string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "edge" && l.GetValue() == edge {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
