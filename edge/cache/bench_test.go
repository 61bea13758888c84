package cache_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/edge"
	"github.com/switchyard/switchyard/edge/cache"
	"github.com/switchyard/switchyard/jetstream"
	"github.com/switchyard/switchyard/jetstream/jstest"
	"github.com/switchyard/switchyard/part"
	"github.com/switchyard/switchyard/workers/cache/tier"
)

// BenchmarkEdgeGetLocalHit is the CPU of one GET /cache/<key> local hit
// through the whole edge stack (middleware, metrics, router, coordinator),
// in process and without the network, against echo's hello-world handler:
// what bench/cache.sh's (a)/(d) ratio is made of, free of the load of a
// shared machine.
func BenchmarkEdgeGetLocalHit(b *testing.B) {
	ns := jstest.Start(b)
	nc := ns.Conn(b)
	js, _ := natsjs.New(nc)
	cfg := config.Default()
	if err := jetstream.Ensure(context.Background(), js, jetstream.ForConfig(cfg)); err != nil {
		b.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	defer l.Close()
	d := &part.Deps{Config: cfg, NC: nc, JS: js, Log: slog.New(slog.DiscardHandler), Registry: reg, Gatherer: reg,
		HTTPMetrics: edge.NewMetrics(reg), Checks: edge.NewChecks(), Version: "bench", Listener: l}
	co, err := cache.NewCoordinator(context.Background(), d)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = co.Shutdown(context.Background()) }()
	s := edge.New(d.EdgeOptions("cache"))
	cache.Register(s.Echo, co.C, cfg.Cache.MaxValueBytes)
	if err := co.C.Set(context.Background(), "default", "bench-key", tier.Entry{Value: make([]byte, 100)}, 0); err != nil {
		b.Fatal(err)
	}
	hello := echo.New()
	hello.GET("/hello", func(c echo.Context) error { return c.String(http.StatusOK, "Hello, World!") })

	var nsHello, nsEdge float64
	serve := func(b *testing.B, h http.Handler, path string) {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		b.ReportAllocs()
		for range b.N {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != http.StatusOK {
				b.Fatalf("%s: %d", path, w.Code)
			}
		}
	}
	b.Run("echo-hello", func(b *testing.B) {
		serve(b, hello, "/hello")
		nsHello = float64(b.Elapsed()) / float64(b.N)
	})
	b.Run("edge-local-hit", func(b *testing.B) {
		serve(b, s.Echo, "/cache/bench-key")
		nsEdge = float64(b.Elapsed()) / float64(b.N)
	})
	if nsHello > 0 && nsEdge > 0 {
		fmt.Printf("edge local hit: %.1f µs of CPU, hello-world %.1f µs: +%.1f µs a request\n", nsEdge/1e3, nsHello/1e3, (nsEdge-nsHello)/1e3)
	}
}
