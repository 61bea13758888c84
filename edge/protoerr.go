package edge

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"

	"github.com/switchyard/switchyard/internal/apierr"
)

// net/http answers requests it cannot parse (a garbage request line, a
// header block over MaxHeaderBytes, an unsupported transfer encoding) by
// itself, before any handler runs, in text/plain: one write of a status
// line followed by exactly these headers. jsonErrorListener rewrites those
// answers into the JSON error shape every other answer has.
const netHTTPErrorHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"

// jsonErrorListener wraps the accepted connections of an edge.
type jsonErrorListener struct{ net.Listener }

func (l jsonErrorListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &jsonErrorConn{Conn: c}, nil
}

// jsonErrorConn passes writes through, except net/http's own error answers.
type jsonErrorConn struct{ net.Conn }

func (c *jsonErrorConn) Write(p []byte) (int, error) {
	if out, ok := rewriteProtocolError(p); ok {
		if _, err := c.Conn.Write(out); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// CloseWrite lets net/http half-close after a 431, as it does on a TCP conn.
func (c *jsonErrorConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// rewriteProtocolError returns the JSON form of one of net/http's own error
// answers, or false for any other write. It looks only at the status line
// and the header block after it, so a normal response costs a short prefix
// comparison.
func rewriteProtocolError(p []byte) ([]byte, bool) {
	const proto = "HTTP/1.1 "
	if len(p) < len(proto)+4 || string(p[:len(proto)]) != proto {
		return nil, false
	}
	eol := bytes.Index(p, []byte("\r\n"))
	if eol < 0 || !bytes.HasPrefix(p[eol:], []byte(netHTTPErrorHeaders)) {
		return nil, false
	}
	status, err := strconv.Atoi(string(p[len(proto) : len(proto)+3]))
	if err != nil || status < 400 || status > 599 {
		return nil, false
	}
	msg := string(p[eol+len(netHTTPErrorHeaders):])
	if msg == "" {
		msg = http.StatusText(status)
	}
	body, _ := json.Marshal(apierr.Body{Error: apierr.BodyError{Code: apierr.CodeForStatus(status), Message: msg}})
	return fmt.Appendf(nil, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		status, http.StatusText(status), len(body), body), true
}
