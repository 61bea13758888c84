package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard/switchyard/internal/apierr"
	"github.com/switchyard/switchyard/internal/httpnats"
	ijobs "github.com/switchyard/switchyard/internal/jobs"
	"github.com/switchyard/switchyard/jetstream"
	"github.com/switchyard/switchyard/subjects"
)

// writeTries is how many times one record or result write is tried within
// an attempt before the attempt gives up on it.
const writeTries = 3

// attempt is one delivery of one job.
type attempt struct {
	r     *Runner
	svc   string
	msg   natsjs.Msg
	md    *natsjs.MsgMetadata
	id    string
	log   *slog.Logger
	start time.Time
}

// handle runs one delivery: it claims the record, calls the service,
// stores the answer and acks. The job is heartbeated throughout.
func (r *Runner) handle(svc string, msg natsjs.Msg) {
	gauge := r.metrics.running.WithLabelValues(svc)
	gauge.Inc()
	defer gauge.Dec()
	stopHB := r.heartbeat(svc, msg)
	defer stopHB()

	md, err := msg.Metadata()
	if err != nil {
		_ = msg.Term()
		r.metrics.outcomes.WithLabelValues(svc, outcomeInvalid).Inc()
		r.o.Log.Warn("job without JetStream metadata, terminated", "service", svc, "subject", msg.Subject(), "err", err)
		return
	}
	id := msg.Headers().Get(subjects.HeaderJobID)
	a := &attempt{r: r, svc: svc, msg: msg, md: md, id: id, start: time.Now(),
		log: r.o.Log.With("service", svc, "job_id", id, "attempt", md.NumDelivered, "stream_seq", md.Sequence.Stream)}
	if !ijobs.ValidID(id) {
		a.end(outcomeInvalid, msg.Term, slog.LevelWarn, "job without a valid id, terminated", "subject", msg.Subject())
		return
	}
	rec := a.claim()
	if rec == nil {
		return
	}
	reply, callErr := r.call(r.jobCtx, msg)
	r.metrics.duration.WithLabelValues(svc).Observe(time.Since(a.start).Seconds())
	if r.jobCtx.Err() != nil {
		// Shutdown deadline: hand it back; the next delivery takes the record over.
		a.end(outcomeAbandoned, msg.Nak, slog.LevelWarn, "job abandoned at the shutdown deadline")
		return
	}
	if callErr != nil {
		code := apierr.CodeUnavailable
		if errors.Is(callErr, errCallTimeout) {
			code = apierr.CodeTimeout
		}
		if errors.Is(callErr, errCallLost) {
			code = apierr.CodeOutcomeUnknown
		}
		if (errors.Is(callErr, errCallTimeout) || errors.Is(callErr, errCallLost)) && !replayableJob(msg) {
			a.fail(rec, code, ijobs.Failure{Code: code, Message: "the request reached a service that did not answer; its outcome is " +
				"unknown and it is not replayable (neither an idempotent method nor an Idempotency-Key), so it is not run again: " +
				callErr.Error()})
			return
		}
		a.retry(rec, ijobs.Failure{Code: code, Message: callErr.Error()})
		return
	}
	resp := httpnats.DecodeResponse(reply)
	switch {
	case resp.ErrorCode == apierr.CodeResponseTooLarge:
		f := failureOf(resp)
		f.Message = fmt.Sprintf("the service's answer is over the size a job result may have (%d bytes): %s", r.o.MaxResultBytes, f.Message)
		a.fail(rec, ijobs.CodeResultTooLarge, f)
	case int64(len(resp.Body)) > r.o.MaxResultBytes:
		a.fail(rec, ijobs.CodeResultTooLarge, ijobs.Failure{Status: resp.Status, Code: ijobs.CodeResultTooLarge,
			Message: fmt.Sprintf("the service answered %d bytes, over the job result limit of %d bytes", len(resp.Body), r.o.MaxResultBytes)})
	case notSent(resp.ErrorCode):
		a.retry(rec, failureOf(resp))
	case mayHaveRun(resp.ErrorCode):
		// The request reached an upstream, which may have acted on it:
		// running it again is safe only for a replayable request.
		f := failureOf(resp)
		if replayableJob(msg) {
			a.retry(rec, f)
		} else {
			f.Message = "the request reached the service and its outcome is unknown; not replayable " +
				"(neither an idempotent method nor an Idempotency-Key), so it is not run again: " + f.Message
			a.fail(rec, resp.ErrorCode, f)
		}
	default:
		a.done(rec, resp)
	}
}

// end settles the delivery with settle (Ack, Nak, Term, or nil to leave
// it), counts the outcome and logs msg.
func (a *attempt) end(outcome string, settle func() error, level slog.Level, msg string, attrs ...any) {
	if settle != nil {
		if err := settle(); err != nil {
			attrs = append(attrs, "settle_err", err.Error())
		}
	}
	a.r.metrics.outcomes.WithLabelValues(a.svc, outcome).Inc()
	a.log.Log(context.Background(), level, msg, append(attrs, "outcome", outcome, "duration_ms", time.Since(a.start).Milliseconds())...)
}

func (a *attempt) nakAfter(d time.Duration) func() error {
	return func() error { return a.msg.NakWithDelay(d) }
}

// claim moves the record to running under this delivery. It returns nil
// when the job must not run here (the delivery is then settled).
func (a *attempt) claim() *ijobs.Record {
	ctx := a.r.jobCtx
	seq := a.md.Sequence.Stream
	get := a.r.store.Get
	for range writeTries {
		rec, err := get(ctx, a.id)
		switch {
		case errors.Is(err, ijobs.ErrNotFound):
			a.end(outcomeSkipped, a.msg.Term, slog.LevelWarn, "job record missing (expired or deleted), terminated")
			return nil
		case err != nil:
			a.r.metrics.recordErrors.WithLabelValues(a.svc, "start").Inc()
			a.end(outcomeAbandoned, a.nakAfter(time.Second), slog.LevelWarn, "job record read failed; retrying", "err", err)
			return nil
		case ijobs.Final(rec.Status):
			// It finished before a crash lost the ack, or the submit gave up on it.
			a.end(outcomeSkipped, a.ack, slog.LevelInfo, "job already finished, not run again", "status", rec.Status, "error_code", rec.ErrorCode)
			return nil
		case rec.Status == ijobs.StatusRunning && rec.StreamSeq != 0 && rec.StreamSeq != seq:
			a.end(outcomeDuplicate, a.ack, slog.LevelInfo, "job runs under another message, not run again", "running_seq", rec.StreamSeq)
			return nil
		}
		rec.Status = ijobs.StatusRunning
		rec.Attempts = int(a.md.NumDelivered)
		rec.StreamSeq = seq
		err = a.r.store.Update(ctx, rec)
		if errors.Is(err, ijobs.ErrConflict) {
			a.r.metrics.conflicts.WithLabelValues(a.svc, "start").Inc()
			a.log.Info("job record changed meanwhile; reading it again", "transition", "start")
			get = a.r.store.GetLatest // the read may have come from a replica behind the leader
			continue
		}
		if err != nil {
			a.r.metrics.recordErrors.WithLabelValues(a.svc, "start").Inc()
			a.end(outcomeAbandoned, a.nakAfter(time.Second), slog.LevelWarn, "job record write failed; retrying", "transition", "start", "err", err)
			return nil
		}
		return rec
	}
	a.end(outcomeAbandoned, a.nakAfter(time.Second), slog.LevelWarn, "job record keeps changing; retrying later", "transition", "start")
	return nil
}

func (a *attempt) ack() error {
	ctx, cancel := context.WithTimeout(a.r.jobCtx, 10*time.Second)
	defer cancel()
	return a.msg.DoubleAck(ctx)
}

// write updates rec, retrying errors other than a lost compare-and-set.
func (a *attempt) write(rec *ijobs.Record) error {
	var err error
	for i := range writeTries {
		if err = a.r.store.Update(a.r.jobCtx, rec); err == nil || errors.Is(err, ijobs.ErrConflict) ||
			errors.Is(err, ijobs.ErrBackwards) || errors.Is(err, ijobs.ErrRecordTooLarge) || a.r.jobCtx.Err() != nil {
			return err
		}
		sleep(a.r.jobCtx, time.Duration(i+1)*200*time.Millisecond)
	}
	return err
}

// writeResult stores the record of a job that ran: a write that fails for
// a reason other than a lost compare-and-set (the bucket's leader died,
// the connection moved to another server) is tried again with backoff for
// up to ResultWriteBudget while the heartbeat keeps the delivery, because
// the alternative is running the job again. A retry that finds the
// revision moved asks whether its own earlier try went through.
func (a *attempt) writeResult(rec *ijobs.Record) error {
	end := time.Now().Add(a.r.o.ResultWriteBudget)
	want := rec.Status
	for i := 0; ; i++ {
		err := a.r.store.Update(a.r.jobCtx, rec)
		if errors.Is(err, ijobs.ErrConflict) && i > 0 {
			// An earlier try may have been stored and its answer lost.
			if cur, gerr := a.r.store.GetLatest(a.r.jobCtx, a.id); gerr == nil && cur.Status == want && cur.StreamSeq == rec.StreamSeq &&
				cur.Attempts == rec.Attempts {
				*rec = *cur
				return nil
			}
			return err
		}
		if err == nil || errors.Is(err, ijobs.ErrConflict) || errors.Is(err, ijobs.ErrBackwards) ||
			errors.Is(err, ijobs.ErrRecordTooLarge) || a.r.jobCtx.Err() != nil || time.Now().After(end) {
			return err
		}
		d := min(time.Duration(i+1)*250*time.Millisecond, 2*time.Second)
		a.r.metrics.writeRetries.WithLabelValues(a.svc).Inc()
		a.log.Warn("job result write failed; retrying before the job could run again", "try", i+1, "retry_in", d.String(), "err", err)
		sleep(a.r.jobCtx, d)
	}
}

// lost handles a write that lost to a newer one: this delivery's result is
// dropped and the job left to whoever wrote last.
func (a *attempt) lost(transition string, object string) {
	a.r.metrics.conflicts.WithLabelValues(a.svc, transition).Inc()
	if object != "" {
		if err := a.r.store.DeleteBody(a.r.jobCtx, object); err != nil {
			a.log.Warn("could not remove the result of a dropped attempt", "object", object, "err", err)
		}
	}
	settle := func() error { return nil }
	if rec, err := a.r.store.GetLatest(a.r.jobCtx, a.id); err == nil && ijobs.Final(rec.Status) {
		settle = a.ack // finished elsewhere: this message is done with
	}
	a.end(outcomeConflict, settle, slog.LevelWarn, "job record changed under this attempt (a newer attempt took over); its result is dropped",
		"transition", transition)
}

func (a *attempt) done(rec *ijobs.Record, resp httpnats.Response) {
	rec.Status = ijobs.StatusDone
	rec.LastError, rec.ErrorCode = nil, ""
	rec.Response = &ijobs.Response{Status: resp.Status, Header: resp.Header, Body: resp.Body, BodySize: int64(len(resp.Body))}
	where, object := "inline", ""
	if !a.r.store.Fits(rec) {
		where, object = "object_store", ijobs.ObjectName(a.id, rec.StreamSeq, rec.Attempts)
		rec.Response.Body, rec.Response.Object = nil, object
		var err error
		for i := range writeTries {
			if err = a.r.store.PutBody(a.r.jobCtx, object, resp.Body); err == nil || a.r.jobCtx.Err() != nil {
				break
			}
			sleep(a.r.jobCtx, time.Duration(i+1)*200*time.Millisecond)
		}
		if err != nil {
			a.r.metrics.recordErrors.WithLabelValues(a.svc, "done").Inc()
			a.retry(rec, ijobs.Failure{Status: resp.Status, Code: apierr.CodeUnavailable, Message: "the answer could not be stored: " + err.Error()})
			return
		}
	}
	err := a.writeResult(rec)
	switch {
	case errors.Is(err, ijobs.ErrConflict):
		a.lost("done", object)
		return
	case errors.Is(err, ijobs.ErrRecordTooLarge):
		// The headers alone do not fit a record.
		if object != "" {
			_ = a.r.store.DeleteBody(a.r.jobCtx, object)
		}
		rec.Response = nil
		a.fail(rec, ijobs.CodeResultTooLarge, ijobs.Failure{Status: resp.Status, Code: ijobs.CodeResultTooLarge,
			Message: "the service's answer headers do not fit a job record"})
		return
	case err != nil:
		a.r.metrics.recordErrors.WithLabelValues(a.svc, "done").Inc()
		if object != "" {
			_ = a.r.store.DeleteBody(a.r.jobCtx, object)
		}
		a.end(outcomeAbandoned, a.nakAfter(time.Second), slog.LevelWarn, "job record write failed; the job will run again", "transition", "done", "err", err)
		return
	}
	a.r.metrics.results.WithLabelValues(a.svc, where).Inc()
	a.end(outcomeDone, a.ack, slog.LevelInfo, "job done", "status", resp.Status, "body_bytes", len(resp.Body), "stored", where)
}

// retry records a retryable failure: queued again with a growing delay,
// or failed after the last attempt.
func (a *attempt) retry(rec *ijobs.Record, failure ijobs.Failure) {
	if int(a.md.NumDelivered) >= a.r.o.MaxDeliver {
		a.fail(rec, ijobs.CodeAttemptsExhausted, failure)
		return
	}
	rec.Status = ijobs.StatusQueued
	rec.LastError = &failure
	rec.Response = nil
	delay := min(time.Duration(a.md.NumDelivered)*time.Duration(a.md.NumDelivered)*time.Second, time.Minute)
	err := a.write(rec)
	if errors.Is(err, ijobs.ErrConflict) {
		a.lost("retry", "")
		return
	}
	if err != nil {
		// The record stays running under this message; the next delivery takes it over.
		a.r.metrics.recordErrors.WithLabelValues(a.svc, "retry").Inc()
		a.log.Warn("job record write failed", "transition", "retry", "err", err)
	}
	a.end(outcomeRetry, a.nakAfter(delay), slog.LevelInfo, "job attempt failed; retrying",
		"code", failure.Code, "status", failure.Status, "err", failure.Message, "delay", delay.String())
}

// fail marks the job failed for good and terminates it.
func (a *attempt) fail(rec *ijobs.Record, code string, failure ijobs.Failure) {
	rec.Status = ijobs.StatusFailed
	rec.ErrorCode = code
	rec.LastError = &failure
	err := a.writeResult(rec)
	if errors.Is(err, ijobs.ErrConflict) {
		a.lost("failed", "")
		return
	}
	if err != nil {
		a.r.metrics.recordErrors.WithLabelValues(a.svc, "failed").Inc()
		if int(a.md.NumDelivered) >= a.r.o.MaxDeliver {
			// Not terminated: JetStream's max-deliveries advisory lets a runner mark it failed.
			a.end(outcomeAbandoned, a.msg.Nak, slog.LevelWarn, "job record write failed; leaving the job to the max-deliveries advisory",
				"transition", "failed", "err", err)
			return
		}
		a.end(outcomeAbandoned, a.nakAfter(time.Second), slog.LevelWarn, "job record write failed; the job will run again",
			"transition", "failed", "err", err)
		return
	}
	a.end(outcomeFailed, a.msg.Term, slog.LevelWarn, "job failed", "error_code", code,
		"code", failure.Code, "status", failure.Status, "err", failure.Message)
}

// heartbeat sends InProgress every AckWait/3 until the returned function
// is called (which waits for the goroutine).
func (r *Runner) heartbeat(svc string, msg natsjs.Msg) func() {
	ctx, cancel := context.WithCancel(r.jobCtx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(max(r.o.AckWait/3, 50*time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := msg.InProgress(); err != nil {
					r.metrics.heartbeats.WithLabelValues(svc).Inc()
				}
			}
		}
	}()
	return func() { cancel(); wg.Wait() }
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

func (r *Runner) call(ctx context.Context, msg natsjs.Msg) (*nats.Msg, error) {
	svc, subj, err := subjects.JobCall(msg.Subject())
	if err != nil {
		return nil, err
	}
	req := nats.NewMsg(subj)
	for k, vs := range msg.Headers() {
		if strings.HasPrefix(k, "Nats-") {
			continue
		}
		req.Header[k] = vs
	}
	req.Data = msg.Data()
	ctx, cancel := context.WithTimeout(ctx, r.o.Timeout)
	defer cancel()
	// The worker stops when this attempt does, and drops it once expired.
	httpnats.SetDeadline(req, time.Now().Add(r.o.Timeout))
	// The reply comes to this connection: if it drops, the reply is lost,
	// and waiting out the timeout would only delay the retry.
	ctx, release := jetstream.Bind(ctx, r.drops.Current())
	defer release()
	reply, err := r.o.NC.RequestMsgWithContext(ctx, req)
	switch {
	case err != nil && errors.Is(context.Cause(ctx), jetstream.ErrConnLost):
		return nil, fmt.Errorf("the connection to NATS dropped while service %s had the request: %w", svc, errCallLost)
	case errors.Is(err, nats.ErrNoResponders):
		return nil, errors.New("no worker serves " + svc)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return nil, fmt.Errorf("service %s did not answer within %s: %w", svc, r.o.Timeout, errCallTimeout)
	case err != nil:
		return nil, err
	}
	return reply, nil
}

// errCallTimeout: a service took the request and did not answer in time.
var errCallTimeout = errors.New("no answer in time")

// errCallLost: the runner's NATS connection dropped after the request was
// sent, so its answer cannot come; the service may have run it.
var errCallLost = errors.New("outcome unknown")

// replayableJob reports whether a job's request may run more than once.
func replayableJob(msg natsjs.Msg) bool {
	req := httpnats.DecodeRequest(&nats.Msg{Header: msg.Headers(), Data: msg.Data()})
	return req.Replayable()
}

// notSent reports whether a Switchyard error code means the request never
// reached a service: try again later, whatever the request.
func notSent(code string) bool {
	switch code {
	case apierr.CodeNoHealthyUpstream, apierr.CodeNoResponders, apierr.CodeOverloaded,
		apierr.CodeUnavailable, apierr.CodeShuttingDown:
		return true
	}
	return false
}

// mayHaveRun reports whether a Switchyard error code means the request was
// sent to a service whose answer broke off or never came.
func mayHaveRun(code string) bool {
	return code == apierr.CodeBadGateway || code == apierr.CodeTimeout
}

// failureOf describes an error answer as fields: its status, its code and
// the message of its JSON error body (or the body's text, shortened).
func failureOf(resp httpnats.Response) ijobs.Failure {
	f := ijobs.Failure{Status: resp.Status, Code: resp.ErrorCode}
	if f.Code == "" {
		f.Code = apierr.CodeForStatus(resp.Status)
	}
	var body apierr.Body
	if json.Unmarshal(resp.Body, &body) == nil && body.Error.Message != "" {
		f.Message = body.Error.Message
		return f
	}
	f.Message = strings.TrimSpace(string(resp.Body))
	if len(f.Message) > 512 {
		f.Message = f.Message[:512] + "..."
	}
	if f.Message == "" {
		f.Message = http.StatusText(resp.Status)
	}
	return f
}
