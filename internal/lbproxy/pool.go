package lbproxy

import (
	"bufio"
	"errors"
	"net"
	"sync"
	"time"
)

// targetIdleConnTimeout is how long an idle keep-alive connection to a
// target is kept (ALB: 60 s on the target side; a little less, so that a
// target with the common 60 s idle timeout does not close it under us).
const targetIdleConnTimeout = 55 * time.Second

// errTargetGone means the target finished draining (or the engine closed)
// between pick and the connection: nothing was sent, the request may go to
// another target.
var errTargetGone = errors.New("target deregistered")

// fastConn is one keep-alive connection of the fast path (fast.go) to a
// target, with its buffers.
type fastConn struct {
	conn       net.Conn
	br         *bufio.Reader
	bw         *bufio.Writer
	idleAt     time.Time
	prev, next *fastConn // in the pool's busy list while in use
}

// connPool is a target's keep-alive pool for the fast path: idle
// connections (LIFO, so that a few hot connections serve a light load and
// the others age out) and the busy ones, which close aborts (the end of
// draining cuts what is still in flight, as the slow path's watch on the
// target's context does).
type connPool struct {
	mu     sync.Mutex
	max    int // idle connections kept
	idle   []*fastConn
	busy   fastConn // sentinel of a circular list
	closed bool
}

func (p *connPool) init(maxIdle int) {
	p.max = maxIdle
	p.busy.prev, p.busy.next = &p.busy, &p.busy
}

func (p *connPool) linkLocked(c *fastConn) {
	c.prev, c.next = &p.busy, p.busy.next
	p.busy.next.prev = c
	p.busy.next = c
}

func (p *connPool) unlinkLocked(c *fastConn) {
	if c.next == nil {
		return // unlinked by close
	}
	c.prev.next = c.next
	c.next.prev = c.prev
	c.prev, c.next = nil, nil
}

// get returns an idle connection, now busy, or nil when there is none.
func (p *connPool) get(now time.Time) (*fastConn, error) {
	var stale []*fastConn
	defer func() {
		for _, c := range stale {
			_ = c.conn.Close()
		}
	}()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, errTargetGone
	}
	for n := len(p.idle); n > 0; n = len(p.idle) {
		c := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		if now.Sub(c.idleAt) > targetIdleConnTimeout {
			stale = append(stale, c)
			continue
		}
		p.linkLocked(c)
		return c, nil
	}
	return nil, nil
}

// add makes a new connection busy; it fails once the pool is closed.
func (p *connPool) add(c *fastConn) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errTargetGone
	}
	p.linkLocked(c)
	return nil
}

// put ends a connection's use: back to the idle list when reusable and
// there is room, closed otherwise.
func (p *connPool) put(c *fastConn, reusable bool) {
	p.mu.Lock()
	p.unlinkLocked(c)
	if reusable && !p.closed && len(p.idle) < p.max {
		c.idleAt = time.Now()
		p.idle = append(p.idle, c)
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	_ = c.conn.Close()
}

// close closes every connection, idle and busy (aborting the requests on
// them); later gets and adds fail.
func (p *connPool) close() {
	p.mu.Lock()
	if p.busy.next == nil { // never initialized (not an HTTP target)
		p.closed = true
		p.mu.Unlock()
		return
	}
	p.closed = true
	conns := p.idle
	p.idle = nil
	for c := p.busy.next; c != &p.busy; {
		next := c.next
		c.prev, c.next = nil, nil
		conns = append(conns, c)
		c = next
	}
	p.busy.prev, p.busy.next = &p.busy, &p.busy
	p.mu.Unlock()
	for _, c := range conns {
		_ = c.conn.Close()
	}
}

// newFastConn wraps a new connection to a target.
func newFastConn(conn net.Conn) *fastConn {
	return &fastConn{conn: conn, br: bufio.NewReaderSize(conn, 4<<10), bw: bufio.NewWriterSize(conn, 4<<10)}
}
