//go:build unix

package proxy

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// BenchmarkUpstreamClient compares the proxy worker's upstream pool
// (connPool) with the library alternative, fasthttp's HostClient, in the
// same run: the same GET to the same loopback backend, 8×GOMAXPROCS
// parallel callers, both keeping connections alive.
//
//	go test -run '^$' -bench UpstreamClient -benchmem -count 5 ./workers/proxy/
//
// cpu-ns/op is the process's CPU time (user and system, backend included)
// per request, the figure least disturbed by other load on the machine;
// cpu-ratio-to-hostclient is HostClient's over the pool's (above 1: the
// pool costs less).
func BenchmarkUpstreamClient(b *testing.B) {
	body := []byte(`{"ok":true,"payload":"0123456789abcdef0123456789abcdef"}`)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(body)
	}))
	defer backend.Close()
	addr := strings.TrimPrefix(backend.URL, "http://")

	hc := &fasthttp.HostClient{
		Addr: addr, MaxConns: 256, MaxResponseBodySize: 8 << 20,
		// Short, so its cleaner goroutine ends soon after the benchmark
		// (goleak checks the package when it is done).
		MaxIdleConnDuration:           200 * time.Millisecond,
		DisablePathNormalizing:        true,
		DisableHeaderNamesNormalizing: true,
		NoDefaultUserAgentHeader:      true,
		// The worker decides about retries itself (it must know whether
		// a request was sent); the client must not resend on its own.
		RetryIfErr: func(*fasthttp.Request, int, error) (bool, bool) { return false, false },
		// fasthttp's default dialer starts a goroutine that never ends.
		Dial: func(addr string) (net.Conn, error) { return (&net.Dialer{Timeout: 2 * time.Second}).Dial("tcp", addr) },
	}
	defer hc.CloseIdleConnections()
	pool := newConnPool(addr, false, 256, 8<<20)
	defer pool.close()

	run := func(b *testing.B, do func(req *fasthttp.Request, resp *fasthttp.Response, deadline time.Time) error) {
		b.ReportAllocs()
		b.SetParallelism(8)
		b.RunParallel(func(pb *testing.PB) {
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			for pb.Next() {
				req.Reset()
				req.SetRequestURI("/items/42")
				req.Header.SetHost(addr)
				if err := do(req, resp, time.Now().Add(10*time.Second)); err != nil {
					b.Error(err)
					return
				}
				if resp.StatusCode() != 200 {
					b.Errorf("status %d", resp.StatusCode())
					return
				}
			}
		})
	}
	var hostCPU float64
	b.Run("hostclient", func(b *testing.B) {
		c0 := cpuTime()
		run(b, hc.DoDeadline)
		hostCPU = float64(cpuTime()-c0) / float64(b.N)
		b.ReportMetric(hostCPU, "cpu-ns/op")
	})
	b.Run("pool", func(b *testing.B) {
		ctx, cancel := context.WithCancel(context.Background()) // cancellable, as in the worker
		defer cancel()
		c0 := cpuTime()
		run(b, func(req *fasthttp.Request, resp *fasthttp.Response, deadline time.Time) error {
			_, err := pool.do(ctx, req, resp, deadline, true)
			return err
		})
		cpu := float64(cpuTime()-c0) / float64(b.N)
		b.ReportMetric(cpu, "cpu-ns/op")
		if hostCPU > 0 && cpu > 0 {
			b.ReportMetric(hostCPU/cpu, "cpu-ratio-to-hostclient")
		}
	})
}

// cpuTime is the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
