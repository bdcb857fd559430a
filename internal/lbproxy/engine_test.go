package lbproxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestALBDraining(t *testing.T) {
	for _, tc := range []struct {
		name      string
		delay     time.Duration
		finishes  bool // the in-flight request completes
		holdUntil func(release chan struct{})
	}{
		{name: "in-flight request finishes", delay: 10 * time.Second, finishes: true},
		{name: "delay cuts a long request", delay: 300 * time.Millisecond, finishes: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEngine(t, Options{})
			release := make(chan struct{})
			entered := make(chan struct{}, 1)
			a := newBackend(t, "a", func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/long" {
					entered <- struct{}{}
					select {
					case <-release:
					case <-r.Context().Done():
						return
					}
				}
				w.Write([]byte("a"))
			})
			b := newBackend(t, "b", nil)
			tg := httpTG("tg", a.target())
			tg.DeregistrationDelay = tc.delay
			l := Listener{DefaultActions: forward("tg")}
			mustApply(t, e, alb(l, tg))
			waitHealthy(t, e, "tg", a)
			base := listenerURL(t, e, "listener/app/lb/1")

			type result struct {
				code int
				body string
				err  error
			}
			done := make(chan result, 1)
			go func() {
				resp, err := http.Get(base + "/long")
				if err != nil {
					done <- result{err: err}
					return
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				done <- result{resp.StatusCode, string(body), err}
			}()
			<-entered

			tg.Targets = []Target{b.target()}
			mustApply(t, e, alb(l, tg))
			if s, _ := stateOf(e, "tg", a.ip, a.port); s.State != StateDraining || s.Reason != ReasonDeregistrationInProgress {
				t.Errorf("removed target: %+v", s)
			}
			for range 5 {
				if resp, body := get(t, http.DefaultClient, base+"/"); resp.StatusCode != 200 || body != "b" {
					t.Fatalf("new request during drain: %d %q", resp.StatusCode, body)
				}
			}
			if tc.finishes {
				close(release)
				r := <-done
				if r.err != nil || r.code != 200 || r.body != "a" {
					t.Errorf("in-flight request: %+v", r)
				}
			} else {
				r := <-done // cut by the delay: 502 (or a broken response)
				if r.err == nil && r.code == 200 {
					t.Errorf("in-flight request survived the delay: %+v", r)
				}
				close(release)
			}
			waitFor(t, "drained target gone", func() bool { _, ok := stateOf(e, "tg", a.ip, a.port); return !ok })
		})
	}
}

// TestApplyKeepsServing runs a request loop while configurations change:
// rules, target groups, targets and listeners come and go.
func TestApplyKeepsServing(t *testing.T) {
	e := newTestEngine(t, Options{})
	var bs []*backend
	for _, n := range []string{"a", "b", "c", "d"} {
		bs = append(bs, newBackend(t, n, nil))
	}
	configs := []LoadBalancer{
		alb(Listener{DefaultActions: forward("tg1")}, httpTG("tg1", bs[0].target(), bs[1].target())),
		alb(Listener{DefaultActions: forward("tg1"), Rules: []Rule{
			{ARN: "r", Priority: 1, Conditions: []Condition{{Field: FieldPathPattern, Values: []string{"/*"}}}, Actions: forward("tg2")}}},
			httpTG("tg1", bs[0].target(), bs[1].target()), httpTG("tg2", bs[2].target())),
		alb(Listener{DefaultActions: forward("tg2", "tg3")}, httpTG("tg2", bs[2].target(), bs[3].target()), httpTG("tg3", bs[0].target())),
		alb(Listener{DefaultActions: forward("tg1")}, httpTG("tg1", bs[3].target())),
	}
	// A second listener appears and disappears meanwhile.
	withExtra := func(lb LoadBalancer) LoadBalancer {
		lb.Listeners = append(lb.Listeners, Listener{ARN: "listener/app/lb/extra", Protocol: ProtocolHTTP,
			DefaultActions: []Action{{Type: ActionFixedResponse, FixedResponse: &FixedResponse{StatusCode: "200"}}}})
		return lb
	}
	mustApply(t, e, configs[0])
	base := listenerURL(t, e, "listener/app/lb/1")

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var n, failures atomic.Int64
	var firstErr atomic.Value
	for range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				resp, err := http.Get(base + "/x")
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						err = errors.New(resp.Status)
					}
				}
				n.Add(1)
				if err != nil {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
			}
		})
	}
	for round := range 12 {
		cfg := configs[round%len(configs)]
		if round%2 == 1 {
			cfg = withExtra(cfg)
		}
		mustApply(t, e, cfg)
		time.Sleep(30 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	if failures.Load() > 0 {
		t.Errorf("%d of %d requests failed during Apply; first: %v", failures.Load(), n.Load(), firstErr.Load())
	}
	t.Logf("%d requests during 12 Apply calls", n.Load())
}

func TestApplyListenerLifecycle(t *testing.T) {
	e := newTestEngine(t, Options{})
	fixed := []Action{{Type: ActionFixedResponse, FixedResponse: &FixedResponse{StatusCode: "200", MessageBody: "one"}}}
	lb := alb(Listener{DefaultActions: fixed})
	mustApply(t, e, lb)
	base := listenerURL(t, e, "listener/app/lb/1")
	addr := strings.TrimPrefix(base, "http://")

	// Changing the rules keeps the socket.
	lb.Listeners[0].DefaultActions[0].FixedResponse = &FixedResponse{StatusCode: "200", MessageBody: "two"}
	mustApply(t, e, lb)
	if got := listenerURL(t, e, "listener/app/lb/1"); got != base {
		t.Errorf("listener moved from %s to %s", base, got)
	}
	if _, body := get(t, http.DefaultClient, base+"/"); body != "two" {
		t.Errorf("body %q after the rule change", body)
	}

	// A bad configuration changes nothing.
	bad := lb
	bad.Listeners = []Listener{{ARN: "l2", Protocol: ProtocolHTTP, DefaultActions: forward("missing")}}
	if err := e.Apply([]LoadBalancer{bad}); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("Apply(bad) = %v", err)
	}
	// A port in use fails the whole Apply, and nothing changes.
	busy, _ := net.Listen("tcp", "127.0.0.1:0")
	defer busy.Close()
	clash := lb
	clash.Listeners = append([]Listener{}, lb.Listeners...)
	clash.Listeners = append(clash.Listeners, Listener{ARN: "l3", Protocol: ProtocolHTTP, Port: busy.Addr().(*net.TCPAddr).Port, DefaultActions: fixed})
	if err := e.Apply([]LoadBalancer{clash}); err == nil {
		t.Error("Apply with a port in use succeeded")
	}
	if e.ListenerAddrs("l3") != nil {
		t.Error("half-applied listener l3 is running")
	}
	if _, body := get(t, http.DefaultClient, base+"/"); body != "two" {
		t.Errorf("body %q after failed Applies", body)
	}

	// Removing the listener stops accepting.
	mustApply(t, e)
	if e.ListenerAddrs("listener/app/lb/1") != nil {
		t.Error("removed listener still reported")
	}
	waitFor(t, "socket closed", func() bool {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return true
		}
		c.Close()
		return false
	})
}

func TestCloseStopsEverything(t *testing.T) {
	e := newTestEngine(t, Options{})
	b := newBackend(t, "b", nil)
	a := newEchoServer(t, "a")
	mustApply(t, e, alb(Listener{DefaultActions: forward("tg")}, httpTG("tg", b.target())),
		LoadBalancer{ARN: "n", Type: TypeNetwork, Listeners: []Listener{{ARN: "nl", Protocol: ProtocolTCP, DefaultActions: forward("tcp")}},
			TargetGroups: []TargetGroup{tcpTG("tcp", a.target())}})
	c, err := net.Dial("tcp", e.ListenerAddrs("nl")[0].String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	c.Read(make([]byte, 2))
	done := make(chan struct{})
	go func() { e.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
	if err := e.Apply(nil); err == nil {
		t.Error("Apply after Close succeeded")
	}
}
