package agent

import (
	"context"
	"sync"

	"github.com/berthdev/berth/internal/agentapi"
)

// firewalls keeps each ENI on this host enforcing the newest security-group
// policy the control plane has computed for it. Policies arrive with every
// long poll; an ENI is enforced from when its sandbox exists (attached) until
// it is torn down (detached). A sandbox is made with the newest policy known
// then; a newer one that arrives meanwhile is applied once it is attached, so
// none is ever missed.
//
// One worker (run) applies every update, outside the lock: a new member of a
// group changes the policy of every ENI in it, and applying dozens of them
// must neither delay the poll loop nor the next task's sandbox, and a single
// applier keeps an ENI's policies in order.
//
// A rule that references a security group names its address set; the
// sets come with the same poll. An ENI's policy is its firewall with the
// sets' addresses filled in (resolved), and its revision is the newest of
// the firewall's and its sets' revisions (all etcd revisions), so a member
// joining a group re-applies the policy of every ENI here that names the
// group, and nothing else.
type firewalls struct {
	a    *Agent
	kick chan struct{} // wakes run: newer policies are waiting

	mu      sync.Mutex
	newest  map[string]agentapi.Firewall   // by ENI id, as the control plane sent it
	sets    map[string]agentapi.AddressSet // by name
	enis    map[string]agentapi.TaskSpec   // attached ENIs' tasks, by ENI id
	applied map[string]int64               // revision enforced, by ENI id
}

func newFirewalls(a *Agent) *firewalls {
	return &firewalls{a: a, kick: make(chan struct{}, 1), newest: map[string]agentapi.Firewall{},
		sets: map[string]agentapi.AddressSet{}, enis: map[string]agentapi.TaskSpec{}, applied: map[string]int64{}}
}

// resolved is fw with its sets' addresses filled in and its revision the
// newest of its own and its sets'. f.mu is held.
func (f *firewalls) resolved(fw agentapi.Firewall) agentapi.Firewall {
	names := agentapi.SetNames([]agentapi.Firewall{fw})
	if len(names) == 0 {
		return fw
	}
	sets := make([]agentapi.AddressSet, 0, len(names))
	for _, name := range names {
		if set, ok := f.sets[name]; ok {
			sets = append(sets, set)
			fw.Revision = max(fw.Revision, set.Revision)
		}
	}
	fw.Ingress = agentapi.ResolveSets(fw.Ingress, sets)
	fw.Egress = agentapi.ResolveSets(fw.Egress, sets)
	return fw
}

// revision is the revision of fw's resolved policy. f.mu is held.
func (f *firewalls) revision(fw agentapi.Firewall) int64 {
	rev := fw.Revision
	for _, name := range agentapi.SetNames([]agentapi.Firewall{fw}) {
		rev = max(rev, f.sets[name].Revision)
	}
	return rev
}

// run applies waiting policies until ctx ends.
func (f *firewalls) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-f.kick:
		}
		for _, j := range f.pending() {
			if ctx.Err() != nil {
				return
			}
			if err := f.a.cfg.Sandboxes.ApplyFirewall(j.spec, j.fw); err != nil {
				f.a.log.Warn("apply firewall", "task", j.spec.TaskID, "eni", j.fw.ENIID, "err", err)
				continue
			}
			f.done(j.fw)
		}
	}
}

type fwJob struct {
	spec agentapi.TaskSpec
	fw   agentapi.Firewall
}

// pending lists the attached ENIs whose newest policy is not enforced yet.
func (f *firewalls) pending() []fwJob {
	f.mu.Lock()
	defer f.mu.Unlock()
	var jobs []fwJob
	for id, spec := range f.enis {
		fw, known := f.newest[id]
		if rev, done := f.applied[id]; known && (!done || rev < f.revision(fw)) {
			jobs = append(jobs, fwJob{spec: spec, fw: f.resolved(fw)})
		}
	}
	return jobs
}

// done records that fw is enforced (unless its ENI went meanwhile).
func (f *firewalls) done(fw agentapi.Firewall) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.enis[fw.ENIID]; ok && f.applied[fw.ENIID] < fw.Revision {
		f.applied[fw.ENIID] = fw.Revision
	}
}

func (f *firewalls) wake() {
	select {
	case f.kick <- struct{}{}:
	default:
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
	fw = f.resolved(fw)
	return &fw
}

// update records the policies and address sets of one poll and wakes the
// worker. Policies of ENIs no longer listed are forgotten, and so are sets
// no policy names.
func (f *firewalls) update(list []agentapi.Firewall, sets []agentapi.AddressSet) {
	f.mu.Lock()
	named := map[string]bool{}
	for _, name := range agentapi.SetNames(list) {
		named[name] = true
	}
	for _, set := range sets {
		if old, ok := f.sets[set.Name]; !ok || old.Revision <= set.Revision {
			f.sets[set.Name] = set
		}
	}
	for name := range f.sets {
		if !named[name] {
			delete(f.sets, name)
		}
	}
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
	f.mu.Unlock()
	f.wake()
}

// attached starts enforcing the task's ENI: its sandbox now exists, made
// with policy used (nil: none yet). A newer policy that arrived meanwhile is
// applied by the worker.
func (f *firewalls) attached(spec agentapi.TaskSpec, used *agentapi.Firewall) {
	if spec.ENI == nil {
		return
	}
	f.mu.Lock()
	f.enis[spec.ENI.ID] = spec
	if used != nil {
		f.applied[spec.ENI.ID] = used.Revision
	}
	f.mu.Unlock()
	f.wake()
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
