package balancer

import "sync"

// Retry budget parameters.
const (
	budgetWindowSecs = 10 // sliding window, in one-second buckets
	budgetMinPerSec  = 3  // retries always allowed per second
)

// retryBudget counts requests and retries in one-second buckets over the
// last budgetWindowSecs seconds.
type retryBudget struct {
	percent int64 // read-only after New

	mu      sync.Mutex
	buckets [budgetWindowSecs]budgetBucket
}

type budgetBucket struct {
	sec     int64 // pool-clock second the counts belong to
	reqs    int64
	retries int64
}

// bucket returns the bucket of second sec, emptied if it held an older one.
// Call with mu held.
func (r *retryBudget) bucket(sec int64) *budgetBucket {
	b := &r.buckets[sec%budgetWindowSecs]
	if b.sec != sec {
		*b = budgetBucket{sec: sec}
	}
	return b
}

// RecordRequest counts one client request towards the retry budget. Call
// it once per request the service receives, not per attempt.
func (p *Pool) RecordRequest() {
	sec := p.nanos() / 1e9
	p.budget.mu.Lock()
	p.budget.bucket(sec).reqs++
	p.budget.mu.Unlock()
}

// AllowRetry reports whether the retry budget allows one more retry now,
// and when it does counts that retry as spent. Retries may make up
// RetryBudgetPercent of the requests recorded over the last ~10 seconds;
// besides, 3 retries each second are always allowed.
func (p *Pool) AllowRetry() bool {
	r := &p.budget
	sec := p.nanos() / 1e9
	r.mu.Lock()
	defer r.mu.Unlock()
	cur := r.bucket(sec)
	var reqs, retries int64
	for i := range r.buckets {
		b := &r.buckets[i]
		if age := sec - b.sec; age >= 0 && age < budgetWindowSecs {
			reqs += b.reqs
			retries += b.retries
		}
	}
	if (retries+1)*100 <= reqs*r.percent || cur.retries < budgetMinPerSec {
		cur.retries++
		return true
	}
	return false
}
