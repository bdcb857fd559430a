package lbproxy

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// loopDialer dials loopback, as the agent's namespace dialer would dial the VPC.
func loopDialer(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func newTestEngine(t testing.TB, opts Options) *Engine {
	t.Helper()
	if opts.Dial == nil {
		opts.Dial = loopDialer
	}
	if opts.Logger == nil {
		if testing.Verbose() {
			opts.Logger = testLogger(t)
		} else {
			opts.Logger = slog.New(slog.DiscardHandler)
		}
	}
	e := New(opts)
	t.Cleanup(func() { _ = e.Close() })
	return e
}

// backend is an HTTP target that answers with its name.
type backend struct {
	name string
	srv  *httptest.Server
	ip   string
	port int
	mu   sync.Mutex
	hits int
	last *http.Request
}

func newBackend(t testing.TB, name string, h http.HandlerFunc) *backend {
	t.Helper()
	b := &backend{name: name}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.UserAgent() != healthUserAgent {
			b.mu.Lock()
			b.hits++
			b.last = r.Clone(context.Background())
			b.mu.Unlock()
		}
		w.Header().Set("X-Backend", name)
		if h != nil {
			h(w, r)
			return
		}
		fmt.Fprint(w, name)
	}))
	t.Cleanup(b.srv.Close)
	host, port, _ := net.SplitHostPort(b.srv.Listener.Addr().String())
	b.ip = host
	b.port, _ = strconv.Atoi(port)
	return b
}

func (b *backend) target() Target { return Target{ID: b.ip, Port: b.port} }

func (b *backend) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.hits
}

func (b *backend) lastRequest() *http.Request {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.last
}

// fastHC is a health check that makes targets healthy quickly.
func fastHC() HealthCheck {
	return HealthCheck{Enabled: true, Interval: 20 * time.Millisecond, Timeout: 200 * time.Millisecond,
		HealthyThreshold: 2, UnhealthyThreshold: 2}
}

func httpTG(arn string, targets ...Target) TargetGroup {
	return TargetGroup{ARN: arn, Protocol: ProtocolHTTP, Port: 80, Targets: targets, HealthCheck: fastHC(),
		DeregistrationDelay: 5 * time.Second}
}

func forward(arns ...string) []Action {
	f := &ForwardConfig{}
	for _, a := range arns {
		f.TargetGroups = append(f.TargetGroups, WeightedTargetGroup{ARN: a, Weight: 1})
	}
	return []Action{{Type: ActionForward, Forward: f}}
}

// alb is a one-listener ALB on 127.0.0.1:0.
func alb(listener Listener, tgs ...TargetGroup) LoadBalancer {
	if listener.ARN == "" {
		listener.ARN = "listener/app/lb/1"
	}
	listener.Protocol = ProtocolHTTP
	return LoadBalancer{ARN: "lb/app/1", Type: TypeApplication, Listeners: []Listener{listener}, TargetGroups: tgs}
}

func mustApply(t testing.TB, e *Engine, lbs ...LoadBalancer) {
	t.Helper()
	if err := e.Apply(lbs); err != nil {
		t.Fatalf("Apply: %v", err)
	}
}

// listenerURL is the base URL of a running HTTP listener.
func listenerURL(t testing.TB, e *Engine, arn string) string {
	t.Helper()
	addrs := e.ListenerAddrs(arn)
	if len(addrs) == 0 {
		t.Fatalf("listener %s not running", arn)
	}
	return "http://" + addrs[0].String()
}

func get(t testing.TB, c *http.Client, url string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("GET %s: read body: %v", url, err)
	}
	return resp, string(body)
}

// waitFor polls cond for up to 10 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func stateOf(e *Engine, tgARN, ip string, port int) (TargetStatus, bool) {
	for _, s := range e.TargetHealth()[tgARN] {
		if s.ID == ip && s.Port == port {
			return s, true
		}
	}
	return TargetStatus{}, false
}

func waitHealthy(t testing.TB, e *Engine, tgARN string, bs ...*backend) {
	t.Helper()
	for _, b := range bs {
		waitFor(t, b.name+" healthy", func() bool {
			s, _ := stateOf(e, tgARN, b.ip, b.port)
			return s.State == StateHealthy
		})
	}
}
