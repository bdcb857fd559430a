package lbproxy

import (
	"bufio"
	"encoding/base64"
	"net"
	"net/http"
	"strings"

	"golang.org/x/net/http2"
)

// HTTP/2 cleartext. Prior knowledge (the client starts with the HTTP/2
// preface) is net/http's own (Server.Protocols with UnencryptedHTTP2). The
// HTTP/1.1 "Upgrade: h2c" path of RFC 7540 §3.2, which net/http does not
// implement, is done here: the connection is hijacked, answered with 101,
// and handed to x/net/http2's ServeConn with the upgrade request as stream
// 1. Upgrade requests with a body are served as HTTP/1.1 (the server may
// ignore an Upgrade), which keeps the body path simple.

// isH2CUpgrade reports an RFC 7540 h2c upgrade request we accept.
func isH2CUpgrade(r *http.Request) bool {
	if r.ProtoMajor != 1 || r.Method == http.MethodConnect {
		return false
	}
	if r.ContentLength != 0 || len(r.TransferEncoding) > 0 {
		return false
	}
	return headerHasToken(r.Header, "Upgrade", "h2c") &&
		headerHasToken(r.Header, "Connection", "upgrade") &&
		headerHasToken(r.Header, "Connection", "http2-settings") &&
		len(r.Header.Values("Http2-Settings")) == 1
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// serveH2CUpgrade switches the connection to HTTP/2 and serves r as its
// first stream. It returns when the connection ends.
func (rl *runningListener) serveH2CUpgrade(w http.ResponseWriter, r *http.Request) {
	settings, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(r.Header.Get("Http2-Settings"), "="))
	if err != nil {
		rl.serveRouted(w, r) // ignore a malformed upgrade
		return
	}
	conn, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		rl.serveRouted(w, r)
		return
	}
	defer conn.Close()
	if _, err := rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"); err != nil {
		return
	}
	if err := rw.Flush(); err != nil {
		return
	}
	rl.mu.Lock()
	if rl.stopped {
		rl.mu.Unlock()
		return
	}
	rl.upgraded[conn] = struct{}{}
	rl.mu.Unlock()
	defer func() {
		rl.mu.Lock()
		delete(rl.upgraded, conn)
		rl.mu.Unlock()
	}()

	for _, h := range []string{"Upgrade", "Connection", "Http2-Settings"} {
		r.Header.Del(h)
	}
	r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/2.0", 2, 0
	//lint:ignore SA1019 net/http has no h2c Upgrade path; x/net/http2's ServeConn is the only one.
	h2 := &http2.Server{MaxConcurrentStreams: 128, IdleTimeout: rl.srv.IdleTimeout}
	//lint:ignore SA1019 see above.
	opts := &http2.ServeConnOpts{
		Context:        rl.e.ctx,
		BaseConfig:     rl.srv,
		Handler:        http.HandlerFunc(rl.serveRouted),
		UpgradeRequest: r,
		Settings:       settings,
	}
	//lint:ignore SA1019 see above.
	h2.ServeConn(&bufferedConn{Conn: conn, r: rw.Reader}, opts)
}

// bufferedConn reads what the HTTP/1 server had already buffered first.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }
