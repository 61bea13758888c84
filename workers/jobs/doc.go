// Package jobs runs durable (async) jobs: the `switchyard jobs` part. For
// every service it pulls from the durable consumer jobs-<service> on stream
// JOBS, sends each job as an HTTP-over-NATS request to svc.<service>.<tokens>
// (so a proxy worker or any NATS worker, such as a Rust service, serves
// it), and stores the answer in the job's record (internal/jobs).
//
// # Once per attempt
//
// A runner holds a job only while it runs it: each service's pull loop asks
// JetStream for as many messages as it has free slots (Options.Concurrency)
// and starts every message it receives at once, so no message waits in a
// client buffer without a heartbeat. From the moment it receives a job
// until it acks it, the runner sends progress heartbeats (InProgress) every
// AckWait/3, so AckWait only catches a dead runner, whatever the job's
// duration. A dead runner's job is redelivered after AckWait and the new
// delivery takes the record over (running -> running under a higher
// attempt); the dead runner, should it come back, loses every record write
// (compare-and-set on the revision) and drops its result.
//
// Before running, the runner moves the record queued -> running with a
// compare-and-set; a record already done or failed, or running under
// another JOBS message, means the job ran or runs elsewhere: the message is
// acked and the job is not run again. The job is acked only after the
// answer is in the record.
//
// # Outcomes
//
// No responders, a timeout or a retryable Switchyard error (no healthy
// upstream, 502/503/504 from Switchyard itself) makes the record queued
// again and naks the job with a growing delay; after MaxDeliver attempts
// the record is failed (code attempts_exhausted) and the job terminated. A
// runner that died during the last attempt leaves the job to JetStream's
// max-deliveries advisory, on which another runner marks it failed (code
// runner_lost). An answer body over MaxResultBytes fails the job at once
// (code result_too_large): running it again would give the same answer. A
// body that fits the limit but not the record goes to the object store
// job-results. A record or object write that fails is retried a few times
// within the attempt; if it still fails the job is naked and retried. The
// write of a finished job's record (done or failed) is retried for up to
// ResultWriteBudget (30s: a leader election of the jobs bucket), with the
// heartbeat going, before the job is handed back to run again; a retry that
// finds the revision moved checks with the leader whether its own earlier
// try was stored. A record read as missing is confirmed by a leader read
// before the job is dropped (internal/jobs Store.Get), and a lost
// compare-and-set re-reads from the leader. When the runner's connection
// drops while a service holds a job (jetstream.DropWatch), the call ends
// at once: its outcome is unknown, so it is retried only when replayable,
// else the job fails with code outcome_unknown.
//
// Every outcome is counted in switchyard_jobs_attempts_total and logged
// with the job id; a write that lost to a newer one is counted in
// switchyard_jobs_record_conflicts_total.
//
// # Concurrency
//
// A Runner is safe for concurrent use. Its goroutines: one pull loop per
// service, one goroutine and one heartbeat goroutine per running job, and
// the advisory subscription's handler; Shutdown stops the pull loops, waits
// for running jobs until its context ends, then cancels them (their jobs
// are naked and redelivered) and waits for every goroutine.
package jobs
