package balancer_test

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/workers/proxy/balancer"
)

func ExampleNew() {
	svc := config.ResolvedService{Name: "vision", Service: config.Service{
		Policy: config.PolicyWeighted,
		Upstreams: []config.Upstream{
			{URL: "http://10.0.0.1:8001", Weight: 2},
			{URL: "http://10.0.0.2:8001", Weight: 1},
		},
	}}
	pool, err := balancer.New(svc, balancer.NewMetrics(prometheus.NewRegistry()), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	var tried []*balancer.Upstream
	for range 3 {
		up, err := pool.Pick(tried[:0])
		if err != nil {
			fmt.Println(err)
			return
		}
		done := up.Begin()
		// ... send the request to up.URL ...
		done(balancer.Outcome{Status: 200, Latency: 3 * time.Millisecond})
		fmt.Println(up.Host())
	}
	// Output:
	// 10.0.0.1:8001
	// 10.0.0.2:8001
	// 10.0.0.1:8001
}
