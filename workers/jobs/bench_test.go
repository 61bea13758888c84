package jobs_test

import (
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/switchyard/switchyard/workers/jobs"
)

// BenchmarkJobs measures durable jobs against the baseline they replace, a
// plain NATS request to the same worker, in the same run:
//
//	go test -run '^$' -bench Jobs -benchtime 2000x ./workers/jobs/
//
// request: b.N core-NATS requests from 8 goroutines; job: b.N jobs
// submitted as the lb edge does (record, then JetStream publish), run by
// one runner (concurrency 32) and acked. ratio-to-request is the job
// path's throughput over the request path's.
func BenchmarkJobs(b *testing.B) {
	e := newEnv(b)
	var calls atomic.Int64
	sub, _ := e.nc.QueueSubscribe("svc.reports.>", "svc.reports", func(m *nats.Msg) {
		calls.Add(1)
		_ = m.Respond([]byte("ok"))
	})
	defer sub.Unsubscribe()
	var requestNs float64
	b.Run("request", func(b *testing.B) {
		b.SetParallelism(8)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := e.nc.Request("svc.reports.x", nil, 5*time.Second); err != nil {
					b.Error(err)
					return
				}
			}
		})
		requestNs = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})
	b.Run("job", func(b *testing.B) {
		r := e.runner(b, jobs.Options{Services: []string{"reports"}, Concurrency: 32, AckWait: 30 * time.Second,
			PollWait: 200 * time.Millisecond})
		defer r.Shutdown(b.Context())
		before := calls.Load()
		b.ResetTimer()
		for i := range b.N {
			e.submit(b, "reports", "j"+strconv.Itoa(i))
		}
		deadline := time.Now().Add(5 * time.Minute)
		for {
			info := consumerInfo(b, e.js, "reports")
			if info.NumPending == 0 && info.NumAckPending == 0 && calls.Load()-before >= int64(b.N) {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("jobs not finished: %+v", info)
			}
			time.Sleep(5 * time.Millisecond)
		}
		b.StopTimer()
		if n := calls.Load() - before; n != int64(b.N) {
			b.Fatalf("%d runs for %d jobs", n, b.N)
		}
		if ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N); requestNs > 0 {
			b.ReportMetric(requestNs/ns, "ratio-to-request")
		}
	})
}
