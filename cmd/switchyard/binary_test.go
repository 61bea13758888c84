package main

// Tests that drive the real switchyard binary the way a user does: built
// with `go build`, configured through the environment and config.yaml,
// stopped with signals, observed through its ports and its stderr.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard/switchyard/subjects"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds ./ once per test run and returns the executable's path.
// The binary goes next to the test executable when that lives in go test's
// own work directory (removed when the run ends), else into a temp dir.
func binary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the switchyard binary")
	}
	buildOnce.Do(func() {
		dir := ""
		if exe, err := os.Executable(); err == nil && strings.Contains(exe, "go-build") {
			dir = filepath.Dir(exe)
		}
		if dir == "" {
			if dir, buildErr = os.MkdirTemp("", "switchyard-bin-"); buildErr != nil {
				return
			}
		}
		name := "switchyard"
		if runtime.GOOS == "windows" {
			name += ".exe"
		}
		binPath = filepath.Join(dir, name)
		gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
		if _, err := os.Stat(gobin); err != nil {
			if gobin, buildErr = exec.LookPath("go"); buildErr != nil {
				return
			}
		}
		out, err := exec.Command(gobin, "build", "-o", binPath, "./").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// instanceEnv is the environment of one switchyard instance.
type instanceEnv struct {
	vars  map[string]string
	ports map[string]int // "broker", "lb", "cache", "stream", "nats"
}

func newInstanceEnv(t *testing.T) *instanceEnv {
	t.Helper()
	e := &instanceEnv{vars: map[string]string{}, ports: map[string]int{}}
	for part, key := range map[string]string{
		"broker": "BROKER_PORT", "lb": "LB_PORT", "cache": "CACHE_PORT", "stream": "STREAM_PORT", "nats": "NATS_PORT",
	} {
		p := freePort(t)
		e.ports[part] = p
		e.vars[key] = strconv.Itoa(p)
	}
	e.vars["HOST"] = "127.0.0.1"
	e.vars["DATA_DIR"] = t.TempDir()
	e.vars["LOG_LEVEL"] = "info"
	return e
}

func (e *instanceEnv) url(part, path string) string {
	return "http://127.0.0.1:" + strconv.Itoa(e.ports[part]) + path
}

// with returns a copy of e with more variables.
func (e *instanceEnv) with(kv ...string) *instanceEnv {
	c := &instanceEnv{vars: map[string]string{}, ports: e.ports}
	for k, v := range e.vars {
		c.vars[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		c.vars[kv[i]] = kv[i+1]
	}
	return c
}

// environ is the test process's environment without any switchyard
// setting, plus e's variables.
func (e *instanceEnv) environ() []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if switchyardKey(k) {
			continue
		}
		out = append(out, kv)
	}
	for k, v := range e.vars {
		out = append(out, k+"="+v)
	}
	return out
}

func switchyardKey(k string) bool {
	for _, p := range []string{"NATS_", "REDIS_", "RUST_", "METRICS_", "LB_"} {
		if strings.HasPrefix(k, p) {
			return true
		}
	}
	switch k {
	case "DATA_DIR", "HOST", "BROKER_PORT", "CACHE_PORT", "STREAM_PORT", "MAX_BODY_BYTES",
		"PPROF_ADDR", "SHUTDOWN_TIMEOUT", "LOG_LEVEL", "CONFIG_FILE":
		return true
	}
	return false
}

// syncBuffer collects a process's output while the test reads it.
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

// proc is one running switchyard process.
type proc struct {
	t      *testing.T
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan struct{}
	err    error // Wait's result, once done is closed
}

// startBinary starts `switchyard args...` with e's environment; the process
// is killed in t.Cleanup if it still runs.
func startBinary(t *testing.T, e *instanceEnv, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	cmd.Env = e.environ()
	cmd.Dir = t.TempDir() // no stray ./config.yaml
	p := &proc{t: t, cmd: cmd, stderr: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout = p.stderr
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
			return
		default:
		}
		_ = cmd.Process.Kill()
		<-p.done
	})
	return p
}

// wait waits up to d for the process to exit and returns its exit code.
func (p *proc) wait(d time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		p.t.Fatalf("switchyard did not exit within %s; stderr:\n%s", d, p.stderr)
	}
	return p.cmd.ProcessState.ExitCode()
}

func (p *proc) signal(sig os.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %v: %v", sig, err)
	}
}

// logLines parses stderr's JSON log lines (other lines are skipped).
func (p *proc) logLines() []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(p.stderr.String()))
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

func (p *proc) logged(msg string) bool {
	for _, l := range p.logLines() {
		if l["msg"] == msg {
			return true
		}
	}
	return false
}

// waitLogged polls stderr until a log line with msg appears.
func (p *proc) waitLogged(msg string, d time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(d)
	for !p.logged(msg) {
		select {
		case <-p.done:
			p.t.Fatalf("switchyard exited (%v) before logging %q; stderr:\n%s", p.err, msg, p.stderr)
		default:
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("no %q log line within %s; stderr:\n%s", msg, d, p.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// noErrors fails the test for every ERROR log line.
func (p *proc) noErrors() {
	p.t.Helper()
	for _, l := range p.logLines() {
		if l["level"] == "ERROR" {
			p.t.Errorf("ERROR logged: %v", l)
		}
	}
}

// httpClient returns a client whose idle connections close in t.Cleanup.
func httpClient(t *testing.T) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// waitHealthy polls every edge's /health until all answer 200.
func waitHealthy(t *testing.T, p *proc, e *instanceEnv, c *http.Client, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for _, part := range []string{"broker", "lb", "cache", "stream"} {
		for {
			resp, err := c.Get(e.url(part, "/health"))
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			select {
			case <-p.done:
				t.Fatalf("switchyard exited (%v) before %s was healthy; stderr:\n%s", p.err, part, p.stderr)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s /health not 200 within %s (last err %v); stderr:\n%s", part, d, err, p.stderr)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

func connectNATS(t *testing.T, e *instanceEnv) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect("nats://127.0.0.1:" + strconv.Itoa(e.ports["nats"]))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func TestBinaryRunAndCtrlC(t *testing.T) {
	e := newInstanceEnv(t)
	p := startBinary(t, e, "run")
	c := httpClient(t)
	waitHealthy(t, p, e, c, 60*time.Second)
	if !p.logged("switchyard ready") {
		t.Errorf(`no "switchyard ready" log line; stderr:\n%s`, p.stderr)
	}

	// What `nats stream ls` and `nats kv ls` show.
	nc := connectNATS(t, e)
	js, err := natsjs.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	streams := map[string]bool{}
	for name := range js.StreamNames(ctx).Name() {
		streams[name] = true
	}
	for _, s := range []string{subjects.StreamJobs, subjects.StreamBroker} {
		if !streams[s] {
			t.Errorf("stream %s missing; have %v", s, streams)
		}
	}
	buckets := map[string]bool{}
	for name := range js.KeyValueStoreNames(ctx).Name() {
		buckets[name] = true
	}
	for _, b := range []string{subjects.BucketJobs, subjects.BucketStreams, subjects.BucketServices, subjects.BucketCache} {
		if !buckets[b] {
			t.Errorf("KV bucket %s missing; have %v", b, buckets)
		}
	}
	nc.Close()

	p.signal(os.Interrupt)
	if code := p.wait(15 * time.Second); code != 0 {
		t.Errorf("exit code after SIGINT = %d, want 0; stderr:\n%s", code, p.stderr)
	}
	p.noErrors()
}

func TestBinarySecondInstanceFails(t *testing.T) {
	e := newInstanceEnv(t)
	first := startBinary(t, e, "run")
	waitHealthy(t, first, e, httpClient(t), 60*time.Second)

	lastLine := func(s string) string {
		lines := strings.Split(strings.TrimSpace(s), "\n")
		return lines[len(lines)-1]
	}
	second := startBinary(t, e, "run")
	if code := second.wait(15 * time.Second); code == 0 {
		t.Errorf("second instance exit code 0; stderr:\n%s", second.stderr)
	}
	last := lastLine(second.stderr.String())
	if !strings.HasPrefix(last, "switchyard:") || json.Valid([]byte(last)) || !strings.Contains(last, "BROKER_PORT") {
		t.Errorf("second instance's last stderr line = %q, want a plain line naming BROKER_PORT; stderr:\n%s",
			last, second.stderr)
	}
	if first.logged("switchyard stopped") {
		t.Errorf("first instance stopped")
	}

	cases := []struct {
		name string
		env  *instanceEnv
		want []string
	}{
		{"NATS_URL", e.with("NATS_URL", "bogus://x", "DATA_DIR", t.TempDir()), []string{"NATS_URL"}},
		{"BROKER_PORT", e.with("BROKER_PORT", "abc", "DATA_DIR", t.TempDir()), []string{"BROKER_PORT", "abc"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := startBinary(t, tc.env, "run")
			code := p.wait(15 * time.Second)
			out := p.stderr.String()
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if code == 0 || len(lines) != 1 || !strings.HasPrefix(lines[0], "switchyard:") {
				t.Errorf("exit %d, stderr %q: want non-zero and one line", code, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("stderr %q does not mention %s", out, w)
				}
			}
		})
	}

	t.Run("help", func(t *testing.T) {
		p := startBinary(t, e, "--help")
		if code := p.wait(15 * time.Second); code != 0 {
			t.Errorf("--help exit %d; output:\n%s", code, p.stderr)
		}
		for _, sub := range []string{"run", "broker", "lb", "cache", "stream", "proxy"} {
			if !strings.Contains(p.stderr.String(), "  "+sub+" ") {
				t.Errorf("--help does not list %s:\n%s", sub, p.stderr)
			}
		}
	})

	first.signal(syscall.SIGTERM)
	if code := first.wait(15 * time.Second); code != 0 {
		t.Errorf("first instance exit code %d; stderr:\n%s", code, first.stderr)
	}
}

// jobRecord is what GET /jobs/<id> answers.
type jobRecord struct {
	ID        string `json:"id"`
	Status    string `json:"status"`
	Attempts  int    `json:"attempts"`
	LastError *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"last_error"`
	Location string `json:"location"`
}

func getJob(t *testing.T, c *http.Client, e *instanceEnv, id string) (int, jobRecord) {
	t.Helper()
	resp, err := c.Get(e.url("lb", "/jobs/"+id))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rec jobRecord
	_ = json.NewDecoder(resp.Body).Decode(&rec)
	return resp.StatusCode, rec
}

func submitReport(t *testing.T, c *http.Client, e *instanceEnv) (*http.Response, jobRecord) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.url("lb", "/reports/monthly"), strings.NewReader("month=5"))
	req.Header.Set("Prefer", "respond-async")
	req.Header.Set("Idempotency-Key", "k1")
	req.Header.Set("Content-Type", "text/plain")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rec jobRecord
	_ = json.NewDecoder(resp.Body).Decode(&rec)
	return resp, rec
}

func TestBinaryAcceptedJobSurvivesRestart(t *testing.T) {
	cfgFile := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(cfgFile, []byte("services:\n  reports:\n    upstreams: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e := newInstanceEnv(t).with("CONFIG_FILE", cfgFile, "LB_JOB_MAX_DELIVER", "100", "LB_JOB_ACK_WAIT", "1s")
	c := httpClient(t)

	p := startBinary(t, e, "run")
	waitHealthy(t, p, e, c, 60*time.Second)
	resp, rec := submitReport(t, c, e)
	if resp.StatusCode != http.StatusAccepted || rec.ID == "" || resp.Header.Get("Location") != "/jobs/"+rec.ID {
		t.Fatalf("submit = %d, Location %q, body %+v", resp.StatusCode, resp.Header.Get("Location"), rec)
	}
	id := rec.ID
	// The job is being retried: no worker serves reports yet.
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, r := getJob(t, c, e, id)
		if r.Attempts >= 1 && r.LastError != nil {
			t.Logf("before the restart: %+v", r)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("job never attempted: %+v; stderr:\n%s", r, p.stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.signal(syscall.SIGTERM)
	if code := p.wait(15 * time.Second); code != 0 {
		t.Fatalf("exit code after SIGTERM = %d; stderr:\n%s", code, p.stderr)
	}
	p.noErrors()

	p = startBinary(t, e, "run")
	waitHealthy(t, p, e, c, 60*time.Second)
	status, r := getJob(t, c, e, id)
	if status != http.StatusOK || r.ID != id || (r.Status != "queued" && r.Status != "running") {
		t.Fatalf("after restart GET /jobs/%s = %d %+v", id, status, r)
	}

	// Now a worker joins, as in subjects/README.md.
	nc := connectNATS(t, e)
	type seen struct{ method, path, body string }
	got := make(chan seen, 16)
	sub, err := nc.QueueSubscribe("svc.reports.>", "svc.reports", func(m *nats.Msg) {
		select {
		case got <- seen{m.Header.Get("Switchyard-Method"), m.Header.Get("Switchyard-Path"), string(m.Data)}:
		default:
		}
		reply := nats.NewMsg(m.Reply)
		reply.Header.Set("Switchyard-Status", "201")
		reply.Data = []byte("done!")
		_ = m.RespondMsg(reply)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	// Redelivery waits attempts² seconds (capped at 1m) after each failure.
	deadline = time.Now().Add(60 * time.Second)
	for {
		_, r = getJob(t, c, e, id)
		if r.Status == "done" {
			t.Logf("after the restart: %+v", r)
			break
		}
		if r.Status == "failed" || time.Now().After(deadline) {
			t.Fatalf("job not done: %+v; stderr:\n%s", r, p.stderr)
		}
		time.Sleep(200 * time.Millisecond)
	}
	select {
	case s := <-got:
		if s != (seen{"POST", "/monthly", "month=5"}) {
			t.Errorf("worker saw %+v", s)
		}
	default:
		t.Error("worker saw no request")
	}

	resp, err = c.Get(e.url("lb", "/jobs/"+id+"/result"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || string(body) != "done!" {
		t.Errorf("GET /jobs/%s/result = %d %q, want 201 \"done!\"", id, resp.StatusCode, body)
	}

	resp, rec = submitReport(t, c, e)
	if resp.StatusCode != http.StatusAccepted || rec.ID != id {
		t.Errorf("re-submit with the same Idempotency-Key = %d id %q, want 202 id %q", resp.StatusCode, rec.ID, id)
	}

	p.signal(syscall.SIGTERM)
	if code := p.wait(15 * time.Second); code != 0 {
		t.Errorf("exit code after SIGTERM = %d; stderr:\n%s", code, p.stderr)
	}
	p.noErrors()
}

func TestBinaryShutdownDrainsInFlight(t *testing.T) {
	entered := make(chan struct{})
	release := make(chan struct{})
	var enterOnce, releaseOnce sync.Once
	releaseAll := func() { releaseOnce.Do(func() { close(release) }) }
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			enterOnce.Do(func() { close(entered) })
			<-release
			_, _ = io.WriteString(w, "slow ok")
			return
		}
		_, _ = io.WriteString(w, "ok") // health checks and the readiness probe
	}))
	t.Cleanup(upstream.Close)
	t.Cleanup(releaseAll) // runs before upstream.Close

	e := newInstanceEnv(t).with("RUST_VISION_SERVICE_URL", upstream.URL)
	c := httpClient(t)
	p := startBinary(t, e, "run")
	waitHealthy(t, p, e, c, 60*time.Second)
	// Wait until the proxy worker routes to the upstream.
	waitRouted(t, p, e, c, "/vision/ping")

	type result struct {
		status int
		body   string
		err    error
	}
	res := make(chan result, 1)
	go func() {
		resp, err := c.Get(e.url("lb", "/vision/slow"))
		if err != nil {
			res <- result{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		res <- result{resp.StatusCode, string(b), err}
	}()
	select {
	case <-entered:
	case r := <-res:
		t.Fatalf("GET /vision/slow answered before reaching the upstream: %+v", r)
	case <-time.After(30 * time.Second):
		t.Fatalf("upstream never got /slow; stderr:\n%s", p.stderr)
	}
	p.signal(syscall.SIGTERM)
	p.waitLogged("shutting down", 15*time.Second)
	releaseAll()

	select {
	case r := <-res:
		if r.err != nil || r.status != http.StatusOK || r.body != "slow ok" {
			t.Errorf("in-flight GET /vision/slow = %d %q %v, want 200 \"slow ok\"", r.status, r.body, r.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("in-flight request never answered")
	}
	if code := p.wait(15 * time.Second); code != 0 {
		t.Errorf("exit code after SIGTERM = %d; stderr:\n%s", code, p.stderr)
	}
	p.noErrors()
}

// waitRouted waits until the lb answers 200 on path: the proxy worker
// routes to the upstream.
func waitRouted(t *testing.T, p *proc, e *instanceEnv, c *http.Client, path string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := c.Get(e.url("lb", path))
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never answered 200 (err %v); stderr:\n%s", path, err, p.stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
