package agent

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/berthdev/berth/internal/agentapi"
)

// reportSender sends one task's state reports to the control plane, one at
// a time and latest first: a report that a newer one overtakes before it
// is sent is never sent. The report carries the task's whole state (status,
// timestamps, containers), so the newer one loses nothing, and the control
// plane takes a status that skips others (PROVISIONING straight to RUNNING).
//
// A launch does not wait for its reports: under load a report takes longer
// than a step of the launch (sandbox, pull, start), and three round trips
// per task, each waited for, bounded launches by the control plane's report
// latency. A task whose PENDING report is still in flight when it reaches
// RUNNING sends RUNNING next; a host with a backlog sends one report per
// task instead of three. From RUNNING on, the task's goroutine waits for
// every report (flush) before its next step: a stop's reports carry its stop
// code, and a restarted agent resumes a task from the status the control
// plane last accepted, so that status should not trail a stop.
type reportSender struct {
	send func(context.Context, agentapi.StateReport) error
	log  *slog.Logger

	mu      sync.Mutex
	latest  *agentapi.StateReport // newest not yet accepted; nil when all are
	kick    chan struct{}         // a report was queued (capacity 1)
	settled chan struct{}         // closed (and replaced) when latest becomes nil
	retry   time.Duration
}

func newReportSender(send func(context.Context, agentapi.StateReport) error, log *slog.Logger) *reportSender {
	return &reportSender{send: send, log: log, kick: make(chan struct{}, 1), settled: make(chan struct{}), retry: 500 * time.Millisecond}
}

// put queues rep, replacing a queued report not yet sent.
func (r *reportSender) put(rep agentapi.StateReport) {
	r.mu.Lock()
	r.latest = &rep
	r.mu.Unlock()
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// flush waits until every queued report is accepted; false if ctx ends
// first.
func (r *reportSender) flush(ctx context.Context) bool {
	for {
		r.mu.Lock()
		idle, settled := r.latest == nil, r.settled
		r.mu.Unlock()
		if idle {
			return true
		}
		select {
		case <-settled:
		case <-ctx.Done():
			return false
		}
	}
}

// run sends reports until ctx ends, retrying one the control plane does
// not take until it does or a newer one replaces it.
func (r *reportSender) run(ctx context.Context) {
	for attempt := 0; ; {
		r.mu.Lock()
		rep := r.latest
		r.mu.Unlock()
		if rep == nil {
			select {
			case <-ctx.Done():
				return
			case <-r.kick:
			}
			continue
		}
		err := r.send(ctx, *rep)
		if ctx.Err() != nil || errors.Is(err, context.Canceled) {
			return
		}
		if err == nil {
			attempt = 0
			r.mu.Lock()
			if r.latest == rep { // nothing newer came meanwhile
				r.latest = nil
				close(r.settled)
				r.settled = make(chan struct{})
			}
			r.mu.Unlock()
			continue
		}
		if attempt%10 == 0 {
			r.log.Warn("report task state", "task", rep.TaskArn, "status", rep.Status, "err", err)
		}
		attempt++
		t := time.NewTimer(r.retry)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-r.kick: // a newer report: send it now
			t.Stop()
		case <-t.C:
		}
	}
}
