// Package jobs holds the durable job record shared by the lb edge (which
// submits jobs and reads them) and the job runners (which execute them).
//
// # Records
//
// Records live in the JetStream KV bucket "jobs", keyed by job id. Every
// write after the first is a compare-and-set on the revision the writer
// read (Store.Update), and the store refuses a move that is not forward:
//
//	queued  -> running | failed
//	running -> running (a redelivery takes over) | queued (retry) | done | failed
//	done, failed: final
//
// A writer that read an older revision loses with ErrConflict and must
// re-read; so a late runner (one whose attempt was taken over after its ack
// wait) can never overwrite a newer state, and a finished job never moves
// again. Create is a KV create: it fails with ErrExists when the id is taken.
//
// # Results
//
// A service's answer is stored in the record (body in base64) while the
// encoded record fits the bucket's value limit (Store.ValueLimit). A larger
// body goes to the object store "job-results" under an object name that is
// unique to the attempt, and the record names it (Response.Object); the
// body is then served whole by Store.OpenBody. The runners refuse a body
// over their configured result limit: the job fails with code
// result_too_large and is not retried.
//
// # Crash-safe submit
//
// The edge writes the record first and publishes the job second, with
// Nats-Msg-Id set to the job id so JetStream stores one message per id
// within the JOBS duplicate window. The cases:
//
//   - Crash (or a timeout) after the record, before or during the publish:
//     the record says queued and there may be no message. The client got no
//     202. A retry with the same Idempotency-Key derives the same id, finds
//     the queued record, and publishes again: a missing message is stored,
//     a stored one is recognised as a duplicate and not stored twice. Either
//     way the retry answers 202 and the job runs once.
//   - The publish failed for sure (JetStream refused it: stream full,
//     message too large): the edge deletes the record at the revision it
//     created, so a retry starts afresh.
//   - The publish result is unknown (timeout, lost connection) and the
//     request has no Idempotency-Key: no retry can name this job again, so
//     the edge marks the record failed (code submit_failed) with a
//     compare-and-set. If a runner already moved the record, the job was
//     stored after all and the edge answers 202; otherwise the edge answers
//     503 and a runner that later receives the message finds the record
//     failed and drops it, so a 503 never runs.
//   - A job that got a 202 has its message stored in JOBS (the 202 is sent
//     only after JetStream acknowledged the publish) and its record in the
//     bucket: nothing acknowledged is lost.
//
// A runner that receives a job whose record is running under another
// stream sequence (a second message of the same job, possible only when a
// revive republishes after the duplicate window) or is final drops it.
//
// A Store is safe for concurrent use.
package jobs
