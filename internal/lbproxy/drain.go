package lbproxy

import (
	"time"
)

// Draining: a deregistered target takes no new requests or connections (it
// leaves tg.order, which pick reads), reports "draining" with
// Target.DeregistrationInProgress, and keeps serving what is in flight.
// When nothing is in flight any more, or when the group's
// DeregistrationDelay has passed, whichever comes first, the target is
// finished: its context is cancelled (aborting what is still running: the
// slow path's proxied requests and NLB connections watch it), its
// keep-alive pools are closed (the fast path's busy connections with them,
// which aborts its requests still in flight), and it disappears from
// TargetHealth.
// ELBv2 likewise completes a deregistration early when the target has no
// in-flight requests and no active connections.

// startDrainLocked marks t draining and starts its drain goroutine.
// tg.mu is held.
func (tg *targetGroup) startDrainLocked(t *target) {
	t.draining = true
	t.state, t.reason, t.desc = StateDraining, ReasonDeregistrationInProgress, "Target deregistration is in progress"
	tg.draining[t] = struct{}{}
	delay := tg.cfg.DeregistrationDelay
	tg.e.log.Debug("target draining", "targetGroup", tg.arn, "target", t.addr, "inFlight", t.inflight.Load(), "delay", delay)
	tg.e.wg.Go(func() { tg.drain(t, delay) })
}

func (tg *targetGroup) drain(t *target, delay time.Duration) {
	timer := time.NewTimer(delay)
	defer timer.Stop()
	for t.inflight.Load() > 0 {
		select {
		case <-t.idle:
		case <-timer.C:
			tg.e.log.Info("deregistration delay passed, closing target's connections",
				"targetGroup", tg.arn, "target", t.addr, "inFlight", t.inflight.Load())
			goto done
		case <-t.ctx.Done():
			goto done
		}
	}
done:
	t.cancel()
	if t.transport != nil {
		t.transport.CloseIdleConnections()
		t.pool.close() // aborts the fast path's requests still in flight
	}
	tg.mu.Lock()
	delete(tg.draining, t)
	tg.mu.Unlock()
	tg.e.log.Debug("target deregistered", "targetGroup", tg.arn, "target", t.addr)
	tg.e.healthChanged(tg.arn)
}
