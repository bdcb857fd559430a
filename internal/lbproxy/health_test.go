package lbproxy

import (
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestHealthTransitions(t *testing.T) {
	var code atomic.Int32
	code.Store(200)
	var stall atomic.Bool
	stop := make(chan struct{})
	defer close(stop)
	b := newBackend(t, "b", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/health" {
			return
		}
		if stall.Load() {
			select {
			case <-stop:
			case <-r.Context().Done():
			}
			return
		}
		w.WriteHeader(int(code.Load()))
	})
	var mu sync.Mutex
	var seen []string
	e := newTestEngine(t, Options{OnHealthChange: func(arn string, ts []TargetStatus) {
		mu.Lock()
		defer mu.Unlock()
		for _, s := range ts {
			if len(seen) == 0 || seen[len(seen)-1] != s.State+"/"+s.Reason {
				seen = append(seen, s.State+"/"+s.Reason)
			}
		}
	}})
	tg := httpTG("tg", b.target())
	tg.HealthCheck = HealthCheck{Enabled: true, Path: "/health", Interval: 30 * time.Millisecond, Timeout: 100 * time.Millisecond,
		HealthyThreshold: 3, UnhealthyThreshold: 2, Matcher: "200-299"}
	mustApply(t, e, alb(Listener{DefaultActions: forward("tg")}, tg))

	s, _ := stateOf(e, "tg", b.ip, b.port)
	if s.State != StateInitial {
		t.Errorf("new target: %+v", s)
	}
	waitFor(t, "initial → healthy", func() bool { s, _ := stateOf(e, "tg", b.ip, b.port); return s.State == StateHealthy })

	code.Store(500)
	waitFor(t, "healthy → unhealthy (code)", func() bool {
		s, _ := stateOf(e, "tg", b.ip, b.port)
		return s.State == StateUnhealthy && s.Reason == ReasonResponseCodeMismatch
	})
	s, _ = stateOf(e, "tg", b.ip, b.port)
	if s.Description != "Health checks failed with these codes: [500]" {
		t.Errorf("description %q", s.Description)
	}
	stall.Store(true)
	waitFor(t, "reason Target.Timeout", func() bool {
		s, _ := stateOf(e, "tg", b.ip, b.port)
		return s.State == StateUnhealthy && s.Reason == ReasonTimeout
	})
	stall.Store(false)
	code.Store(204)
	waitFor(t, "unhealthy → healthy", func() bool { s, _ := stateOf(e, "tg", b.ip, b.port); return s.State == StateHealthy })

	mu.Lock()
	defer mu.Unlock()
	// Reports are coalesced: the first check may start before the first
	// report is sent, so "registration in progress" may not be seen.
	if len(seen) > 0 && seen[0] == StateInitial+"/"+ReasonRegistrationInProgress {
		seen = seen[1:]
	}
	want := []string{StateInitial + "/" + ReasonInitialHealthChecking, StateHealthy + "/",
		StateUnhealthy + "/" + ReasonResponseCodeMismatch, StateUnhealthy + "/" + ReasonTimeout, StateHealthy + "/"}
	if len(seen) != len(want) {
		t.Fatalf("OnHealthChange saw %v, want %v", seen, want)
	}
	for i := range want {
		if seen[i] != want[i] {
			t.Errorf("OnHealthChange saw %v, want %v", seen, want)
			break
		}
	}
}

func TestHealthFailedChecksAndFailOpen(t *testing.T) {
	e := newTestEngine(t, Options{})
	// Targets answer traffic but fail health checks (404 on /health,
	// and one checked on a port nobody listens on).
	a := newBackend(t, "a", nil)
	bad := newBackend(t, "bad", func(w http.ResponseWriter, r *http.Request) {
		if r.UserAgent() == healthUserAgent {
			w.WriteHeader(404)
			return
		}
		w.Write([]byte("bad"))
	})
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	deadPort := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	tgA := httpTG("tg-a", a.target())
	tgA.HealthCheck.Port = strconv.Itoa(deadPort)
	tgBad := httpTG("tg-bad", bad.target())
	mustApply(t, e, alb(Listener{DefaultActions: forward("tg-a"), Rules: []Rule{
		{ARN: "r", Priority: 1, Conditions: []Condition{{Field: FieldPathPattern, Values: []string{"/bad"}}}, Actions: forward("tg-bad")},
	}}, tgA, tgBad))
	waitFor(t, "a unhealthy (connection refused)", func() bool {
		s, _ := stateOf(e, "tg-a", a.ip, a.port)
		return s.State == StateUnhealthy && s.Reason == ReasonFailedHealthChecks
	})
	waitFor(t, "bad unhealthy (404)", func() bool {
		s, _ := stateOf(e, "tg-bad", bad.ip, bad.port)
		return s.State == StateUnhealthy && s.Reason == ReasonResponseCodeMismatch
	})
	base := listenerURL(t, e, "listener/app/lb/1")
	// Fail open: every target unhealthy, traffic still flows.
	if resp, body := get(t, http.DefaultClient, base+"/"); resp.StatusCode != 200 || body != "a" {
		t.Errorf("fail open: %d %q", resp.StatusCode, body)
	}
	if resp, body := get(t, http.DefaultClient, base+"/bad"); resp.StatusCode != 200 || body != "bad" {
		t.Errorf("fail open: %d %q", resp.StatusCode, body)
	}

	// With a healthy target next to the unhealthy one, only it gets traffic.
	good := newBackend(t, "good", nil)
	tgBad.Targets = append(tgBad.Targets, good.target())
	mustApply(t, e, alb(Listener{DefaultActions: forward("tg-a"), Rules: []Rule{
		{ARN: "r", Priority: 1, Conditions: []Condition{{Field: FieldPathPattern, Values: []string{"/bad"}}}, Actions: forward("tg-bad")},
	}}, tgA, tgBad))
	waitHealthy(t, e, "tg-bad", good)
	for range 10 {
		if _, body := get(t, http.DefaultClient, base+"/bad"); body != "good" {
			t.Fatalf("request went to the unhealthy target: %q", body)
		}
	}
}

func TestHealthTCP(t *testing.T) {
	e := newTestEngine(t, Options{})
	echo := newEchoServer(t, "e")
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	deadPort := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	tg := tcpTG("tg", echo.target(), Target{ID: "127.0.0.1", Port: deadPort})
	mustApply(t, e, nlb(Listener{DefaultActions: forward("tg")}, tg))
	waitFor(t, "tcp checks", func() bool {
		s1, _ := stateOf(e, "tg", "127.0.0.1", echo.port)
		s2, _ := stateOf(e, "tg", "127.0.0.1", deadPort)
		return s1.State == StateHealthy && s2.State == StateUnhealthy && s2.Reason == ReasonFailedHealthChecks
	})
}
