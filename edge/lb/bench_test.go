package lb_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/switchyard/switchyard/config"
)

// BenchmarkRoute measures a GET through the lb edge against the baseline a
// user would pick instead, the backend called directly, in the same run:
//
//	go test -run '^$' -bench Route -benchmem ./edge/lb/
//
// direct: the backend over loopback HTTP; proxy: edge -> NATS -> proxy
// worker -> backend; natsworker: edge -> NATS -> a nats.go responder.
// ratio-to-direct is each path's throughput over the direct path's.
func BenchmarkRoute(b *testing.B) {
	body := []byte(`{"ok":true,"payload":"0123456789abcdef0123456789abcdef"}`)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(body)
	}))
	defer backend.Close()
	cfg := baseConfig(b)
	cfg.Rust.VisionServiceURL = backend.URL
	cfg.Services["reports"] = config.Service{}
	s := startSys(b, cfg)
	nc, err := nats.Connect(s.nats.URL)
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	sub, _ := nc.QueueSubscribe("svc.reports.>", "svc.reports", func(m *nats.Msg) { _ = m.Respond(body) })
	defer sub.Unsubscribe()
	_ = nc.Flush()

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	get := func(b *testing.B, url string) {
		b.SetParallelism(8)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				resp, err := client.Get(url)
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Errorf("status %d", resp.StatusCode)
					return
				}
			}
		})
	}
	var directNs float64
	for _, tc := range []struct{ name, url string }{
		{"direct", backend.URL + "/items/42"},
		{"proxy", s.url + "/vision/items/42"},
		{"natsworker", s.url + "/reports/items/42"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			get(b, tc.url)
			ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			if tc.name == "direct" {
				directNs = ns
			}
			if directNs > 0 {
				b.ReportMetric(directNs/ns, "ratio-to-direct")
			}
		})
	}
}
