package cache

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/switchyard/switchyard/internal/apierr"
	"github.com/switchyard/switchyard/subjects"
	"github.com/switchyard/switchyard/workers/cache/tier"
)

// Service serves the cache operations over NATS as the micro service
// "cache": cache.<op>.<namespace> in queue group "cache".
type Service struct {
	c    *Coordinator
	nc   *nats.Conn
	svc  micro.Service
	sem  chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

// StartService registers the micro service on nc. maxInFlight bounds the
// requests waiting on the shared tier at once (0: 1024); beyond it a
// request is answered 503 with Retry-After at once.
func (c *Coordinator) StartService(nc *nats.Conn, version string, maxInFlight int) (*Service, error) {
	if maxInFlight <= 0 {
		maxInFlight = 1024
	}
	s := &Service{c: c, nc: nc, sem: make(chan struct{}, maxInFlight)}
	svc, err := micro.AddService(nc, micro.Config{
		Name:        subjects.CacheServiceName,
		Version:     semver(version),
		Description: "Switchyard cache coordinator: cache.<op>.<namespace> over a local and a shared tier",
		QueueGroup:  subjects.CacheQueue,
		Metadata:    map[string]string{"backend": c.o.Backend},
	})
	if err != nil {
		return nil, err
	}
	for _, op := range []string{subjects.CacheOpGet, subjects.CacheOpSet, subjects.CacheOpDelete, subjects.CacheOpBatch, subjects.CacheOpStats} {
		subj, _ := subjects.CacheAll(op)
		if err := svc.AddEndpoint(op, micro.HandlerFunc(s.handle), micro.WithEndpointSubject(subj)); err != nil {
			_ = svc.Stop()
			return nil, err
		}
	}
	s.svc = svc
	return s, nil
}

// Stop drains the endpoints and waits for requests in progress (or ctx).
// Safe to call twice.
func (s *Service) Stop(ctx context.Context) error {
	var err error
	s.once.Do(func() {
		err = s.svc.Stop()
		done := make(chan struct{})
		go func() { s.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			err = ctx.Err()
		}
	})
	return err
}

// handle answers a request. A local hit is answered on the endpoint's
// goroutine; anything that needs the shared tier runs on its own
// goroutine (at most maxInFlight, else 503 at once) and replies by itself.
func (s *Service) handle(r micro.Request) {
	subj := r.Subject()
	rest := strings.TrimPrefix(subj, subjects.RootCache+".")
	op, ns, _ := strings.Cut(rest, ".")
	if err := ValidNamespace(ns); err != nil {
		s.reply(r.Reply(), errMsg(err))
		return
	}
	h := nats.Header(r.Headers())
	data := r.Data()
	if op == subjects.CacheOpGet {
		if key, err := keyOf(h, data); err == nil {
			if e, err := s.c.localGet(ns, key); err == nil {
				s.reply(r.Reply(), getMsg(e, SourceLocal))
				return
			}
		}
	}
	select {
	case s.sem <- struct{}{}:
	default:
		// Every slot is busy (waiting on the shared tier): answer at once
		// rather than queue without bound.
		s.reply(r.Reply(), errMsg(apierr.Newf(http.StatusServiceUnavailable, apierr.CodeUnavailable,
			"cache service busy: %d requests in progress", cap(s.sem)).WithRetry(RetryAfter)))
		return
	}
	s.wg.Add(1)
	reply := r.Reply()
	go func() {
		defer func() { <-s.sem; s.wg.Done() }()
		s.reply(reply, s.serve(op, ns, h, data))
	}()
}

func (s *Service) reply(to string, m *nats.Msg) {
	if to == "" {
		return
	}
	m.Subject = to
	if err := s.nc.PublishMsg(m); err != nil {
		s.c.o.Log.Debug("cache: reply not sent", "err", err)
	}
}

func keyOf(h nats.Header, data []byte) (string, error) {
	if k := h.Get(subjects.HeaderCacheKey); k != "" {
		return k, nil
	}
	if len(data) > 0 {
		return string(data), nil
	}
	return "", ErrInvalidKey
}

func (s *Service) serve(op, ns string, h nats.Header, data []byte) *nats.Msg {
	ctx, cancel := context.WithTimeout(context.Background(), 2*s.c.o.SharedTimeout)
	defer cancel()
	switch op {
	case subjects.CacheOpGet:
		key, err := keyOf(h, data)
		if err != nil {
			return errMsg(err)
		}
		e, src, err := s.c.Get(ctx, ns, key)
		if err != nil {
			return errMsg(err)
		}
		return getMsg(e, src)
	case subjects.CacheOpSet:
		key := h.Get(subjects.HeaderCacheKey)
		if key == "" {
			return errMsg(ErrInvalidKey)
		}
		ttl, err := ParseTTL(h.Get(subjects.HeaderCacheTTL))
		if err != nil {
			return errMsg(err)
		}
		if err := s.c.Set(ctx, ns, key, tier.Entry{Value: data, ContentType: h.Get("Content-Type")}, ttl); err != nil {
			return errMsg(err)
		}
		return &nats.Msg{}
	case subjects.CacheOpDelete:
		key, err := keyOf(h, data)
		if err != nil {
			return errMsg(err)
		}
		if err := s.c.Delete(ctx, ns, key); err != nil {
			return errMsg(err)
		}
		return &nats.Msg{}
	case subjects.CacheOpBatch:
		req, err := DecodeBatch(data)
		if err != nil {
			return errMsg(err)
		}
		if req.NS != "" && req.NS != ns {
			return errMsg(apierr.Newf(400, apierr.CodeBadRequest, "batch names namespace %q on the subject of %q", req.NS, ns))
		}
		req.NS = ns
		resp, err := s.c.Batch(ctx, req)
		if err != nil {
			return errMsg(err)
		}
		return jsonMsg(resp)
	case subjects.CacheOpStats:
		st := s.c.Stats()
		ns1, ok := st.Namespaces[s.c.state(ns).label]
		if !ok {
			return errMsg(ErrNotFound)
		}
		return jsonMsg(map[string]any{"namespace": ns, "stats": ns1, "shared": st.Shared})
	}
	return errMsg(apierr.Newf(404, apierr.CodeNotFound, "unknown cache operation %q", op))
}

// Header values shared by every reply (nats.go only reads them).
var (
	tierLocal  = []string{string(SourceLocal)}
	tierShared = []string{string(SourceShared)}
)

func getMsg(e tier.Entry, src Source) *nats.Msg {
	tv := tierShared
	if src == SourceLocal {
		tv = tierLocal
	}
	m := &nats.Msg{Header: nats.Header{subjects.HeaderCacheTier: tv}, Data: e.Value}
	if e.ContentType != "" {
		m.Header["Content-Type"] = []string{e.ContentType}
	}
	if !e.ExpiresAt.IsZero() {
		m.Header[subjects.HeaderCacheExpires] = []string{strconv.FormatInt(e.ExpiresAt.UnixMilli(), 10)}
	}
	return m
}

func jsonMsg(v any) *nats.Msg {
	b, _ := json.Marshal(v)
	return &nats.Msg{Header: nats.Header{"Content-Type": []string{"application/json"}}, Data: b}
}

// errMsg is an error reply: the JSON error body with Switchyard-Status,
// Switchyard-Error-Code and Retry-After, plus the micro protocol's
// Nats-Service-Error headers, as on every Switchyard subject.
func errMsg(err error) *nats.Msg {
	e := APIError(err)
	body, _ := json.Marshal(apierr.Body{Error: apierr.BodyError{Code: e.Code, Message: e.Message}})
	m := &nats.Msg{Header: nats.Header{}, Data: body}
	m.Header[subjects.HeaderStatus] = []string{strconv.Itoa(e.Status)}
	m.Header[subjects.HeaderErrorCode] = []string{e.Code}
	m.Header["Content-Type"] = []string{"application/json"}
	if e.RetryAfter > 0 {
		m.Header[subjects.HeaderRetryAfter] = []string{apierr.RetryAfterSeconds(e.RetryAfter)}
	}
	if e.Status != 404 {
		m.Header[subjects.HeaderMicroError] = []string{e.Message}
		m.Header[subjects.HeaderMicroErrorCode] = []string{strconv.Itoa(e.Status)}
	}
	return m
}

// semver makes a micro-valid version ("dev" becomes 0.0.0-dev).
func semver(v string) string {
	v = strings.TrimPrefix(v, "v")
	if v != "" && v[0] >= '0' && v[0] <= '9' && strings.Count(v, ".") >= 2 {
		return v
	}
	clean := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '-'
	}, v)
	if clean == "" {
		clean = "unknown"
	}
	return "0.0.0-" + clean
}
