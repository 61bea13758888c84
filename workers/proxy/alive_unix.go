//go:build unix

package proxy

import (
	"errors"
	"net"
	"syscall"
)

// peeker checks whether an idle connection is still open. It is built once
// per connection, so a check costs one non-blocking recvfrom(MSG_PEEK) and
// no allocation.
type peeker struct {
	rc  syscall.RawConn // nil: cannot peek, assume open
	ok  bool
	buf [1]byte
	fn  func(fd uintptr) bool
}

func newPeeker(c net.Conn) *peeker {
	p := &peeker{}
	if sc, ok := c.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			p.rc = rc
		}
	}
	p.fn = func(fd uintptr) bool {
		_, _, err := syscall.Recvfrom(int(fd), p.buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		p.ok = errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EWOULDBLOCK)
		return true
	}
	return p
}

// alive reports whether the connection is still open: a peek that does
// not block finds nothing to read. End of stream (the upstream closed it),
// an error, or unexpected bytes (a stray response) all mean the connection
// must not carry a request.
func (p *peeker) alive() bool {
	if p.rc == nil {
		return true
	}
	p.ok = false
	return p.rc.Read(p.fn) == nil && p.ok
}
