package lbproxy

import (
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestALBRules(t *testing.T) {
	e := newTestEngine(t, Options{})
	api := newBackend(t, "api", nil)
	web := newBackend(t, "web", nil)
	fixed := func(body string) []Action {
		return []Action{{Type: ActionFixedResponse, FixedResponse: &FixedResponse{StatusCode: "200", MessageBody: body}}}
	}
	l := Listener{
		DefaultActions: []Action{{Type: ActionFixedResponse, FixedResponse: &FixedResponse{StatusCode: "404", ContentType: "text/plain", MessageBody: "no route"}}},
		Rules: []Rule{
			// Listed out of order: priority decides.
			{ARN: "r-web", Priority: 20, Conditions: []Condition{{Field: FieldHostHeader, Values: []string{"*.example.com"}}}, Actions: forward("tg-web")},
			{ARN: "r-api", Priority: 10, Conditions: []Condition{{Field: FieldPathPattern, Values: []string{"/api/*"}}}, Actions: forward("tg-api")},
			{ARN: "r-both", Priority: 5, Conditions: []Condition{
				{Field: FieldPathPattern, Values: []string{"/api/*"}},
				{Field: FieldHTTPHeader, HTTPHeaderName: "X-Canary", Values: []string{"yes"}},
			}, Actions: fixed("canary")},
			{ARN: "r-method", Priority: 30, Conditions: []Condition{{Field: FieldHTTPRequestMethod, Values: []string{"DELETE"}}}, Actions: fixed("delete")},
			{ARN: "r-query", Priority: 40, Conditions: []Condition{{Field: FieldQueryString, QueryString: []KeyValue{{Key: "v", Value: "2"}}}}, Actions: fixed("v2")},
			{ARN: "r-src", Priority: 50, Conditions: []Condition{{Field: FieldSourceIP, SourceIP: []string{"127.0.0.0/8"}}}, Actions: fixed("loopback")},
			{ARN: "r-redirect", Priority: 1, Conditions: []Condition{{Field: FieldPathPattern, Values: []string{"/old/*"}}},
				Actions: []Action{{Type: ActionRedirect, Redirect: &Redirect{Path: "/new/#{path}", Query: "from=#{host}", StatusCode: "HTTP_301"}}}},
		},
	}
	mustApply(t, e, alb(l, httpTG("tg-api", api.target()), httpTG("tg-web", web.target())))
	base := listenerURL(t, e, "listener/app/lb/1")
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	for _, tc := range []struct {
		name, method, path string
		hdr                []string
		code               int
		body               string
	}{
		{"path rule", "GET", "/api/users", nil, 200, "api"},
		{"priority: both conditions", "GET", "/api/users", []string{"X-Canary", "yes"}, 200, "canary"},
		{"host rule", "GET", "/x", []string{"Host", "www.example.com"}, 200, "web"},
		{"path beats host by priority", "GET", "/api/x", []string{"Host", "www.example.com"}, 200, "api"},
		{"method", "DELETE", "/x", nil, 200, "delete"},
		{"query", "GET", "/x?v=2", nil, 200, "v2"},
		{"source ip", "GET", "/x", nil, 200, "loopback"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, base+tc.path, nil)
			for i := 0; i+1 < len(tc.hdr); i += 2 {
				if tc.hdr[i] == "Host" {
					req.Host = tc.hdr[i+1]
				} else {
					req.Header.Set(tc.hdr[i], tc.hdr[i+1])
				}
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			buf := new(strings.Builder)
			_, _ = bufCopy(buf, resp)
			if resp.StatusCode != tc.code || buf.String() != tc.body {
				t.Errorf("got %d %q, want %d %q", resp.StatusCode, buf.String(), tc.code, tc.body)
			}
		})
	}

	resp, _ := get(t, c, base+"/old/a/b?x=1", "Host", "shop.example.org")
	if resp.StatusCode != 301 {
		t.Fatalf("redirect: status %d", resp.StatusCode)
	}
	if loc := resp.Header.Get("Location"); loc != "http://shop.example.org:"+strings.Split(base, ":")[2]+"/new/old/a/b?from=shop.example.org" {
		t.Errorf("redirect Location = %q", loc)
	}

	// Without the source-ip rule, the default fixed response answers.
	l.Rules = l.Rules[:len(l.Rules)-2]
	l.Rules = append(l.Rules, Rule{ARN: "r-redirect", Priority: 1, Conditions: []Condition{{Field: FieldPathPattern, Values: []string{"/old/*"}}},
		Actions: []Action{{Type: ActionRedirect, Redirect: &Redirect{StatusCode: "HTTP_302"}}}})
	mustApply(t, e, alb(l, httpTG("tg-api", api.target()), httpTG("tg-web", web.target())))
	resp, body := get(t, c, base+"/nothing")
	if resp.StatusCode != 404 || body != "no route" || resp.Header.Get("Server") != "awselb/2.0" {
		t.Errorf("default: %d %q %v", resp.StatusCode, body, resp.Header)
	}
}

func bufCopy(sb *strings.Builder, resp *http.Response) (int64, error) {
	defer resp.Body.Close()
	b := make([]byte, 4096)
	var n int64
	for {
		k, err := resp.Body.Read(b)
		sb.Write(b[:k])
		n += int64(k)
		if err != nil {
			return n, nil
		}
	}
}

func TestALBWeightedForward(t *testing.T) {
	e := newTestEngine(t, Options{})
	a := newBackend(t, "a", nil)
	b := newBackend(t, "b", nil)
	l := Listener{DefaultActions: []Action{{Type: ActionForward, Forward: &ForwardConfig{TargetGroups: []WeightedTargetGroup{
		{ARN: "tg-a", Weight: 1}, {ARN: "tg-b", Weight: 3}}}}}}
	mustApply(t, e, alb(l, httpTG("tg-a", a.target()), httpTG("tg-b", b.target())))
	waitHealthy(t, e, "tg-a", a)
	waitHealthy(t, e, "tg-b", b)
	base := listenerURL(t, e, "listener/app/lb/1")
	const n = 800
	for range n {
		get(t, http.DefaultClient, base+"/")
	}
	// Expect 200 / 600; allow wide bounds.
	if ca := a.count(); ca < 120 || ca > 290 {
		t.Errorf("weight 1 of 4 got %d of %d requests (b got %d)", ca, n, b.count())
	}
}

func TestALBRoundRobin(t *testing.T) {
	e := newTestEngine(t, Options{})
	var bs []*backend
	var targets []Target
	for _, name := range []string{"a", "b", "c"} {
		b := newBackend(t, name, nil)
		bs = append(bs, b)
		targets = append(targets, b.target())
	}
	mustApply(t, e, alb(Listener{DefaultActions: forward("tg")}, httpTG("tg", targets...)))
	waitHealthy(t, e, "tg", bs...)
	base := listenerURL(t, e, "listener/app/lb/1")
	for range 30 {
		get(t, http.DefaultClient, base+"/")
	}
	for _, b := range bs {
		if c := b.count(); c < 8 || c > 12 {
			t.Errorf("round robin: %s got %d of 30", b.name, c)
		}
	}
}

func TestALBLeastOutstandingRequests(t *testing.T) {
	e := newTestEngine(t, Options{})
	release := make(chan struct{})
	entered := make(chan string, 1)
	slow := func(name string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/slow" {
				entered <- name
				<-release
			}
			w.Write([]byte(name))
		}
	}
	a := newBackend(t, "a", slow("a"))
	b := newBackend(t, "b", slow("b"))
	tg := httpTG("tg", a.target(), b.target())
	tg.Algorithm = AlgorithmLeastOutstandingRequests
	mustApply(t, e, alb(Listener{DefaultActions: forward("tg")}, tg))
	waitHealthy(t, e, "tg", a, b)
	base := listenerURL(t, e, "listener/app/lb/1")

	done := make(chan struct{})
	go func() {
		defer close(done)
		resp, err := http.Get(base + "/slow")
		if err == nil {
			resp.Body.Close()
		}
	}()
	busy := <-entered
	for range 10 {
		_, body := get(t, http.DefaultClient, base+"/fast")
		if body == busy {
			t.Errorf("request went to %s, which has one outstanding request", busy)
		}
	}
	close(release)
	<-done
}

func TestALBErrors(t *testing.T) {
	e := newTestEngine(t, Options{IdleTimeout: 300 * time.Millisecond})
	// A port with nothing listening: connection refused.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	refused := ln.Addr().(*net.TCPAddr)
	ln.Close()
	reset := newBackend(t, "reset", func(w http.ResponseWriter, r *http.Request) {
		c, _, _ := http.NewResponseController(w).Hijack()
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
	})
	stall := make(chan struct{})
	defer close(stall)
	slow := newBackend(t, "slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-stall:
		case <-r.Context().Done():
		}
	})
	noHC := func(tg TargetGroup) TargetGroup { tg.HealthCheck.Enabled = false; return tg }
	l := Listener{DefaultActions: forward("tg-empty"), Rules: []Rule{
		{ARN: "1", Priority: 1, Conditions: []Condition{{Field: FieldPathPattern, Values: []string{"/refused"}}}, Actions: forward("tg-refused")},
		{ARN: "2", Priority: 2, Conditions: []Condition{{Field: FieldPathPattern, Values: []string{"/reset"}}}, Actions: forward("tg-reset")},
		{ARN: "3", Priority: 3, Conditions: []Condition{{Field: FieldPathPattern, Values: []string{"/slow"}}}, Actions: forward("tg-slow")},
	}}
	mustApply(t, e, alb(l,
		httpTG("tg-empty"),
		noHC(httpTG("tg-refused", Target{ID: "127.0.0.1", Port: refused.Port})),
		noHC(httpTG("tg-reset", reset.target())),
		noHC(httpTG("tg-slow", slow.target())),
	))
	base := listenerURL(t, e, "listener/app/lb/1")
	for _, tc := range []struct {
		path string
		code int
	}{
		{"/", 503}, {"/refused", 502}, {"/reset", 502}, {"/slow", 504},
	} {
		t.Run(tc.path, func(t *testing.T) {
			resp, body := get(t, http.DefaultClient, base+tc.path)
			if resp.StatusCode != tc.code {
				t.Fatalf("status %d, want %d (%s)", resp.StatusCode, tc.code, body)
			}
			if want := errorPage(tc.code); body != want {
				t.Errorf("body %q, want %q", body, want)
			}
			if resp.Header.Get("Server") != "awselb/2.0" || resp.Header.Get("Content-Type") != "text/html" {
				t.Errorf("headers %v", resp.Header)
			}
		})
	}
	if !strings.Contains(errorPage(502), "<title>502 Bad Gateway</title>") {
		t.Error(errorPage(502))
	}
}

func TestALBForwardedHeaders(t *testing.T) {
	e := newTestEngine(t, Options{})
	b := newBackend(t, "b", nil)
	mustApply(t, e, alb(Listener{DefaultActions: forward("tg")}, httpTG("tg", b.target())))
	base := listenerURL(t, e, "listener/app/lb/1")
	port := strings.Split(base, ":")[2]

	get(t, http.DefaultClient, base+"/p", "X-Forwarded-For", "203.0.113.9", "Host", "app.example.com", "X-Forwarded-Proto", "https")
	r := b.lastRequest()
	if got := r.Header.Get("X-Forwarded-For"); got != "203.0.113.9, 127.0.0.1" {
		t.Errorf("X-Forwarded-For = %q", got)
	}
	if got := r.Header.Get("X-Forwarded-Proto"); got != "http" {
		t.Errorf("X-Forwarded-Proto = %q", got)
	}
	if got := r.Header.Get("X-Forwarded-Port"); got != port {
		t.Errorf("X-Forwarded-Port = %q, want %s", got, port)
	}
	if r.Host != "app.example.com" {
		t.Errorf("Host = %q", r.Host)
	}
	if got := r.Header.Get("X-Amzn-Trace-Id"); !regexp.MustCompile(`^Root=1-[0-9a-f]{8}-[0-9a-f]{24}$`).MatchString(got) {
		t.Errorf("X-Amzn-Trace-Id = %q", got)
	}
	get(t, http.DefaultClient, base+"/p", "X-Amzn-Trace-Id", "Root=1-5759e988-bd862e3fe1be46a994272793")
	if got := b.lastRequest().Header.Get("X-Amzn-Trace-Id"); got != "Root=1-5759e988-bd862e3fe1be46a994272793" {
		t.Errorf("existing trace id replaced: %q", got)
	}
	if got := b.lastRequest().Header.Get("X-Forwarded-For"); got != "127.0.0.1" {
		t.Errorf("X-Forwarded-For without prior = %q", got)
	}
}

func TestALBKeepAlivePool(t *testing.T) {
	e := newTestEngine(t, Options{})
	var mu sync.Mutex
	conns := map[string]bool{}
	b := newBackend(t, "b", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		conns[r.RemoteAddr] = true
		mu.Unlock()
	})
	tg := httpTG("tg", b.target())
	tg.HealthCheck.Enabled = false
	mustApply(t, e, alb(Listener{DefaultActions: forward("tg")}, tg))
	base := listenerURL(t, e, "listener/app/lb/1")
	for range 20 {
		get(t, http.DefaultClient, base+"/")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(conns) > 2 {
		t.Errorf("20 sequential requests used %d target connections", len(conns))
	}
}
