package lb_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"go.uber.org/goleak"

	"github.com/switchyard/switchyard/app"
	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/edge/lb"
	"github.com/switchyard/switchyard/jetstream/jstest"
	"github.com/switchyard/switchyard/part"
	"github.com/switchyard/switchyard/workers/proxy"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// sys is a running lb edge and proxy worker pool on a test NATS server.
type sys struct {
	url  string
	nats *jstest.Server
	stop func() error
}

func baseConfig(t testing.TB) *config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.Server.Host = "127.0.0.1"
	cfg.Server.LBPort = 0
	cfg.Server.WorkerPort = 0
	cfg.DataDir = t.TempDir()
	cfg.Rust.RequestTimeout = config.Duration(5 * time.Second)
	cfg.Rust.HealthCheckInterval = config.Duration(time.Second)
	cfg.LB.DiscoveryInterval = config.Duration(200 * time.Millisecond)
	cfg.LB.JobAckWait = config.Duration(time.Second)
	cfg.Services = map[string]config.Service{}
	return cfg
}

// startSys runs the given parts (default: lb edge and proxy workers)
// against a fresh test NATS server.
func startSys(t testing.TB, cfg *config.Config, parts ...part.Part) *sys {
	t.Helper()
	ns := jstest.Start(t)
	return startOn(t, ns, cfg, parts...)
}

func startOn(t testing.TB, ns *jstest.Server, cfg *config.Config, parts ...part.Part) *sys {
	t.Helper()
	if len(parts) == 0 {
		parts = []part.Part{lb.Part, proxy.Part}
	}
	c := *cfg
	c.NATS.URL = ns.URL
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan map[string]net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- app.Run(ctx, app.Options{Config: &c, Parts: parts, Log: testLog(t), Version: "test",
			Ready: func(a map[string]net.Addr) { ready <- a }})
	}()
	s := &sys{nats: ns}
	select {
	case a := <-ready:
		if a["lb"] != nil {
			s.url = "http://" + a["lb"].String()
		}
	case err := <-done:
		cancel()
		t.Fatalf("run: %v", err)
	}
	var once sync.Once
	var err error
	s.stop = func() error {
		once.Do(func() { cancel(); err = <-done })
		return err
	}
	t.Cleanup(func() { _ = s.stop() })
	return s
}

// echoUpstream answers every request with what it received, as JSON.
type seen struct {
	Method, Path, RawQuery string
	Header                 http.Header
	Body                   string
	Name                   string
}

func echoUpstream(t *testing.T, name string) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			w.WriteHeader(200)
			return
		}
		hits.Add(1)
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Upstream", name)
		w.Header().Add("X-Multi", "a")
		w.Header().Add("X-Multi", "b")
		status := 200
		if r.URL.Query().Get("status") != "" {
			fmt.Sscan(r.URL.Query().Get("status"), &status)
		}
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(seen{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, r.Header, string(b), name})
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

func apiError(t *testing.T, resp *http.Response) (code string) {
	t.Helper()
	var body struct {
		Error struct {
			Code, Message string
			RequestID     string `json:"request_id"`
		} `json:"error"`
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err := json.Unmarshal(b, &body); err != nil || body.Error.Code == "" || body.Error.Message == "" ||
		body.Error.RequestID == "" || body.Error.RequestID != resp.Header.Get("X-Request-Id") {
		t.Fatalf("status %d: body %q is not the JSON error shape", resp.StatusCode, b)
	}
	return body.Error.Code
}

func do(t *testing.T, method, url string, body []byte, hdr ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestProxyPassesRequestAndResponseThrough(t *testing.T) {
	up, _ := echoUpstream(t, "one")
	cfg := baseConfig(t)
	cfg.Rust.VisionServiceURL = up.URL
	s := startSys(t, cfg)

	resp := do(t, "PUT", s.url+"/vision/items/42%2Fx?x=1&y=a+b&status=201", []byte("hello body"),
		"X-Custom", "v1", "X-Custom", "v2", "Connection", "X-Drop", "X-Drop", "secret", "Content-Type", "text/plain")
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	var got seen
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.Method != "PUT" || got.Path != "/items/42%2Fx" || got.RawQuery != "x=1&y=a+b&status=201" || got.Body != "hello body" {
		t.Errorf("upstream saw %+v", got)
	}
	if v := got.Header.Values("X-Custom"); len(v) != 2 || v[0] != "v1" || v[1] != "v2" {
		t.Errorf("X-Custom = %q", v)
	}
	if got.Header.Get("X-Drop") != "" || got.Header.Get("Switchyard-Method") != "" {
		t.Errorf("hop-by-hop or control header leaked: %v", got.Header)
	}
	if got.Header.Get("X-Forwarded-For") != "127.0.0.1" || got.Header.Get("X-Request-Id") == "" || got.Header.Get("Content-Type") != "text/plain" {
		t.Errorf("forwarded headers: %v", got.Header)
	}
	if resp.Header.Get("X-Upstream") != "one" || len(resp.Header.Values("X-Multi")) != 2 {
		t.Errorf("response headers: %v", resp.Header)
	}
	// The root of a service and HEAD work too.
	resp = do(t, "GET", s.url+"/vision", nil)
	_ = json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if resp.StatusCode != 200 || got.Path != "/" {
		t.Errorf("GET /vision: %d %+v", resp.StatusCode, got)
	}
	resp = do(t, "HEAD", s.url+"/vision/a.b/c", nil)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Upstream") != "one" {
		t.Errorf("HEAD: %d %v", resp.StatusCode, resp.Header)
	}
	if v := metric(t, s.url, `switchyard_lb_replies_total{responder="proxy",service="vision"}`); v != 3 {
		t.Errorf("replies by the proxy = %v, want 3", v)
	}
}

func TestLargeBodiesAndLimit(t *testing.T) {
	up, _ := echoUpstream(t, "one")
	cfg := baseConfig(t)
	cfg.Rust.AIServiceURL = up.URL
	s := startSys(t, cfg)
	limit := int(cfg.Server.MaxBodyBytes)
	// Just under the limit goes through (the reply is JSON-escaped, so use
	// a body that needs no escaping and leave room for the echo).
	body := bytes.Repeat([]byte("a"), limit-4096)
	resp := do(t, "POST", s.url+"/ai/infer", body)
	var got seen
	_ = json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(got.Body) != len(body) {
		t.Fatalf("large body: status %d, upstream got %d bytes", resp.StatusCode, len(got.Body))
	}
	resp = do(t, "POST", s.url+"/ai/infer", bytes.Repeat([]byte("a"), limit+1))
	if resp.StatusCode != 413 {
		t.Fatalf("oversized: %d", resp.StatusCode)
	}
	if code := apiError(t, resp); code != "payload_too_large" {
		t.Errorf("code %s", code)
	}
}

func TestErrors(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			return
		}
		select {
		case <-time.After(3 * time.Second):
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()

	cfg := baseConfig(t)
	cfg.Rust.RequestTimeout = config.Duration(300 * time.Millisecond)
	cfg.Rust.VisionServiceURL = slow.URL
	cfg.Rust.AnalyticsServiceURL = deadURL
	cfg.Services["reports"] = config.Service{} // NATS workers only, none running
	s := startSys(t, cfg)

	cases := []struct {
		name, path string
		status     int
		code       string
		retryAfter bool
	}{
		{"unknown service", "/nosuch/x", 404, "unknown_service", false},
		{"invalid service name", "/No.Such/x", 404, "unknown_service", false},
		{"no worker subscribed", "/reports/x", 503, "no_responders", true},
		{"every upstream down", "/analytics/x", 503, "no_healthy_upstream", true},
		{"too slow", "/vision/x", 504, "timeout", false},
		{"bad job id", "/jobs/NOT-VALID", 400, "bad_request", false},
		{"malformed job id", "/jobs/abc", 400, "bad_request", false},
		{"unknown job", "/jobs/" + strings.Repeat("a", 24), 404, "not_found", false},
		{"no such job route", "/jobs/abc/extra", 404, "not_found", false},
		{"job by POST", "POST /jobs/abc", 405, "method_not_allowed", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			method, path := "GET", tc.path
			if m, p, ok := strings.Cut(tc.path, " "); ok {
				method, path = m, p
			}
			resp := do(t, method, s.url+path, nil)
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.retryAfter && resp.Header.Get("Retry-After") == "" {
				t.Error("no Retry-After")
			}
			if code := apiError(t, resp); code != tc.code {
				t.Errorf("code %s, want %s", code, tc.code)
			}
		})
	}
}

func TestNATSWorkerServesRoute(t *testing.T) {
	cfg := baseConfig(t)
	cfg.Services["reports"] = config.Service{}
	s := startSys(t, cfg)
	nc := s.nats.Conn(t)
	sub, err := nc.QueueSubscribe("svc.reports.>", "svc.reports", func(m *nats.Msg) {
		r := nats.NewMsg("")
		r.Header.Set("Switchyard-Status", "202")
		r.Header.Set("X-Worker", "nats")
		r.Data = []byte(m.Subject + " " + m.Header.Get("Switchyard-Method") + " " + m.Header.Get("Switchyard-Path") +
			" " + m.Header.Get("Switchyard-Query") + " " + string(m.Data))
		_ = m.RespondMsg(r)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	_ = nc.Flush()
	resp := do(t, "POST", s.url+"/reports/daily/2026.11?format=pdf", []byte("q"))
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 202 || resp.Header.Get("X-Worker") != "nats" ||
		string(b) != "svc.reports.daily.2026_11 POST /daily/2026.11 format=pdf q" {
		t.Fatalf("%d %q", resp.StatusCode, b)
	}
	if v := metric(t, s.url, `switchyard_lb_replies_total{responder="worker",service="reports"}`); v != 1 {
		t.Errorf("replies by a NATS worker = %v, want 1", v)
	}
	if v := metric(t, s.url, `switchyard_lb_replies_total{responder="proxy",service="reports"}`); v != 0 {
		t.Errorf("replies by the proxy = %v, want 0", v)
	}
}

func TestMicroServiceIsDiscoveredAndListed(t *testing.T) {
	cfg := baseConfig(t)
	up, _ := echoUpstream(t, "one")
	cfg.Rust.VisionServiceURL = up.URL
	s := startSys(t, cfg)
	nc := s.nats.Conn(t)
	svc, err := micro.AddService(nc, micro.Config{Name: "geo", Version: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Stop()
	err = svc.AddEndpoint("lookup", micro.HandlerFunc(func(r micro.Request) {
		if strings.HasSuffix(r.Subject(), ".fail") {
			_ = r.Error("503", "warming up", nil)
			return
		}
		_ = r.Respond([]byte("geo:" + r.Headers().Get("Switchyard-Path")))
	}), micro.WithEndpointSubject("svc.geo.>"), micro.WithEndpointQueueGroup("svc.geo"))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp := do(t, "GET", s.url+"/geo/point", nil)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 {
			if string(b) != "geo:/point" {
				t.Fatalf("body %q", b)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("geo never routable: %d %s", resp.StatusCode, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	resp := do(t, "GET", s.url+"/geo/fail", nil)
	if resp.StatusCode != 503 || apiError(t, resp) != "unavailable" {
		t.Errorf("micro error not mapped: %d", resp.StatusCode)
	}

	resp = do(t, "GET", s.url+"/services", nil)
	var out struct {
		Services []struct {
			Name, Source string
			Upstreams    []struct {
				URL      string `json:"url"`
				Healthy  bool   `json:"healthy"`
				Requests uint64 `json:"requests"`
			} `json:"upstreams"`
			ProxyWorkers int `json:"proxy_workers"`
			NATSWorkers  []struct {
				Name      string `json:"name"`
				Endpoints []struct {
					Subject     string `json:"subject"`
					NumRequests int    `json:"num_requests"`
				} `json:"endpoints"`
			} `json:"nats_workers"`
		} `json:"services"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	resp.Body.Close()
	byName := map[string]int{}
	for i, sv := range out.Services {
		byName[sv.Name] = i
	}
	geo, ok := byName["geo"]
	if !ok || out.Services[geo].Source != "discovered" || len(out.Services[geo].NATSWorkers) != 1 ||
		out.Services[geo].NATSWorkers[0].Endpoints[0].NumRequests < 2 {
		t.Errorf("geo in /services: %+v", out.Services)
	}
	v, ok := byName["vision"]
	if !ok || out.Services[v].ProxyWorkers != 1 || len(out.Services[v].Upstreams) != 1 ||
		out.Services[v].Upstreams[0].URL != up.URL || !out.Services[v].Upstreams[0].Healthy {
		t.Errorf("vision in /services: %+v", out.Services)
	}
}

// When the NATS server goes away the edge reports 503 on /health and on
// routed requests; when it is back on the same address and store, the edge
// and the proxy worker reconnect and serve again, with no restart.
func TestReconnectAfterNATSRestart(t *testing.T) {
	up, _ := echoUpstream(t, "one")
	cfg := baseConfig(t)
	cfg.Rust.VisionServiceURL = up.URL
	dir := t.TempDir()
	ns := jstest.StartIn(t, dir)
	s := startOn(t, ns, cfg)
	get := func(path string) int {
		resp, err := http.Get(s.url + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	poll := func(path string, want int) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for get(path) != want {
			if time.Now().After(deadline) {
				t.Fatalf("%s never answered %d", path, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if st := get("/vision/x"); st != 200 {
		t.Fatalf("before the restart: %d", st)
	}
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(ns.URL, "nats://"))
	ns.Shutdown()
	poll("/health", 503)
	if st := get("/vision/x"); st != 503 {
		t.Fatalf("with NATS down: %d, want 503", st)
	}
	p, _ := strconv.Atoi(port)
	jstest.StartAt(t, dir, p)
	poll("/health", 200)
	poll("/vision/x", 200)
	if err := s.stop(); err != nil {
		t.Fatalf("shutdown after the reconnect: %v", err)
	}
}

func testLog(t testing.TB) *slog.Logger {
	if os.Getenv("SY_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}
