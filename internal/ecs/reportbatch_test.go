package ecs

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/store"
)

// A batch of reports is committed as each would be alone: several reports
// of one task in order, each answered with the record as it left it; a
// stale report, one from another host and one of an unknown task get the
// lone path's answers; the assign key of a STOPPED task goes.
func TestCommitReports(t *testing.T) {
	ctx, st, logger := embeddedStore(t)
	s := New(Config{Store: st, Logger: logger})
	key := func(i int) string {
		return store.Scoped("123456789012", "us-east-1", "tasks", "default", fmt.Sprintf("task-%d", i))
	}
	for i := range 4 {
		rec := taskRecord{Node: "n1", Task: Task{TaskArn: fmt.Sprintf("arn:aws:ecs:us-east-1:123456789012:task/default/task-%d", i), LastStatus: agentapi.StatusPending},
			Spec: agentapi.TaskSpec{TaskID: fmt.Sprintf("task-%d", i)}}
		if err := st.Put(ctx, key(i), rec); err != nil {
			t.Fatal(err)
		}
		if err := st.Put(ctx, store.Key("assign", "n1", rec.Spec.TaskID), rec.Spec); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	req := func(i int, node, status string, seq int64) *reportReq {
		return &reportReq{key: key(i), now: now, done: make(chan struct{}),
			rep: agentapi.StateReport{NodeID: node, TaskArn: fmt.Sprintf("arn:aws:ecs:us-east-1:123456789012:task/default/task-%d", i), Seq: seq, Status: status}}
	}
	batch := []*reportReq{
		req(0, "n1", agentapi.StatusActivating, 1),
		req(0, "n1", agentapi.StatusRunning, 2),
		req(0, "n1", agentapi.StatusActivating, 1), // stale: seen
		req(1, "n1", agentapi.StatusRunning, 5),
		req(2, "n2", agentapi.StatusRunning, 1), // not its host
		req(3, "n1", agentapi.StatusStopped, 1),
		req(9, "n1", agentapi.StatusRunning, 1), // no such task
	}
	s.commitReports(ctx, batch)
	for i, r := range batch {
		select {
		case <-r.done:
		default:
			t.Fatalf("report %d not answered", i)
		}
	}
	wantErr := []error{nil, nil, errStaleReport, nil, errNotOnNode, nil, store.ErrNotFound}
	for i, r := range batch {
		if (wantErr[i] == nil) != (r.err == nil) || (wantErr[i] != nil && !errors.Is(r.err, wantErr[i])) {
			t.Errorf("report %d: err %v, want %v", i, r.err, wantErr[i])
		}
	}
	if batch[0].rec.Task.LastStatus != agentapi.StatusActivating || batch[0].wasRunning ||
		batch[1].rec.Task.LastStatus != agentapi.StatusRunning || batch[1].wasRunning {
		t.Errorf("task-0's answers: %s (was running %v), %s (was running %v)", batch[0].rec.Task.LastStatus, batch[0].wasRunning,
			batch[1].rec.Task.LastStatus, batch[1].wasRunning)
	}
	for i, want := range map[int]string{0: agentapi.StatusRunning, 1: agentapi.StatusRunning, 2: agentapi.StatusPending, 3: agentapi.StatusStopped} {
		var rec taskRecord
		if _, err := st.Get(ctx, key(i), &rec); err != nil || rec.Task.LastStatus != want {
			t.Errorf("task-%d stored %s (%v), want %s", i, rec.Task.LastStatus, err, want)
		}
	}
	var spec agentapi.TaskSpec
	if _, err := st.Get(ctx, store.Key("assign", "n1", "task-3"), &spec); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the stopped task's assign key: %v", err)
	}
	if _, err := st.Get(ctx, store.Key("assign", "n1", "task-0"), &spec); err != nil {
		t.Errorf("a running task's assign key: %v", err)
	}
}

// The dispatcher hands a report over at once while fewer than reportEager
// batches are being committed, gathers those that come meanwhile into one
// batch, lets a backlog of a whole batch through past reportEager, and
// gives back what is still queued when it stops.
func TestDispatchReports(t *testing.T) {
	s := &Service{reports: make(chan *reportReq)}
	batches := make(chan []*reportReq)
	finished := make(chan struct{}, reportWorkers)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	left := make(chan []*reportReq, 1)
	go func() { left <- s.dispatchReports(ctx, batches, finished) }()
	send := func(n int) {
		for range n {
			s.reports <- &reportReq{}
		}
	}
	next := func(what string, want int) {
		t.Helper()
		select {
		case b := <-batches:
			if len(b) != want {
				t.Fatalf("%s: a batch of %d, want %d", what, len(b), want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: no batch", what)
		}
	}
	for i := range reportEager {
		send(1)
		next(fmt.Sprintf("report %d, light load", i), 1)
	}
	send(10) // reportEager batches in flight: these wait
	select {
	case b := <-batches:
		t.Fatalf("a batch of %d handed over with %d in flight", len(b), reportEager)
	case <-time.After(50 * time.Millisecond):
	}
	finished <- struct{}{}
	next("the ten gathered", 10)
	send(reportBatch + 5) // a backlog goes past reportEager
	next("a whole batch of the backlog", reportBatch)
	cancel()
	if got := <-left; len(got) != 5 {
		t.Fatalf("%d reports left queued, want 5", len(got))
	}
}
