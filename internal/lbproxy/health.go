package lbproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Health checks: one goroutine per registered target, stopped when the
// target drains or the engine closes. The state machine, per target:
//
//	             HealthyThreshold successes
//	 initial ─────────────────────────────────► healthy
//	    │                                       │   ▲
//	    │ UnhealthyThreshold failures           │   │ HealthyThreshold
//	    ▼                                       ▼   │ successes
//	 unhealthy ◄──────────────────────────────────┘
//	             UnhealthyThreshold failures
//
// "initial" reports Elb.RegistrationInProgress until the first check has
// run, then Elb.InitialHealthChecking. An unhealthy target reports the
// reason of its last failure: Target.ResponseCodeMismatch (HTTP code not in
// the matcher), Target.Timeout (no answer within the timeout) or
// Target.FailedHealthChecks (connection refused, reset, bad response).

// healthUserAgent is the User-Agent of ALB's health checker.
const healthUserAgent = "ELB-HealthChecker/2.0"

// checkResult is one health check's outcome.
type checkResult struct {
	ok     bool
	reason string
	desc   string
}

func (tg *targetGroup) startHealthCheck(t *target) {
	tg.mu.Lock()
	start := tg.hc.Enabled && !t.checking && !t.draining
	t.checking = t.checking || start
	tg.mu.Unlock()
	if start {
		tg.e.wg.Go(func() { tg.healthLoop(t) })
	}
}

// healthLoop checks t until it drains, checks are turned off, or the
// engine closes; at most one runs per target (target.checking).
func (tg *targetGroup) healthLoop(t *target) {
	defer func() {
		tg.mu.Lock()
		t.checking = false
		tg.mu.Unlock()
	}()
	timer := time.NewTimer(0) // the first check runs at once
	defer timer.Stop()
	for {
		select {
		case <-t.ctx.Done():
			return
		case <-timer.C:
		}
		tg.mu.Lock()
		hc, matcher, draining, retired := tg.hc, tg.matcher, t.draining, tg.retired
		tg.mu.Unlock()
		if draining || retired || !hc.Enabled {
			return
		}
		res := tg.e.check(t.ctx, t, hc, matcher)
		if t.ctx.Err() != nil {
			return
		}
		tg.record(t, hc, res)
		timer.Reset(hc.Interval)
	}
}

// record applies one check result to t's state machine.
func (tg *targetGroup) record(t *target, hc HealthCheck, res checkResult) {
	tg.mu.Lock()
	if t.draining {
		tg.mu.Unlock()
		return
	}
	before := [3]string{t.state, t.reason, t.desc}
	if res.ok {
		t.okStreak++
		t.failStreak = 0
	} else {
		t.failStreak++
		t.okStreak = 0
	}
	switch {
	case res.ok && t.okStreak >= hc.HealthyThreshold:
		t.state, t.reason, t.desc = StateHealthy, "", ""
	case !res.ok && (t.failStreak >= hc.UnhealthyThreshold || t.state == StateUnhealthy):
		t.state, t.reason, t.desc = StateUnhealthy, res.reason, res.desc
	case t.state == StateInitial:
		t.reason, t.desc = ReasonInitialHealthChecking, "Initial health checking in progress"
	}
	after := [3]string{t.state, t.reason, t.desc}
	tg.mu.Unlock()
	if before != after {
		tg.e.log.Info("target health changed", "targetGroup", tg.arn, "target", t.addr,
			"state", after[0], "reason", after[1], "description", after[2])
		tg.e.healthChanged(tg.arn)
	}
}

// check runs one health check of t.
func (e *Engine) check(ctx context.Context, t *target, hc HealthCheck, matcher []codeRange) checkResult {
	addr := t.addr
	if hc.Port != "traffic-port" {
		addr = net.JoinHostPort(t.key.ip, hc.Port)
	}
	ctx, cancel := context.WithTimeout(ctx, hc.Timeout)
	defer cancel()
	if hc.Protocol == ProtocolTCP {
		c, err := e.opts.Dial(ctx, "tcp", addr)
		if err != nil {
			return failure(ctx, err)
		}
		_ = c.Close()
		return checkResult{ok: true}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+hc.Path, nil)
	if err != nil {
		return checkResult{reason: ReasonFailedHealthChecks, desc: "Health checks failed: " + err.Error()}
	}
	req.Header.Set("User-Agent", healthUserAgent)
	resp, err := e.healthClient.Do(req)
	if err != nil {
		return failure(ctx, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if !matchCode(matcher, resp.StatusCode) {
		return checkResult{
			reason: ReasonResponseCodeMismatch,
			desc:   "Health checks failed with these codes: [" + strconv.Itoa(resp.StatusCode) + "]",
		}
	}
	return checkResult{ok: true}
}

func failure(ctx context.Context, err error) checkResult {
	var ne net.Error
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return checkResult{reason: ReasonTimeout, desc: "Request timed out"}
	}
	return checkResult{reason: ReasonFailedHealthChecks, desc: fmt.Sprintf("Health checks failed: %v", err)}
}

func sortStatuses(s []TargetStatus) {
	slices.SortFunc(s, func(a, b TargetStatus) int {
		if c := strings.Compare(a.ID, b.ID); c != 0 {
			return c
		}
		return a.Port - b.Port
	})
}
