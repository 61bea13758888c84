//go:build unix

package proxy

import (
	"errors"
	"net"
	"syscall"
)

// alive reports whether an idle connection is still open: a peek that
// does not block finds nothing to read. End of stream (the upstream closed
// it), an error, or unexpected bytes (a stray response) all mean the
// connection must not carry a request.
func alive(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	ok = false
	var buf [1]byte
	cerr := rc.Read(func(fd uintptr) bool {
		_, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		ok = errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EWOULDBLOCK)
		return true
	})
	return cerr == nil && ok
}
