package lbproxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The fast path: plain HTTP/1.x requests without a body (nearly all of an
// ALB's traffic) are proxied on the handler's own goroutine. It takes a
// keep-alive connection from the target's pool (pool.go), writes the
// request head straight into the connection's buffer, reads the response
// head with http.ReadResponse, and streams the body to the client with a
// pooled buffer; the connection goes back to the pool only when the
// response was read to its end and allows reuse.
//
// Why not net/http.Transport: it serves each connection with two
// goroutines of its own (writeLoop, readLoop), so one proxied request costs
// two cross-goroutine handoffs each way, plus the per-request context and
// timer plumbing that ReverseProxy needs; on a small host those handoffs
// and the scheduler's work around them were about a third of the ALB's CPU.
// Here one goroutine does the whole exchange, the idle (response header)
// timeout is a deadline on the target connection, and the end of a
// target's draining closes its busy connections instead of every request
// watching the target's context.
//
// Requests with a body, Expect, Upgrade (websocket, h2c), request trailers,
// HTTP/2 requests and other rarities take the slow path (ReverseProxy over
// the target's http.Transport), which handles them all; a body in
// particular needs the Transport's concurrent write and read, since a
// target may answer before it has read it.

// fastEligible reports whether r can take the fast path.
func fastEligible(r *http.Request) bool {
	if r.ProtoMajor != 1 || r.ContentLength != 0 || len(r.TransferEncoding) > 0 || r.Trailer != nil ||
		r.Method == http.MethodConnect {
		return false
	}
	h := r.Header
	if h["Expect"] != nil || h["Upgrade"] != nil {
		return false
	}
	for _, v := range h["Connection"] {
		for tok := range strings.SplitSeq(v, ",") {
			tok = strings.TrimSpace(tok)
			if tok != "" && !strings.EqualFold(tok, "keep-alive") && !strings.EqualFold(tok, "close") {
				return false // names other headers as hop-by-hop, or an upgrade
			}
		}
	}
	return cleanQuery(r.URL.RawQuery)
}

// cleanQuery reports whether ReverseProxy would forward the query as it is
// (no ';', no malformed escape, not too many parameters).
func cleanQuery(s string) bool {
	amps := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case ';':
			return false
		case '&':
			amps++
		case '%':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return false
			}
		}
	}
	return amps < 10000
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// fastReq is one request on the fast path.
type fastReq struct {
	e        *Engine
	r        *http.Request
	tg       *targetGroup
	t        *target
	clientIP netip.Addr
	deadline time.Time // the idle timeout: response headers by then
	tried    [maxConnectTries]*target
	ntried   int
	cur      atomic.Pointer[fastConn]
	gone     atomic.Bool // the client went away
}

// pastTime is a deadline that aborts blocked I/O at once.
var pastTime = time.Unix(1, 0)

// abort runs when the client goes away: it cuts the target exchange.
func (fr *fastReq) abort() {
	fr.gone.Store(true)
	if c := fr.cur.Load(); c != nil {
		_ = c.conn.SetDeadline(pastTime)
	}
}

// forwardFast proxies r, which fastEligible accepted, to t (picked and
// counted in flight by the caller) or, when t fails before answering, to
// other targets of tg (see proxyReq.roundTrip for the rules).
func (e *Engine) forwardFast(w http.ResponseWriter, r *http.Request, idle time.Duration, tg *targetGroup, t *target, clientIP netip.Addr) {
	fr := &fastReq{e: e, r: r, tg: tg, t: t, clientIP: clientIP, deadline: time.Now().Add(idle)}
	stop := context.AfterFunc(r.Context(), fr.abort)
	var c *fastConn
	reusable := false
	defer func() {
		// After stop, abort can no longer touch c: it may go back to the pool.
		if !stop() {
			reusable = false
		}
		if c != nil {
			fr.t.pool.put(c, reusable)
		}
		fr.t.release()
	}()

	var resp *http.Response
	for {
		var reused bool
		var err error
		c, reused, err = fr.conn()
		if err == nil {
			resp, err = fr.exchange(w, c)
			if err != nil {
				fr.t.pool.put(c, false)
				c = nil
				if reused && fr.stale(err) {
					continue // a keep-alive connection the target had closed: a new one
				}
			}
		}
		if err == nil {
			break
		}
		if !fr.retriable(err) || !fr.next(err) {
			fr.fail(w, err)
			return
		}
	}

	h := w.Header()
	removeHopHeaders(resp.Header)
	for k, vv := range resp.Header {
		h[k] = vv
	}
	if len(resp.Trailer) > 0 {
		keys := make([]string, 0, len(resp.Trailer))
		for k := range resp.Trailer {
			keys = append(keys, k)
		}
		h.Add("Trailer", strings.Join(keys, ", "))
	}
	announced := len(resp.Trailer)
	w.WriteHeader(resp.StatusCode)
	if announced > 0 {
		// Chunked, so that the trailers get through (as ReverseProxy).
		_ = http.NewResponseController(w).Flush()
	}
	if err := e.copyBody(w, resp.Body, resp.ContentLength == -1); err != nil {
		// Mid-body: all that is left is to cut the client's connection, as
		// ReverseProxy does (a clean end would pass a truncated body off as
		// whole).
		e.log.Debug("target response body failed", "target", fr.t.addr, "err", err)
		panic(http.ErrAbortHandler)
	}
	if len(resp.Trailer) > 0 {
		if len(resp.Trailer) == announced {
			for k, vv := range resp.Trailer {
				h[k] = vv
			}
		} else {
			for k, vv := range resp.Trailer {
				h[http.TrailerPrefix+k] = vv
			}
		}
	}
	reusable = !resp.Close && c.br.Buffered() == 0
}

// conn returns a connection to fr.t: an idle one (reused) or a new one.
func (fr *fastReq) conn() (c *fastConn, reused bool, err error) {
	now := time.Now()
	for {
		if c, err = fr.t.pool.get(now); c == nil || err != nil {
			break
		}
		// A request that cannot be replayed on a new connection (see stale)
		// first makes sure the target has not closed this one.
		if fr.replayable() || peerOpen(c.conn) {
			return c, true, nil
		}
		fr.t.pool.put(c, false)
	}
	if err != nil {
		return nil, false, err
	}
	dl := now.Add(fr.e.opts.ConnectTimeout)
	if fr.deadline.Before(dl) {
		dl = fr.deadline
	}
	ctx, cancel := context.WithDeadline(fr.r.Context(), dl)
	conn, err := fr.e.opts.Dial(ctx, "tcp", fr.t.addr)
	cancel()
	if err != nil {
		return nil, false, err
	}
	c = newFastConn(conn)
	if err := fr.t.pool.add(c); err != nil {
		_ = conn.Close()
		return nil, false, err
	}
	return c, false, nil
}

// exchange sends the request on c and reads the response head; 1xx
// answers are passed on to the client.
func (fr *fastReq) exchange(w http.ResponseWriter, c *fastConn) (*http.Response, error) {
	if err := c.conn.SetDeadline(fr.deadline); err != nil {
		return nil, err
	}
	fr.cur.Store(c) // stays set through the body: abort cuts that too
	if fr.gone.Load() {
		return nil, context.Canceled
	}
	fr.writeHead(c.bw)
	if err := c.bw.Flush(); err != nil {
		return nil, err
	}
	// Nothing at all (EOF, reset) is told apart from a broken answer
	// (ReadResponse says io.ErrUnexpectedEOF for both): see stale.
	if _, err := c.br.Peek(1); err != nil {
		return nil, err
	}
	for {
		resp, err := http.ReadResponse(c.br, fr.r)
		if err != nil {
			return nil, err
		}
		switch {
		case resp.StatusCode == http.StatusSwitchingProtocols:
			return nil, errors.New("101 answer to a request without Upgrade")
		case resp.StatusCode < 200:
			h := w.Header()
			for k, vv := range resp.Header {
				h[k] = vv
			}
			w.WriteHeader(resp.StatusCode)
			clear(h)
			continue
		}
		// Headers arrived in time; the body has no deadline (as ALB).
		if err := c.conn.SetReadDeadline(time.Time{}); err != nil {
			return nil, err
		}
		if fr.gone.Load() { // abort's deadline may just have been undone
			return nil, context.Canceled
		}
		return resp, nil
	}
}

// skipHeader lists the request headers the fast path does not copy:
// hop-by-hop ones, those it writes itself, and the client's forwarding
// headers (ReverseProxy's Rewrite drops them too).
var skipHeader = map[string]bool{
	"Connection": true, "Proxy-Connection": true, "Keep-Alive": true, "Proxy-Authenticate": true,
	"Proxy-Authorization": true, "Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
	"Host": true, "Content-Length": true, "Forwarded": true, "X-Forwarded-For": true,
	"X-Forwarded-Host": true, "X-Forwarded-Proto": true, "X-Forwarded-Port": true,
}

// writeHead writes the request head as the slow path's Rewrite and
// Transport would, with ALB's X-Forwarded-* and X-Amzn-Trace-Id headers.
func (fr *fastReq) writeHead(bw *bufio.Writer) {
	r := fr.r
	uri := r.RequestURI
	if uri == "" || uri[0] != '/' {
		uri = r.URL.RequestURI()
	}
	host := r.Host
	if host == "" {
		host = fr.t.addr
	}
	bw.WriteString(r.Method)
	bw.WriteByte(' ')
	bw.WriteString(uri)
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(host)
	bw.WriteString("\r\n")
	traced := false
	for k, vv := range r.Header {
		if skipHeader[k] {
			continue
		}
		if k == "X-Amzn-Trace-Id" {
			if len(vv) == 0 || vv[0] == "" {
				continue // replaced below
			}
			traced = true
		}
		for _, v := range vv {
			bw.WriteString(k)
			bw.WriteString(": ")
			bw.WriteString(v)
			bw.WriteString("\r\n")
		}
	}
	if hasToken(r.Header["Te"], "trailers") {
		bw.WriteString("Te: trailers\r\n")
	}
	switch r.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		bw.WriteString("Content-Length: 0\r\n")
	}
	bw.WriteString("X-Forwarded-For: ")
	for _, v := range r.Header["X-Forwarded-For"] {
		bw.WriteString(v)
		bw.WriteString(", ")
	}
	// The rest is formatted in the writer's own buffer: no allocation.
	b := fr.clientIP.AppendTo(bw.AvailableBuffer())
	b = append(b, "\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Port: "...)
	b = appendLocalPort(b, r)
	if !traced {
		b = append(b, "\r\nX-Amzn-Trace-Id: "...)
		b = appendTraceID(b, time.Now())
	}
	b = append(b, "\r\n\r\n"...)
	bw.Write(b)
}

func hasToken(vs []string, token string) bool {
	for _, v := range vs {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// removeHopHeaders drops a response's hop-by-hop headers, those its
// Connection header names included.
func removeHopHeaders(h http.Header) {
	for _, v := range h["Connection"] {
		for t := range strings.SplitSeq(v, ",") {
			if t = strings.TrimSpace(t); t != "" {
				delete(h, http.CanonicalHeaderKey(t))
			}
		}
	}
	for _, k := range []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"} {
		delete(h, k)
	}
}

// copyBufs are copyBody's buffers.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// copyBody streams a target's response body to the client with a pooled
// buffer, flushing each chunk when the body's length is unknown (a stream).
func (e *Engine) copyBody(w http.ResponseWriter, body io.ReadCloser, flush bool) error {
	if body == http.NoBody {
		return nil
	}
	bp := copyBufs.Get().(*[]byte) // a pointer: Put allocates nothing
	defer copyBufs.Put(bp)
	buf := *bp
	var rc *http.ResponseController
	if flush {
		rc = http.NewResponseController(w)
	}
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				return err
			}
			if rc != nil {
				if err := rc.Flush(); err != nil {
					return err
				}
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// stale reports whether err, on a reused keep-alive connection, means the
// target had closed it before reading the request: a replayable request
// then goes on a new connection, as net/http.Transport does.
func (fr *fastReq) stale(err error) bool {
	if fr.gone.Load() || fr.t.ctx.Err() != nil || !fr.replayable() {
		return false
	}
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// replayable is net/http's Request.isReplayable for a bodyless request.
func (fr *fastReq) replayable() bool {
	switch fr.r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return fr.r.Header["Idempotency-Key"] != nil || fr.r.Header["X-Idempotency-Key"] != nil
}

// peerOpen reports whether an idle connection is still open at the far
// end: a non-blocking peek finds nothing to read yet. (Transport's
// readLoop notices such closes while the connection idles; the fast path
// has no goroutine per connection, so it looks when it matters.)
func peerOpen(conn net.Conn) bool {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	open := true
	var b [1]byte
	if err := rc.Read(func(fd uintptr) bool {
		// Data (unasked for) or EOF or an error: not reusable.
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		open = err == syscall.EAGAIN
		return true
	}); err != nil {
		return false
	}
	return open
}

// retriable is proxyReq.retriable for the fast path's bodyless requests.
func (fr *fastReq) retriable(err error) bool {
	if fr.gone.Load() || fr.r.Context().Err() != nil || !time.Now().Before(fr.deadline) {
		return false
	}
	if isDialError(err) || errors.Is(err, errTargetGone) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	switch fr.r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
			errors.Is(err, syscall.EPIPE)
	}
	return false
}

// next moves fr to another target after t failed with err, shunning t;
// false when there is none left to try.
func (fr *fastReq) next(err error) bool {
	if !errors.Is(err, errTargetGone) {
		fr.t.dialFailed()
	}
	fr.tried[fr.ntried] = fr.t
	fr.ntried++
	if fr.ntried >= maxConnectTries {
		return false
	}
	nt, perr := fr.tg.pick(nil, fr.tried[:fr.ntried]...)
	if perr != nil {
		return false
	}
	fr.t.release()
	fr.t = nt
	return true
}

// fail answers a request that got no response, as the slow path's
// ErrorHandler does.
func (fr *fastReq) fail(w http.ResponseWriter, err error) {
	code := http.StatusBadGateway
	var ne net.Error
	switch {
	case fr.gone.Load() || fr.r.Context().Err() != nil:
		return // nobody to answer (ALB logs 460)
	case !time.Now().Before(fr.deadline), errors.As(err, &ne) && ne.Timeout(), errors.Is(err, context.DeadlineExceeded):
		code = http.StatusGatewayTimeout
	}
	fr.e.log.Debug("target request failed", "target", fr.t.addr, "status", code, "err", err)
	writeError(w, code)
}

// appendLocalPort appends the listener port r arrived on.
func appendLocalPort(b []byte, r *http.Request) []byte {
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(*net.TCPAddr); ok {
		return strconv.AppendInt(b, int64(a.Port), 10)
	}
	return append(b, localPort(r)...)
}

const hexDigits = "0123456789abcdef"

// appendTraceID appends an X-Amzn-Trace-Id value:
// Root=1-<epoch, 8 hex digits>-<96 random bits, 24 hex digits>.
func appendTraceID(b []byte, now time.Time) []byte {
	b = append(b, "Root=1-"...)
	b = appendHex(b, uint64(uint32(now.Unix())), 8)
	b = append(b, '-')
	b = appendHex(b, uint64(rand.Uint32()), 8)
	return appendHex(b, rand.Uint64(), 16)
}

func appendHex(b []byte, v uint64, digits int) []byte {
	for i := digits - 1; i >= 0; i-- {
		b = append(b, hexDigits[(v>>(4*uint(i)))&0xf])
	}
	return b
}
