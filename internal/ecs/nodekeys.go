package ecs

import (
	"context"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mvccpb "go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/berthdev/berth/internal/store"
)

// nodeKeys is a watch-fed index of the keys under one per-node prefix
// (<prefix><node>/<id>): for each node, the ids of its keys and their mod
// revisions. The firewalls' index (fw/) lets a delta poll send only the
// firewalls that changed: before it, every poll read its node's whole fw/
// prefix, each time an address set the node follows changed, and a host's
// firewalls grow with its tasks.
//
// Like usageIndex it holds nothing etcd does not have: it lists the prefix
// on start (and after a lost watch) and then follows a watch.
type nodeKeys struct {
	st       *store.Store
	log      interface{ Warn(string, ...any) }
	prefix   string
	what     string // for logs
	progress watchProgress
	running  atomic.Bool

	mu   sync.RWMutex
	keys map[string]map[string]int64 // node → id → the key's mod revision
}

func newNodeKeys(st *store.Store, log interface{ Warn(string, ...any) }, prefix, what string) *nodeKeys {
	return &nodeKeys{st: st, log: log, prefix: prefix, what: what, keys: map[string]map[string]int64{}}
}

// keyRev is one key of a node: its id (the key less the node's prefix) and
// its mod revision.
type keyRev struct {
	id  string
	rev int64
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
	keys := map[string]map[string]int64{}
	rev, err := listAt(ctx, x.st, x.prefix, func(kv *mvccpb.KeyValue) {
		if node, id, ok := x.nodeID(string(kv.Key)); ok {
			setTask(keys, node, id, kv.ModRevision)
		}
	})
	if err != nil {
		return err
	}
	x.mu.Lock()
	x.keys = keys
	x.mu.Unlock()
	return x.progress.follow(ctx, x.st, x.prefix, rev, false, func(evs []*clientv3.Event, rev int64) error {
		x.apply(evs, rev)
		return nil
	})
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
			setTask(x.keys, node, id, 0)
		} else {
			setTask(x.keys, node, id, ev.Kv.ModRevision)
		}
	}
	if rev != 0 {
		x.progress.advance(rev)
	}
}

// node returns node's keys sorted by id, once the index has applied
// revision want, and the revision it had applied then (at least want). ok
// is false if the index is not built or did not catch up within timeout.
func (x *nodeKeys) node(ctx context.Context, node string, want int64, timeout time.Duration) (keys []keyRev, rev int64, ok bool) {
	if !x.running.Load() || x.progress.catchUpTo(ctx, want, timeout) != nil {
		return nil, 0, false
	}
	x.mu.RLock()
	rev = x.progress.applied()
	keys = sortedKeyRevs(x.keys[node])
	x.mu.RUnlock()
	return keys, rev, rev >= want
}

// sortedKeyRevs lists m (id → revision) by id.
func sortedKeyRevs(m map[string]int64) []keyRev {
	out := make([]keyRev, 0, len(m))
	for id, r := range m {
		out = append(out, keyRev{id: id, rev: r})
	}
	slices.SortFunc(out, func(a, b keyRev) int { return strings.Compare(a.id, b.id) })
	return out
}
