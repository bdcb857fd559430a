package ecs

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mvccpb "go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/berthdev/berth/internal/scheduler"
	"github.com/berthdev/berth/internal/store"
)

// usageIndex is placement's snapshot of what is placed on each host: per
// node, the sums of the specs under its assign prefix (CPU, memory, tasks,
// task groups, static host ports, tasks by zone). A placement pass used to
// read and decode every assign key, so its cost grew with the tasks placed
// (a million specs, about a gigabyte, per pass); now it copies one small
// record per host.
//
// It holds nothing etcd does not have: on start (and after a lost watch) it
// sums every assign key, then follows a watch with each event's previous
// value, subtracting what a key held before and adding what it holds now.
// An event whose previous value etcd no longer has (compacted) rebuilds it.
// A pass first waits until the index has applied the store's revision, so
// it sees every placement committed before it; if the index cannot catch up
// in time, the pass reads etcd itself.
type usageIndex struct {
	st       *store.Store
	log      interface{ Warn(string, ...any) }
	progress watchProgress
	running  atomic.Bool // run was called: without it, fill does not wait

	mu    sync.RWMutex
	nodes map[string]*nodeUsage
	// tasks are each node's assigned tasks, their keys' mod revisions and
	// the node's last removal: what a delta poll needs without reading the
	// node's keys from etcd.
	tasks keyRevs
	// strs interns groups and zones: a million tasks share a few of each.
	strs interner
}

// nodeUsage is what the tasks placed on one host use.
type nodeUsage struct {
	cpu, mem, tasks int
	groups          map[string]int
	ports           map[scheduler.HostPort]int
	placed          map[string]int // by zone
}

func newUsageIndex(st *store.Store, log interface{ Warn(string, ...any) }) *usageIndex {
	return &usageIndex{st: st, log: log, nodes: map[string]*nodeUsage{}, tasks: newKeyRevs(), strs: interner{}}
}

// assignNode is the node of an assign key (assign/<node>/<task>).
func assignNode(key string) (string, bool) {
	node, _, ok := assignNodeTask(key)
	return node, ok
}

// assignNodeTask is the node and task id of an assign key.
func assignNodeTask(key string) (node, id string, ok bool) {
	return splitNodeKey(store.Prefix("assign"), key)
}

// splitNodeKey splits a key <prefix><node>/<id> into its node and id.
func splitNodeKey(prefix, key string) (node, id string, ok bool) {
	rest, ok := strings.CutPrefix(key, prefix)
	if !ok {
		return "", "", false
	}
	node, id, ok = strings.Cut(rest, "/")
	return node, id, ok && node != "" && id != ""
}

func decodeUsage(val []byte) (assignedUsage, bool) {
	var u assignedUsage
	return u, json.Unmarshal(val, &u) == nil
}

// add adds (sign 1) or subtracts (sign -1) one task's usage to its node.
func (x *usageIndex) add(nodes map[string]*nodeUsage, node string, u *assignedUsage, sign int) {
	n := nodes[node]
	if n == nil {
		if sign < 0 {
			return
		}
		n = &nodeUsage{}
		nodes[node] = n
	}
	n.cpu += sign * u.CPU
	n.mem += sign * u.MemoryMiB
	n.tasks += sign
	count := func(m *map[string]int, k string) {
		if k == "" {
			return
		}
		if *m == nil {
			*m = map[string]int{}
		}
		k = x.strs.get(k)
		if (*m)[k] += sign; (*m)[k] <= 0 {
			delete(*m, k)
		}
	}
	count(&n.groups, u.Group)
	count(&n.placed, u.AvailabilityZone)
	for _, pm := range u.PortMappings {
		if pm.HostPort == 0 {
			continue
		}
		if n.ports == nil {
			n.ports = map[scheduler.HostPort]int{}
		}
		hp := scheduler.HostPort{Protocol: x.strs.get(pm.Protocol), Port: pm.HostPort}
		if n.ports[hp] += sign; n.ports[hp] <= 0 {
			delete(n.ports, hp)
		}
	}
	if n.tasks <= 0 {
		delete(nodes, node)
	}
}

// run builds the index and keeps it until ctx ends.
func (x *usageIndex) run(ctx context.Context) {
	x.running.Store(true)
	defer x.running.Store(false)
	runWatched(ctx, x.log, "placement usage index", x.follow)
}

var errPrevCompacted = errors.New("an assign key's previous value is compacted")

func (x *usageIndex) follow(ctx context.Context) error {
	nodes, tasks := map[string]*nodeUsage{}, newKeyRevs()
	prefix := store.Prefix("assign")
	x.mu.Lock() // intern from this goroutine only, under the lock readers share
	rev, err := listAt(ctx, x.st, prefix, func(kv *mvccpb.KeyValue) {
		if node, id, ok := assignNodeTask(string(kv.Key)); ok {
			tasks.set(node, id, kv.ModRevision)
			if u, ok := decodeUsage(kv.Value); ok {
				x.add(nodes, node, &u, 1)
			}
		}
	})
	if err == nil {
		tasks.from = rev
		x.nodes, x.tasks = nodes, tasks
	}
	x.mu.Unlock()
	if err != nil {
		return err
	}
	return x.progress.follow(ctx, x.st, prefix, rev, true, x.apply)
}

// apply applies one watch response's events and its revision rev (0:
// none), under the lock readers take, so that nodeTasks never sees changes
// newer than the revision it reads them at.
func (x *usageIndex) apply(evs []*clientv3.Event, rev int64) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, ev := range evs {
		node, id, ok := assignNodeTask(string(ev.Kv.Key))
		if !ok {
			continue
		}
		if ev.Type == clientv3.EventTypeDelete {
			x.tasks.remove(node, id, ev.Kv.ModRevision)
		} else {
			x.tasks.set(node, id, ev.Kv.ModRevision)
		}
		if ev.PrevKv != nil {
			if u, ok := decodeUsage(ev.PrevKv.Value); ok {
				x.add(x.nodes, node, &u, -1)
			}
		} else if ev.Type == clientv3.EventTypeDelete || ev.IsModify() {
			// The sums are now part-applied: no reader may take them
			// before the watch starts over from a fresh read.
			x.progress.stopped()
			return errPrevCompacted
		}
		if ev.Type == clientv3.EventTypePut {
			if u, ok := decodeUsage(ev.Kv.Value); ok {
				x.add(x.nodes, node, &u, 1)
			}
		}
	}
	if rev != 0 {
		x.progress.advance(rev)
	}
	return nil
}

// fill sets what is placed on each of nodes, once the index has caught up
// with the store; it returns errIndexBehind (or ctx's error) if it has not
// within timeout, and the caller reads etcd instead.
func (x *usageIndex) fill(ctx context.Context, nodes []*scheduler.Node, timeout time.Duration) error {
	if !x.running.Load() {
		return errIndexBehind
	}
	if err := x.progress.catchUp(ctx, x.st, timeout); err != nil {
		if errors.Is(err, errIndexBehind) {
			x.log.Warn("placement usage index is behind the store: reading every assigned task")
		}
		return err
	}
	x.mu.RLock()
	defer x.mu.RUnlock()
	if !x.progress.built() { // its watch failed since it caught up
		return errIndexBehind
	}
	for _, n := range nodes {
		u := x.nodes[n.ID]
		if u == nil {
			continue
		}
		n.UsedCPU, n.UsedMemoryMiB, n.RunningTasks = u.cpu, u.mem, u.tasks
		n.Groups, n.Placed = copyCounts(u.groups), copyCounts(u.placed)
		for hp, c := range u.ports {
			for range c {
				n.UsedPorts = append(n.UsedPorts, hp)
			}
		}
	}
	return nil
}

// nodeTasks is what a delta poll of node needs, once the index has applied
// revision want: the tasks whose key changed after since, and the ids of
// all unless keep and none left the node after since (keyRevs.delta), as
// of d.rev, the revision the index had applied then (at least want), at
// which the poll reads their specs. ok is false if the index is not built
// or did not catch up within timeout.
func (x *usageIndex) nodeTasks(ctx context.Context, node string, since, want int64, keep bool, timeout time.Duration) (d keysDelta, ok bool) {
	if !x.running.Load() || x.progress.catchUpTo(ctx, want, timeout) != nil {
		return keysDelta{}, false
	}
	x.mu.RLock()
	d = x.tasks.delta(node, since, keep)
	d.rev = x.progress.applied()
	x.mu.RUnlock()
	return d, d.rev >= want
}

// nodesWithTasks are the nodes that have tasks assigned, as far as the
// index has applied the store; ok is false while it is not built.
func (x *usageIndex) nodesWithTasks() (nodes map[string]bool, ok bool) {
	if !x.progress.built() {
		return nil, false
	}
	x.mu.RLock()
	defer x.mu.RUnlock()
	nodes = make(map[string]bool, len(x.nodes))
	for n := range x.nodes {
		nodes[n] = true
	}
	return nodes, true
}

func copyCounts(m map[string]int) map[string]int {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]int, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
