package lbproxy

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// deadTarget is a loopback address and port nothing listens on.
func deadTarget(t *testing.T) Target {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return Target{ID: "127.0.0.1", Port: port}
}

// A target that refuses connections (its task died, the health check has
// not noticed yet) costs clients nothing: requests without a body and new
// NLB flows go to another target, and the dead one is avoided afterwards.
func TestConnectFailureGoesElsewhere(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, e *Engine, live, dead Target) (answered map[string]int)
	}{
		{"alb", func(t *testing.T, e *Engine, live, dead Target) map[string]int {
			tg := httpTG("tg", live, dead)
			tg.HealthCheck.Enabled = false // both count as healthy: only the connect fails
			mustApply(t, e, alb(Listener{DefaultActions: forward("tg")}, tg))
			base := listenerURL(t, e, "listener/app/lb/1")
			got := map[string]int{}
			for range 20 {
				resp, body := get(t, http.DefaultClient, base+"/")
				got[resp.Status+" "+body]++
			}
			return got
		}},
		{"nlb", func(t *testing.T, e *Engine, live, dead Target) map[string]int {
			tg := tcpTG("tg", live, dead)
			tg.HealthCheck.Enabled = false
			mustApply(t, e, nlb(Listener{DefaultActions: forward("tg")}, tg))
			addr := e.ListenerAddrs("listener/net/lb/1")[0].String()
			got := map[string]int{}
			for range 20 {
				name, echo := roundTrip(t, addr, "ping")
				got[name+" "+echo]++
			}
			return got
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dead := deadTarget(t)
			var deadDials atomic.Int64
			e := newTestEngine(t, Options{Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
				if addr == net.JoinHostPort(dead.ID, strconv.Itoa(dead.Port)) {
					deadDials.Add(1)
				}
				return loopDialer(ctx, network, addr)
			}})
			var live Target
			want := ""
			if tc.name == "alb" {
				b := newBackend(t, "live", nil)
				live, want = b.target(), "200 OK live"
			} else {
				live, want = newEchoServer(t, "live").target(), "live ping"
			}
			got := tc.run(t, e, live, dead)
			if len(got) != 1 || got[want] != 20 {
				t.Fatalf("answers %v, want 20 × %q", got, want)
			}
			// The dead target is shunned after its first refusal.
			if n := deadDials.Load(); n > 1 {
				t.Errorf("%d connects to the dead target, want at most 1", n)
			}
		})
	}
}

// A request with a body is not re-sent after a failed connect (it may have
// been consumed); it gets ALB's 502.
func TestConnectFailureWithBodyIs502(t *testing.T) {
	e := newTestEngine(t, Options{})
	tg := httpTG("tg", deadTarget(t))
	tg.HealthCheck.Enabled = false
	mustApply(t, e, alb(Listener{DefaultActions: forward("tg")}, tg))
	resp, err := http.Post(listenerURL(t, e, "listener/app/lb/1")+"/", "text/plain", strings.NewReader("body"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("status %d, want 502", resp.StatusCode)
	}
}

// A target that resets the connection before answering: an idempotent
// request goes to another target, a POST gets ALB's 502.
func TestResetBeforeAnswer(t *testing.T) {
	e := newTestEngine(t, Options{})
	reset := newBackend(t, "reset", func(w http.ResponseWriter, r *http.Request) {
		c, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		_ = c.(*net.TCPConn).SetLinger(0)
		c.Close()
	})
	live := newBackend(t, "live", nil)
	tg := httpTG("tg", reset.target(), live.target())
	tg.HealthCheck.Enabled = false
	mustApply(t, e, alb(Listener{DefaultActions: forward("tg")}, tg))
	base := listenerURL(t, e, "listener/app/lb/1")
	for i := range 6 {
		resp, body := get(t, http.DefaultClient, base+"/")
		if resp.StatusCode != http.StatusOK || body != "live" {
			t.Fatalf("GET #%d: %s %q", i, resp.Status, body)
		}
	}
	if reset.count() > 1 {
		t.Errorf("the resetting target got %d requests after its first reset", reset.count())
	}
	// POST is not idempotent: once the shun lapses it may reach the
	// resetting target, and then it is not re-sent.
	e2 := newTestEngine(t, Options{})
	tg2 := httpTG("tg", reset.target())
	tg2.HealthCheck.Enabled = false
	mustApply(t, e2, alb(Listener{DefaultActions: forward("tg")}, tg2))
	req, _ := http.NewRequest(http.MethodPost, listenerURL(t, e2, "listener/app/lb/1")+"/", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("POST to a resetting target: %d, want 502", resp.StatusCode)
	}
}
