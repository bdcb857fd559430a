package agent

import (
	"context"
	"sync"
	"time"
)

// launchGate lets log shipping give way to task launches. Shipping is
// asynchronous by design (a container's log file is the buffer), while a
// launch is what another tenant is waiting on, and the shippers and the
// launches share the agent's CPU, outside any task's cgroup: a shipper
// holds each batch back while a task on the host is being launched, for at
// most shipYield, so that it still ships under launches that never stop.
type launchGate struct {
	mu   sync.Mutex
	n    int           // tasks being launched
	idle chan struct{} // closed when n drops to 0
}

// shipYield is the longest a shipper holds a batch back for launches;
// about a launch's length on a loaded 2-core host.
const shipYield = 250 * time.Millisecond

// start marks a launch; call the returned func (once or more) when it is
// over, however it ends.
func (g *launchGate) start() func() {
	g.mu.Lock()
	if g.n == 0 {
		g.idle = make(chan struct{})
	}
	g.n++
	g.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			g.mu.Lock()
			g.n--
			if g.n == 0 {
				close(g.idle)
			}
			g.mu.Unlock()
		})
	}
}

// wait returns when no task is being launched, after at most max, or when
// ctx ends.
func (g *launchGate) wait(ctx context.Context, max time.Duration) {
	if g == nil {
		return
	}
	g.mu.Lock()
	busy, idle := g.n > 0, g.idle
	g.mu.Unlock()
	if !busy {
		return
	}
	t := time.NewTimer(max)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-idle:
	case <-t.C:
	}
}
