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
	return &usageIndex{st: st, log: log, nodes: map[string]*nodeUsage{}, strs: interner{}}
}

// assignNode is the node of an assign key (assign/<node>/<task>).
func assignNode(key string) (string, bool) {
	rest, ok := strings.CutPrefix(key, store.Prefix("assign"))
	if !ok {
		return "", false
	}
	node, _, ok := strings.Cut(rest, "/")
	return node, ok && node != ""
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
	nodes := map[string]*nodeUsage{}
	prefix := store.Prefix("assign")
	x.mu.Lock() // intern from this goroutine only, under the lock readers share
	rev, err := listAt(ctx, x.st, prefix, func(kv *mvccpb.KeyValue) {
		if node, ok := assignNode(string(kv.Key)); ok {
			if u, ok := decodeUsage(kv.Value); ok {
				x.add(nodes, node, &u, 1)
			}
		}
	})
	if err == nil {
		x.nodes = nodes
	}
	x.mu.Unlock()
	if err != nil {
		return err
	}
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	w := x.st.C.Watcher
	wch := w.Watch(wctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1), clientv3.WithPrevKV(), clientv3.WithProgressNotify())
	x.progress.started(w, rev)
	defer x.progress.stopped()
	for wr := range wch {
		if err := wr.Err(); err != nil {
			return err
		}
		if err := x.apply(wr.Events); err != nil {
			return err
		}
		x.progress.advance(wr.Header.Revision)
	}
	return errors.New("watch closed")
}

// apply applies one watch response's events.
func (x *usageIndex) apply(evs []*clientv3.Event) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, ev := range evs {
		node, ok := assignNode(string(ev.Kv.Key))
		if !ok {
			continue
		}
		if ev.PrevKv != nil {
			if u, ok := decodeUsage(ev.PrevKv.Value); ok {
				x.add(x.nodes, node, &u, -1)
			}
		} else if ev.Type == clientv3.EventTypeDelete || ev.IsModify() {
			return errPrevCompacted
		}
		if ev.Type == clientv3.EventTypePut {
			if u, ok := decodeUsage(ev.Kv.Value); ok {
				x.add(x.nodes, node, &u, 1)
			}
		}
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
