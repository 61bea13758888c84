package balancer

import (
	"testing"
	"time"

	"github.com/switchyard/switchyard/config"
)

func TestRetryBudget(t *testing.T) {
	clk := new(fakeClock)
	p := mustNew(t, service(config.PolicyWeighted, 1), WithClock(clk.Now))
	allowed := func() int {
		n := 0
		for p.AllowRetry() {
			n++
			if n > 1000 {
				t.Fatal("budget never runs out")
			}
		}
		return n
	}

	// No requests: the floor of 3 retries a second.
	if n := allowed(); n != 3 {
		t.Fatalf("idle: %d retries allowed, want 3", n)
	}
	// 100 requests at 20%: 20 retries in the window (the 3 spent count).
	for range 100 {
		p.RecordRequest()
	}
	if n := allowed(); n != 17 {
		t.Fatalf("100 requests: %d more retries allowed, want 17 (20 minus the 3 spent)", n)
	}
	// The next second the floor allows 3 more, no more.
	clk.Advance(time.Second)
	if n := allowed(); n != 3 {
		t.Fatalf("next second: %d allowed, want 3", n)
	}
	// More requests raise the budget again.
	for range 50 {
		p.RecordRequest()
	}
	if n := allowed(); n != 7 {
		t.Fatalf("150 requests, 23 retries: %d allowed, want 7 (30-23)", n)
	}
	// Once the window has slid past them, old requests and retries no longer count.
	clk.Advance(10 * time.Second)
	for range 10 {
		p.RecordRequest()
	}
	if n := allowed(); n != 3 {
		t.Fatalf("new window, 10 requests: %d allowed, want 3 (the floor; 2 by the percentage)", n)
	}
	for range 100 {
		p.RecordRequest()
	}
	if n := allowed(); n != 19 {
		t.Fatalf("new window, 110 requests: %d allowed, want 19 (22 minus 3 spent)", n)
	}
}

func TestRetryBudgetConcurrent(t *testing.T) {
	p := mustNew(t, service(config.PolicyWeighted, 1), WithClock(new(fakeClock).Now))
	done := make(chan int)
	for range 4 {
		go func() {
			n := 0
			for range 250 {
				p.RecordRequest()
				if p.AllowRetry() {
					n++
				}
			}
			done <- n
		}()
	}
	total := 0
	for range 4 {
		total += <-done
	}
	// 1000 requests at 20% plus the floor: never more than 200+3.
	if total > 203 || total < 150 {
		t.Fatalf("%d retries allowed for 1000 requests, want about 200", total)
	}
}
