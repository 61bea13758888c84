package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// errPoolClosed is returned by a pool after close.
var errPoolClosed = errors.New("upstream pool closed")

// errNoFreeConn: every connection to the upstream stayed busy as long as
// the request could wait (nothing was sent).
var errNoFreeConn = errors.New("every connection to the upstream is busy")

// NotSentError wraps an error after which provably no byte of the request
// reached the upstream: the dial failed, or every connection tried was
// found closed before anything was written to it. Such a request may be
// sent to another upstream whatever its method.
type NotSentError struct {
	Err error
	// Dial is set when the error is a failed dial (refused, unreachable,
	// TLS handshake): it counts against the upstream's health.
	Dial bool
}

func (e *NotSentError) Error() string { return "request not sent: " + e.Err.Error() }
func (e *NotSentError) Unwrap() error { return e.Err }

// connPool keeps HTTP/1.1 connections to one upstream alive between
// requests. It does its I/O on the caller's goroutine with fasthttp's
// request and response codec: net/http's Transport hands every request to
// two goroutines per connection, which measured here cost about a third of
// the proxy worker's CPU per request (BENCHMARKS.md), and fasthttp's own
// HostClient cannot tell a request that was never written from one that
// was, nor stop its I/O when the worker shuts down. The pool runs no
// goroutine of its own: idle connections past idleTimeout are closed when
// next taken, and close ends the idle ones at once.
//
// Before a kept-alive connection is reused it is checked without blocking
// (a peek at the socket): one the upstream has closed meanwhile is dropped
// before anything is written to it. Every write is counted, so do tells a
// request that never left (NotSentError) from one that may have reached
// the upstream.
//
// At most cap(slots) connections exist; a request finding them all busy
// waits for one until its deadline or its context ends. Safe for
// concurrent use.
type connPool struct {
	addr        string
	tls         *tls.Config // nil for http
	idle        chan *pconn
	slots       chan struct{} // a token per open connection, idle or busy
	idleTimeout time.Duration
	dialTimeout time.Duration
	maxBody     int
	// maxWait bounds the wait for a connection when all are busy
	// (errNoFreeConn after it); negative: until the request's deadline.
	maxWait time.Duration
	closed  atomic.Bool
}

type pconn struct {
	peek    *peeker  // on the TCP connection: is it still open?
	c       net.Conn // what the request is written to (TLS or raw)
	cw      countingWriter
	br      *bufio.Reader
	bw      *bufio.Writer
	lastUse time.Time
}

// countingWriter counts the bytes handed to the connection.
type countingWriter struct {
	c net.Conn
	n int64
}

func (w *countingWriter) Write(p []byte) (int, error) {
	n, err := w.c.Write(p)
	w.n += int64(n)
	return n, err
}

func newConnPool(addr string, useTLS bool, maxConns, maxBody int) *connPool {
	p := &connPool{
		addr:        addr,
		idle:        make(chan *pconn, maxConns),
		slots:       make(chan struct{}, maxConns),
		idleTimeout: 90 * time.Second,
		dialTimeout: 2 * time.Second,
		maxBody:     maxBody,
		maxWait:     -1,
	}
	if useTLS {
		host, _, _ := net.SplitHostPort(addr)
		p.tls = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	}
	return p
}

// get returns an idle connection that is still open (reused true) or a new
// one. When all are busy it waits for one until deadline, maxWait or ctx's
// end, whichever comes first (errNoFreeConn after the first two). Idle
// connections the upstream closed are dropped on the way.
func (p *connPool) get(ctx context.Context, deadline time.Time) (pc *pconn, reused bool, err error) {
	var timeout <-chan time.Time
	for {
		if p.closed.Load() {
			return nil, false, errPoolClosed
		}
		select {
		case pc = <-p.idle: // an idle connection first, when there is one
		default:
			select {
			case p.slots <- struct{}{}: // else a new one, while the bound allows
				return p.dialSlot(ctx, deadline)
			default:
			}
			if timeout == nil {
				wait := time.Until(deadline)
				if p.maxWait >= 0 && p.maxWait < wait {
					wait = p.maxWait
				}
				if wait <= 0 {
					return nil, false, errNoFreeConn
				}
				t := time.NewTimer(wait)
				defer t.Stop()
				timeout = t.C
			}
			select {
			case pc = <-p.idle:
			case p.slots <- struct{}{}:
				return p.dialSlot(ctx, deadline)
			case <-timeout:
				return nil, false, errNoFreeConn
			case <-ctx.Done():
				return nil, false, context.Cause(ctx)
			}
		}
		if time.Since(pc.lastUse) < p.idleTimeout && pc.peek.alive() {
			return pc, true, nil
		}
		p.discard(pc)
	}
}

// dialSlot dials for the slot just taken, and gives it back on failure.
func (p *connPool) dialSlot(ctx context.Context, deadline time.Time) (*pconn, bool, error) {
	pc, err := p.dial(ctx, deadline)
	if err != nil {
		<-p.slots
		return nil, false, &NotSentError{Err: err, Dial: true}
	}
	return pc, false, nil
}

func (p *connPool) dial(ctx context.Context, deadline time.Time) (*pconn, error) {
	d := net.Dialer{Timeout: p.dialTimeout, Deadline: deadline, KeepAlive: 30 * time.Second}
	raw, err := d.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		return nil, err
	}
	c := raw
	if p.tls != nil {
		tc := tls.Client(raw, p.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = raw.Close()
			return nil, err
		}
		c = tc
	}
	pc := &pconn{peek: newPeeker(raw), c: c, br: bufio.NewReaderSize(c, 16<<10)}
	pc.cw.c = c
	pc.bw = bufio.NewWriterSize(&pc.cw, 16<<10)
	return pc, nil
}

func (p *connPool) put(pc *pconn) {
	pc.lastUse = time.Now()
	if p.closed.Load() {
		p.discard(pc)
		return
	}
	select {
	case p.idle <- pc:
	default: // cannot happen: idle holds at most as many as slots allow
		p.discard(pc)
	}
}

func (p *connPool) discard(pc *pconn) {
	_ = pc.c.Close()
	<-p.slots
}

// close closes the idle connections; busy ones close when returned.
func (p *connPool) close() {
	p.closed.Store(true)
	for {
		select {
		case pc := <-p.idle:
			p.discard(pc)
		default:
			return
		}
	}
}

// longAgo is a deadline in the past: it makes blocked I/O return at once.
var longAgo = time.Unix(1, 0)

// result says what became of a request that do could not complete.
type result struct {
	// sent is set once any byte of the request was written to a connection.
	sent bool
	// staleRetries counts replays on a new connection after a kept-alive
	// one broke before any response byte (replayable requests only).
	staleRetries int
}

// do sends req and reads resp before deadline, and gives up when ctx ends
// (its blocked I/O returns at once). It returns a *NotSentError when no
// byte of the request reached the upstream. A replayable request (one that
// may run twice) whose reused connection broke before any response byte
// (the upstream closed it just as the request went out) is replayed once
// on a new connection; nothing else is retried here.
func (p *connPool) do(ctx context.Context, req *fasthttp.Request, resp *fasthttp.Response, deadline time.Time, replayable bool) (result, error) {
	var r result
	for {
		pc, reused, err := p.get(ctx, deadline)
		if err != nil {
			return r, err
		}
		_ = pc.c.SetDeadline(deadline)
		stop := context.AfterFunc(ctx, func() { _ = pc.c.SetDeadline(longAgo) })
		pc.cw.n = 0
		err = req.Write(pc.bw)
		if err == nil {
			err = pc.bw.Flush()
		}
		written := pc.cw.n > 0
		r.sent = r.sent || written
		if err == nil {
			err = resp.ReadLimitBody(pc.br, p.maxBody)
		}
		aborted := !stop()
		if err != nil {
			p.discard(pc)
			if aborted {
				err = fmt.Errorf("%w (%w)", context.Cause(ctx), err)
			}
			if !written {
				// Nothing reached the upstream. A kept-alive connection
				// that broke is replaced; a new one that broke says the
				// upstream is in trouble, and the caller may fail over.
				if reused && !aborted && ctx.Err() == nil && time.Now().Before(deadline) {
					continue
				}
				return r, &NotSentError{Err: err}
			}
			if reused && replayable && r.staleRetries == 0 && nothingRead(err) && !aborted && time.Now().Before(deadline) {
				r.staleRetries++
				continue
			}
			return r, err
		}
		if resp.ConnectionClose() || req.ConnectionClose() {
			p.discard(pc)
		} else {
			p.put(pc)
		}
		return r, nil
	}
}

// nothingRead reports whether err came before any byte of the response.
func nothingRead(err error) bool {
	var nr fasthttp.ErrNothingRead
	return errors.Is(err, io.EOF) || errors.As(err, &nr)
}
