package ws

import (
	"bytes"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// countingConn counts the writes that reach a real TCP connection.
type countingConn struct {
	net.Conn
	writes atomic.Int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// TestCoalescingConn: the writes of one batch reach the socket as one
// write, in order; writes outside a batch go straight through; a dropped
// batch writes nothing.
func TestCoalescingConn(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got := make(chan []byte, 1)
	go func() {
		s, err := l.Accept()
		if err != nil {
			got <- nil
			return
		}
		defer s.Close()
		b, _ := io.ReadAll(s)
		got <- b
	}()
	raw, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	cc := &countingConn{Conn: raw}
	c := &coalescingConn{Conn: cc}
	write := func(s string) {
		if _, err := c.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	write("a")
	c.hold()
	write("b")
	write("c")
	write("d")
	if n := cc.writes.Load(); n != 1 {
		t.Fatalf("%d writes before release, want 1 (the one outside the batch)", n)
	}
	if err := c.release(false); err != nil {
		t.Fatal(err)
	}
	if n := cc.writes.Load(); n != 2 {
		t.Fatalf("%d writes after release, want 2", n)
	}
	c.hold()
	write("x")
	_ = c.release(true)
	c.hold()
	big := bytes.Repeat([]byte("y"), maxHeld+1)
	if _, err := c.Write(big); err != nil { // larger than the hold: straight through
		t.Fatal(err)
	}
	_ = c.release(false)
	write("e")
	// A deadline set while holding waits for the flush: a past one fails
	// the flush, not the buffered write.
	c.hold()
	if err := c.SetWriteDeadline(time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	write("z")
	if err := c.release(false); err == nil {
		t.Fatal("the past deadline was not applied at the flush")
	}
	_ = raw.Close()
	want := "abcd" + string(big) + "e"
	if b := <-got; string(b) != want {
		t.Fatalf("peer read %d bytes, want %d in order", len(b), len(want))
	}
}
