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
	"strings"
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
	dur := flag.Duration("d", 5*time.Second, "duration of each run (nats)")
	rounds := flag.Int("rounds", 3, "rounds, taking turns; medians are printed (nats)")
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
		natsBench(*natsURL, *clients, *dur, *rounds)
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
// replier and against cache.get, taking turns for rounds, and prints the
// median rates and their ratio.
func natsBench(url string, clients int, d time.Duration, rounds int) {
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
	type result struct{ rate, p50, p99 float64 }
	run := func(name string, req func(nc *nats.Conn) error) result {
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
		return result{float64(n.Load()) / d.Seconds(), float64(all[len(all)/2]) / 1e6, float64(all[len(all)*99/100]) / 1e6}
	}
	rawReq := func(nc *nats.Conn) error {
		_, err := nc.Request("bench.echo", []byte("k"), 5*time.Second)
		return err
	}
	getReq := func(nc *nats.Conn) error {
		m, err := nc.Request("cache.get.default", []byte("bench-key"), 5*time.Second)
		if err == nil && m.Header.Get("Switchyard-Error-Code") != "" {
			err = fmt.Errorf("error reply %s", m.Data)
		}
		return err
	}
	var raws, gets []result
	for range rounds {
		raws = append(raws, run("raw", rawReq))
		gets = append(gets, run("cache.get", getReq))
	}
	median := func(rs []result) (result, string) {
		var rates []string
		for _, r := range rs {
			rates = append(rates, fmt.Sprintf("%.0f", r.rate))
		}
		sort.Slice(rs, func(i, j int) bool { return rs[i].rate < rs[j].rate })
		return rs[len(rs)/2], strings.Join(rates, " ")
	}
	raw, rawAll := median(raws)
	get, getAll := median(gets)
	fmt.Printf("NATS, %d clients, %d rounds of %v, medians\n", clients, rounds, d)
	fmt.Printf("%-28s %9.0f req/s  p50 %6.3f ms  p99 %6.3f ms   rounds: %s\n", "nats request/reply (raw)", raw.rate, raw.p50, raw.p99, rawAll)
	fmt.Printf("%-28s %9.0f req/s  p50 %6.3f ms  p99 %6.3f ms   rounds: %s\n", "nats cache.get (local hit)", get.rate, get.p50, get.p99, getAll)
	fmt.Printf("ratio cache.get / raw request-reply: %.2fx (target >= 0.8x)\n", get.rate/raw.rate)
}
