package edge

import (
	"errors"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/switchyard/switchyard/internal/apierr"
)

// ErrOverBudget is returned by Budget.Reader's reads once the bytes read
// would take the budget over its limit.
var ErrOverBudget = errors.New("request body memory budget exhausted")

// Gate bounds how many requests an edge serves at once. The zero value
// (or a limit <= 0) admits everything. Safe for concurrent use.
type Gate struct {
	limit int64
	n     atomic.Int64
}

// NewGate returns a gate admitting limit requests at once (<= 0: no limit).
func NewGate(limit int) *Gate { return &Gate{limit: int64(limit)} }

// Enter admits one request and reports whether it was admitted; an
// admitted request must call Leave once.
func (g *Gate) Enter() bool {
	if g.limit <= 0 {
		return true
	}
	if g.n.Add(1) > g.limit {
		g.n.Add(-1)
		return false
	}
	return true
}

// Leave ends a request admitted by Enter.
func (g *Gate) Leave() {
	if g.limit > 0 {
		g.n.Add(-1)
	}
}

// Budget bounds the bytes of request bodies an edge holds in memory at
// once. The zero value (or a limit <= 0) holds anything. Safe for
// concurrent use.
type Budget struct {
	limit int64
	used  atomic.Int64
}

// NewBudget returns a budget of limit bytes (<= 0: no limit).
func NewBudget(limit int64) *Budget { return &Budget{limit: limit} }

// Take reserves n bytes and reports whether they fit.
func (b *Budget) Take(n int64) bool {
	if b.limit <= 0 || n <= 0 {
		return true
	}
	if b.used.Add(n) > b.limit {
		b.used.Add(-n)
		return false
	}
	return true
}

// Give returns n bytes reserved by Take.
func (b *Budget) Give(n int64) {
	if b.limit > 0 && n > 0 {
		b.used.Add(-n)
	}
}

// Used returns the bytes reserved now.
func (b *Budget) Used() int64 { return b.used.Load() }

// Hold is the part of a Budget one request holds; Release gives it back.
type Hold struct {
	b    *Budget
	held int64
	read int64
}

// Hold starts holding memory for one request body: expected bytes at once
// (a known Content-Length; 0 when unknown), more as Reader reads past
// them. It returns nil when expected does not fit.
func (b *Budget) Hold(expected int64) *Hold {
	if !b.Take(expected) {
		return nil
	}
	return &Hold{b: b, held: max(expected, 0)}
}

// Reader wraps r so that bytes read beyond those held are taken from the
// budget first; a read that does not fit fails with ErrOverBudget.
func (h *Hold) Reader(r io.Reader) io.Reader { return &holdReader{h: h, r: r} }

// Release gives back every byte the request holds. Safe to call twice.
func (h *Hold) Release() {
	h.b.Give(h.held)
	h.held = 0
}

type holdReader struct {
	h *Hold
	r io.Reader
}

func (hr *holdReader) Read(p []byte) (int, error) {
	n, err := hr.r.Read(p)
	h := hr.h
	h.read += int64(n)
	if more := h.read - h.held; more > 0 {
		if !h.b.Take(more) {
			return n, ErrOverBudget
		}
		h.held += more
	}
	return n, err
}

// Overloaded is the 503 an edge answers when one of its own bounds (Gate,
// Budget) is full.
func Overloaded(what string) *apierr.Error {
	return apierr.Newf(http.StatusServiceUnavailable, apierr.CodeOverloaded, "edge is at its limit of %s", what).
		WithRetry(time.Second)
}
