// Package apierr is Switchyard's one error shape. Every edge answers errors
// as {"error":{"code":"...","message":"..."}} with the status From gives;
// the same status and code travel over NATS as headers, so a caller on NATS
// sees what a caller on HTTP sees.
package apierr

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Error is an error with an HTTP status, a stable machine-readable code and
// a message for people. RetryAfter, when positive, is sent as Retry-After.
// Treat an *Error as immutable once built: WithRetry and WithCause return
// changed copies, so one value (a sentinel, say) can be shared safely.
type Error struct {
	Status     int
	Code       string
	Message    string
	RetryAfter time.Duration
	Err        error // the cause, for logs; never sent to clients
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Codes. The code is part of the API: clients switch on it.
const (
	CodeBadRequest        = "bad_request"
	CodeNotFound          = "not_found"
	CodeMethodNotAllowed  = "method_not_allowed"
	CodeConflict          = "conflict"
	CodeTooLarge          = "payload_too_large"
	CodeUnsupportedMedia  = "unsupported_media_type"
	CodeTooManyRequests   = "too_many_requests"
	CodeInternal          = "internal"
	CodeBadGateway        = "bad_gateway"
	CodeUnavailable       = "unavailable"
	CodeNoResponders      = "no_responders"
	CodeNoHealthyUpstream = "no_healthy_upstream"
	CodeTimeout           = "timeout"
	CodeUnknownService    = "unknown_service"
	CodeResponseTooLarge  = "response_too_large"
	CodeShuttingDown      = "shutting_down"
	CodeHeaderTooLarge    = "header_too_large"
	CodeNotImplemented    = "not_implemented"
	CodeOverloaded        = "overloaded"
	// CodeOutcomeUnknown (502): the request reached NATS, then the
	// connection dropped before the answer; the service may have run it.
	CodeOutcomeUnknown = "outcome_unknown"
)

// New returns an *Error.
func New(status int, code, msg string) *Error {
	return &Error{Status: status, Code: code, Message: msg}
}

// Newf returns an *Error with a formatted message.
func Newf(status int, code, format string, a ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, a...)}
}

// TooLarge is the 413 of a request body over limit bytes; every edge and
// worker builds it here, so the message is the same everywhere.
func TooLarge(limit int64) *Error {
	return Newf(http.StatusRequestEntityTooLarge, CodeTooLarge, "request body exceeds %d bytes", limit)
}

// WithRetry returns a copy of e with RetryAfter set; e is unchanged.
func (e *Error) WithRetry(d time.Duration) *Error { c := *e; c.RetryAfter = d; return &c }

// WithCause returns a copy of e with the cause recorded for logs; e is
// unchanged.
func (e *Error) WithCause(err error) *Error { c := *e; c.Err = err; return &c }

// From maps any error to an *Error: an *Error (anywhere in the chain) is
// returned as is, context deadlines become 504, anything else 500.
func From(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &Error{Status: http.StatusGatewayTimeout, Code: CodeTimeout, Message: "deadline exceeded", Err: err}
	}
	if errors.Is(err, context.Canceled) {
		return &Error{Status: 499, Code: "canceled", Message: "request canceled", Err: err}
	}
	return &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Message: "internal error", Err: err}
}

// CodeForStatus is the default code of a status when nothing better is known.
func CodeForStatus(status int) string {
	switch status {
	case http.StatusBadRequest:
		return CodeBadRequest
	case http.StatusNotFound:
		return CodeNotFound
	case http.StatusMethodNotAllowed:
		return CodeMethodNotAllowed
	case http.StatusConflict:
		return CodeConflict
	case http.StatusRequestEntityTooLarge:
		return CodeTooLarge
	case http.StatusUnsupportedMediaType:
		return CodeUnsupportedMedia
	case http.StatusTooManyRequests:
		return CodeTooManyRequests
	case http.StatusBadGateway:
		return CodeBadGateway
	case http.StatusServiceUnavailable:
		return CodeUnavailable
	case http.StatusGatewayTimeout:
		return CodeTimeout
	case http.StatusRequestHeaderFieldsTooLarge:
		return CodeHeaderTooLarge
	case http.StatusNotImplemented:
		return CodeNotImplemented
	}
	if status >= 500 {
		return CodeInternal
	}
	return CodeBadRequest
}

// Body is the JSON error body.
type Body struct {
	Error BodyError `json:"error"`
}

// BodyError is the inside of Body.
type BodyError struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	RequestID string `json:"request_id,omitempty"`
}

// RetryAfterSeconds formats d for a Retry-After header (at least 1).
func RetryAfterSeconds(d time.Duration) string {
	s := int((d + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	return strconv.Itoa(s)
}
