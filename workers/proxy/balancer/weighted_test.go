package balancer

import (
	"sync"
	"testing"

	"github.com/switchyard/switchyard/config"
)

func counts(t *testing.T, p *Pool, n int) map[*Upstream]int {
	t.Helper()
	c := map[*Upstream]int{}
	for range n {
		c[mustPick(t, p)]++
	}
	return c
}

func TestWeightedExactSplit(t *testing.T) {
	p := mustNew(t, service(config.PolicyWeighted, 3, 1))
	c := counts(t, p, 10000)
	ups := p.Upstreams()
	if c[ups[0]] != 7500 || c[ups[1]] != 2500 {
		t.Fatalf("3:1 over 10000 picks = %d:%d, want 7500:2500", c[ups[0]], c[ups[1]])
	}
}

func TestWeightedThreeWay(t *testing.T) {
	p := mustNew(t, service(config.PolicyWeighted, 5, 3, 2))
	c := counts(t, p, 10000)
	for i, want := range []int{5000, 3000, 2000} {
		got := c[p.Upstreams()[i]]
		if got < want-1 || got > want+1 {
			t.Errorf("upstream %d (weight %d): %d picks, want %d±1", i, p.Upstreams()[i].Weight, got, want)
		}
	}
}

func TestWeightedSmooth(t *testing.T) {
	p := mustNew(t, service(config.PolicyWeighted, 5, 1, 1))
	ups := p.Upstreams()
	name := map[*Upstream]string{ups[0]: "a", ups[1]: "b", ups[2]: "c"}
	var seq string
	for range 7 {
		seq += name[mustPick(t, p)]
	}
	if seq != "aabacaa" {
		t.Fatalf("first cycle %q, want nginx's aabacaa", seq)
	}
	var last *Upstream
	run := 0
	for range 7000 {
		u := mustPick(t, p)
		if u == last {
			run++
		} else {
			last, run = u, 1
		}
		if run > 5 {
			t.Fatalf("%s picked %d times in a row", name[u], run)
		}
	}
}

func TestWeightedConcurrentPicksStayExact(t *testing.T) {
	p := mustNew(t, service(config.PolicyWeighted, 3, 1))
	var mu sync.Mutex
	total := map[*Upstream]int{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			local := map[*Upstream]int{}
			for range 1250 {
				u, err := p.Pick(nil)
				if err != nil {
					t.Error(err)
					return
				}
				local[u]++
			}
			mu.Lock()
			for u, n := range local {
				total[u] += n
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	ups := p.Upstreams()
	if total[ups[0]] != 7500 || total[ups[1]] != 2500 {
		t.Fatalf("concurrent 3:1 over 10000 picks = %d:%d, want 7500:2500", total[ups[0]], total[ups[1]])
	}
}

func TestWeightedSkipsUnavailableAndKeepsShares(t *testing.T) {
	p := mustNew(t, service(config.PolicyWeighted, 2, 1, 1))
	ups := p.Upstreams()
	p.setHealthy(ups[0], false, "test")
	c := counts(t, p, 1000)
	if c[ups[0]] != 0 || c[ups[1]] != 500 || c[ups[2]] != 500 {
		t.Fatalf("with the first unhealthy: %d/%d/%d, want 0/500/500", c[ups[0]], c[ups[1]], c[ups[2]])
	}
}
