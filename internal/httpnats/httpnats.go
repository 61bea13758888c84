// Package httpnats carries HTTP requests and responses over NATS without
// wrapping: method, path and query travel as NATS headers, end-to-end HTTP
// headers as NATS headers of the same name, the body as the payload. The
// reply carries its status in a header (absent means 200). See
// subjects/README.md for the contract. Functions here hold no state and are
// safe for concurrent use.
package httpnats

import (
	"encoding/json"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/switchyard/switchyard/internal/apierr"
	"github.com/switchyard/switchyard/subjects"
)

// hopByHop are the headers that never cross a proxy (RFC 9110 7.6.1).
var hopByHop = map[string]bool{
	"Connection": true, "Proxy-Connection": true, "Keep-Alive": true, "Proxy-Authenticate": true,
	"Proxy-Authorization": true, "Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
}

// HopByHop reports whether the canonical header name k must not cross a
// proxy: a hop-by-hop header (RFC 9110 7.6.1) or one of Switchyard's own.
func HopByHop(k string) bool { return hopByHop[k] || control(k) }

// control are our own headers; a client cannot set them.
func control(k string) bool {
	return len(k) > 11 && strings.EqualFold(k[:11], "Switchyard-") || strings.HasPrefix(k, "Nats-")
}

// CopyEndToEnd copies the end-to-end headers of src into dst, dropping
// hop-by-hop headers, those named in Connection, and Switchyard's own.
func CopyEndToEnd(dst map[string][]string, src http.Header) {
	var named map[string]bool
	if c := src["Connection"]; len(c) > 0 {
		named = map[string]bool{}
		for _, v := range c {
			for _, f := range strings.Split(v, ",") {
				named[textproto.CanonicalMIMEHeaderKey(strings.TrimSpace(f))] = true
			}
		}
	}
	for k, vs := range src {
		if hopByHop[k] || named[k] || control(k) {
			continue
		}
		dst[k] = append([]string(nil), vs...)
	}
}

// Request is a decoded HTTP-over-NATS request.
type Request struct {
	Method string
	Path   string // escaped path, starting with "/"
	Query  string // raw query, without "?"
	Header http.Header
	Body   []byte
	// Deadline is when the caller stops waiting (subjects.HeaderDeadline);
	// zero when the request carries none or an unreadable one.
	Deadline time.Time
}

var idempotent = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodOptions: true, http.MethodTrace: true,
	http.MethodPut: true, http.MethodDelete: true,
}

// Replayable reports whether the request may run more than once: an
// idempotent method (RFC 9110 9.2.2), or a request its client named with
// an Idempotency-Key, which the upstream is expected to de-duplicate.
func (r *Request) Replayable() bool {
	return idempotent[r.Method] || r.Header.Get("Idempotency-Key") != ""
}

// SetDeadline records on a request message when its caller stops waiting.
func SetDeadline(m *nats.Msg, deadline time.Time) {
	m.Header[subjects.HeaderDeadline] = []string{strconv.FormatInt(deadline.UnixMilli(), 10)}
}

// NewRequestMsg returns the NATS message of an HTTP request. path is the
// escaped path with the service prefix stripped; h holds the end-to-end
// headers to forward (see CopyEndToEnd).
func NewRequestMsg(subject, method, path, query string, h http.Header, body []byte) *nats.Msg {
	m := nats.NewMsg(subject)
	CopyEndToEnd(m.Header, h)
	if method != http.MethodGet {
		m.Header[subjects.HeaderMethod] = []string{method}
	}
	m.Header[subjects.HeaderPath] = []string{path}
	if query != "" {
		m.Header[subjects.HeaderQuery] = []string{query}
	}
	m.Data = body
	return m
}

// DecodeRequest reads an HTTP-over-NATS request. Headers are canonicalised
// (NATS header names are case-sensitive; HTTP's are not).
func DecodeRequest(m *nats.Msg) Request {
	r := Request{Method: http.MethodGet, Path: "/", Header: http.Header{}, Body: m.Data}
	for k, vs := range m.Header {
		switch ck := textproto.CanonicalMIMEHeaderKey(k); ck {
		case subjects.HeaderMethod:
			if len(vs) > 0 && vs[0] != "" {
				r.Method = strings.ToUpper(vs[0])
			}
		case subjects.HeaderPath:
			if len(vs) > 0 && strings.HasPrefix(vs[0], "/") {
				r.Path = vs[0]
			}
		case subjects.HeaderQuery:
			if len(vs) > 0 {
				r.Query = vs[0]
			}
		case subjects.HeaderDeadline:
			if len(vs) > 0 {
				if ms, err := strconv.ParseInt(vs[0], 10, 64); err == nil && ms > 0 {
					r.Deadline = time.UnixMilli(ms)
				}
			}
		default:
			if hopByHop[ck] || control(ck) {
				continue
			}
			r.Header[ck] = append(r.Header[ck], vs...)
		}
	}
	return r
}

// NewResponseMsg returns the reply message of an HTTP response.
func NewResponseMsg(status int, h http.Header, body []byte) *nats.Msg {
	m := &nats.Msg{Header: nats.Header{}, Data: body}
	CopyEndToEnd(m.Header, h)
	if status != http.StatusOK {
		m.Header[subjects.HeaderStatus] = []string{strconv.Itoa(status)}
	}
	return m
}

// NewErrorMsg returns the reply message of an error, in the JSON error shape.
func NewErrorMsg(e *apierr.Error) *nats.Msg {
	body, _ := json.Marshal(apierr.Body{Error: apierr.BodyError{Code: e.Code, Message: e.Message}})
	m := &nats.Msg{Header: nats.Header{}, Data: body}
	m.Header[subjects.HeaderStatus] = []string{strconv.Itoa(e.Status)}
	m.Header[subjects.HeaderErrorCode] = []string{e.Code}
	m.Header["Content-Type"] = []string{"application/json"}
	if e.RetryAfter > 0 {
		m.Header[subjects.HeaderRetryAfter] = []string{apierr.RetryAfterSeconds(e.RetryAfter)}
	}
	return m
}

// Response is a decoded reply.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
	// ErrorCode is set when the reply is an error Switchyard or a micro
	// service produced (not a plain upstream response).
	ErrorCode string
	// Upstream is the upstream the proxy worker got the answer from
	// (subjects.HeaderUpstream), for the logs; "" when not said.
	Upstream string
	// inPlace: Header is the writer's own (DecodeResponseTo).
	inPlace bool
}

// DecodeResponse reads a reply: Switchyard-Status (absent means 200; one
// outside 200..599 is a bad gateway, as 1xx cannot be a final answer), or
// the micro protocol's Nats-Service-Error-Code, mapped to an HTTP status.
func DecodeResponse(m *nats.Msg) Response {
	r := Response{Status: http.StatusOK, Header: http.Header{}, Body: m.Data}
	var microCode, microMsg string
	for k, vs := range m.Header {
		if len(vs) == 0 {
			continue
		}
		switch ck := textproto.CanonicalMIMEHeaderKey(k); ck {
		case subjects.HeaderStatus:
			if s, err := strconv.Atoi(vs[0]); err == nil && s >= 200 && s <= 599 {
				r.Status = s
			} else {
				r.Status = http.StatusBadGateway
				r.ErrorCode = apierr.CodeBadGateway
			}
		case subjects.HeaderErrorCode:
			r.ErrorCode = vs[0]
		case subjects.HeaderUpstream:
			r.Upstream = vs[0]
		case subjects.HeaderMicroErrorCode:
			microCode = vs[0]
		case subjects.HeaderMicroError:
			microMsg = vs[0]
		default:
			if hopByHop[ck] || control(ck) {
				continue
			}
			r.Header[ck] = append(r.Header[ck], vs...)
		}
	}
	if microCode != "" && r.ErrorCode == "" {
		status, err := strconv.Atoi(microCode)
		if err != nil || status < 400 || status > 599 {
			status = http.StatusBadGateway
		}
		if microMsg == "" {
			microMsg = http.StatusText(status)
		}
		r.Status = status
		r.ErrorCode = apierr.CodeForStatus(status)
		r.Header = http.Header{"Content-Type": {"application/json"}}
		r.Body, _ = json.Marshal(apierr.Body{Error: apierr.BodyError{Code: r.ErrorCode, Message: microMsg}})
	}
	return r
}

// DecodeResponseTo reads a reply as DecodeResponse does, with one
// difference on the hot path: the end-to-end headers of a plain (not
// error) reply go straight into dst, the header of the response about to
// be written, without a map of their own (Response.Header is then dst,
// and WriteResponse copies nothing). An error reply is decoded by
// DecodeResponse and leaves dst alone, so the edge can render the error.
func DecodeResponseTo(m *nats.Msg, dst http.Header) Response {
	r := Response{Status: http.StatusOK, Body: m.Data}
	for k, vs := range m.Header {
		if textproto.CanonicalMIMEHeaderKey(k) != k {
			return DecodeResponse(m) // rare: names to merge
		}
		if len(vs) == 0 || !control(k) {
			continue
		}
		switch k {
		case subjects.HeaderStatus:
			if s, err := strconv.Atoi(vs[0]); err == nil && s >= 200 && s <= 599 {
				r.Status = s
			} else {
				return DecodeResponse(m)
			}
		case subjects.HeaderErrorCode, subjects.HeaderMicroErrorCode, subjects.HeaderMicroError:
			return DecodeResponse(m)
		case subjects.HeaderUpstream:
			r.Upstream = vs[0]
		}
	}
	for k, vs := range m.Header {
		if len(vs) == 0 || control(k) || hopByHop[k] {
			continue
		}
		dst[k] = vs // names are canonical, so unique; the message is ours: no copy
	}
	r.Header, r.inPlace = dst, true
	return r
}

// WriteResponse writes a decoded reply to w.
func WriteResponse(w http.ResponseWriter, r Response, head bool) {
	h := w.Header()
	if !r.inPlace {
		for k, vs := range r.Header {
			h[k] = vs
		}
	}
	// No body on HEAD, 204 and 304, and no Content-Length of our own
	// either: RFC 9110 8.6 forbids it on 204, and on 304 it describes
	// the representation, not this empty reply.
	noBody := head || r.Status == http.StatusNoContent || r.Status == http.StatusNotModified
	if !noBody {
		h.Set("Content-Length", strconv.Itoa(len(r.Body)))
	}
	w.WriteHeader(r.Status)
	if !noBody && len(r.Body) > 0 {
		_, _ = w.Write(r.Body)
	}
}
