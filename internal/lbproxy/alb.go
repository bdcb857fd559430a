package lbproxy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// serverHeader is the Server header of ALB's own answers.
const serverHeader = "awselb/2.0"

// proxyCtxKey carries a *proxyReq through the reverse proxy.
type proxyCtxKey struct{}

// proxyReq is one proxied request's state.
type proxyReq struct {
	tg       *targetGroup
	t        *target     // the target it is sent to (moves on a failed connect)
	tried    []*target   // targets a connection failed to reach
	cancel   func()      // aborts the request
	unwatch  func() bool // stops watching t's context
	timer    *time.Timer // the idle (response header) timeout
	timedOut atomic.Bool
	port     string // listener port the client connected to
	clientIP netip.Addr
}

// watch makes the end of t's registration (drained, engine closed) abort
// the request.
func (pr *proxyReq) watch(t *target) {
	if pr.unwatch != nil {
		pr.unwatch()
	}
	pr.t = t
	pr.unwatch = context.AfterFunc(t.ctx, pr.cancel)
}

// retriable reports whether req, which failed with err, may be sent to
// another target: it has no body, the client is still there, it did not
// time out, and either nothing reached the target (a failed connect) or
// the method is idempotent and the connection broke (reset, closed)
// before a response.
func (pr *proxyReq) retriable(req *http.Request, err error) bool {
	if (req.Body != nil && req.Body != http.NoBody) || req.Context().Err() != nil || pr.timedOut.Load() {
		return false
	}
	if isDialError(err) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
			errors.Is(err, syscall.EPIPE)
	}
	return false
}

// maxConnectTries bounds how many targets one request tries to connect to.
const maxConnectTries = 3

// roundTrip sends req to pr's target. When the request has no body and
// the target could not be reached, or (for an idempotent method) its
// connection broke before any answer, the request goes to another target
// of the group: a task that just died costs its clients nothing. ALB
// answers 502 there; berth retries as Envoy's connect-failure and reset
// retry policies do.
func (pr *proxyReq) roundTrip(req *http.Request) (*http.Response, error) {
	for {
		resp, err := pr.t.transport.RoundTrip(req)
		if err == nil || !pr.retriable(req, err) {
			return resp, err
		}
		pr.t.dialFailed()
		pr.tried = append(pr.tried, pr.t)
		if len(pr.tried) >= maxConnectTries {
			return nil, err
		}
		next, perr := pr.tg.pick(nil, pr.tried...)
		if perr != nil {
			return nil, err
		}
		pr.t.release()
		pr.watch(next)
		req.URL.Host = next.addr
	}
}

// ServeHTTP is the ALB: rules, then the action.
func (rl *runningListener) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if isH2CUpgrade(r) {
		rl.serveH2CUpgrade(w, r)
		return
	}
	rl.serveRouted(w, r)
}

// serveRouted evaluates the rules and runs the chosen action. A request
// that picked a target group the configuration has just retired (Apply
// swapped the route under it) is routed again, once, on the new route,
// rather than answered 503.
func (rl *runningListener) serveRouted(w http.ResponseWriter, r *http.Request) {
	ri := &requestInfo{r: r, clientIP: remoteIP(r)}
	for attempt := 0; attempt < 2; attempt++ {
		rt := rl.route.Load()
		act := rt.defaults
	rules:
		for i := range rt.rules {
			for _, m := range rt.rules[i].conds {
				if !m(ri) {
					continue rules
				}
			}
			act = rt.rules[i].action
			break
		}
		switch act.typ {
		case ActionFixedResponse:
			writeFixed(w, act)
		case ActionRedirect:
			writeRedirect(w, r, act.redirect, localPort(r))
		default:
			if !rl.e.forward(w, r, rt, act, ri.clientIP, attempt == 0) {
				continue
			}
		}
		return
	}
}

// forward proxies r to a target of one of the action's target groups. It
// returns false, having written nothing, when the group was retired by a
// configuration change and mayRetry allows routing the request again.
func (e *Engine) forward(w http.ResponseWriter, r *http.Request, rt *route, act *compiledAction, clientIP netip.Addr, mayRetry bool) bool {
	tg := act.pickTG(rand.Uint64())
	t, err := tg.pick(nil)
	if err != nil {
		if mayRetry && tg.isRetired() {
			return false
		}
		writeError(w, http.StatusServiceUnavailable)
		return true
	}
	if fastEligible(r) {
		e.forwardFast(w, r, rt.idleTimeout, tg, t, clientIP)
		return true
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	pr := &proxyReq{tg: tg, cancel: cancel, port: localPort(r), clientIP: clientIP}
	pr.watch(t)
	defer func() {
		pr.unwatch()
		pr.t.release()
	}()
	pr.timer = time.AfterFunc(rt.idleTimeout, func() {
		pr.timedOut.Store(true)
		cancel()
	})
	defer pr.timer.Stop()
	e.proxy.ServeHTTP(w, r.WithContext(context.WithValue(ctx, proxyCtxKey{}, pr)))
	return true
}

func (e *Engine) newReverseProxy() *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(p *httputil.ProxyRequest) {
			pr := p.In.Context().Value(proxyCtxKey{}).(*proxyReq)
			p.Out.URL.Scheme = "http"
			p.Out.URL.Host = pr.t.addr
			p.Out.Host = p.In.Host
			h := p.Out.Header
			xff := pr.clientIP.String()
			if prior := p.In.Header.Values("X-Forwarded-For"); len(prior) > 0 {
				xff = strings.Join(prior, ", ") + ", " + xff
			}
			h.Set("X-Forwarded-For", xff)
			h.Set("X-Forwarded-Proto", "http")
			h.Set("X-Forwarded-Port", pr.port)
			if h.Get("X-Amzn-Trace-Id") == "" {
				h.Set("X-Amzn-Trace-Id", newTraceID(time.Now()))
			}
		},
		Transport: roundTripFunc(func(req *http.Request) (*http.Response, error) {
			return req.Context().Value(proxyCtxKey{}).(*proxyReq).roundTrip(req)
		}),
		ModifyResponse: func(resp *http.Response) error {
			pr := resp.Request.Context().Value(proxyCtxKey{}).(*proxyReq)
			pr.timer.Stop() // headers arrived in time
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			pr := r.Context().Value(proxyCtxKey{}).(*proxyReq)
			code := http.StatusBadGateway
			var ne net.Error
			switch {
			case pr.timedOut.Load(), errors.As(err, &ne) && ne.Timeout(), errors.Is(err, context.DeadlineExceeded):
				code = http.StatusGatewayTimeout
			case r.Context().Err() != nil && pr.t.ctx.Err() == nil:
				// The client went away: nobody to answer (ALB logs 460).
				return
			}
			e.log.Debug("target request failed", "target", pr.t.addr, "status", code, "err", err)
			writeError(w, code)
		},
		BufferPool: &e.bufPool,
		ErrorLog:   slog.NewLogLogger(e.log.Handler(), slog.LevelDebug),
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// bufferPool is httputil.BufferPool over sync.Pool.
type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte {
	if v, ok := b.p.Get().(*[]byte); ok {
		return *v
	}
	return make([]byte, 32<<10)
}

func (b *bufferPool) Put(buf []byte) { b.p.Put(&buf) }

// newTraceID is an X-Amzn-Trace-Id value: Root=1-<epoch hex>-<96 random bits>.
func newTraceID(now time.Time) string {
	var b [40]byte
	return string(appendTraceID(b[:0], now))
}

// remoteIP is the client's address (not X-Forwarded-For).
func remoteIP(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// localPort is the listener port the request arrived on.
func localPort(r *http.Request) string {
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		if _, p, err := net.SplitHostPort(a.String()); err == nil {
			return p
		}
	}
	return "80"
}

// errorPage is the body of ALB's own error answers.
func errorPage(code int) string {
	st := strconv.Itoa(code) + " " + http.StatusText(code)
	return "<html>\r\n<head><title>" + st + "</title></head>\r\n<body>\r\n<center><h1>" + st +
		"</h1></center>\r\n</body>\r\n</html>\r\n"
}

func writeError(w http.ResponseWriter, code int) {
	body := errorPage(code)
	h := w.Header()
	h.Set("Server", serverHeader)
	h.Set("Content-Type", "text/html")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	_, _ = w.Write([]byte(body))
}

func writeFixed(w http.ResponseWriter, a *compiledAction) {
	ct := a.fixed.ContentType
	if ct == "" {
		ct = "text/plain"
	}
	h := w.Header()
	h.Set("Server", serverHeader)
	h.Set("Content-Type", ct)
	h.Set("Content-Length", strconv.Itoa(len(a.fixed.MessageBody)))
	w.WriteHeader(a.fixedSC)
	_, _ = w.Write([]byte(a.fixed.MessageBody))
}

// writeRedirect answers with ELBv2's redirect: each URI component is the
// configured one with #{...} placeholders expanded, or the request's own.
func writeRedirect(w http.ResponseWriter, r *http.Request, rd *Redirect, port string) {
	loc := redirectLocation(r, rd, port)
	code := http.StatusFound
	if rd.StatusCode == "HTTP_301" {
		code = http.StatusMovedPermanently
	}
	h := w.Header()
	h.Set("Server", serverHeader)
	h.Set("Location", loc)
	h.Set("Content-Type", "text/html")
	body := errorPage(code)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	_, _ = w.Write([]byte(body))
}

func redirectLocation(r *http.Request, rd *Redirect, port string) string {
	path := r.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	repl := strings.NewReplacer(
		"#{protocol}", "HTTP",
		"#{host}", hostOnly(r.Host),
		"#{port}", port,
		"#{path}", strings.TrimPrefix(path, "/"), // the default path is "/#{path}"
		"#{query}", r.URL.RawQuery,
	)
	or := func(v, def string) string {
		if v == "" {
			return repl.Replace(def)
		}
		return repl.Replace(v)
	}
	proto := strings.ToLower(or(rd.Protocol, "#{protocol}"))
	host := or(rd.Host, "#{host}")
	p := or(rd.Port, "#{port}")
	newPath := or(rd.Path, "/#{path}")
	newPath = "/" + strings.TrimLeft(newPath, "/")
	query := or(rd.Query, "#{query}")
	u := proto + "://" + host
	if !(proto == "http" && p == "80") && !(proto == "https" && p == "443") {
		u += ":" + p
	}
	u += newPath
	if query != "" {
		u += "?" + query
	}
	return u
}
