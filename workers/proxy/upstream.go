package proxy

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// errPoolClosed is returned by a pool after close.
var errPoolClosed = errors.New("upstream pool closed")

// connPool keeps HTTP/1.1 connections to one upstream alive between
// requests. It does its I/O on the caller's goroutine with fasthttp's
// request and response codec: net/http's Transport hands every request to
// two goroutines per connection, which measured here cost about a third of
// the proxy worker's CPU per request (BENCHMARKS.md). The pool runs no
// goroutine of its own: idle connections past idleTimeout are closed when
// next taken, and close ends the idle ones at once.
//
// At most cap(slots) connections exist; a request finding them all busy
// waits for one until its deadline. Safe for concurrent use.
type connPool struct {
	addr        string
	tls         *tls.Config // nil for http
	idle        chan *pconn
	slots       chan struct{} // a token per open connection, idle or busy
	idleTimeout time.Duration
	dialTimeout time.Duration
	maxBody     int
	closed      atomic.Bool
}

type pconn struct {
	c       net.Conn
	br      *bufio.Reader
	bw      *bufio.Writer
	lastUse time.Time
}

func newConnPool(addr string, useTLS bool, maxConns, maxBody int) *connPool {
	p := &connPool{
		addr:        addr,
		idle:        make(chan *pconn, maxConns),
		slots:       make(chan struct{}, maxConns),
		idleTimeout: 90 * time.Second,
		dialTimeout: 2 * time.Second,
		maxBody:     maxBody,
	}
	if useTLS {
		host, _, _ := net.SplitHostPort(addr)
		p.tls = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	}
	return p
}

// get returns an idle connection (reused true) or a new one, waiting for
// one until deadline when all are busy.
func (p *connPool) get(deadline time.Time) (pc *pconn, reused bool, err error) {
	var timeout <-chan time.Time
	for {
		if p.closed.Load() {
			return nil, false, errPoolClosed
		}
		select {
		case pc = <-p.idle: // an idle connection first, when there is one
		default:
			if timeout == nil {
				t := time.NewTimer(time.Until(deadline))
				defer t.Stop()
				timeout = t.C
			}
			select {
			case pc = <-p.idle:
			case p.slots <- struct{}{}:
				if pc, err = p.dial(deadline); err != nil {
					<-p.slots
				}
				return pc, false, err
			case <-timeout:
				return nil, false, errNoFreeConn
			}
		}
		if time.Since(pc.lastUse) < p.idleTimeout {
			return pc, true, nil
		}
		p.discard(pc)
	}
}

// errNoFreeConn: every connection stayed busy until the deadline.
var errNoFreeConn = errors.New("no free connection to the upstream before the deadline")

func (p *connPool) dial(deadline time.Time) (*pconn, error) {
	d := net.Dialer{Timeout: p.dialTimeout, Deadline: deadline, KeepAlive: 30 * time.Second}
	c, err := d.Dial("tcp", p.addr)
	if err != nil {
		return nil, err
	}
	if p.tls != nil {
		tc := tls.Client(c, p.tls)
		_ = tc.SetDeadline(deadline)
		if err := tc.Handshake(); err != nil {
			_ = c.Close()
			return nil, err
		}
		c = tc
	}
	return &pconn{c: c, br: bufio.NewReaderSize(c, 16<<10), bw: bufio.NewWriterSize(c, 16<<10)}, nil
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

// do sends req and reads resp before deadline. A reused connection that the
// upstream had closed (the keep-alive race) is retried once on a new
// connection when nothing of the response was read and retry is true.
func (p *connPool) do(req *fasthttp.Request, resp *fasthttp.Response, deadline time.Time, retry bool) error {
	for attempt := 0; ; attempt++ {
		pc, reused, err := p.get(deadline)
		if err != nil {
			return err
		}
		_ = pc.c.SetDeadline(deadline)
		err = req.Write(pc.bw)
		if err == nil {
			err = pc.bw.Flush()
		}
		if err == nil {
			err = resp.ReadLimitBody(pc.br, p.maxBody)
		}
		if err != nil {
			p.discard(pc)
			if reused && retry && attempt == 0 && nothingRead(err) {
				continue
			}
			return err
		}
		if resp.ConnectionClose() || req.ConnectionClose() {
			p.discard(pc)
		} else {
			p.put(pc)
		}
		return nil
	}
}

func nothingRead(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
