package agent

import (
	"context"
	"sync"

	"github.com/berthdev/berth/internal/agentapi"
)

// firewalls keeps each ENI on this host enforcing the newest security-group
// policy the control plane has computed for it. Policies arrive with every
// long poll; an ENI is enforced from when its sandbox exists (attached) until
// it is torn down (detached). A policy that arrives while a sandbox is being
// made is applied as soon as it is attached, so none is ever missed.
//
// Updates are applied by one worker (run), not by the poll loop: a new
// member of a group changes the policy of every ENI in it, and applying
// dozens of policies must not delay the next task's hand-off.
type firewalls struct {
	a    *Agent
	kick chan struct{} // wakes run: newer policies are waiting

	mu      sync.Mutex
	newest  map[string]agentapi.Firewall // by ENI id
	enis    map[string]agentapi.TaskSpec // attached ENIs' tasks, by ENI id
	applied map[string]int64             // revision enforced, by ENI id
}

func newFirewalls(a *Agent) *firewalls {
	return &firewalls{a: a, kick: make(chan struct{}, 1), newest: map[string]agentapi.Firewall{},
		enis: map[string]agentapi.TaskSpec{}, applied: map[string]int64{}}
}

// run applies waiting policies until ctx ends.
func (f *firewalls) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-f.kick:
		}
		f.mu.Lock()
		ids := make([]string, 0, len(f.enis))
		for id := range f.enis {
			ids = append(ids, id)
		}
		f.mu.Unlock()
		for _, id := range ids {
			if ctx.Err() != nil {
				return
			}
			f.mu.Lock()
			f.enforceLocked(id)
			f.mu.Unlock()
		}
	}
}

// latest is the newest policy known for the task's ENI (nil if none).
func (f *firewalls) latest(spec agentapi.TaskSpec) *agentapi.Firewall {
	if spec.ENI == nil {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	fw, ok := f.newest[spec.ENI.ID]
	if !ok {
		return nil
	}
	return &fw
}

// update records the policies of one poll and has run enforce the changed
// ones. Policies of ENIs no longer listed are forgotten.
func (f *firewalls) update(list []agentapi.Firewall) {
	f.mu.Lock()
	defer f.mu.Unlock()
	defer func() {
		select {
		case f.kick <- struct{}{}:
		default:
		}
	}()
	seen := make(map[string]bool, len(list))
	for _, fw := range list {
		seen[fw.ENIID] = true
		if old, ok := f.newest[fw.ENIID]; ok && old.Revision >= fw.Revision {
			continue
		}
		f.newest[fw.ENIID] = fw
	}
	for id := range f.newest {
		if !seen[id] {
			delete(f.newest, id)
		}
	}
}

// attached starts enforcing the task's ENI: its sandbox now exists, made
// with policy used (nil: none yet). A newer policy that arrived meanwhile is
// applied now.
func (f *firewalls) attached(spec agentapi.TaskSpec, used *agentapi.Firewall) {
	if spec.ENI == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.enis[spec.ENI.ID] = spec
	if used != nil {
		f.applied[spec.ENI.ID] = used.Revision
	}
	f.enforceLocked(spec.ENI.ID)
}

// detached stops enforcing the task's ENI: its sandbox is going away.
func (f *firewalls) detached(spec agentapi.TaskSpec) {
	if spec.ENI == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.enis, spec.ENI.ID)
	delete(f.applied, spec.ENI.ID)
}

// enforceLocked applies the newest policy of an attached ENI if it is newer
// than the one enforced.
func (f *firewalls) enforceLocked(eniID string) {
	spec, ok := f.enis[eniID]
	fw, known := f.newest[eniID]
	if !ok || !known {
		return
	}
	if rev, done := f.applied[eniID]; done && rev >= fw.Revision {
		return
	}
	if err := f.a.cfg.Sandboxes.ApplyFirewall(spec, fw); err != nil {
		f.a.log.Warn("apply firewall", "task", spec.TaskID, "eni", eniID, "err", err)
		return
	}
	f.applied[eniID] = fw.Revision
}
