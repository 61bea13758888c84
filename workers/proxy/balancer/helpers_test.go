package balancer

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard/switchyard/config"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct{ off atomic.Int64 }

var clockBase = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func (c *fakeClock) Now() time.Time          { return clockBase.Add(time.Duration(c.off.Load())) }
func (c *fakeClock) Advance(d time.Duration) { c.off.Add(int64(d)) }

// service builds a resolved service with one upstream per weight, on
// addresses nothing listens on (selection tests never dial).
func service(policy string, weights ...int) config.ResolvedService {
	s := config.ResolvedService{Name: "test", Service: config.Service{
		Policy: policy, HealthPath: "/health", HealthyThreshold: 1, UnhealthyThreshold: 2,
		EjectAfter: 3, EjectBase: config.Duration(50 * time.Millisecond), MaxEjectedPercent: 50,
		RetryBudgetPercent: 20,
	}}
	for i, w := range weights {
		s.Upstreams = append(s.Upstreams, config.Upstream{URL: fmt.Sprintf("http://127.0.0.%d:8000", i+1), Weight: w})
	}
	return s
}

func mustNew(t testing.TB, s config.ResolvedService, opts ...Option) *Pool {
	t.Helper()
	p, err := New(s, nil, nil, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p
}

func mustPick(t testing.TB, p *Pool, exclude ...*Upstream) *Upstream {
	t.Helper()
	u, err := p.Pick(exclude)
	if err != nil {
		t.Fatalf("Pick: %v", err)
	}
	return u
}

// fail feeds n failed outcomes to u.
func fail(u *Upstream, n int) {
	for range n {
		u.Begin()(Outcome{Status: 503, Latency: time.Millisecond})
	}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", within, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// logBuf is a concurrency-safe log sink.
type logBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuf) Contains(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Contains(l.buf.String(), s)
}

func newLog() (*slog.Logger, *logBuf) {
	b := &logBuf{}
	return slog.New(slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}
