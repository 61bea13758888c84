package lb

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard/switchyard/internal/apierr"
	"github.com/switchyard/switchyard/internal/httpnats"
	ijobs "github.com/switchyard/switchyard/internal/jobs"
	"github.com/switchyard/switchyard/subjects"
)

// Results of a submit (label "result" of switchyard_lb_jobs_submitted_total).
const (
	submitCreated     = "created"     // new job stored and queued
	submitDuplicate   = "duplicate"   // the Idempotency-Key names a job already queued
	submitRevived     = "revived"     // the key names a queued job whose message was missing: queued again
	submitRejected    = "rejected"    // JetStream refused the job (stream full, too large)
	submitUnconfirmed = "unconfirmed" // the publish result is unknown: 503
	submitKeyReused   = "key_reused"  // the Idempotency-Key names a job of another request: 422
)

// CodeIdempotencyKeyReused is the error code of a keyed submit whose
// request differs from the one the key first named (422).
const CodeIdempotencyKeyReused = "idempotency_key_reused"

// jobView is GET /jobs/:id's answer.
type jobView struct {
	*ijobs.Record
	Location string `json:"location"`
}

// submitJob stores a job record, then publishes the request to JOBS, and
// answers 202 with the job id once JetStream has stored it. With an
// Idempotency-Key the id derives from the key, so a retried submit names
// the same job: it answers with that job, and publishes it again while the
// record is still queued (Nats-Msg-Id de-duplicates a message that was
// stored; a message lost to a crash is stored now). The reasoning is in
// the internal/jobs package documentation.
func (h *handler) submitJob(c echo.Context, service string, tokens []string, path string, body []byte) error {
	req := c.Request()
	if _, ok := h.configured[service]; !ok {
		return apierr.Newf(http.StatusBadRequest, apierr.CodeBadRequest,
			"async requests need service %s declared in the configuration", service)
	}
	key := req.Header.Get("Idempotency-Key")
	if len(key) > 255 {
		return apierr.New(http.StatusBadRequest, apierr.CodeBadRequest, "Idempotency-Key longer than 255 characters")
	}
	id := ijobs.NewID()
	if key != "" {
		id = ijobs.IDFromKey(service, key)
	}
	subj, err := subjects.Job(service, tokens...)
	if err != nil {
		return apierr.Newf(http.StatusBadRequest, apierr.CodeBadRequest, "cannot route path: %v", err)
	}
	ctx, cancel := context.WithTimeout(req.Context(), 10*time.Second)
	defer cancel()
	log := h.log.With("service", service, "job_id", id, "keyed", key != "")
	msg := httpnats.NewRequestMsg(subj, req.Method, path, req.URL.RawQuery, req.Header, body)
	addForwarded(msg.Header, req)
	delete(msg.Header, "Prefer")
	msg.Header.Set(subjects.HeaderJobID, id)
	msg.Header.Set(subjects.HeaderMsgID, id)

	now := time.Now().UTC()
	hash := ijobs.RequestHash(req.Method, path, req.URL.RawQuery, body)
	rec := &ijobs.Record{ID: id, Service: service, Method: req.Method, Path: path,
		Status: ijobs.StatusQueued, SubmittedAt: now, UpdatedAt: now, RequestHash: hash}
	switch err := h.jobs.Create(ctx, rec); {
	case errors.Is(err, ijobs.ErrExists):
		return h.resubmit(c, ctx, msg, service, id, key, hash)
	case err != nil:
		return apierr.New(http.StatusServiceUnavailable, apierr.CodeUnavailable, "could not store the job").
			WithRetry(time.Second).WithCause(err)
	}
	_, err = h.jetstream.PublishMsg(ctx, msg)
	if err == nil {
		h.metrics.jobs.WithLabelValues(service, submitCreated).Inc()
		log.Debug("job queued")
		return h.accepted(c, id)
	}
	// The request's context may be over: settle the record on a fresh one.
	sctx, scancel := context.WithTimeout(context.WithoutCancel(req.Context()), 5*time.Second)
	defer scancel()
	if publishRefused(err) {
		// Nothing was stored: remove the record so a retry starts afresh.
		h.metrics.jobs.WithLabelValues(service, submitRejected).Inc()
		if derr := h.jobs.Delete(sctx, id, rec.Revision); errors.Is(derr, ijobs.ErrConflict) {
			return h.accepted(c, id) // a concurrent keyed retry queued it meanwhile
		} else if derr != nil {
			log.Warn("could not remove the record of a refused job; a keyed retry queues it again", "err", derr)
		}
		log.Warn("job refused by JetStream", "err", err)
		if errors.Is(err, nats.ErrMaxPayload) {
			return apierr.New(http.StatusRequestEntityTooLarge, apierr.CodeTooLarge, "job exceeds the stream's message size")
		}
		return apierr.New(http.StatusServiceUnavailable, apierr.CodeUnavailable, "could not queue the job").
			WithRetry(time.Second).WithCause(err)
	}
	h.metrics.jobs.WithLabelValues(service, submitUnconfirmed).Inc()
	if key != "" {
		// The record stays queued: a retry with the same key publishes again.
		log.Warn("job publish unconfirmed; a retry with the same Idempotency-Key queues it", "err", err)
		return apierr.New(http.StatusServiceUnavailable, apierr.CodeUnavailable,
			"could not confirm the job was queued; retry with the same Idempotency-Key").WithRetry(time.Second).WithCause(err)
	}
	// No retry can name this job: make sure it does not run unless it runs already.
	rec.Status = ijobs.StatusFailed
	rec.ErrorCode = ijobs.CodeSubmitFailed
	rec.LastError = &ijobs.Failure{Status: http.StatusServiceUnavailable, Code: ijobs.CodeSubmitFailed,
		Message: "the submit could not confirm the job was queued and answered 503: " + err.Error()}
	switch uerr := h.jobs.Update(sctx, rec); {
	case errors.Is(uerr, ijobs.ErrConflict):
		// A runner moved it first: it was queued after all.
		log.Info("job publish unconfirmed but a runner took the job; answering 202")
		return h.accepted(c, id)
	case uerr != nil:
		log.Error("job publish unconfirmed and its record could not be failed; the job may still run", "err", err, "record_err", uerr)
	default:
		log.Warn("job publish unconfirmed; the job is marked failed and will not run", "err", err)
	}
	return apierr.New(http.StatusServiceUnavailable, apierr.CodeUnavailable, "could not confirm the job was queued").
		WithRetry(time.Second).WithCause(err)
}

// resubmit answers a submit whose job id exists: a retried keyed submit,
// which publishes the job again while its record is queued.
// A keyed submit whose request (method, path, query, body) differs from
// the job's is refused with 422 idempotency_key_reused: the key names
// another request.
func (h *handler) resubmit(c echo.Context, ctx context.Context, msg *nats.Msg, service, id, key, hash string) error {
	keyed := key != ""
	rec, err := h.jobs.Get(ctx, id)
	if err != nil {
		return apierr.New(http.StatusServiceUnavailable, apierr.CodeUnavailable, "could not read the job").
			WithRetry(time.Second).WithCause(err)
	}
	if keyed && rec.RequestHash != "" && rec.RequestHash != hash {
		h.metrics.jobs.WithLabelValues(service, submitKeyReused).Inc()
		return apierr.Newf(http.StatusUnprocessableEntity, CodeIdempotencyKeyReused,
			"Idempotency-Key %q was used for a different request (method, path, query or body): job %s", key, id)
	}
	if !keyed || rec.Status != ijobs.StatusQueued {
		h.metrics.jobs.WithLabelValues(service, submitDuplicate).Inc()
		return h.respondJob(c, rec)
	}
	ack, err := h.jetstream.PublishMsg(ctx, msg)
	if err != nil {
		h.metrics.jobs.WithLabelValues(service, submitUnconfirmed).Inc()
		h.log.Warn("queued job could not be published again", "service", service, "job_id", id, "err", err)
		return apierr.New(http.StatusServiceUnavailable, apierr.CodeUnavailable,
			"could not confirm the job was queued; retry with the same Idempotency-Key").WithRetry(time.Second).WithCause(err)
	}
	if ack.Duplicate {
		h.metrics.jobs.WithLabelValues(service, submitDuplicate).Inc()
	} else {
		h.metrics.jobs.WithLabelValues(service, submitRevived).Inc()
		h.log.Info("job revived: its record was queued but its message was missing", "service", service, "job_id", id,
			"stream_seq", ack.Sequence)
	}
	return h.respondJob(c, rec)
}

// publishRefused reports whether a publish error means JetStream did not
// store the message (as opposed to: the outcome is unknown).
func publishRefused(err error) bool {
	var apiErr *natsjs.APIError
	return errors.As(err, &apiErr) || errors.Is(err, nats.ErrMaxPayload) || errors.Is(err, natsjs.ErrNoStreamResponse)
}

func (h *handler) accepted(c echo.Context, id string) error {
	rec, err := h.jobs.Get(c.Request().Context(), id)
	if err != nil {
		rec = &ijobs.Record{ID: id, Status: ijobs.StatusQueued}
	}
	return h.respondJob(c, rec)
}

// respondJob answers 202 with the record of a submitted job (without its
// response body).
func (h *handler) respondJob(c echo.Context, rec *ijobs.Record) error {
	loc := "/jobs/" + rec.ID
	c.Response().Header().Set("Location", loc)
	c.Response().Header().Set("Preference-Applied", "respond-async")
	rec.Response = nil
	return c.JSON(http.StatusAccepted, jobView{Record: rec, Location: loc})
}

func (h *handler) loadJob(c echo.Context) (*ijobs.Record, error) {
	id := c.Param("id")
	if !ijobs.ValidID(id) {
		return nil, apierr.Newf(http.StatusBadRequest, apierr.CodeBadRequest, "invalid job id %q", id)
	}
	rec, err := h.jobs.Get(c.Request().Context(), id)
	if errors.Is(err, ijobs.ErrNotFound) {
		return nil, apierr.Newf(http.StatusNotFound, apierr.CodeNotFound, "no job %s", id)
	}
	if err != nil {
		return nil, apierr.New(http.StatusServiceUnavailable, apierr.CodeUnavailable, "could not read the job").
			WithRetry(time.Second).WithCause(err)
	}
	return rec, nil
}

// getJob answers the job's record; once done it includes the response
// (status, headers, body_size, and the body in base64 unless it is in the
// object store, see "object").
func (h *handler) getJob(c echo.Context) error {
	rec, err := h.loadJob(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, jobView{Record: rec, Location: "/jobs/" + rec.ID})
}

// getJobResult answers the service's response itself once the job is done,
// whole, wherever its body is stored; 202 with the record while it is
// queued or running; 502 when it failed.
func (h *handler) getJobResult(c echo.Context) error {
	rec, err := h.loadJob(c)
	if err != nil {
		return err
	}
	switch rec.Status {
	case ijobs.StatusDone:
		if rec.Response == nil {
			return apierr.Newf(http.StatusInternalServerError, apierr.CodeInternal, "job %s is done without a response", rec.ID)
		}
		head := c.Request().Method == http.MethodHead
		if rec.Response.Object == "" {
			httpnats.WriteResponse(c.Response(), httpnats.Response{
				Status: rec.Response.Status, Header: rec.Response.Header, Body: rec.Response.Body,
			}, head)
			return nil
		}
		return h.writeStoredResult(c, rec, head)
	case ijobs.StatusFailed:
		code := "job_failed"
		if rec.ErrorCode == ijobs.CodeResultTooLarge {
			code = ijobs.CodeResultTooLarge
		}
		msg := ""
		if rec.LastError != nil {
			msg = rec.LastError.Message
		}
		return apierr.Newf(http.StatusBadGateway, code, "job %s failed after %d attempts (%s): %s",
			rec.ID, rec.Attempts, rec.ErrorCode, msg)
	default:
		c.Response().Header().Set("Retry-After", "1")
		return c.JSON(http.StatusAccepted, jobView{Record: rec, Location: "/jobs/" + rec.ID})
	}
}

// writeStoredResult streams a body kept in the object store.
func (h *handler) writeStoredResult(c echo.Context, rec *ijobs.Record, head bool) error {
	body, size, err := h.jobs.OpenBody(c.Request().Context(), rec.Response.Object)
	if errors.Is(err, ijobs.ErrResultGone) {
		return apierr.Newf(http.StatusGone, "result_gone", "the result of job %s is no longer stored", rec.ID)
	}
	if err != nil {
		return apierr.New(http.StatusServiceUnavailable, apierr.CodeUnavailable, "could not read the job's result").
			WithRetry(time.Second).WithCause(err)
	}
	defer body.Close()
	w := c.Response()
	for k, vs := range rec.Response.Header {
		w.Header()[k] = vs
	}
	w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	w.WriteHeader(rec.Response.Status)
	if head {
		return nil
	}
	if n, err := io.Copy(w, body); err != nil {
		// Too late for an error answer: the short body tells the client.
		h.log.Warn("job result interrupted", "job_id", rec.ID, "object", rec.Response.Object, "written", n, "size", size, "err", err)
	}
	return nil
}
