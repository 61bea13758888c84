package lb

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go"

	"github.com/switchyard/switchyard/internal/apierr"
	"github.com/switchyard/switchyard/internal/httpnats"
	ijobs "github.com/switchyard/switchyard/internal/jobs"
	"github.com/switchyard/switchyard/subjects"
)

// jobView is GET /jobs/:id's answer.
type jobView struct {
	*ijobs.Record
	Location string `json:"location"`
}

// submitJob stores a job record and publishes the request to JOBS; 202
// with the job id. With Idempotency-Key the id derives from the key, so a
// retried submit answers with the first job.
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
	now := time.Now().UTC()
	rec := &ijobs.Record{ID: id, Service: service, Method: req.Method, Path: path,
		Status: ijobs.StatusQueued, SubmittedAt: now, UpdatedAt: now}
	switch err := h.jobs.Create(ctx, rec); {
	case errors.Is(err, ijobs.ErrExists):
		h.metrics.jobs.WithLabelValues(service, "duplicate").Inc()
		return h.accepted(c, id)
	case err != nil:
		return apierr.New(http.StatusServiceUnavailable, apierr.CodeUnavailable, "could not store the job").
			WithRetry(time.Second).WithCause(err)
	}
	msg := httpnats.NewRequestMsg(subj, req.Method, path, req.URL.RawQuery, req.Header, body)
	addForwarded(msg.Header, req)
	delete(msg.Header, "Prefer")
	msg.Header.Set(subjects.HeaderJobID, id)
	msg.Header.Set(subjects.HeaderMsgID, id)
	if _, err := h.jetstream.PublishMsg(ctx, msg); err != nil {
		_ = h.jobs.Delete(context.Background(), id)
		if errors.Is(err, nats.ErrMaxPayload) {
			return apierr.New(http.StatusRequestEntityTooLarge, apierr.CodeTooLarge, "job exceeds the stream's message size")
		}
		return apierr.New(http.StatusServiceUnavailable, apierr.CodeUnavailable, "could not queue the job").
			WithRetry(time.Second).WithCause(err)
	}
	h.metrics.jobs.WithLabelValues(service, "created").Inc()
	return h.accepted(c, id)
}

func (h *handler) accepted(c echo.Context, id string) error {
	loc := "/jobs/" + id
	c.Response().Header().Set("Location", loc)
	c.Response().Header().Set("Preference-Applied", "respond-async")
	rec, err := h.jobs.Get(c.Request().Context(), id)
	if err != nil {
		rec = &ijobs.Record{ID: id, Status: ijobs.StatusQueued}
	}
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
// (status, headers, body in base64).
func (h *handler) getJob(c echo.Context) error {
	rec, err := h.loadJob(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, jobView{Record: rec, Location: "/jobs/" + rec.ID})
}

// getJobResult answers the service's response itself once the job is done;
// 202 with the record while it is queued or running; 502 when it failed.
func (h *handler) getJobResult(c echo.Context) error {
	rec, err := h.loadJob(c)
	if err != nil {
		return err
	}
	switch rec.Status {
	case ijobs.StatusDone:
		httpnats.WriteResponse(c.Response(), httpnats.Response{
			Status: rec.Response.Status, Header: rec.Response.Header, Body: rec.Response.Body,
		}, false)
		return nil
	case ijobs.StatusFailed:
		return apierr.Newf(http.StatusBadGateway, "job_failed", "job %s failed after %d attempts: %s", rec.ID, rec.Attempts, rec.LastError)
	default:
		c.Response().Header().Set("Retry-After", "1")
		return c.JSON(http.StatusAccepted, jobView{Record: rec, Location: "/jobs/" + rec.ID})
	}
}
