package cache

import (
	"errors"
	"net/http"
	"time"

	"github.com/switchyard/switchyard/internal/apierr"
	"github.com/switchyard/switchyard/workers/cache/tier"
)

// Sentinel errors of the coordinator, matched with errors.Is. Returned
// errors wrap one of them with the detail.
var (
	ErrNotFound         = tier.ErrNotFound
	ErrInvalidNamespace = errors.New("invalid namespace")
	ErrInvalidKey       = errors.New("invalid key")
	ErrInvalidTTL       = errors.New("invalid ttl")
	ErrInvalidBatch     = errors.New("invalid batch")
	ErrTooLarge         = errors.New("value too large")
	// ErrUnavailable: the shared tier cannot be reached (degraded mode).
	ErrUnavailable = errors.New("shared cache tier unavailable")
	// ErrFull: the shared tier refuses writes because it is full.
	ErrFull = errors.New("shared cache tier full")
)

// Error codes of the JSON error body beyond apierr's.
const (
	CodeInsufficientStorage = "insufficient_storage"
)

// RetryAfter is the Retry-After of answers given in degraded mode.
const RetryAfter = time.Second

// APIError maps an error of the coordinator to the one error shape: status,
// code and message. HTTP and NATS callers see the same.
func APIError(err error) *apierr.Error {
	var ae *apierr.Error
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.Is(err, ErrNotFound):
		return apierr.New(http.StatusNotFound, apierr.CodeNotFound, "no such key")
	case errors.Is(err, ErrInvalidNamespace), errors.Is(err, ErrInvalidKey),
		errors.Is(err, ErrInvalidTTL), errors.Is(err, ErrInvalidBatch):
		return apierr.New(http.StatusBadRequest, apierr.CodeBadRequest, err.Error())
	case errors.Is(err, ErrTooLarge), errors.Is(err, tier.ErrTooLarge):
		return apierr.New(http.StatusRequestEntityTooLarge, apierr.CodeTooLarge, err.Error())
	case errors.Is(err, ErrUnavailable), errors.Is(err, tier.ErrUnavailable):
		return apierr.New(http.StatusServiceUnavailable, apierr.CodeUnavailable,
			"shared cache tier unavailable (degraded mode: only local hits are served)").WithRetry(RetryAfter).WithCause(err)
	case errors.Is(err, ErrFull), errors.Is(err, tier.ErrFull):
		return apierr.New(http.StatusInsufficientStorage, CodeInsufficientStorage,
			"shared cache tier is full and refuses writes").WithCause(err)
	}
	return apierr.From(err)
}
