package stream

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/switchyard/switchyard/edge"
	"github.com/switchyard/switchyard/internal/apierr"
	"github.com/switchyard/switchyard/internal/streams"
	"github.com/switchyard/switchyard/jetstream"
	"github.com/switchyard/switchyard/subjects"
	"github.com/switchyard/switchyard/workers/streamproc"
)

// codeInsufficientStorage is the error code of 507 answers.
const codeInsufficientStorage = "insufficient_storage"

// streamView is a stream as the API shows it.
type streamView struct {
	*streams.Record
	Chunks       uint64    `json:"chunks"`
	Bytes        uint64    `json:"bytes"`
	Subscribers  int       `json:"subscribers"`
	Backlog      uint64    `json:"backlog"`
	LastActivity time.Time `json:"last_activity"`
}

func notFound(id string) *apierr.Error {
	return apierr.Newf(http.StatusNotFound, apierr.CodeNotFound, "no stream %q", id)
}

func (h *Handler) limits() streams.Limits {
	c := h.o.Config
	return streams.Limits{
		DefaultMaxAge: c.RetentionMaxAge.D(), MaxMaxAge: c.RetentionMaxAgeLimit.D(),
		DefaultMaxBytes: c.RetentionMaxBytes, MaxMaxBytes: c.RetentionMaxBytesLimit,
	}
}

// create serves POST /stream/create.
func (h *Handler) create(c echo.Context) error {
	var spec streams.Spec
	if err := edge.DecodeJSON(c, &spec); err != nil {
		return err
	}
	if err := spec.Normalize(h.limits()); err != nil {
		return apierr.New(http.StatusBadRequest, apierr.CodeBadRequest, err.Error())
	}
	open := 0
	for _, r := range h.replica.List() {
		if r.State == streams.StateOpen {
			open++
		}
	}
	if open >= h.o.Config.MaxStreams {
		return apierr.Newf(http.StatusInsufficientStorage, codeInsufficientStorage,
			"%d streams are open, the limit (stream.max_streams)", open)
	}
	ctx := c.Request().Context()
	rec := &streams.Record{ID: streams.NewID(), Spec: spec, Created: time.Now().UTC().Truncate(time.Millisecond)}
	sc, err := jetstream.StreamOf(h.o.Assets, rec.ID, spec.Retention.MaxAge.D(), spec.Retention.MaxBytes)
	if err != nil {
		return err
	}
	// The JetStream stream first: a record always has its stream.
	if _, err := h.o.JS.CreateStream(ctx, sc); err != nil {
		var apiErr *natsjs.APIError
		if errors.As(err, &apiErr) && (apiErr.ErrorCode == jsErrCodeStorageExceeded ||
			apiErr.ErrorCode == jsErrCodeInsufficientResources) {
			return apierr.Newf(http.StatusInsufficientStorage, codeInsufficientStorage,
				"JetStream cannot reserve %d bytes for the stream: lower retention.max_bytes or delete streams", spec.Retention.MaxBytes)
		}
		return apierr.New(http.StatusServiceUnavailable, apierr.CodeUnavailable, "could not create the stream").
			WithRetry(time.Second).WithCause(err)
	}
	undo := func() {
		dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = h.o.JS.DeleteStream(dctx, sc.Name)
	}
	if spec.Service != "" {
		cc, err := streamproc.ConsumerConfig(rec.ID, h.o.Config.ProcessTimeout.D(), h.o.Config.MaxDeliver, h.o.Config.Concurrency)
		if err == nil {
			_, err = h.o.JS.CreateOrUpdateConsumer(ctx, sc.Name, cc)
		}
		if err != nil {
			undo()
			return apierr.New(http.StatusServiceUnavailable, apierr.CodeUnavailable, "could not create the processing consumer").
				WithRetry(time.Second).WithCause(err)
		}
	}
	if err := h.store.Create(ctx, rec); err != nil {
		undo()
		return apierr.New(http.StatusServiceUnavailable, apierr.CodeUnavailable, "could not store the stream record").
			WithRetry(time.Second).WithCause(err)
	}
	h.replica.Put(rec)
	h.o.Log.Info("stream created", "stream", rec.ID, "type", string(spec.Type), "service", spec.Service)
	return c.JSON(http.StatusCreated, &streamView{Record: rec, LastActivity: rec.Created})
}

// delete serves DELETE /stream/:id.
func (h *Handler) delete(c echo.Context) error {
	id := c.Param("id")
	r, err := h.lookup(c.Request().Context(), id)
	if err != nil {
		if errors.Is(err, streams.ErrNotFound) {
			return notFound(id)
		}
		return apierr.From(err)
	}
	if err := h.closeStream(c.Request().Context(), r, streams.ReasonDeleted); err != nil {
		if errors.Is(err, streams.ErrNotFound) {
			return notFound(id)
		}
		return apierr.New(http.StatusServiceUnavailable, apierr.CodeUnavailable, "could not delete the stream").
			WithRetry(time.Second).WithCause(err)
	}
	return c.NoContent(http.StatusNoContent)
}

// chunkReply is the 202 body of POST /stream/:id/chunk.
type chunkReply struct {
	Seq       uint64 `json:"seq"`
	Duplicate bool   `json:"duplicate,omitempty"`
}

// chunk serves POST /stream/:id/chunk.
func (h *Handler) chunk(c echo.Context) error {
	req := c.Request()
	id := c.Param("id")
	reject := func(typ, reason string, e *apierr.Error) error {
		h.o.Metrics.Rejected.WithLabelValues(typ, reason).Inc()
		return e
	}
	r, err := h.lookup(req.Context(), id)
	if err != nil {
		if errors.Is(err, streams.ErrNotFound) {
			return reject("unknown", streams.RejectNotFound, notFound(id))
		}
		return apierr.From(err)
	}
	typ := string(r.Type)
	limit := h.o.Config.MaxChunkBytes
	tooLarge := func() error {
		return reject(typ, streams.RejectTooLarge, apierr.Newf(http.StatusRequestEntityTooLarge, apierr.CodeTooLarge,
			"chunk exceeds %d bytes (stream.max_chunk_bytes)", limit))
	}
	if req.ContentLength > limit {
		return tooLarge()
	}
	body, err := readChunk(req, limit)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.Is(err, errTooLarge) || errors.As(err, &mbe) {
			return tooLarge()
		}
		return apierr.New(http.StatusBadRequest, apierr.CodeBadRequest, "could not read the chunk").WithCause(err)
	}
	ct := req.Header.Get(echo.HeaderContentType)
	if err := r.CheckChunk(ct, body); err != nil {
		if errors.Is(err, streams.ErrMedia) {
			return reject(typ, streams.RejectMedia, apierr.New(http.StatusUnsupportedMediaType, apierr.CodeUnsupportedMedia, err.Error()))
		}
		return reject(typ, streams.RejectInvalid, apierr.New(http.StatusBadRequest, apierr.CodeBadRequest, err.Error()))
	}
	chunkID := req.Header.Get("X-Chunk-Id")
	if len(chunkID) > 128 || subjects.ValidToken(chunkID) != nil && chunkID != "" {
		return reject(typ, streams.RejectInvalid, apierr.New(http.StatusBadRequest, apierr.CodeBadRequest,
			"X-Chunk-Id must be 1 to 128 printable ASCII characters without spaces, '.', '*' or '>'"))
	}
	if r.Service != "" {
		if n, over := h.overBacklog(req.Context(), r); over {
			return reject(typ, streams.RejectBacklog, apierr.Newf(http.StatusTooManyRequests, apierr.CodeTooManyRequests,
				"stream %s has %d chunks waiting for processing (limit %d)", id, n, h.o.Config.BacklogLimit).WithRetry(time.Second))
		}
	}
	if h.o.NC != nil && !h.o.NC.IsConnected() {
		// Fail fast: a publish now would wait in the reconnect buffer.
		return reject(typ, streams.RejectStore, apierr.New(http.StatusServiceUnavailable, apierr.CodeUnavailable,
			"not connected to NATS").WithRetry(time.Second))
	}
	in, _ := subjects.StreamIn(id)
	m := nats.NewMsg(in)
	if ct == "" {
		ct = r.ContentType()
	}
	m.Header.Set("Content-Type", ct)
	if chunkID != "" {
		m.Header.Set(subjects.HeaderMsgID, chunkID)
	}
	m.Data = body
	pctx, cancel := context.WithTimeout(req.Context(), publishTimeout)
	defer cancel()
	ack, err := h.o.JS.PublishMsg(pctx, m, natsjs.WithExpectStream(jetstreamName(id)))
	if err != nil {
		if req.Context().Err() != nil {
			// The client went away: whether the chunk was stored, its
			// retry with the same X-Chunk-Id will tell.
			return apierr.From(req.Context().Err())
		}
		return h.publishError(typ, id, err)
	}
	if !ack.Duplicate {
		h.o.Metrics.ChunksIn.WithLabelValues(typ).Inc()
		h.o.Metrics.BytesIn.WithLabelValues(typ).Add(float64(len(body)))
		if r.Service != "" {
			h.accepted(id)
		}
	}
	return c.JSON(http.StatusAccepted, chunkReply{Seq: ack.Sequence, Duplicate: ack.Duplicate})
}

func (h *Handler) publishError(typ, id string, err error) error {
	var apiErr *natsjs.APIError
	switch {
	case errors.Is(err, natsjs.ErrNoStreamResponse), errors.Is(err, nats.ErrNoResponders):
		h.o.Metrics.Rejected.WithLabelValues(typ, streams.RejectNotFound).Inc()
		return notFound(id)
	case errors.As(err, &apiErr) && apiErr.ErrorCode == natsjs.JSErrCodeStreamNotFound:
		h.o.Metrics.Rejected.WithLabelValues(typ, streams.RejectNotFound).Inc()
		return notFound(id)
	case errors.As(err, &apiErr) && apiErr.ErrorCode == jsErrCodeStoreFailed:
		// Full: the stream refuses new chunks (discard new) until old
		// ones age out of its retention.
		h.o.Metrics.Rejected.WithLabelValues(typ, streams.RejectFull).Inc()
		return apierr.Newf(http.StatusInsufficientStorage, codeInsufficientStorage,
			"stream %s is full (%s): its retention bytes are used until older chunks age out", id, apiErr.Description).
			WithRetry(5 * time.Second)
	case errors.Is(err, nats.ErrMaxPayload):
		h.o.Metrics.Rejected.WithLabelValues(typ, streams.RejectTooLarge).Inc()
		return apierr.New(http.StatusRequestEntityTooLarge, apierr.CodeTooLarge, "chunk exceeds the NATS server's max_payload")
	}
	h.o.Metrics.Rejected.WithLabelValues(typ, streams.RejectStore).Inc()
	return apierr.New(http.StatusServiceUnavailable, apierr.CodeUnavailable, "JetStream did not acknowledge the chunk").
		WithRetry(time.Second).WithCause(err)
}

// jsErrCodeStoreFailed is JetStream's "storing the message failed"
// (JSStreamStoreFailedF), answered when a discard-new stream is full.
const jsErrCodeStoreFailed natsjs.ErrorCode = 10077

// JetStream's answers to a stream it cannot reserve storage for.
const (
	jsErrCodeInsufficientResources natsjs.ErrorCode = 10023
	jsErrCodeStorageExceeded       natsjs.ErrorCode = 10047
)

var errTooLarge = errors.New("chunk too large")

// publishTimeout bounds the wait for JetStream's ack of one chunk (503 after).
const publishTimeout = 10 * time.Second

// readChunk reads the whole body up to limit bytes (errTooLarge beyond).
// With a Content-Length (which net/http holds the body to) it reads into
// one buffer of exactly that size.
func readChunk(req *http.Request, limit int64) ([]byte, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return nil, nil
	}
	if n := req.ContentLength; n >= 0 {
		if n > limit {
			return nil, errTooLarge
		}
		buf := make([]byte, n)
		if _, err := io.ReadFull(req.Body, buf); err != nil {
			return nil, err
		}
		return buf, nil
	}
	b := bytes.NewBuffer(make([]byte, 0, 64<<10))
	if _, err := b.ReadFrom(io.LimitReader(req.Body, limit+1)); err != nil {
		return nil, err
	}
	if int64(b.Len()) > limit {
		return nil, errTooLarge
	}
	return b.Bytes(), nil
}

// backlogEntry is the last processing backlog read of one stream, plus
// the chunks this process accepted since.
type backlogEntry struct {
	mu       sync.Mutex
	at       time.Time
	n        uint64
	accepted uint64
}

// overBacklog reports the stream's processing backlog and whether it is
// at or over the limit. The figure is read from the consumer at most every
// BacklogRefresh, plus the chunks accepted here since.
func (h *Handler) overBacklog(ctx context.Context, r *streams.Record) (uint64, bool) {
	h.mu.Lock()
	e := h.backlog[r.ID]
	if e == nil {
		e = &backlogEntry{}
		h.backlog[r.ID] = e
	}
	h.mu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	if time.Since(e.at) > h.o.BacklogRefresh {
		if n, err := h.readBacklog(ctx, r.ID); err == nil {
			e.at, e.n, e.accepted = time.Now(), n, 0
		}
	}
	n := e.n + e.accepted
	return n, n >= uint64(h.o.Config.BacklogLimit)
}

func (h *Handler) accepted(id string) {
	h.mu.Lock()
	e := h.backlog[id]
	h.mu.Unlock()
	if e != nil {
		e.mu.Lock()
		e.accepted++
		e.mu.Unlock()
	}
}

func (h *Handler) readBacklog(ctx context.Context, id string) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	cons, err := h.o.JS.Consumer(ctx, jetstreamName(id), subjects.StreamProcessConsumer)
	if err != nil {
		return 0, err
	}
	info := cons.CachedInfo()
	return info.NumPending + uint64(info.NumAckPending), nil
}

// view builds the API view of r with its stored figures.
func (h *Handler) view(ctx context.Context, r *streams.Record) *streamView {
	v := &streamView{Record: r, LastActivity: r.Created}
	h.mu.Lock()
	v.Subscribers = len(h.subs[r.ID])
	h.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	in, _ := subjects.StreamIn(r.ID)
	if s, err := h.o.JS.Stream(ctx, jetstreamName(r.ID)); err == nil {
		if info, err := s.Info(ctx, natsjs.WithSubjectFilter(in)); err == nil {
			v.Chunks = info.State.Subjects[in]
			v.Bytes = info.State.Bytes
			if info.State.LastTime.After(v.LastActivity) {
				v.LastActivity = info.State.LastTime
			}
		}
	}
	if r.Service != "" {
		if n, err := h.readBacklog(ctx, r.ID); err == nil {
			v.Backlog = n
		}
	}
	return v
}

// get serves GET /stream/:id.
func (h *Handler) get(c echo.Context) error {
	id := c.Param("id")
	r, err := h.lookup(c.Request().Context(), id)
	if err != nil {
		if errors.Is(err, streams.ErrNotFound) {
			return notFound(id)
		}
		return apierr.From(err)
	}
	return c.JSON(http.StatusOK, h.view(c.Request().Context(), r))
}

// list serves GET /streams: every open stream with its figures.
func (h *Handler) list(c echo.Context) error {
	var recs []*streams.Record
	for _, r := range h.replica.List() {
		if r.State == streams.StateOpen {
			recs = append(recs, r)
		}
	}
	out := make([]*streamView, len(recs))
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i, r := range recs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			out[i] = h.view(c.Request().Context(), r)
		}()
	}
	wg.Wait()
	return c.JSON(http.StatusOK, map[string]any{"streams": out})
}
