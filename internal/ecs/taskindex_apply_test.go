package ecs

import (
	"testing"

	"github.com/berthdev/berth/internal/agentapi"
)

// A task's writes move it in the index: in place while its desired status
// stays (its place in the tree does), to another tree when that changes;
// the counts by last status and the STOPPED set follow every write.
func TestApplyTask(t *testing.T) {
	clusters, counts, strs := map[string]*clusterTasks{}, map[string]int{}, interner{}
	const cluster, id = "a/r/c", "t1"
	write := func(last, desired string) {
		t.Helper()
		rec := &taskRecord{Task: Task{TaskArn: "arn:aws:ecs:r:a:task/c/" + id, LastStatus: last, DesiredStatus: desired, Group: "family:f"},
			Spec: agentapi.TaskSpec{Family: "f"}}
		b, err := encodeTask(rec)
		if err != nil {
			t.Fatal(err)
		}
		applyTask(clusters, counts, strs, cluster, id, b)
	}
	check := func(last, desired string) {
		t.Helper()
		ct := clusters[cluster]
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
		for s, n := range counts {
			if want := map[bool]int{true: 1}[s == last]; n != want {
				t.Errorf("count of %s is %d, want %d", s, n, want)
			}
		}
		if ct.stopped[id] != (last == agentapi.StatusStopped) {
			t.Errorf("in the STOPPED set: %v, last status %s", ct.stopped[id], last)
		}
	}
	write(agentapi.StatusProvisioning, agentapi.StatusRunning)
	check(agentapi.StatusProvisioning, agentapi.StatusRunning)
	write(agentapi.StatusRunning, agentapi.StatusRunning)
	check(agentapi.StatusRunning, agentapi.StatusRunning)
	write(agentapi.StatusRunning, agentapi.StatusStopped)
	check(agentapi.StatusRunning, agentapi.StatusStopped)
	write(agentapi.StatusStopped, agentapi.StatusStopped)
	check(agentapi.StatusStopped, agentapi.StatusStopped)
	removeTask(clusters, counts, cluster, id)
	if len(clusters) != 0 || counts[agentapi.StatusStopped] != 0 {
		t.Errorf("after removal: %d clusters, %d STOPPED", len(clusters), counts[agentapi.StatusStopped])
	}
}
