package cache_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/switchyard/switchyard/app"
	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/edge/cache"
	"github.com/switchyard/switchyard/edge/lb"
	"github.com/switchyard/switchyard/internal/apierr"
	"github.com/switchyard/switchyard/jetstream/jstest"
	"github.com/switchyard/switchyard/part"
	"github.com/switchyard/switchyard/subjects"
	"github.com/switchyard/switchyard/workers/cache/redistest"
)

func testLog() *slog.Logger {
	if os.Getenv("SY_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// proc is one switchyard process running the cache part.
type proc struct {
	url  string
	stop func() error
}

func testConfig(mod ...func(*config.Config)) *config.Config {
	c := config.Default()
	c.Server.CachePort = 0
	c.Server.Host = "127.0.0.1"
	c.Cache.MaxValueBytes = 4096
	c.Cache.MaxBatchKeys = 8
	c.Cache.SharedTimeout = config.Duration(500 * time.Millisecond)
	c.Cache.Namespaces = map[string]config.CacheNamespace{"sessions": {Policy: "lru", DefaultTTL: config.Duration(time.Hour)}}
	for _, m := range mod {
		m(c)
	}
	return c
}

func start(t *testing.T, ns *jstest.Server, cfg *config.Config) *proc {
	t.Helper()
	c := *cfg
	c.NATS.URL = ns.URL
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan map[string]net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- app.Run(ctx, app.Options{Config: &c, Parts: []part.Part{cache.Part}, Log: testLog(), Version: "test",
			Ready: func(a map[string]net.Addr) { ready <- a }})
	}()
	p := &proc{}
	select {
	case a := <-ready:
		p.url = "http://" + a["cache"].String()
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
	t.Cleanup(func() {
		if err := p.stop(); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return p
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (p *proc) do(t *testing.T, method, path string, body []byte, h ...string) resp {
	t.Helper()
	req, err := http.NewRequest(method, p.url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(h); i += 2 {
		req.Header.Set(h[i], h[i+1])
	}
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return resp{r.StatusCode, r.Header, b}
}

func errCode(t *testing.T, r resp) string {
	t.Helper()
	var b apierr.Body
	if err := json.Unmarshal(r.body, &b); err != nil {
		t.Fatalf("status %d: body %q is not the JSON error shape", r.status, r.body)
	}
	return b.Error.Code
}

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestHTTPAPI(t *testing.T) {
	ns := jstest.Start(t)
	p := start(t, ns, testConfig())

	if r := p.do(t, "POST", "/cache/user:1?ttl=60", []byte(`{"a":1}`), "Content-Type", "application/json"); r.status != 204 {
		t.Fatalf("set: %d %s", r.status, r.body)
	}
	r := p.do(t, "GET", "/cache/user:1", nil)
	if r.status != 200 || string(r.body) != `{"a":1}` || r.header.Get("Content-Type") != "application/json" || r.header.Get("X-Cache") != "HIT-LOCAL" {
		t.Fatalf("get: %d %q %v", r.status, r.body, r.header)
	}
	if r := p.do(t, "HEAD", "/cache/user:1", nil); r.status != 200 || r.header.Get("Content-Length") != "7" || len(r.body) != 0 {
		t.Fatalf("head: %d %v", r.status, r.header)
	}
	// Namespaces by query or header; keys with slashes, escapes and dots.
	if r := p.do(t, "PUT", "/cache/a/b%20c.d", []byte("bin\x00"), "X-Cache-Namespace", "sessions", "X-Cache-TTL", "30"); r.status != 204 {
		t.Fatalf("set in sessions: %d %s", r.status, r.body)
	}
	if r := p.do(t, "GET", "/cache/a/b c.d?ns=sessions", nil); r.status != 200 || string(r.body) != "bin\x00" || r.header.Get("Content-Type") != "application/octet-stream" {
		t.Fatalf("get in sessions: %d %q %v", r.status, r.body, r.header)
	}
	if r := p.do(t, "GET", "/cache/a/b%20c.d", nil); r.status != 404 || errCode(t, r) != "not_found" {
		t.Fatalf("same key in another namespace: %d %s", r.status, r.body)
	}
	if r := p.do(t, "DELETE", "/cache/user:1", nil); r.status != 204 {
		t.Fatalf("delete: %d", r.status)
	}
	if r := p.do(t, "DELETE", "/cache/user:1", nil); r.status != 204 {
		t.Fatalf("delete of an absent key: %d", r.status)
	}
	if r := p.do(t, "GET", "/cache/user:1", nil); r.status != 404 || errCode(t, r) != "not_found" {
		t.Fatalf("get after delete: %d %s", r.status, r.body)
	}

	// Batch set, get, delete.
	r = p.do(t, "POST", "/cache/batch", []byte(`{"op":"set","ns":"sessions","items":[
		{"key":"s1","value":"one","content_type":"text/plain","ttl":60},
		{"key":"s2","value":"AP8=","encoding":"base64"}]}`), "Content-Type", "application/json")
	if r.status != 200 || !strings.Contains(string(r.body), `"count":2`) {
		t.Fatalf("batch set: %d %s", r.status, r.body)
	}
	r = p.do(t, "POST", "/cache/batch?ns=sessions", []byte(`{"keys":["s1","nope","s2"]}`))
	var br struct {
		Items []struct {
			Key, Encoding, Tier string
			Value               *string
		}
	}
	if err := json.Unmarshal(r.body, &br); err != nil || r.status != 200 || len(br.Items) != 3 {
		t.Fatalf("batch get: %d %s", r.status, r.body)
	}
	if *br.Items[0].Value != "one" || br.Items[1].Value != nil || *br.Items[2].Value != "AP8=" || br.Items[2].Encoding != "base64" {
		t.Fatalf("batch get: %s", r.body)
	}
	if r := p.do(t, "POST", "/cache/batch", []byte(`{"op":"delete","ns":"sessions","keys":["s1","s2"]}`)); r.status != 200 {
		t.Fatalf("batch delete: %d %s", r.status, r.body)
	}
	if r := p.do(t, "GET", "/cache/s1?ns=sessions", nil); r.status != 404 {
		t.Fatalf("after batch delete: %d", r.status)
	}

	// Stats.
	r = p.do(t, "GET", "/cache/stats", nil)
	var st struct {
		Namespaces map[string]struct {
			Hits   struct{ Local, Shared int64 }
			Sets   int64
			Local  *struct{ Entries int }
			Policy string
		}
		Shared struct {
			Backend      string
			AvgLatencyMS float64 `json:"avg_latency_ms"`
		}
	}
	if err := json.Unmarshal(r.body, &st); err != nil || r.status != 200 {
		t.Fatalf("stats: %d %s", r.status, r.body)
	}
	if s := st.Namespaces["sessions"]; s.Sets != 3 || st.Namespaces["_other"].Hits.Local < 2 || st.Shared.Backend != "jetstream-kv" || st.Shared.AvgLatencyMS <= 0 {
		t.Fatalf("stats: %s", r.body)
	}
	if r := p.do(t, "GET", "/metrics", nil); !bytes.Contains(r.body, []byte(`switchyard_cache_hits_total{namespace="_other",tier="local"}`)) ||
		!bytes.Contains(r.body, []byte(`switchyard_cache_local_bytes{namespace="sessions"}`)) {
		t.Fatalf("metrics lack the cache series")
	}
}

func TestHTTPBadInput(t *testing.T) {
	ns := jstest.Start(t)
	p := start(t, ns, testConfig())
	big := bytes.Repeat([]byte("x"), 4097)
	cases := []struct {
		method, path string
		body         []byte
		h            []string
		status       int
		code         string
	}{
		{"GET", "/cache/k?ns=Bad.NS", nil, nil, 400, "bad_request"},
		{"POST", "/cache/k?ns=" + strings.Repeat("n", 65), []byte("v"), nil, 400, "bad_request"},
		{"GET", "/cache/", nil, nil, 400, "bad_request"},
		{"GET", "/cache/" + strings.Repeat("k", 1025), nil, nil, 400, "bad_request"},
		{"POST", "/cache/k?ttl=abc", []byte("v"), nil, 400, "bad_request"},
		{"POST", "/cache/k?ttl=-5", []byte("v"), nil, 400, "bad_request"},
		{"POST", "/cache/k", []byte("v"), []string{"X-Cache-TTL", "1.5"}, 400, "bad_request"},
		{"POST", "/cache/k?ttl=999999999", []byte("v"), nil, 400, "bad_request"},
		{"POST", "/cache/k", big, nil, 413, "payload_too_large"},
		{"POST", "/cache/batch", []byte(`{"keys":`), nil, 400, "bad_request"},
		{"POST", "/cache/batch", []byte(`{"keys":["a"],"x":1}`), nil, 400, "bad_request"},
		{"POST", "/cache/batch", []byte(`{"keys":["a"]}`), []string{"Content-Type", "text/plain"}, 415, "unsupported_media_type"},
		{"POST", "/cache/batch", []byte(`{"keys":["1","2","3","4","5","6","7","8","9"]}`), nil, 400, "bad_request"},
		{"POST", "/cache/batch", []byte(`{"op":"set","items":[{"key":"k","value":"` + string(big) + `"}]}`), nil, 413, "payload_too_large"},
		{"POST", "/cache/batch", []byte(`{"op":"merge","keys":["a"]}`), nil, 400, "bad_request"},
		{"PATCH", "/cache/k", nil, nil, 405, "method_not_allowed"},
	}
	for _, tc := range cases {
		t.Run(tc.method+" "+tc.path[:min(len(tc.path), 40)], func(t *testing.T) {
			r := p.do(t, tc.method, tc.path, tc.body, tc.h...)
			if r.status != tc.status || errCode(t, r) != tc.code {
				t.Fatalf("%d %s, want %d %s", r.status, r.body, tc.status, tc.code)
			}
		})
	}
}

// Two processes on one NATS: what one writes or deletes, the other stops
// serving within the invalidation delay.
func TestTwoProcessesStayCoherent(t *testing.T) {
	ns := jstest.Start(t)
	a := start(t, ns, testConfig())
	b := start(t, ns, testConfig())
	a.do(t, "POST", "/cache/shared-key", []byte("v1"))
	waitFor(t, 5*time.Second, "b to hold v1 locally", func() bool {
		r := b.do(t, "GET", "/cache/shared-key", nil)
		return string(r.body) == "v1" && r.header.Get("X-Cache") == "HIT-LOCAL"
	})
	a.do(t, "POST", "/cache/shared-key", []byte("v2"))
	waitFor(t, 5*time.Second, "b to see v2", func() bool { return string(b.do(t, "GET", "/cache/shared-key", nil).body) == "v2" })
	a.do(t, "DELETE", "/cache/shared-key", nil)
	waitFor(t, 5*time.Second, "b to see the delete", func() bool { return b.do(t, "GET", "/cache/shared-key", nil).status == 404 })
}

// Redis killed during a run: /health of the cache edge reports degraded,
// local hits answer, misses and writes get 503 with Retry-After; Redis
// back: everything recovers without a restart.
func TestRedisKilledDuringARun(t *testing.T) {
	ns := jstest.Start(t)
	redis := redistest.StartOwn(t)
	p := start(t, ns, testConfig(func(c *config.Config) { c.Redis.Addr = redis.Addr }))
	if r := p.do(t, "POST", "/cache/warm", []byte("hot")); r.status != 204 {
		t.Fatalf("set: %d %s", r.status, r.body)
	}
	if r := p.do(t, "GET", "/health", nil); r.status != 200 {
		t.Fatalf("health: %d %s", r.status, r.body)
	}
	redis.Kill()
	if r := p.do(t, "GET", "/cache/cold", nil); r.status != 503 || r.header.Get("Retry-After") == "" || errCode(t, r) != "unavailable" {
		t.Fatalf("miss with redis down: %d %s", r.status, r.body)
	}
	if r := p.do(t, "GET", "/cache/warm", nil); r.status != 200 || string(r.body) != "hot" || r.header.Get("X-Cache") != "HIT-LOCAL" {
		t.Fatalf("local hit with redis down: %d %s", r.status, r.body)
	}
	if r := p.do(t, "POST", "/cache/new", []byte("x")); r.status != 503 {
		t.Fatalf("write with redis down: %d %s", r.status, r.body)
	}
	if r := p.do(t, "GET", "/health", nil); r.status != 503 || !strings.Contains(string(r.body), "degraded") {
		t.Fatalf("health with redis down: %d %s", r.status, r.body)
	}
	redis.Restart(t)
	waitFor(t, 10*time.Second, "health to recover", func() bool { return p.do(t, "GET", "/health", nil).status == 200 })
	if r := p.do(t, "POST", "/cache/new", []byte("x")); r.status != 204 {
		t.Fatalf("write after recovery: %d %s", r.status, r.body)
	}
}

// The NATS path, with a plain nats.go client as Node or Rust would use it.
func TestNATSPath(t *testing.T) {
	ns := jstest.Start(t)
	p := start(t, ns, testConfig())
	nc := ns.Conn(t)
	req := func(subj string, data []byte, h ...string) *nats.Msg {
		t.Helper()
		m := nats.NewMsg(subj)
		m.Data = data
		for i := 0; i+1 < len(h); i += 2 {
			m.Header.Set(h[i], h[i+1])
		}
		r, err := nc.RequestMsg(m, 5*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", subj, err)
		}
		return r
	}
	r := req("cache.set.sessions", []byte("from nats"), subjects.HeaderCacheKey, "n1", subjects.HeaderCacheTTL, "60", "Content-Type", "text/plain")
	if r.Header.Get(subjects.HeaderErrorCode) != "" {
		t.Fatalf("set: %v %s", r.Header, r.Data)
	}
	r = req("cache.get.sessions", []byte("n1"))
	if string(r.Data) != "from nats" || r.Header.Get("Content-Type") != "text/plain" || r.Header.Get(subjects.HeaderCacheTier) != "HIT-LOCAL" {
		t.Fatalf("get: %v %q", r.Header, r.Data)
	}
	// HTTP sees what NATS wrote, and the other way round.
	if h := p.do(t, "GET", "/cache/n1?ns=sessions", nil); string(h.body) != "from nats" {
		t.Fatalf("http get: %d %s", h.status, h.body)
	}
	p.do(t, "POST", "/cache/h1?ns=sessions", []byte("from http"))
	if r = req("cache.get.sessions", nil, subjects.HeaderCacheKey, "h1"); string(r.Data) != "from http" {
		t.Fatalf("get of an http write: %q", r.Data)
	}
	r = req("cache.batch.sessions", []byte(`{"keys":["n1","h1","zz"]}`))
	if !bytes.Contains(r.Data, []byte(`"count":2`)) {
		t.Fatalf("batch: %s", r.Data)
	}
	if r = req("cache.delete.sessions", []byte("n1")); r.Header.Get(subjects.HeaderErrorCode) != "" {
		t.Fatalf("delete: %v", r.Header)
	}
	// Errors travel as headers, with the JSON error body.
	for _, tc := range []struct {
		subj   string
		data   []byte
		h      []string
		status string
		code   string
	}{
		{"cache.get.sessions", []byte("n1"), nil, "404", "not_found"},
		{"cache.get.Bad", []byte("k"), nil, "400", "bad_request"},
		{"cache.set.sessions", []byte("v"), nil, "400", "bad_request"},
		{"cache.set.sessions", bytes.Repeat([]byte("v"), 4097), []string{subjects.HeaderCacheKey, "big"}, "413", "payload_too_large"},
		{"cache.set.sessions", []byte("v"), []string{subjects.HeaderCacheKey, "k", subjects.HeaderCacheTTL, "x"}, "400", "bad_request"},
		{"cache.batch.sessions", []byte(`{`), nil, "400", "bad_request"},
		{"cache.batch.sessions", []byte(`{"ns":"other","keys":["a"]}`), nil, "400", "bad_request"},
	} {
		r := req(tc.subj, tc.data, tc.h...)
		if r.Header.Get(subjects.HeaderStatus) != tc.status || r.Header.Get(subjects.HeaderErrorCode) != tc.code {
			t.Errorf("%s: headers %v body %s, want %s %s", tc.subj, r.Header, r.Data, tc.status, tc.code)
		}
		if tc.status != "404" && r.Header.Get(subjects.HeaderMicroErrorCode) != tc.status {
			t.Errorf("%s: micro error code %q", tc.subj, r.Header.Get(subjects.HeaderMicroErrorCode))
		}
	}
	// The service is discoverable like any micro service.
	r = req("$SRV.INFO.switchyard-cache", nil)
	var info struct {
		Name      string
		Endpoints []struct {
			Subject    string
			QueueGroup string `json:"queue_group"`
		}
	}
	if err := json.Unmarshal(r.Data, &info); err != nil || info.Name != "switchyard-cache" || len(info.Endpoints) != 5 {
		t.Fatalf("info: %s", r.Data)
	}
	for _, e := range info.Endpoints {
		if !strings.HasPrefix(e.Subject, "cache.") || e.QueueGroup != "cache-workers" {
			t.Fatalf("endpoint %+v", e)
		}
	}
	r = req("cache.stats.sessions", nil)
	if !bytes.Contains(r.Data, []byte(`"namespace":"sessions"`)) {
		t.Fatalf("stats: %s", r.Data)
	}
}

// The lb edge's GET /services lists the cache's micro service with its
// statistics.
func TestServicesListsTheCacheService(t *testing.T) {
	ns := jstest.Start(t)
	c := testConfig()
	c.Server.LBPort = 0
	c.NATS.URL = ns.URL
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan map[string]net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- app.Run(ctx, app.Options{Config: c, Parts: []part.Part{lb.Part, cache.Part}, Log: testLog(), Version: "test",
			Ready: func(a map[string]net.Addr) { ready <- a }})
	}()
	var addrs map[string]net.Addr
	select {
	case addrs = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("run: %v", err)
	}
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("shutdown: %v", err)
		}
	}()
	nc := ns.Conn(t)
	if _, err := nc.Request("cache.get.default", []byte("nothing"), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	lbURL := "http://" + addrs["lb"].String()
	var body struct {
		Micro []struct {
			Name      string
			Endpoints []struct {
				Name        string
				NumRequests int `json:"num_requests"`
			}
		}
	}
	waitFor(t, 10*time.Second, "switchyard-cache under micro", func() bool {
		r, err := http.Get(lbURL + "/services")
		if err != nil {
			return false
		}
		defer r.Body.Close()
		if json.NewDecoder(r.Body).Decode(&body) != nil {
			return false
		}
		for _, m := range body.Micro {
			for _, e := range m.Endpoints {
				if m.Name == "switchyard-cache" && e.Name == "get" && e.NumRequests >= 1 {
					return true
				}
			}
		}
		return false
	})
}
