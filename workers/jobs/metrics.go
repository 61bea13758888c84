package jobs

import "github.com/prometheus/client_golang/prometheus"

// Outcomes of one delivery of a job (label "outcome" of attempts_total).
const (
	outcomeDone      = "done"      // answered and stored; acked
	outcomeRetry     = "retry"     // retryable failure; naked with a delay
	outcomeFailed    = "failed"    // failed for good; terminated
	outcomeSkipped   = "skipped"   // record final or missing; acked or terminated without running
	outcomeDuplicate = "duplicate" // another JOBS message of the job runs it; acked without running
	outcomeConflict  = "conflict"  // a newer record write won; this delivery's result dropped
	outcomeInvalid   = "invalid"   // no valid job id or metadata; terminated
	outcomeAbandoned = "abandoned" // shutdown deadline or a record error; naked for redelivery
)

type metrics struct {
	outcomes     *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	running      *prometheus.GaugeVec
	conflicts    *prometheus.CounterVec
	recordErrors *prometheus.CounterVec
	results      *prometheus.CounterVec
	heartbeats   *prometheus.CounterVec
	writeRetries *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "switchyard", Subsystem: "jobs", Name: "attempts_total",
			Help: "Job deliveries, by service and outcome (done, retry, failed, skipped, duplicate, conflict, invalid, abandoned).",
		}, []string{"service", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "switchyard", Subsystem: "jobs", Name: "attempt_duration_seconds",
			Help:    "Duration of one job attempt, by service.",
			Buckets: prometheus.ExponentialBuckets(0.005, 4, 10),
		}, []string{"service"}),
		running: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "switchyard", Subsystem: "jobs", Name: "running",
			Help: "Jobs held by this runner (received and not yet acked), by service.",
		}, []string{"service"}),
		conflicts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "switchyard", Subsystem: "jobs", Name: "record_conflicts_total",
			Help: "Record writes that lost to a newer write (compare-and-set), by service and transition (start, done, retry, failed, advisory).",
		}, []string{"service", "transition"}),
		recordErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "switchyard", Subsystem: "jobs", Name: "record_errors_total",
			Help: "Record and result writes or reads that failed (after retries), by service and transition.",
		}, []string{"service", "transition"}),
		results: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "switchyard", Subsystem: "jobs", Name: "results_total",
			Help: "Stored job results, by service and where the body is (inline, object_store).",
		}, []string{"service", "where"}),
		heartbeats: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "switchyard", Subsystem: "jobs", Name: "heartbeat_errors_total",
			Help: "Progress heartbeats (InProgress) that could not be sent, by service.",
		}, []string{"service"}),
		writeRetries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "switchyard", Subsystem: "jobs", Name: "result_write_retries_total",
			Help: "Result writes tried again (e.g. across a leader change of the jobs bucket) instead of running the job again, by service.",
		}, []string{"service"}),
	}
	reg.MustRegister(m.outcomes, m.duration, m.running, m.conflicts, m.recordErrors, m.results, m.heartbeats, m.writeRetries)
	return m
}

// RegisterMetrics registers the job runners' metrics on reg (for tools and
// tests that list what a process exports; a Runner registers its own).
func RegisterMetrics(reg prometheus.Registerer) { newMetrics(reg) }
