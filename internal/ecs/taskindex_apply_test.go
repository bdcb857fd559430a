package ecs

import (
	"context"
	"slices"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/store"
)

// A task's writes move it in the index: in place while its desired status
// stays (its place in the tree does), to another tree when that changes;
// the counts by last status, the STOPPED set and the pending set (no host,
// not stopped) follow every write, and its deletion.
func TestApplyTask(t *testing.T) {
	tt, strs := newTaskTables(), interner{}
	const cluster, id = "a/r/c", "t1"
	const arn = "arn:aws:ecs:r:a:task/c/" + id
	write := func(last, desired, node string) {
		t.Helper()
		rec := &taskRecord{Task: Task{TaskArn: arn, LastStatus: last, DesiredStatus: desired, Group: "family:f"},
			Spec: agentapi.TaskSpec{Family: "f"}, Node: node}
		b, err := encodeTask(rec)
		if err != nil {
			t.Fatal(err)
		}
		tt.apply(strs, cluster, id, b)
	}
	check := func(last, desired string, pending bool) {
		t.Helper()
		ct := tt.clusters[cluster]
		if ct == nil || ct.byID[id] == nil {
			t.Fatal("the task is not indexed")
		}
		it := ct.byID[id]
		if it.last != last || it.desired != desired || it.family != "f" {
			t.Errorf("indexed %s/%s (family %q), want %s/%s", it.last, it.desired, it.family, last, desired)
		}
		for d, tree := range ct.byDesired {
			_, in := tree.Get(it)
			if in != (d == desired) || (in && tree.Len() != 1) {
				t.Errorf("tree %s holds the task: %v (%d items)", d, in, tree.Len())
			}
		}
		for s, n := range tt.counts {
			if want := map[bool]int{true: 1}[s == last]; n != want {
				t.Errorf("count of %s is %d, want %d", s, n, want)
			}
		}
		if ct.stopped[id] != (last == agentapi.StatusStopped) {
			t.Errorf("in the STOPPED set: %v, last status %s", ct.stopped[id], last)
		}
		if got, in := tt.pending[id]; in != pending || (in && got != arn) {
			t.Errorf("pending: %q (%v), want %v", got, in, pending)
		}
	}
	write(agentapi.StatusProvisioning, agentapi.StatusRunning, "")
	check(agentapi.StatusProvisioning, agentapi.StatusRunning, true)
	write(agentapi.StatusProvisioning, agentapi.StatusRunning, "node-1") // placed
	check(agentapi.StatusProvisioning, agentapi.StatusRunning, false)
	write(agentapi.StatusRunning, agentapi.StatusRunning, "node-1")
	check(agentapi.StatusRunning, agentapi.StatusRunning, false)
	write(agentapi.StatusRunning, agentapi.StatusStopped, "node-1")
	check(agentapi.StatusRunning, agentapi.StatusStopped, false)
	write(agentapi.StatusStopped, agentapi.StatusStopped, "node-1")
	check(agentapi.StatusStopped, agentapi.StatusStopped, false)
	tt.remove(cluster, id)
	if len(tt.clusters) != 0 || tt.counts[agentapi.StatusStopped] != 0 {
		t.Errorf("after removal: %d clusters, %d STOPPED", len(tt.clusters), tt.counts[agentapi.StatusStopped])
	}

	// Stopped before placement (StopTask of a pending task, or no address
	// left in its subnets), and deleted while pending.
	write(agentapi.StatusProvisioning, agentapi.StatusRunning, "")
	check(agentapi.StatusProvisioning, agentapi.StatusRunning, true)
	write(agentapi.StatusProvisioning, agentapi.StatusStopped, "")
	check(agentapi.StatusProvisioning, agentapi.StatusStopped, false)
	write(agentapi.StatusProvisioning, agentapi.StatusRunning, "")
	tt.remove(cluster, id)
	if len(tt.pending) != 0 {
		t.Errorf("a deleted task is still pending: %v", tt.pending)
	}
	// RUNNING without a host (a record written straight to the store, as
	// the API benchmark seeds them): not placement's.
	write(agentapi.StatusRunning, agentapi.StatusRunning, "")
	check(agentapi.StatusRunning, agentapi.StatusRunning, false)
}

// Placement's queue is the task index's pending set, as of the store's
// revision when it asks: a task stored just before is in it, one placed
// just before is not, and neither is one stopped or to be stopped before
// it had a host, or one RUNNING without a host (seeded straight into the
// store). An older berth's pending keys are deleted on start.
func TestPendingArns(t *testing.T) {
	ctx, st, logger := embeddedStore(t)
	s := New(Config{Store: st, Logger: logger})
	ictx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); s.tasks.run(ictx) }()
	t.Cleanup(func() { cancel(); <-done })

	sc := scope{"000000000000", "us-east-1"}
	put := func(id, last, desired, node string) string {
		t.Helper()
		arn := "arn:aws:ecs:us-east-1:000000000000:task/c/" + id
		rec := taskRecord{Task: Task{TaskArn: arn, LastStatus: last, DesiredStatus: desired},
			Spec: agentapi.TaskSpec{TaskArn: arn, TaskID: id}, Node: node}
		if err := st.Put(ctx, taskKey(sc, "c", id), rec); err != nil {
			t.Fatal(err)
		}
		return arn
	}
	pending := func() []string {
		t.Helper()
		arns, err := s.tasks.pendingArns(ctx)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(arns)
		return arns
	}
	if _, err := st.C.Put(ctx, store.Key("pending", "old"), "arn:aws:ecs:us-east-1:000000000000:task/c/old"); err != nil {
		t.Fatal(err)
	}
	waiting := put("waiting", agentapi.StatusProvisioning, agentapi.StatusRunning, "")
	put("placed", agentapi.StatusProvisioning, agentapi.StatusRunning, "node-1")
	put("stopping", agentapi.StatusProvisioning, agentapi.StatusStopped, "")
	put("stopped", agentapi.StatusStopped, agentapi.StatusStopped, "")
	put("seeded", agentapi.StatusRunning, agentapi.StatusRunning, "")
	if got := pending(); !slices.Equal(got, []string{waiting}) {
		t.Errorf("pending %v, want only %s", got, waiting)
	}
	put("waiting", agentapi.StatusProvisioning, agentapi.StatusRunning, "node-2")
	if got := pending(); len(got) != 0 {
		t.Errorf("pending after placement: %v", got)
	}

	s.dropPendingKeys(ctx)
	if resp, err := st.C.Get(ctx, store.Prefix("pending"), clientv3.WithPrefix(), clientv3.WithCountOnly()); err != nil || resp.Count != 0 {
		t.Errorf("the old pending keys: %v (%v), want none", resp, err)
	}
}
