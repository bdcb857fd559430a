package lbproxy

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestFastEligible(t *testing.T) {
	for _, tc := range []struct {
		name, raw string
		want      bool
	}{
		{"plain GET", "GET /a?b=1 HTTP/1.1\r\nHost: x\r\n\r\n", true},
		{"HTTP/1.0", "GET / HTTP/1.0\r\n\r\n", true},
		{"bodyless POST", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", true},
		{"keep-alive and close", "GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, close\r\n\r\n", true},
		{"body", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc", false},
		{"chunked body", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", false},
		{"expect", "GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n", false},
		{"websocket", "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", false},
		{"connection names a header", "GET / HTTP/1.1\r\nHost: x\r\nConnection: X-Secret\r\n\r\n", false},
		{"query with ;", "GET /?a=1;b=2 HTTP/1.1\r\nHost: x\r\n\r\n", false},
		{"bad escape in query", "GET /?a=%zz HTTP/1.1\r\nHost: x\r\n\r\n", false},
		{"CONNECT", "CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(tc.raw)))
			if err != nil {
				t.Fatal(err)
			}
			if got := fastEligible(r); got != tc.want {
				t.Errorf("fastEligible = %v, want %v", got, tc.want)
			}
		})
	}
	r, _ := http.ReadRequest(bufio.NewReader(strings.NewReader("GET / HTTP/1.1\r\nHost: x\r\n\r\n")))
	r.ProtoMajor = 2
	if fastEligible(r) {
		t.Error("HTTP/2 request is eligible")
	}
}

// fastALB is an ALB forwarding everything to one backend with handler h.
func fastALB(t *testing.T, opts Options, h http.HandlerFunc) (base string, b *backend) {
	t.Helper()
	e := newTestEngine(t, opts)
	b = newBackend(t, "b", h)
	tg := httpTG("tg", b.target())
	tg.HealthCheck.Enabled = false
	mustApply(t, e, alb(Listener{DefaultActions: forward("tg")}, tg))
	return listenerURL(t, e, "listener/app/lb/1"), b
}

// The responses the fast path streams back: lengths known and unknown,
// none, large, with trailers, hop-by-hop headers, informational answers.
func TestFastPathResponses(t *testing.T) {
	large := bytes.Repeat([]byte("0123456789abcdef"), 256<<10) // 4 MiB
	for _, tc := range []struct {
		name    string
		method  string
		h       http.HandlerFunc
		check   func(t *testing.T, resp *http.Response, body []byte)
		got1xx  int
		trailer string
	}{
		{name: "content-length", h: func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") },
			check: func(t *testing.T, resp *http.Response, body []byte) {
				if string(body) != "hello" || resp.ContentLength != 5 || resp.Header.Get("X-Backend") != "b" {
					t.Errorf("%d %q %v", resp.ContentLength, body, resp.Header)
				}
			}},
		{name: "large", h: func(w http.ResponseWriter, r *http.Request) { w.Write(large) },
			check: func(t *testing.T, resp *http.Response, body []byte) {
				if !bytes.Equal(body, large) {
					t.Errorf("got %d bytes, want %d", len(body), len(large))
				}
			}},
		{name: "chunked stream", h: func(w http.ResponseWriter, r *http.Request) {
			for i := range 3 {
				fmt.Fprintf(w, "part%d;", i)
				w.(http.Flusher).Flush()
				time.Sleep(5 * time.Millisecond)
			}
		}, check: func(t *testing.T, resp *http.Response, body []byte) {
			if string(body) != "part0;part1;part2;" || resp.ContentLength != -1 {
				t.Errorf("%d %q", resp.ContentLength, body)
			}
		}},
		{name: "HEAD", method: http.MethodHead, h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "10")
		}, check: func(t *testing.T, resp *http.Response, body []byte) {
			if resp.ContentLength != 10 || len(body) != 0 {
				t.Errorf("%d %q", resp.ContentLength, body)
			}
		}},
		{name: "204", h: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) },
			check: func(t *testing.T, resp *http.Response, body []byte) {
				if resp.StatusCode != 204 || len(body) != 0 {
					t.Errorf("%d %q", resp.StatusCode, body)
				}
			}},
		{name: "trailers", trailer: "42", h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Trailer", "X-Sum")
			io.WriteString(w, "body")
			w.(http.Flusher).Flush()
			w.Header().Set("X-Sum", "42")
		}},
		{name: "hop-by-hop headers dropped", h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Connection", "X-Private")
			w.Header().Set("X-Private", "1")
			w.Header().Set("Keep-Alive", "timeout=5")
			w.Header().Set("X-Public", "1")
		}, check: func(t *testing.T, resp *http.Response, body []byte) {
			if resp.Header.Get("X-Private") != "" || resp.Header.Get("Keep-Alive") != "" || resp.Header.Get("X-Public") != "1" {
				t.Errorf("headers %v", resp.Header)
			}
		}},
		{name: "103 early hints", got1xx: 103, h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Link", "</style.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			w.Header().Del("Link")
			io.WriteString(w, "after hints")
		}, check: func(t *testing.T, resp *http.Response, body []byte) {
			if resp.StatusCode != 200 || string(body) != "after hints" {
				t.Errorf("%d %q", resp.StatusCode, body)
			}
		}},
		{name: "connection close", h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Connection", "close")
			io.WriteString(w, "bye")
		}, check: func(t *testing.T, resp *http.Response, body []byte) {
			if string(body) != "bye" {
				t.Errorf("%q", body)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base, _ := fastALB(t, Options{}, tc.h)
			for range 3 { // the second and third reuse the target connection (or not, after close)
				method := tc.method
				if method == "" {
					method = http.MethodGet
				}
				var got1xx atomic.Int64
				ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
					Got1xxResponse: func(code int, _ textproto.MIMEHeader) error { got1xx.Store(int64(code)); return nil },
				})
				req, _ := http.NewRequestWithContext(ctx, method, base+"/", nil)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					t.Fatal(err)
				}
				if tc.check != nil {
					tc.check(t, resp, body)
				}
				if tc.trailer != "" && resp.Trailer.Get("X-Sum") != tc.trailer {
					t.Errorf("trailer %v", resp.Trailer)
				}
				if tc.got1xx != 0 && got1xx.Load() != int64(tc.got1xx) {
					t.Errorf("1xx seen: %d, want %d", got1xx.Load(), tc.got1xx)
				}
			}
		})
	}
}

// The request head the fast path writes: hop-by-hop and forwarding headers
// of the client dropped, ALB's own added, the rest as received.
func TestFastPathRequestHead(t *testing.T) {
	base, b := fastALB(t, Options{}, nil)
	addr := strings.TrimPrefix(base, "http://")
	port := addr[strings.LastIndexByte(addr, ':')+1:]
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	for _, tc := range []struct {
		name, raw string
		want      map[string]string // "" means absent
		uri       string
	}{
		{"forwarding and hop-by-hop", "GET /p/a%20b?x=1&y=%41 HTTP/1.1\r\nHost: app.example.com\r\nConnection: keep-alive\r\n" +
			"Keep-Alive: 300\r\nTe: trailers, deflate\r\nProxy-Authorization: Basic eA==\r\nX-Forwarded-Host: evil\r\n" +
			"Forwarded: for=192.0.2.1\r\nX-Forwarded-Port: 1\r\nX-Forwarded-Proto: https\r\nX-Forwarded-For: 203.0.113.9\r\n" +
			"X-Forwarded-For: 198.51.100.1\r\nX-Custom: a\r\nX-Custom: b\r\nUser-Agent: probe/1\r\n\r\n",
			map[string]string{"Keep-Alive": "", "Te": "trailers", "Proxy-Authorization": "", "X-Forwarded-Host": "",
				"Forwarded": "", "X-Forwarded-Port": port, "X-Forwarded-Proto": "http",
				"X-Forwarded-For": "203.0.113.9, 198.51.100.1, 127.0.0.1", "X-Custom": "a,b", "User-Agent": "probe/1", "Host": "app.example.com"},
			"/p/a%20b?x=1&y=%41"},
		{"no user agent, trace id kept", "DELETE /d HTTP/1.1\r\nHost: h\r\nX-Amzn-Trace-Id: Root=1-5759e988-bd862e3fe1be46a994272793\r\n\r\n",
			map[string]string{"User-Agent": "", "X-Amzn-Trace-Id": "Root=1-5759e988-bd862e3fe1be46a994272793", "X-Forwarded-For": "127.0.0.1"}, "/d"},
		{"bodyless POST", "POST /form HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", map[string]string{"Content-Length": "0"}, "/form"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.SetDeadline(time.Now().Add(10 * time.Second))
			io.WriteString(c, tc.raw)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			r := b.lastRequest()
			if r.RequestURI != tc.uri {
				t.Errorf("RequestURI %q, want %q", r.RequestURI, tc.uri)
			}
			for k, want := range tc.want {
				got := strings.Join(r.Header.Values(k), ",")
				if k == "Host" {
					got = r.Host
				}
				if got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			if id := r.Header.Get("X-Amzn-Trace-Id"); !regexp.MustCompile(`^Root=1-[0-9a-f]{8}-[0-9a-f]{24}$`).MatchString(id) {
				t.Errorf("X-Amzn-Trace-Id = %q", id)
			}
		})
	}
}

// What the fast path leaves to ReverseProxy still works: bodies both ways
// (chunked, large), Expect: 100-continue, protocol upgrades.
func TestSlowPathRequests(t *testing.T) {
	echo := func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") == "echo" {
			c, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer c.Close()
			brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
			brw.Flush()
			io.Copy(c, brw)
			return
		}
		// The whole body first: a Go HTTP/1 handler that writes before it
		// has read the body may find the rest of the body gone once the
		// response's first bytes are flushed (CI cut an 8 MiB echo short).
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%d:", r.ContentLength)
		w.Write(body)
	}
	base, _ := fastALB(t, Options{}, echo)
	large := bytes.Repeat([]byte("z"), 8<<20)
	tr := &http.Transport{ExpectContinueTimeout: 5 * time.Second}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	for _, tc := range []struct {
		name string
		body io.Reader
		n    int64
		hdr  string
		want string
	}{
		{"content-length body", strings.NewReader("abc"), 3, "", "3:abc"},
		{"chunked body", io.MultiReader(strings.NewReader("ab"), strings.NewReader("cd")), -1, "", "-1:abcd"},
		{"large body both ways", bytes.NewReader(large), int64(len(large)), "", fmt.Sprintf("%d:%s", len(large), large)},
		{"expect 100-continue", strings.NewReader("xyz"), 3, "100-continue", "3:xyz"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, base+"/", io.NopCloser(tc.body))
			req.ContentLength = tc.n
			if tc.hdr != "" {
				req.Header.Set("Expect", tc.hdr)
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(body) != tc.want {
				t.Errorf("%d, body of %d bytes (want %d)", resp.StatusCode, len(body), len(tc.want))
			}
		})
	}
	t.Run("upgrade", func(t *testing.T) {
		conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(conn, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != 101 {
			t.Fatalf("%v %v", resp, err)
		}
		io.WriteString(conn, "ping")
		got := make([]byte, 4)
		if _, err := io.ReadFull(br, got); err != nil || string(got) != "ping" {
			t.Fatalf("echo %q %v", got, err)
		}
	})
}

// oneShotBackend answers one request per connection, then closes it
// without saying so (as a target with a short keep-alive timeout does).
func oneShotBackend(t *testing.T) (Target, *atomic.Int64) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var conns atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer c.Close()
				r, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: "+fmt.Sprint(len(r.Method))+"\r\n\r\n"+r.Method)
			}()
		}
	}()
	a := ln.Addr().(*net.TCPAddr)
	return Target{ID: "127.0.0.1", Port: a.Port}, &conns
}

// A keep-alive connection the target closed while idle costs nothing:
// a replayable request is sent again on a new connection, and one that is
// not (POST) is not sent on a connection found closed.
func TestFastPathStaleConnection(t *testing.T) {
	tgt, conns := oneShotBackend(t)
	e := newTestEngine(t, Options{})
	tg := httpTG("tg", tgt)
	tg.HealthCheck.Enabled = false
	mustApply(t, e, alb(Listener{DefaultActions: forward("tg")}, tg))
	base := listenerURL(t, e, "listener/app/lb/1")
	for i, method := range []string{"GET", "GET", "POST", "HEAD", "POST", "DELETE", "GET"} {
		time.Sleep(20 * time.Millisecond) // the target's close has arrived
		req, _ := http.NewRequest(method, base+"/", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || (method != "HEAD" && string(body) != method) {
			t.Fatalf("#%d %s: %d %q", i, method, resp.StatusCode, body)
		}
	}
	if conns.Load() != 7 {
		t.Errorf("%d target connections for 7 requests", conns.Load())
	}
}

// A client that goes away aborts its request to the target; the idle
// timeout bounds the wait for headers only, not a slow body; a target that
// fails mid-body cuts the client's response instead of ending it cleanly.
func TestFastPathAborts(t *testing.T) {
	targetSawCancel := make(chan struct{}, 1)
	base, _ := fastALB(t, Options{IdleTimeout: 300 * time.Millisecond}, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/hang":
			io.WriteString(w, "x")
			w.(http.Flusher).Flush()
			<-r.Context().Done()
			targetSawCancel <- struct{}{}
		case "/slow-body":
			w.WriteHeader(200)
			w.(http.Flusher).Flush()
			time.Sleep(600 * time.Millisecond)
			io.WriteString(w, "done")
		case "/cut-length", "/cut-chunked":
			c, brw, _ := http.NewResponseController(w).Hijack()
			if r.URL.Path == "/cut-length" {
				brw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
			} else {
				brw.WriteString("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n7\r\npartial\r\n")
			}
			brw.Flush()
			time.Sleep(20 * time.Millisecond)
			c.(*net.TCPConn).SetLinger(0)
			c.Close()
		}
	})
	t.Run("client gone", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "GET", base+"/hang", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		cancel()
		resp.Body.Close()
		select {
		case <-targetSawCancel:
		case <-time.After(5 * time.Second):
			t.Fatal("the target's request outlived the client")
		}
	})
	t.Run("slow body outlives idle timeout", func(t *testing.T) {
		if resp, body := get(t, http.DefaultClient, base+"/slow-body"); resp.StatusCode != 200 || body != "done" {
			t.Fatalf("%d %q", resp.StatusCode, body)
		}
	})
	for _, path := range []string{"/cut-length", "/cut-chunked"} {
		t.Run(path, func(t *testing.T) {
			resp, err := http.Get(base + path)
			if err != nil {
				return // cut before the head: fine too
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil {
				t.Fatalf("truncated body %q passed off as whole", body)
			}
		})
	}
}

// Many clients at once share a bounded pool of target connections (run
// with -race).
func TestFastPathConcurrent(t *testing.T) {
	var mu sync.Mutex
	conns := map[string]bool{}
	e := newTestEngine(t, Options{MaxIdleConnsPerTarget: 4})
	var bs []*backend
	var targets []Target
	for _, name := range []string{"a", "b"} {
		b := newBackend(t, name, func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			conns[r.RemoteAddr] = true
			mu.Unlock()
			io.WriteString(w, r.URL.Path)
		})
		bs = append(bs, b)
		targets = append(targets, b.target())
	}
	tg := httpTG("tg", targets...)
	tg.HealthCheck.Enabled = false
	tg.Algorithm = AlgorithmLeastOutstandingRequests
	mustApply(t, e, alb(Listener{DefaultActions: forward("tg")}, tg))
	base := listenerURL(t, e, "listener/app/lb/1")
	tr := &http.Transport{MaxIdleConnsPerHost: 8}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				p := fmt.Sprintf("/%d/%d", g, i)
				resp, body := get(t, c, base+p)
				if resp.StatusCode != 200 || body != p {
					t.Errorf("%s: %d %q", p, resp.StatusCode, body)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := bs[0].count() + bs[1].count(); n != 400 {
		t.Errorf("targets got %d requests, want 400", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(conns) > 40 {
		t.Errorf("400 requests from 8 clients used %d target connections", len(conns))
	}
}

func TestConnPool(t *testing.T) {
	newConn := func() (*fastConn, net.Conn) {
		a, b := net.Pipe()
		return newFastConn(a), b
	}
	closed := func(peer net.Conn) bool {
		peer.SetReadDeadline(time.Now().Add(time.Second))
		_, err := peer.Read(make([]byte, 1))
		return err == io.EOF
	}
	var p connPool
	p.init(1)
	now := time.Now()
	if c, err := p.get(now); c != nil || err != nil {
		t.Fatalf("empty pool: %v %v", c, err)
	}
	c1, peer1 := newConn()
	c2, peer2 := newConn()
	p.add(c1)
	p.add(c2)
	p.put(c1, true)
	p.put(c2, true) // over max: closed
	if !closed(peer2) {
		t.Error("connection over the idle limit kept")
	}
	if c, _ := p.get(now); c != c1 {
		t.Fatal("idle connection not reused")
	}
	p.put(c1, false)
	if !closed(peer1) {
		t.Error("unreusable connection kept")
	}
	c3, peer3 := newConn()
	p.add(c3)
	p.put(c3, true)
	if c, _ := p.get(now.Add(targetIdleConnTimeout + time.Second)); c != nil || !closed(peer3) {
		t.Error("connection idle too long reused")
	}
	c4, peer4 := newConn()
	p.add(c4)
	p.close() // aborts the busy one
	if !closed(peer4) {
		t.Error("busy connection survived close")
	}
	p.put(c4, true)
	if _, err := p.get(now); err != errTargetGone {
		t.Errorf("get after close: %v", err)
	}
	if c5, _ := newConn(); p.add(c5) != errTargetGone {
		t.Error("add after close succeeded")
	}
}

func TestTraceID(t *testing.T) {
	id := newTraceID(time.Unix(0x5759e988, 0))
	if !regexp.MustCompile(`^Root=1-5759e988-[0-9a-f]{24}$`).MatchString(id) || id == newTraceID(time.Unix(0x5759e988, 0)) {
		t.Errorf("trace id %q", id)
	}
}
