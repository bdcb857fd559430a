package agentapi

import (
	"sync"
	"sync/atomic"
	"time"
)

// Beats folds hosts' heartbeats into their long polls.
//
// A host heartbeats every interval (the register reply's
// HeartbeatSeconds, a quarter of its lease). A poll that starts when its
// node's lease was last renewed at least three quarters of an interval ago
// asks the control plane to renew it too (beat=1): the control plane renews
// it as the poll answers, after its wait, and the reply says LeaseRenewed.
// A heartbeat that finds the lease renewed less than an
// interval ago sends nothing. A busy host, whose polls return every few
// seconds, then sends no heartbeat of its own; an idle one, whose poll
// waits, heartbeats as before. The lease is renewed at least every two
// intervals, half of its length. A control plane that does not know beat=1
// never says LeaseRenewed, and the heartbeats go on as before.
//
// Ten thousand hosts heartbeating every 5 s are 2,000 requests a second:
// a third of the requests the control plane served in the million-task
// benchmark.
type Beats struct {
	mu    sync.Mutex
	every time.Duration
	last  map[string]time.Time // node → when its lease was last renewed, at the latest

	sent, folded atomic.Int64
}

// Counts are the heartbeats sent, and those left out because a poll had
// renewed the lease.
func (b *Beats) Counts() (sent, folded int64) { return b.sent.Load(), b.folded.Load() }

// SetInterval sets the heartbeat interval (0 or less: folding is off).
func (b *Beats) SetInterval(d time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.every = d
}

// due reports whether a poll of node starting at now should carry a
// heartbeat.
func (b *Beats) due(node string, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.every > 0 && now.Sub(b.last[node]) >= b.every*3/4
}

// fresh reports whether node's lease was renewed less than an interval
// before now: its heartbeat can be left out.
func (b *Beats) fresh(node string, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	last, ok := b.last[node]
	return b.every > 0 && ok && now.Sub(last) < b.every
}

// renewed records that node's lease was renewed at or after at.
func (b *Beats) renewed(node string, at time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.last == nil {
		b.last = map[string]time.Time{}
	}
	if at.After(b.last[node]) {
		b.last[node] = at
	}
}
