package lb_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard/switchyard/app"
	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/edge/lb"
	"github.com/switchyard/switchyard/jetstream/jstest"
	"github.com/switchyard/switchyard/part"
	"github.com/switchyard/switchyard/workers/proxy"
)

// logLines is a JSON log written by several goroutines.
type logLines struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// find returns the records whose msg is msg.
func (l *logLines) find(t *testing.T, msg string) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.buf.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// startLogged runs the lb edge and proxy workers with a JSON log at level.
func startLogged(t *testing.T, cfg *config.Config, level slog.Level) (string, *logLines) {
	t.Helper()
	ns := jstest.Start(t)
	c := *cfg
	c.NATS.URL = ns.URL
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	logs := &logLines{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: level}))
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan map[string]net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- app.Run(ctx, app.Options{Config: &c, Parts: []part.Part{lb.Part, proxy.Part}, Log: log, Version: "test",
			Ready: func(a map[string]net.Addr) { ready <- a }})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	select {
	case a := <-ready:
		return "http://" + a["lb"].String(), logs
	case err := <-done:
		done <- nil
		t.Fatalf("run: %v", err)
	}
	return "", nil
}

// Debug logs show each routing decision (service, subject, upstream,
// attempt, outcome), and the access line names the service and upstream.
func TestRoutingDecisionsLogged(t *testing.T) {
	up, _ := echoUpstream(t, "one")
	host := strings.TrimPrefix(up.URL, "http://")
	cfg := baseConfig(t)
	cfg.Rust.VisionServiceURL = up.URL
	url, logs := startLogged(t, cfg, slog.LevelDebug)
	resp := do(t, "GET", url+"/vision/items/42", nil)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Switchyard-Upstream") != "" {
		t.Fatalf("GET: %d, headers %v (the upstream header is for the logs only)", resp.StatusCode, resp.Header)
	}
	var access map[string]any
	waitFor(t, "the access line", func() bool {
		for _, rec := range logs.find(t, "http request") {
			if rec["path"] == "/vision/items/42" {
				access = rec
				return true
			}
		}
		return false
	})
	if access["service"] != "vision" || access["upstream"] != host {
		t.Errorf("access line %v, want service vision and upstream %s", access, host)
	}
	attempts := logs.find(t, "upstream attempt")
	if len(attempts) != 1 || attempts[0]["service"] != "vision" || attempts[0]["subject"] != "svc.vision.items.42" ||
		attempts[0]["upstream"] != host || attempts[0]["attempt"] != 1.0 || attempts[0]["outcome"] != "answered" {
		t.Errorf("upstream attempt lines %v", attempts)
	}
	routed := logs.find(t, "routed")
	if len(routed) != 1 || routed[0]["subject"] != "svc.vision.items.42" || routed[0]["upstream"] != host ||
		routed[0]["outcome"] != "answered" || routed[0]["status"] != 200.0 {
		t.Errorf("routed lines %v", routed)
	}
}

// A failed attempt with no other upstream available is not logged as a
// fail-over: the log says no other upstream was left.
func TestNoFailoverLoggedWithoutAnotherUpstream(t *testing.T) {
	gone, _ := countingUpstream(t) // passes the probe at start, then goes away
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close() // unhealthy after the probe at start
	cfg := baseConfig(t)
	cfg.Rust.HealthCheckInterval = config.Duration(time.Hour)
	cfg.Services["vision"] = config.Service{Upstreams: []config.Upstream{{URL: gone.URL}, {URL: deadURL}}}
	url, logs := startLogged(t, cfg, slog.LevelInfo)
	waitFor(t, "the dead upstream unhealthy", func() bool {
		for _, rec := range logs.find(t, "upstream unhealthy") {
			if rec["service"] == "vision" {
				return true
			}
		}
		return false
	})
	passed := `switchyard_proxy_health_checks_total{result="pass",service="vision",upstream="` + strings.TrimPrefix(gone.URL, "http://") + `"}`
	waitFor(t, "the first probe of the upstream that goes away", func() bool { return metric(t, url, passed) == 1 })
	gone.Close()
	resp := do(t, "GET", url+"/vision/x", nil)
	code := apiError(t, resp)
	if resp.StatusCode != 503 || code != "no_healthy_upstream" {
		t.Errorf("GET: %d %s, want 503 no_healthy_upstream", resp.StatusCode, code)
	}
	waitFor(t, "the access line", func() bool { return len(logs.find(t, "http request")) > 0 })
	if n := len(logs.find(t, "failing over to another upstream")); n != 0 {
		t.Errorf("logged %d fail-overs with no other upstream", n)
	}
	if n := len(logs.find(t, "no other upstream to try")); n != 1 {
		t.Errorf("logged %d 'no other upstream to try', want 1", n)
	}
}
