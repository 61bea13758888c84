// Command cachebase is the baseline of the cache benchmark (bench/cache.sh):
// what a user would write by hand. Mode "redis" is a minimal echo handler
// doing one go-redis GET per request; mode "hello" is the echo
// hello-world ceiling; mode "nats" measures NATS request/reply: cache.get
// on Switchyard against a plain replier on the same server.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

func main() {
	mode := flag.String("mode", "hello", "hello, redis or nats")
	addr := flag.String("addr", "127.0.0.1:19210", "listen address (hello, redis)")
	redisAddr := flag.String("redis", "127.0.0.1:19201", "Redis address (redis)")
	natsURL := flag.String("nats", "nats://127.0.0.1:19202", "NATS URL (nats)")
	clients := flag.Int("clients", 8, "concurrent requesters (nats)")
	dur := flag.Duration("d", 10*time.Second, "duration of each run (nats)")
	flag.Parse()
	switch *mode {
	case "hello":
		e := echo.New()
		e.HideBanner, e.HidePort = true, true
		e.GET("/hello", func(c echo.Context) error { return c.String(http.StatusOK, "Hello, World!") })
		serve(e, *addr)
	case "redis":
		rdb := redis.NewClient(&redis.Options{Addr: *redisAddr, PoolSize: 64,
			MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}})
		e := echo.New()
		e.HideBanner, e.HidePort = true, true
		e.GET("/cache/:key", func(c echo.Context) error {
			v, err := rdb.Get(c.Request().Context(), c.Param("key")).Bytes()
			if err == redis.Nil {
				return c.NoContent(http.StatusNotFound)
			}
			if err != nil {
				return err
			}
			return c.Blob(http.StatusOK, echo.MIMEOctetStream, v)
		})
		serve(e, *addr)
	case "nats":
		natsBench(*natsURL, *clients, *dur)
	default:
		log.Fatalf("unknown mode %q", *mode)
	}
}

func serve(e *echo.Echo, addr string) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		_ = e.Shutdown(context.Background())
	}()
	if err := e.Start(addr); err != nil && err != http.ErrServerClosed {
		log.Fatal(err)
	}
}

// natsBench runs clients synchronous requesters for d against the raw
// replier and against cache.get, and prints both rates and the ratio.
func natsBench(url string, clients int, d time.Duration) {
	rep, err := nats.Connect(url, nats.Name("bench-replier"))
	if err != nil {
		log.Fatal(err)
	}
	defer rep.Close()
	payload := make([]byte, 100)
	if _, err := rep.Subscribe("bench.echo", func(m *nats.Msg) { _ = m.Respond(payload) }); err != nil {
		log.Fatal(err)
	}
	_ = rep.Flush()
	run := func(name string, req func(nc *nats.Conn) error) float64 {
		nc, err := nats.Connect(url, nats.Name("bench-"+name))
		if err != nil {
			log.Fatal(err)
		}
		defer nc.Close()
		if err := req(nc); err != nil { // warm-up and check
			log.Fatalf("%s: %v", name, err)
		}
		var n atomic.Int64
		lat := make([][]time.Duration, clients)
		deadline := time.Now().Add(d)
		var wg sync.WaitGroup
		for i := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(deadline) {
					t0 := time.Now()
					if err := req(nc); err != nil {
						log.Fatalf("%s: %v", name, err)
					}
					lat[i] = append(lat[i], time.Since(t0))
					n.Add(1)
				}
			}()
		}
		wg.Wait()
		var all []time.Duration
		for _, l := range lat {
			all = append(all, l...)
		}
		sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
		rate := float64(n.Load()) / d.Seconds()
		fmt.Printf("%-28s %9.0f req/s  p50 %6.3f ms  p99 %6.3f ms\n", name, rate,
			float64(all[len(all)/2])/1e6, float64(all[len(all)*99/100])/1e6)
		return rate
	}
	raw := run("nats request/reply (raw)", func(nc *nats.Conn) error {
		_, err := nc.Request("bench.echo", []byte("k"), 5*time.Second)
		return err
	})
	get := run("nats cache.get (local hit)", func(nc *nats.Conn) error {
		m, err := nc.Request("cache.get.default", []byte("bench-key"), 5*time.Second)
		if err == nil && m.Header.Get("Switchyard-Error-Code") != "" {
			err = fmt.Errorf("error reply %s", m.Data)
		}
		return err
	})
	fmt.Printf("ratio cache.get / raw request-reply: %.2fx (target >= 0.8x)\n", get/raw)
}
