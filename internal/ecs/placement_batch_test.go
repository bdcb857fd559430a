package ecs

import (
	"fmt"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/scheduler"
	"github.com/berthdev/berth/internal/store"
)

// A batch binds every task in one transaction; when one of its tasks changed
// after the pass read it (here: stopped), the batch falls back to one commit
// per task, which binds the others and leaves the stopped one unplaced. A
// task another pass placed meanwhile stays on its host.
func TestCommitPlanBatches(t *testing.T) {
	for _, tc := range []struct {
		name   string
		stop   int // index of the task stopped between read and commit (-1: none)
		placed int // index of a task placed elsewhere between read and commit (-1: none)
	}{
		{"all bind in one transaction", -1, -1},
		{"a changed task sends the batch one by one", 3, -1},
		{"a task placed meanwhile stays on its host", -1, 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, st, logger := embeddedStore(t)
			s := New(Config{Store: st, Logger: logger})
			sc := scope{"000000000000", "us-east-1"}
			const n = batchTasks + 5 // two batches
			var arns []string
			for i := range n {
				id := fmt.Sprintf("t%02d", i)
				arn := "arn:aws:ecs:us-east-1:000000000000:task/c/" + id
				rec := taskRecord{Task: Task{TaskArn: arn, LastStatus: agentapi.StatusProvisioning, DesiredStatus: agentapi.StatusRunning},
					Spec: agentapi.TaskSpec{TaskArn: arn, TaskID: id, Account: sc.account, Region: sc.region, CPU: 256, MemoryMiB: 512}}
				if err := st.Put(ctx, taskKey(sc, "c", id), rec); err != nil {
					t.Fatal(err)
				}
				arns = append(arns, arn)
			}
			read := s.readPending(ctx, arns)
			if len(read) != n {
				t.Fatalf("read %d pending tasks, want %d", len(read), n)
			}
			change := func(i int, f func(r *taskRecord) []clientv3.Op) {
				_, err := store.Mutate(ctx, st, taskKey(sc, "c", fmt.Sprintf("t%02d", i)), func(r *taskRecord) ([]clientv3.Op, error) {
					return f(r), nil
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			if tc.stop >= 0 {
				change(tc.stop, func(r *taskRecord) []clientv3.Op {
					r.Task.DesiredStatus = agentapi.StatusStopped
					return nil
				})
			}
			if tc.placed >= 0 {
				change(tc.placed, func(r *taskRecord) []clientv3.Op {
					r.Node = "elsewhere"
					return nil
				})
			}
			var ps []scheduler.Placement
			for i, arn := range arns {
				ps = append(ps, scheduler.Placement{TaskID: arn, NodeID: fmt.Sprintf("node-%d", i%3), AZ: "az1"})
			}
			s.commitPlan(ctx, ps, read)
			for i, arn := range arns {
				id := fmt.Sprintf("t%02d", i)
				var r taskRecord
				if _, err := st.Get(ctx, taskKey(sc, "c", id), &r); err != nil {
					t.Fatal(err)
				}
				resp, err := st.C.Get(ctx, store.Key("assign", ps[i].NodeID, id), clientv3.WithCountOnly())
				if err != nil {
					t.Fatal(err)
				}
				wantNode, wantAssigned := ps[i].NodeID, int64(1)
				if i == tc.stop {
					wantNode, wantAssigned = "", 0
				}
				if i == tc.placed {
					wantNode, wantAssigned = "elsewhere", 0
				}
				if r.Node != wantNode || resp.Count != wantAssigned {
					t.Errorf("%s: node %q, assign keys %d; want node %q, %d assign keys",
						arn, r.Node, resp.Count, wantNode, wantAssigned)
				}
				if i != tc.stop && i != tc.placed && (r.Task.AvailabilityZone != "az1" || r.Spec.AvailabilityZone != "az1") {
					t.Errorf("%s: zone %q/%q, want az1", arn, r.Task.AvailabilityZone, r.Spec.AvailabilityZone)
				}
			}
		})
	}
}
