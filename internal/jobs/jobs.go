package jobs

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"
)

// Errors of the store. Match them with errors.Is.
var (
	// ErrNotFound is returned when no job has the id.
	ErrNotFound = errors.New("job not found")
	// ErrExists is returned by Create when the id is taken.
	ErrExists = errors.New("job exists")
	// ErrConflict is returned by Update and Delete when the record changed
	// since it was read: a newer write won, re-read before deciding again.
	ErrConflict = errors.New("job record changed since it was read")
	// ErrBackwards is returned by Update for a move that is not forward
	// (see CanMove), such as done -> running.
	ErrBackwards = errors.New("job state cannot move backwards")
	// ErrRecordTooLarge is returned by Create and Update when the encoded
	// record is over the bucket's value limit; store the body with PutBody.
	ErrRecordTooLarge = errors.New("job record over the bucket's value limit")
	// ErrResultGone is returned by OpenBody when the stored body is missing
	// (it expired or was removed).
	ErrResultGone = errors.New("job result body is gone")
)

// Job states.
const (
	StatusQueued  = "queued"
	StatusRunning = "running"
	StatusDone    = "done"
	StatusFailed  = "failed"
)

// Error codes of a failed job (Record.ErrorCode).
const (
	// CodeAttemptsExhausted: every attempt failed with a retryable error.
	CodeAttemptsExhausted = "attempts_exhausted"
	// CodeRunnerLost: the runner died during the last attempt.
	CodeRunnerLost = "runner_lost"
	// CodeResultTooLarge: the service's answer is over the result limit.
	CodeResultTooLarge = "result_too_large"
	// CodeSubmitFailed: the edge could not tell whether the job was queued,
	// and the client was told so (503); the job does not run.
	CodeSubmitFailed = "submit_failed"
)

// Record is one job.
type Record struct {
	ID          string    `json:"id"`
	Service     string    `json:"service"`
	Method      string    `json:"method"`
	Path        string    `json:"path"`
	Status      string    `json:"status"`
	Attempts    int       `json:"attempts"`
	SubmittedAt time.Time `json:"submitted_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	// LastError is the last attempt's failure: cleared when the job is done.
	LastError *Failure `json:"last_error,omitempty"`
	// ErrorCode says why a failed job failed (Code* constants).
	ErrorCode string `json:"error_code,omitempty"`
	// StreamSeq is the JOBS sequence of the message whose delivery runs
	// (or last ran) the job; 0 until a runner takes it.
	StreamSeq uint64    `json:"stream_seq,omitempty"`
	Response  *Response `json:"response,omitempty"`
	// RequestHash is RequestHash of the submitted request: a keyed
	// submit whose request differs from the job's is refused (422).
	RequestHash string `json:"request_hash,omitempty"`

	// Revision is the KV revision the record was read or written at; the
	// next Update is a compare-and-set on it.
	Revision uint64 `json:"-"`
	// stored is Status at Revision.
	stored string
}

// Failure is why an attempt or a job failed, as fields: never an error
// body nested as escaped JSON.
type Failure struct {
	// Status is the HTTP status of the answer that failed, 0 when none came
	// (the call timed out, the runner died).
	Status int `json:"status,omitempty"`
	// Code is the machine-readable error code: the answer's error code
	// (no_responders, bad_gateway, ...) or the runner's own (timeout,
	// unavailable, runner_lost, submit_failed).
	Code string `json:"code"`
	// Message says what happened, in words.
	Message string `json:"message"`
}

// UnmarshalJSON reads a Failure, and the plain string that records
// written by earlier versions hold (as the message).
func (f *Failure) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		*f = Failure{}
		return json.Unmarshal(b, &f.Message)
	}
	type plain Failure
	return json.Unmarshal(b, (*plain)(f))
}

// Response is the service's answer to a finished job. Body is base64 in
// JSON; a body too large for the record is in the object store under
// Object, and Body is empty.
type Response struct {
	Status   int         `json:"status"`
	Header   http.Header `json:"headers"`
	Body     []byte      `json:"body,omitempty"`
	BodySize int64       `json:"body_size"`
	// Object names the body in object store job-results when it is not inline.
	Object string `json:"object,omitempty"`
}

// Final reports whether status is done or failed.
func Final(status string) bool { return status == StatusDone || status == StatusFailed }

// CanMove reports whether a record may go from status from to status to.
// from "" is a new record, which starts queued.
func CanMove(from, to string) bool {
	switch from {
	case "":
		return to == StatusQueued
	case StatusQueued:
		return to == StatusRunning || to == StatusFailed
	case StatusRunning:
		return to == StatusRunning || to == StatusQueued || Final(to)
	}
	return false
}

// ObjectName is the object store name of the body of one attempt: unique
// per job, stream sequence and delivery, so a late attempt never
// overwrites the body a newer record names.
func ObjectName(id string, seq uint64, attempt int) string {
	return id + "-" + strconv.FormatUint(seq, 10) + "-" + strconv.Itoa(attempt)
}

var enc = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewID returns a random job id: 24 characters of [a-z2-7].
func NewID() string {
	var b [15]byte
	_, _ = rand.Read(b[:])
	return enc.EncodeToString(b[:])
}

// IDFromKey derives the job id of an Idempotency-Key, scoped by service,
// so a retried submit names the same job.
func IDFromKey(service, key string) string {
	h := sha256.Sum256([]byte(service + "\x00" + key))
	return enc.EncodeToString(h[:15])
}

// RequestHash identifies a submitted request: its method, path, query
// and body (hex SHA-256). Two submits with one Idempotency-Key must have
// the same hash to name the same job.
func RequestHash(method, path, query string, body []byte) string {
	h := sha256.New()
	for _, s := range []string{method, path, query} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}

// IDLen is the length of every job id (NewID, IDFromKey).
const IDLen = 24

// ValidID reports whether id has the form of a job id: IDLen characters
// of [a-z2-7]. Anything else is malformed (the lb edge answers 400), not
// merely unknown (404).
func ValidID(id string) bool {
	if len(id) != IDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}
