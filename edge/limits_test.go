package edge_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/switchyard/switchyard/edge"
)

func TestGateBoundsAndReleases(t *testing.T) {
	g := edge.NewGate(2)
	if !g.Enter() || !g.Enter() {
		t.Fatal("two requests not admitted by a gate of 2")
	}
	if g.Enter() {
		t.Fatal("a third request admitted")
	}
	g.Leave()
	if !g.Enter() {
		t.Fatal("not admitted after one left")
	}
	var wg sync.WaitGroup
	unlimited := edge.NewGate(0)
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); _ = unlimited.Enter(); unlimited.Leave() }()
	}
	wg.Wait()
}

func TestBudgetHoldsWhatIsRead(t *testing.T) {
	b := edge.NewBudget(1000)
	known := b.Hold(600) // a Content-Length of 600
	if known == nil || b.Used() != 600 {
		t.Fatalf("hold of 600: %v, used %d", known, b.Used())
	}
	if b.Hold(500) != nil {
		t.Fatal("a hold of 500 fit beside 600 in 1000")
	}
	// A body of unknown length takes the budget as it is read.
	chunked := b.Hold(0)
	got, err := io.ReadAll(chunked.Reader(strings.NewReader(strings.Repeat("x", 300))))
	if err != nil || len(got) != 300 || b.Used() != 900 {
		t.Fatalf("read 300 of unknown length: %d %v, used %d", len(got), err, b.Used())
	}
	over := b.Hold(0)
	_, err = io.Copy(io.Discard, over.Reader(bytes.NewReader(make([]byte, 200))))
	if !errors.Is(err, edge.ErrOverBudget) {
		t.Fatalf("reading past the budget: %v, want ErrOverBudget", err)
	}
	over.Release()
	chunked.Release()
	known.Release()
	known.Release() // twice is harmless
	if b.Used() != 0 {
		t.Fatalf("used %d after every release", b.Used())
	}
}
