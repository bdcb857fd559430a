package ecs

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/google/btree"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/store"
)

// taskIndex is ListTasks' view of the stored tasks: for each cluster, its
// tasks by desired status in ARN order, with the fields ListTasks filters
// on, so that a page of a cluster with a million tasks costs a seek and a
// hundred steps rather than reading every task from etcd.
//
// It holds nothing etcd does not have: on start (and after a lost watch) it
// reads every task, then follows a watch on the accounts' prefix from that
// revision. A ListTasks first asks etcd for its current revision and waits
// until the index has applied it, so a caller lists what it has just
// written; if the index cannot catch up in time the call reads etcd itself.
type taskIndex struct {
	st  *store.Store
	log interface {
		Warn(msg string, args ...any)
	}

	mu       sync.RWMutex
	counts   map[string]int // tasks by lastStatus (berth_tasks)
	rev      int64          // revision applied (0: not built)
	advanced chan struct{}  // closed (and replaced) whenever rev grows
	clusters map[string]*clusterTasks
	watcher  clientv3.Watcher
}

// indexedTask is what ListTasks filters on.
type indexedTask struct {
	arn, id                                string
	desired, family, startedBy, launchType string
	group, instance                        string
	last                                   string // lastStatus
}

// clusterTasks are one cluster's tasks: by id (to apply changes) and by
// desired status in ARN order (to list).
type clusterTasks struct {
	byID      map[string]*indexedTask
	byDesired map[string]*btree.BTreeG[*indexedTask]
	stopped   map[string]bool // ids of STOPPED tasks (the purge's candidates)
}

func lessTask(a, b *indexedTask) bool { return a.arn < b.arn }

func newTaskIndex(st *store.Store, log interface{ Warn(string, ...any) }) *taskIndex {
	return &taskIndex{st: st, log: log, advanced: make(chan struct{}), clusters: map[string]*clusterTasks{}, counts: map[string]int{}}
}

// clusterKey names a cluster in the index.
func clusterKey(sc scope, cluster string) string { return sc.account + "/" + sc.region + "/" + cluster }

// taskKeyParts splits acct/<a>/<r>/tasks/<cluster>/<id> into the cluster's
// index key and the task id.
func taskKeyParts(key string) (cluster, id string, ok bool) {
	rest, ok := strings.CutPrefix(key, store.Prefix("acct"))
	if !ok {
		return "", "", false
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 5 || parts[2] != "tasks" {
		return "", "", false
	}
	return parts[0] + "/" + parts[1] + "/" + parts[3], parts[4], true
}

// run builds the index and keeps it until ctx ends, starting over when the
// watch fails.
func (x *taskIndex) run(ctx context.Context) {
	for ctx.Err() == nil {
		err := x.follow(ctx)
		if ctx.Err() != nil {
			return
		}
		x.log.Warn("task index watch restarting", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (x *taskIndex) follow(ctx context.Context) error {
	clusters, counts := map[string]*clusterTasks{}, map[string]int{}
	var rev int64
	// One read at one revision: paged by key, pinned to the first page's
	// revision.
	prefix := store.Prefix("acct")
	start := prefix
	end := clientv3.GetPrefixRangeEnd(prefix)
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(2000), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend)}
		if rev != 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		resp, err := x.st.C.Get(ctx, start, opts...)
		if err != nil {
			return err
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		for _, kv := range resp.Kvs {
			if c, id, ok := taskKeyParts(string(kv.Key)); ok {
				applyTask(clusters, counts, c, id, kv.Value)
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
		start = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	// The client's own watcher: an embedded etcd's in-process client has
	// no connection a watcher of its own could use.
	w := x.st.C.Watcher
	wch := w.Watch(wctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1), clientv3.WithProgressNotify())
	x.mu.Lock()
	x.clusters, x.counts, x.watcher = clusters, counts, w
	x.setRevLocked(rev)
	x.mu.Unlock()
	defer func() {
		x.mu.Lock()
		x.rev, x.watcher = 0, nil
		x.mu.Unlock()
	}()
	for wr := range wch {
		if err := wr.Err(); err != nil {
			return err
		}
		x.mu.Lock()
		for _, ev := range wr.Events {
			c, id, ok := taskKeyParts(string(ev.Kv.Key))
			if !ok {
				continue
			}
			if ev.Type == clientv3.EventTypeDelete {
				removeTask(x.clusters, x.counts, c, id)
			} else {
				applyTask(x.clusters, x.counts, c, id, ev.Kv.Value)
			}
		}
		x.setRevLocked(wr.Header.Revision)
		x.mu.Unlock()
	}
	return errors.New("watch closed")
}

func (x *taskIndex) setRevLocked(rev int64) {
	if rev > x.rev {
		x.rev = rev
		close(x.advanced)
		x.advanced = make(chan struct{})
	}
}

func applyTask(clusters map[string]*clusterTasks, counts map[string]int, cluster, id string, val []byte) {
	var r taskRecord
	if unmarshalTask(val, &r) != nil {
		return
	}
	removeTask(clusters, counts, cluster, id)
	ct := clusters[cluster]
	if ct == nil {
		ct = &clusterTasks{byID: map[string]*indexedTask{}, byDesired: map[string]*btree.BTreeG[*indexedTask]{}, stopped: map[string]bool{}}
		clusters[cluster] = ct
	}
	t := &r.Task
	it := &indexedTask{arn: t.TaskArn, id: id, desired: t.DesiredStatus, family: r.Spec.Family, startedBy: t.StartedBy,
		launchType: t.LaunchType, group: t.Group, instance: lastSegment(t.ContainerInstanceArn), last: t.LastStatus}
	ct.byID[id] = it
	counts[it.last]++
	if it.last == agentapi.StatusStopped {
		ct.stopped[id] = true
	}
	tree := ct.byDesired[it.desired]
	if tree == nil {
		tree = btree.NewG(32, lessTask)
		ct.byDesired[it.desired] = tree
	}
	tree.ReplaceOrInsert(it)
}

func removeTask(clusters map[string]*clusterTasks, counts map[string]int, cluster, id string) {
	ct := clusters[cluster]
	if ct == nil {
		return
	}
	if old := ct.byID[id]; old != nil {
		delete(ct.byID, id)
		delete(ct.stopped, id)
		counts[old.last]--
		ct.byDesired[old.desired].Delete(old)
	}
	if len(ct.byID) == 0 {
		delete(clusters, cluster)
	}
}

// errIndexBehind: the index could not show the store's current state in
// time; the caller reads etcd instead.
var errIndexBehind = errors.New("task index is behind")

// list pages through a cluster's tasks of one desired status after the ARN
// after, keeping those match accepts, at most limit of them; more reports
// whether any are left. It first waits (briefly) until the index has
// applied the store's revision at the time of the call.
func (x *taskIndex) list(ctx context.Context, cluster, desired, after string, limit int, match func(*indexedTask) bool) (arns []string, more bool, err error) {
	resp, err := x.st.C.Get(ctx, store.Key("task-index-probe"), clientv3.WithCountOnly())
	if err != nil {
		return nil, false, err
	}
	want := resp.Header.Revision
	deadline := time.NewTimer(2 * time.Second)
	defer deadline.Stop()
	for {
		x.mu.RLock()
		rev, advanced, w := x.rev, x.advanced, x.watcher
		x.mu.RUnlock()
		if rev != 0 && rev >= want {
			break
		}
		if w != nil {
			// A revision that touched no task arrives as no event: ask the
			// watch to report where it is.
			_ = w.RequestProgress(ctx)
		}
		select {
		case <-advanced:
		case <-deadline.C:
			return nil, false, errIndexBehind
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
	x.mu.RLock()
	defer x.mu.RUnlock()
	ct := x.clusters[cluster]
	if ct == nil || ct.byDesired[desired] == nil {
		return nil, false, nil
	}
	visit := func(it *indexedTask) bool {
		if !match(it) {
			return true
		}
		if len(arns) == limit {
			more = true
			return false
		}
		arns = append(arns, it.arn)
		return true
	}
	tree := ct.byDesired[desired]
	if after == "" {
		tree.Ascend(visit)
	} else {
		tree.AscendGreaterOrEqual(&indexedTask{arn: after + "\x00"}, visit)
	}
	return arns, more, nil
}

// stateCounts are the stored tasks by lastStatus; ok is false while the
// index is not built.
func (x *taskIndex) stateCounts() (map[string]int, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if x.rev == 0 {
		return nil, false
	}
	out := make(map[string]int, len(x.counts))
	for k, v := range x.counts {
		out[k] = v
	}
	return out, true
}

// stoppedKeys are the store keys of the STOPPED tasks; ok is false while
// the index is not built.
func (x *taskIndex) stoppedKeys() ([]string, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if x.rev == 0 {
		return nil, false
	}
	var keys []string
	for c, ct := range x.clusters {
		parts := strings.SplitN(c, "/", 3)
		for id := range ct.stopped {
			keys = append(keys, store.Scoped(parts[0], parts[1], "tasks", parts[2], id))
		}
	}
	return keys, true
}

// eachStoppedTask calls each with the key and value of every STOPPED task:
// those the index names, read in batches, or (before the index is built)
// every task under the accounts' prefix, which each must filter itself.
func (s *Service) eachStoppedTask(ctx context.Context, each func(key string, val []byte) error) error {
	keys, ok := s.tasks.stoppedKeys()
	if !ok {
		return s.st.List(ctx, store.Prefix("acct"), func(key string, val []byte) error {
			if !strings.Contains(key, "/tasks/") {
				return nil
			}
			return each(key, val)
		})
	}
	for len(keys) > 0 {
		n := min(len(keys), 100)
		ops := make([]clientv3.Op, n)
		for i, k := range keys[:n] {
			ops[i] = clientv3.OpGet(k)
		}
		resp, err := s.st.C.Txn(ctx).Then(ops...).Commit()
		if err != nil {
			return err
		}
		for _, r := range resp.Responses {
			for _, kv := range r.GetResponseRange().Kvs {
				if err := each(string(kv.Key), kv.Value); err != nil {
					return err
				}
			}
		}
		keys = keys[n:]
	}
	return nil
}
