package apierr_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/switchyard/switchyard/internal/apierr"
)

func TestFrom(t *testing.T) {
	own := apierr.New(http.StatusConflict, apierr.CodeConflict, "taken")
	cause := errors.New("disk on fire")
	tests := []struct {
		name   string
		err    error
		same   *apierr.Error // when set, From must return this pointer
		status int
		code   string
	}{
		{"own error", own, own, http.StatusConflict, apierr.CodeConflict},
		{"own error wrapped", fmt.Errorf("op: %w", own), own, http.StatusConflict, apierr.CodeConflict},
		{"own error wrapped twice", fmt.Errorf("a: %w", fmt.Errorf("b: %w", own)), own, http.StatusConflict, apierr.CodeConflict},
		{"deadline", context.DeadlineExceeded, nil, http.StatusGatewayTimeout, apierr.CodeTimeout},
		{"deadline wrapped", fmt.Errorf("request: %w", context.DeadlineExceeded), nil, http.StatusGatewayTimeout, apierr.CodeTimeout},
		{"canceled", context.Canceled, nil, 499, "canceled"},
		{"canceled wrapped", fmt.Errorf("request: %w", context.Canceled), nil, 499, "canceled"},
		{"other", cause, nil, http.StatusInternalServerError, apierr.CodeInternal},
		{"EOF", io.EOF, nil, http.StatusInternalServerError, apierr.CodeInternal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := apierr.From(tt.err)
			if tt.same != nil && got != tt.same {
				t.Errorf("From returned %p, want the error in the chain %p", got, tt.same)
			}
			if got.Status != tt.status || got.Code != tt.code {
				t.Errorf("From(%v) = %d %q, want %d %q", tt.err, got.Status, got.Code, tt.status, tt.code)
			}
			if got.Message == "" {
				t.Error("empty message")
			}
			if !errors.Is(got, tt.err) && tt.same == nil {
				t.Errorf("the cause %v is not in the chain of %v", tt.err, got)
			}
		})
	}
}

// The cause is for logs and never reaches the client body.
func TestFromHidesCause(t *testing.T) {
	e := apierr.From(errors.New("password=hunter2"))
	b, _ := json.Marshal(apierr.Body{Error: apierr.BodyError{Code: e.Code, Message: e.Message}})
	if want := `{"error":{"code":"internal","message":"internal error"}}`; string(b) != want {
		t.Fatalf("body %s, want %s", b, want)
	}
}

func TestCodeForStatus(t *testing.T) {
	tests := []struct {
		status int
		code   string
	}{
		{400, apierr.CodeBadRequest},
		{401, apierr.CodeBadRequest},
		{404, apierr.CodeNotFound},
		{405, apierr.CodeMethodNotAllowed},
		{409, apierr.CodeConflict},
		{413, apierr.CodeTooLarge},
		{415, apierr.CodeUnsupportedMedia},
		{429, apierr.CodeTooManyRequests},
		{499, apierr.CodeBadRequest},
		{500, apierr.CodeInternal},
		{501, apierr.CodeNotImplemented},
		{431, apierr.CodeHeaderTooLarge},
		{502, apierr.CodeBadGateway},
		{503, apierr.CodeUnavailable},
		{504, apierr.CodeTimeout},
		{599, apierr.CodeInternal},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status), func(t *testing.T) {
			if got := apierr.CodeForStatus(tt.status); got != tt.code {
				t.Errorf("CodeForStatus(%d) = %q, want %q", tt.status, got, tt.code)
			}
		})
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "1"},
		{-time.Second, "1"},
		{time.Nanosecond, "1"},
		{time.Second, "1"},
		{time.Second + time.Nanosecond, "2"},
		{1500 * time.Millisecond, "2"},
		{2 * time.Second, "2"},
		{90 * time.Second, "90"},
	}
	for _, tt := range tests {
		t.Run(tt.d.String(), func(t *testing.T) {
			if got := apierr.RetryAfterSeconds(tt.d); got != tt.want {
				t.Errorf("RetryAfterSeconds(%v) = %q, want %q", tt.d, got, tt.want)
			}
		})
	}
}

func TestErrorString(t *testing.T) {
	cause := errors.New("boom")
	tests := []struct {
		err  *apierr.Error
		want string
	}{
		{apierr.New(404, apierr.CodeNotFound, "no job"), "not_found: no job"},
		{apierr.Newf(400, apierr.CodeBadRequest, "bad %s %d", "field", 3), "bad_request: bad field 3"},
		{apierr.New(502, apierr.CodeBadGateway, "upstream").WithCause(cause), "bad_gateway: upstream: boom"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
	e := apierr.New(503, apierr.CodeUnavailable, "down").WithCause(cause).WithRetry(time.Second)
	if !errors.Is(e, cause) {
		t.Error("cause not in the chain")
	}
	if e.RetryAfter != time.Second {
		t.Errorf("RetryAfter %v", e.RetryAfter)
	}
}

func ExampleFrom() {
	err := fmt.Errorf("lookup: %w", apierr.New(http.StatusNotFound, apierr.CodeUnknownService, "no service named orders"))
	e := apierr.From(err)
	fmt.Println(e.Status, e.Code)
	e = apierr.From(context.DeadlineExceeded)
	fmt.Println(e.Status, e.Code)
	// Output:
	// 404 unknown_service
	// 504 timeout
}

func TestWithReturnsCopies(t *testing.T) {
	base := apierr.New(503, apierr.CodeUnavailable, "down")
	cause := errors.New("boom")
	r := base.WithRetry(2 * time.Second)
	c := base.WithCause(cause)
	if base.RetryAfter != 0 || base.Err != nil {
		t.Fatalf("base changed: %+v", base)
	}
	if r == base || r.RetryAfter != 2*time.Second || r.Err != nil || r.Code != base.Code {
		t.Fatalf("WithRetry = %+v", r)
	}
	if c == base || !errors.Is(c, cause) || c.RetryAfter != 0 {
		t.Fatalf("WithCause = %+v", c)
	}
}

func TestTooLarge(t *testing.T) {
	e := apierr.TooLarge(1024)
	if e.Status != 413 || e.Code != apierr.CodeTooLarge || e.Message != "request body exceeds 1024 bytes" {
		t.Fatalf("TooLarge = %+v", e)
	}
}
