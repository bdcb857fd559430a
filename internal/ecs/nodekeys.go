package ecs

import (
	"context"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mvccpb "go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/berthdev/berth/internal/store"
)

// keyRevs is, for each node, the ids of its keys under one per-node prefix
// (<prefix><node>/<id>) with their mod revisions, and the revision at which
// a key of the node was last removed: what a delta poll needs to send only
// what changed after the caller's last poll. Without the removals, a poll
// would have to send every id (a host's whole list, growing with its tasks)
// each time it is woken, so that the caller could tell which had left.
type keyRevs struct {
	keys map[string]map[string]int64 // node → id → the key's mod revision
	// removed is each node's last removal's revision, after from: the
	// revision the keys were listed at. Removals before from are unknown.
	removed map[string]int64
	from    int64
}

func newKeyRevs() keyRevs {
	return keyRevs{keys: map[string]map[string]int64{}, removed: map[string]int64{}}
}

// keyRev is one key of a node: its id (the key less the node's prefix) and
// its mod revision.
type keyRev struct {
	id  string
	rev int64
}

// set records node's key id at mod revision rev.
func (k *keyRevs) set(node, id string, rev int64) {
	m := k.keys[node]
	if m == nil {
		m = map[string]int64{}
		k.keys[node] = m
	}
	if _, ok := m[id]; !ok {
		id = strings.Clone(id) // not a slice of the whole key
	}
	m[id] = rev
}

// remove forgets node's key id, deleted at revision rev.
func (k *keyRevs) remove(node, id string, rev int64) {
	m := k.keys[node]
	if _, ok := m[id]; !ok {
		return
	}
	delete(m, id)
	if len(m) == 0 {
		delete(k.keys, node)
	}
	k.removed[node] = max(k.removed[node], rev)
}

// delta is what changed in node's keys after since: the keys changed
// after it, by id, and whether no key of the node was removed after it (as
// far as this knows: a removal before the keys were listed is unknown, so
// since must be at least that). When same, the node's keys are those it
// had at since and the changed ones, and all (every id, in order) is left
// out if keep (the caller holds the others).
func (k *keyRevs) delta(node string, since int64, keep bool) (d keysDelta) {
	for id, r := range k.keys[node] {
		if r > since {
			d.changed = append(d.changed, keyRev{id: id, rev: r})
		}
	}
	slices.SortFunc(d.changed, func(a, b keyRev) int { return strings.Compare(a.id, b.id) })
	d.same = since >= k.from && k.removed[node] <= since
	if !d.same || !keep {
		d.all = slices.Sorted(maps.Keys(k.keys[node]))
	}
	return d
}

// nodeKeys is a watch-fed index of the firewall keys (fw/<node>/<eni>):
// for each node, its keys and their mod revisions (keyRevs), and the
// address sets each firewall names. It lets a delta poll send only the
// firewalls that changed, and tell the sets the node's firewalls name
// without reading them: before it, every poll read its node's whole fw/
// prefix each time an address set the node follows changed, and a host's
// firewalls grow with its tasks.
//
// Like usageIndex it holds nothing etcd does not have: it lists the prefix
// on start (and after a lost watch) and then follows a watch.
type nodeKeys struct {
	st       *store.Store
	log      interface{ Warn(string, ...any) }
	prefix   string
	what     string // for logs
	refs     func(value []byte) []string
	progress watchProgress
	running  atomic.Bool

	mu   sync.RWMutex
	keys keyRevs
	// names are what refs gives each key's value (node → id → names), and
	// counts how many of a node's keys name each.
	names  map[string]map[string][]string
	counts map[string]map[string]int
}

// newNodeKeys returns the index of the keys under prefix; refs gives the
// names a key's value refers to (the address sets a firewall names).
func newNodeKeys(st *store.Store, log interface{ Warn(string, ...any) }, prefix, what string, refs func([]byte) []string) *nodeKeys {
	return &nodeKeys{st: st, log: log, prefix: prefix, what: what, refs: refs, keys: newKeyRevs()}
}

// run builds the index and keeps it until ctx ends.
func (x *nodeKeys) run(ctx context.Context) {
	x.running.Store(true)
	defer x.running.Store(false)
	runWatched(ctx, x.log, x.what, x.follow)
}

// nodeID splits a key under the prefix into its node and id.
func (x *nodeKeys) nodeID(key string) (node, id string, ok bool) { return splitNodeKey(x.prefix, key) }

func (x *nodeKeys) follow(ctx context.Context) error {
	keys, names, counts := newKeyRevs(), map[string]map[string][]string{}, map[string]map[string]int{}
	rev, err := listAt(ctx, x.st, x.prefix, func(kv *mvccpb.KeyValue) {
		if node, id, ok := x.nodeID(string(kv.Key)); ok {
			keys.set(node, id, kv.ModRevision)
			setRefs(names, counts, node, id, x.refs(kv.Value))
		}
	})
	if err != nil {
		return err
	}
	keys.from = rev
	x.mu.Lock()
	x.keys, x.names, x.counts = keys, names, counts
	x.mu.Unlock()
	return x.progress.follow(ctx, x.st, x.prefix, rev, false, func(evs []*clientv3.Event, rev int64) error {
		x.apply(evs, rev)
		return nil
	})
}

// setRefs records the names node's key id refers to (nil: none, or the
// key is gone), counting them per node.
func setRefs(names map[string]map[string][]string, counts map[string]map[string]int, node, id string, refs []string) {
	c := counts[node]
	for _, n := range names[node][id] {
		if c[n]--; c[n] <= 0 {
			delete(c, n)
		}
	}
	if len(refs) == 0 {
		delete(names[node], id)
		if len(names[node]) == 0 {
			delete(names, node)
			delete(counts, node)
		}
		return
	}
	if names[node] == nil {
		names[node], counts[node] = map[string][]string{}, map[string]int{}
		c = counts[node]
	}
	names[node][strings.Clone(id)] = refs
	for _, n := range refs {
		c[n]++
	}
}

// apply applies one watch response's events and its revision rev (0:
// none) under the lock readers take.
func (x *nodeKeys) apply(evs []*clientv3.Event, rev int64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, ev := range evs {
		node, id, ok := x.nodeID(string(ev.Kv.Key))
		if !ok {
			continue
		}
		if ev.Type == clientv3.EventTypeDelete {
			x.keys.remove(node, id, ev.Kv.ModRevision)
			setRefs(x.names, x.counts, node, id, nil)
		} else {
			x.keys.set(node, id, ev.Kv.ModRevision)
			setRefs(x.names, x.counts, node, id, x.refs(ev.Kv.Value))
		}
	}
	if rev != 0 {
		x.progress.advance(rev)
	}
}

// keysDelta is what changed in a node's keys after a poll's since, as of
// the revision an index had applied (keyRevs.delta).
type keysDelta struct {
	rev     int64
	changed []keyRev   // the keys changed after since, by id
	refs    [][]string // the names each changed key's value refers to
	// same: no key was removed after since, and all is left out unless
	// asked for (the caller holds the others).
	same bool
	all  []string // every key's id, in order
	// The firewall index's: names are those every key of the node refers
	// to, in order; held are those an unchanged key refers to (the caller
	// has them).
	names, held []string
}

// delta returns what changed in node's keys after since (keyRevs.delta)
// and the names they refer to, once the index has applied revision want
// (d.rev is at least want). ok is false if the index is not built or did
// not catch up within timeout.
func (x *nodeKeys) delta(ctx context.Context, node string, since, want int64, keep bool, timeout time.Duration) (d keysDelta, ok bool) {
	if !x.running.Load() || x.progress.catchUpTo(ctx, want, timeout) != nil {
		return keysDelta{}, false
	}
	x.mu.RLock()
	defer x.mu.RUnlock()
	d = x.keys.delta(node, since, keep)
	d.rev = x.progress.applied()
	var changedRefs map[string]int // nil (read as zeros) when nothing changed: most polls
	if len(d.changed) > 0 {
		changedRefs = map[string]int{}
	}
	d.refs = make([][]string, len(d.changed))
	for i, k := range d.changed {
		d.refs[i] = x.names[node][k.id]
		for _, n := range d.refs[i] {
			changedRefs[n]++
		}
	}
	counts := x.counts[node]
	d.names = slices.Sorted(maps.Keys(counts))
	for _, n := range d.names {
		if counts[n] > changedRefs[n] {
			d.held = append(d.held, n)
		}
	}
	return d, d.rev >= want
}
