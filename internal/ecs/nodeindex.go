package ecs

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mvccpb "go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/berthdev/berth/internal/store"
)

// nodeIndex is a watch-fed copy of the registered hosts (nodes/<id>, each
// key under its host's lease): placement's snapshot, the host-loss check
// and heartbeats read it rather than etcd. With ten thousand hosts, the
// host-loss check listed every host's key each second and every placement
// pass decoded every host's record, 4-5% of a million-task run's CPU; a
// heartbeat read its host's key to learn its lease.
//
// It holds nothing etcd does not have: it lists the prefix on start (and
// after a lost watch) and follows a watch from that revision. A reader
// that must see every host registered before it asked (placement, host
// loss) first waits until the index has applied the store's revision, and
// reads etcd itself if it cannot in time.
type nodeIndex struct {
	st       *store.Store
	log      interface{ Warn(string, ...any) }
	progress watchProgress
	running  atomic.Bool // run was called: without it, readers read etcd

	mu    sync.RWMutex
	nodes map[string]*nodeRecord // by node id; replaced, never changed in place
}

func newNodeIndex(st *store.Store, log interface{ Warn(string, ...any) }) *nodeIndex {
	return &nodeIndex{st: st, log: log, nodes: map[string]*nodeRecord{}}
}

// run builds the index and keeps it until ctx ends.
func (x *nodeIndex) run(ctx context.Context) {
	x.running.Store(true)
	defer x.running.Store(false)
	runWatched(ctx, x.log, "host index", x.follow)
}

func (x *nodeIndex) follow(ctx context.Context) error {
	prefix := store.Prefix("nodes")
	nodes := map[string]*nodeRecord{}
	rev, err := listAt(ctx, x.st, prefix, func(kv *mvccpb.KeyValue) {
		if id, rec, ok := decodeNodeKV(prefix, kv); ok {
			nodes[id] = rec
		}
	})
	if err != nil {
		return err
	}
	x.mu.Lock()
	x.nodes = nodes
	x.mu.Unlock()
	return x.progress.follow(ctx, x.st, prefix, rev, false, x.apply)
}

// decodeNodeKV is the node id and record of a key under prefix; a record
// that does not decode is left out.
func decodeNodeKV(prefix string, kv *mvccpb.KeyValue) (string, *nodeRecord, bool) {
	id, ok := strings.CutPrefix(string(kv.Key), prefix)
	if !ok || id == "" || strings.Contains(id, "/") {
		return "", nil, false
	}
	rec := new(nodeRecord)
	if err := json.Unmarshal(kv.Value, rec); err != nil {
		return "", nil, false
	}
	return id, rec, true
}

// apply applies one watch response's events and its revision (0: none).
func (x *nodeIndex) apply(evs []*clientv3.Event, rev int64) error {
	prefix := store.Prefix("nodes")
	x.mu.Lock()
	for _, ev := range evs {
		id, _ := strings.CutPrefix(string(ev.Kv.Key), prefix)
		if ev.Type == clientv3.EventTypeDelete {
			delete(x.nodes, id)
			continue
		}
		if id, rec, ok := decodeNodeKV(prefix, ev.Kv); ok {
			x.nodes[id] = rec
		} else {
			delete(x.nodes, id)
		}
	}
	x.mu.Unlock()
	if rev != 0 {
		x.progress.advance(rev)
	}
	return nil
}

// current waits until the index has applied the store's revision (at most
// timeout) and calls fn under its read lock; errIndexBehind (or ctx's
// error) if it could not, and the caller reads etcd instead.
func (x *nodeIndex) current(ctx context.Context, timeout time.Duration, fn func(nodes map[string]*nodeRecord)) error {
	if !x.running.Load() {
		return errIndexBehind
	}
	if err := x.progress.catchUp(ctx, x.st, timeout); err != nil {
		return err
	}
	x.mu.RLock()
	defer x.mu.RUnlock()
	if !x.progress.built() { // its watch failed since it caught up
		return errIndexBehind
	}
	fn(x.nodes)
	return nil
}

// records are every registered host's record as of the store's current
// revision (see current). The records are shared: read them, never change
// them.
func (x *nodeIndex) records(ctx context.Context, timeout time.Duration) ([]*nodeRecord, error) {
	var out []*nodeRecord
	err := x.current(ctx, timeout, func(nodes map[string]*nodeRecord) {
		out = make([]*nodeRecord, 0, len(nodes))
		for _, n := range nodes {
			out = append(out, n)
		}
	})
	return out, err
}

// ids are the registered hosts' ids as of the store's current revision.
func (x *nodeIndex) ids(ctx context.Context, timeout time.Duration) (map[string]bool, error) {
	var out map[string]bool
	err := x.current(ctx, timeout, func(nodes map[string]*nodeRecord) {
		out = make(map[string]bool, len(nodes))
		for id := range nodes {
			out[id] = true
		}
	})
	return out, err
}

// lease is the lease a registered host's key is under, as far as the index
// has applied the store (no wait: a lease that has since expired fails its
// renewal, and the host registers again).
func (x *nodeIndex) lease(node string) (int64, bool) {
	if !x.progress.built() {
		return 0, false
	}
	x.mu.RLock()
	defer x.mu.RUnlock()
	n := x.nodes[node]
	if n == nil || n.LeaseID == 0 {
		return 0, false
	}
	return n.LeaseID, true
}
