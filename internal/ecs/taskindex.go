package ecs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	jsonv2 "github.com/go-json-experiment/json"

	"github.com/google/btree"
	mvccpb "go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/store"
)

// taskIndex is ListTasks' view of the stored tasks: for each cluster, its
// tasks by desired status in ARN order, with the fields ListTasks filters
// on, so that a page of a cluster with a million tasks costs a seek and a
// hundred steps rather than reading every task from etcd. It is also
// placement's queue: the tasks still PROVISIONING without a host and not
// to be stopped are the pending ones (pendingArns), so a task waiting for
// placement needs no key of its own.
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

	progress watchProgress

	mu   sync.RWMutex
	t    *taskTables
	strs interner
}

// taskTables are what the index holds, built anew when its watch starts
// over.
type taskTables struct {
	clusters map[string]*clusterTasks
	counts   map[string]int    // tasks by lastStatus (berth_tasks)
	pending  map[string]string // the ARNs of the tasks waiting for a host (see apply), by id
}

func newTaskTables() *taskTables {
	return &taskTables{clusters: map[string]*clusterTasks{}, counts: map[string]int{}, pending: map[string]string{}}
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
	return &taskIndex{st: st, log: log, t: newTaskTables(), strs: interner{}}
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
func (x *taskIndex) run(ctx context.Context) { runWatched(ctx, x.log, "task index", x.follow) }

func (x *taskIndex) follow(ctx context.Context) error {
	tables := newTaskTables()
	prefix := store.Prefix("acct")
	rev, err := listAt(ctx, x.st, prefix, func(kv *mvccpb.KeyValue) {
		if c, id, ok := taskKeyParts(string(kv.Key)); ok {
			tables.apply(x.strs, c, id, kv.Value)
		}
	})
	if err != nil {
		return err
	}
	x.mu.Lock()
	x.t = tables
	x.mu.Unlock()
	return x.progress.follow(ctx, x.st, prefix, rev, false, func(evs []*clientv3.Event, rev int64) error {
		x.mu.Lock()
		for _, ev := range evs {
			c, id, ok := taskKeyParts(string(ev.Kv.Key))
			if !ok {
				continue
			}
			if ev.Type == clientv3.EventTypeDelete {
				x.t.remove(c, id)
			} else {
				x.t.apply(x.strs, c, id, ev.Kv.Value)
			}
		}
		x.mu.Unlock()
		x.progress.advance(rev)
		return nil
	})
}

// indexedRecord is the part of a stored taskRecord the index keeps: the
// summary stored ahead of the record (recordcodec.go), or for a record
// stored without one, these fields of its JSON (decoding only them skips
// building the rest: containers, attachments, the spec).
type indexedRecord struct {
	Task struct {
		TaskArn              string `json:"taskArn"`
		ContainerInstanceArn string `json:"containerInstanceArn"`
		LastStatus           string `json:"lastStatus"`
		DesiredStatus        string `json:"desiredStatus"`
		StartedBy            string `json:"startedBy"`
		Group                string `json:"group"`
		LaunchType           string `json:"launchType"`
	} `json:"task"`
	Spec struct {
		Family string `json:"family"`
	} `json:"spec"`
	Node string `json:"node"`
}

// apply indexes a write of the task id of cluster.
func (tt *taskTables) apply(strs interner, cluster, id string, stored []byte) {
	var r indexedRecord
	if decodeIndexed(stored, &r) != nil {
		return
	}
	t := &r.Task
	if strings.HasSuffix(t.TaskArn, "/"+id) {
		id = t.TaskArn[len(t.TaskArn)-len(id):] // one string, not two
	}
	// Only placement gives a task its host, and only a host moves it on
	// from PROVISIONING; a record that has left PROVISIONING without one
	// (written straight to the store, as the API benchmark seeds it) is
	// not placement's.
	if r.Node == "" && t.LastStatus == agentapi.StatusProvisioning && t.DesiredStatus != agentapi.StatusStopped {
		tt.pending[id] = t.TaskArn
	} else {
		delete(tt.pending, id)
	}
	clusters, counts := tt.clusters, tt.counts
	it := &indexedTask{arn: t.TaskArn, id: id, desired: strs.get(t.DesiredStatus), family: strs.get(r.Spec.Family), startedBy: strs.get(t.StartedBy),
		launchType: strs.get(t.LaunchType), group: strs.get(t.Group), instance: strs.get(lastSegment(t.ContainerInstanceArn)), last: strs.get(t.LastStatus)}
	if ct := clusters[cluster]; ct != nil {
		if old := ct.byID[id]; old != nil && old.desired == it.desired && old.arn == it.arn {
			// Its place in its tree stays: change it in place (readers
			// hold the index's lock), not out of the tree and back in.
			counts[old.last]--
			counts[it.last]++
			delete(ct.stopped, id)
			if it.last == agentapi.StatusStopped {
				ct.stopped[id] = true
			}
			*old = *it
			return
		}
	}
	tt.unindex(cluster, id)
	ct := clusters[cluster]
	if ct == nil {
		ct = &clusterTasks{byID: map[string]*indexedTask{}, byDesired: map[string]*btree.BTreeG[*indexedTask]{}, stopped: map[string]bool{}}
		clusters[cluster] = ct
	}
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

// remove takes the deleted task id of cluster out of the index.
func (tt *taskTables) remove(cluster, id string) {
	delete(tt.pending, id)
	tt.unindex(cluster, id)
}

// unindex takes the task id of cluster out of its cluster's tables.
func (tt *taskTables) unindex(cluster, id string) {
	ct := tt.clusters[cluster]
	if ct == nil {
		return
	}
	if old := ct.byID[id]; old != nil {
		delete(ct.byID, id)
		delete(ct.stopped, id)
		tt.counts[old.last]--
		ct.byDesired[old.desired].Delete(old)
	}
	if len(ct.byID) == 0 {
		delete(tt.clusters, cluster)
	}
}

// list pages through a cluster's tasks of one desired status after the ARN
// after, keeping those match accepts, at most limit of them; more reports
// whether any are left. It first waits (briefly) until the index has
// applied the store's revision at the time of the call.
func (x *taskIndex) list(ctx context.Context, cluster, desired, after string, limit int, match func(*indexedTask) bool) (arns []string, more bool, err error) {
	if err := x.progress.catchUp(ctx, x.st, 2*time.Second); err != nil {
		return nil, false, err
	}
	x.mu.RLock()
	defer x.mu.RUnlock()
	ct := x.t.clusters[cluster]
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

// pendingArns are the ARNs of the tasks waiting for a host: PROVISIONING
// without one and not to be stopped (in no order). It first waits
// until the index has applied the store's revision at the time of the
// call, so that a pass sees the tasks RunTask stored before it woke
// placement, and not as pending the tasks the last pass placed. If the
// index cannot catch up in time (a loaded store's watch lags now and then)
// the pass takes what it holds: placement compares each record's revision
// when it commits and passes over a task its record shows placed or
// stopped, so a stale queue costs reads, never a task placed twice; the
// tasks it misses wait for the next pass. Only an index not built yet (on
// start, or after its watch failed) is an error.
func (x *taskIndex) pendingArns(ctx context.Context) ([]string, error) {
	if err := x.progress.catchUp(ctx, x.st, 2*time.Second); err != nil && (!errors.Is(err, errIndexBehind) || !x.progress.built()) {
		return nil, fmt.Errorf("pending tasks: %w", err)
	}
	x.mu.RLock()
	defer x.mu.RUnlock()
	out := make([]string, 0, len(x.t.pending))
	for _, arn := range x.t.pending {
		out = append(out, arn)
	}
	return out, nil
}

// stateCounts are the stored tasks by lastStatus; ok is false while the
// index is not built.
func (x *taskIndex) stateCounts() (map[string]int, bool) {
	if !x.progress.built() {
		return nil, false
	}
	x.mu.RLock()
	defer x.mu.RUnlock()
	out := make(map[string]int, len(x.t.counts))
	for k, v := range x.t.counts {
		out[k] = v
	}
	return out, true
}

// stoppedKeys are the store keys of the STOPPED tasks; ok is false while
// the index is not built.
func (x *taskIndex) stoppedKeys() ([]string, bool) {
	if !x.progress.built() {
		return nil, false
	}
	x.mu.RLock()
	defer x.mu.RUnlock()
	var keys []string
	for c, ct := range x.t.clusters {
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
			ops[i] = s.st.OpGet(k)
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

// decodeIndexed reads the indexed fields of a stored task record: its
// summary, or its JSON when it has none (v2 skips the rest of a record
// faster, as in unmarshalTask, and copies the strings it keeps).
func decodeIndexed(stored []byte, r *indexedRecord) error {
	if ok, err := parseSummary(stored, r); ok || err != nil {
		return err
	}
	return withTaskJSON(stored, func(b []byte) error { return jsonv2.Unmarshal(b, r) })
}
