package ecs

import (
	"fmt"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/scheduler"
	"github.com/berthdev/berth/internal/store"
)

// The cache gives each record once, keeps the latest put of a key, and
// holds at most two generations.
func TestRecordCache(t *testing.T) {
	var c recordCache
	a, b := &taskRecord{Node: "a"}, &taskRecord{Node: "b"}
	if _, _, ok := c.take("k"); ok {
		t.Fatal("an empty cache gave a record")
	}
	c.put("k", 1, a)
	c.put("k", 2, b)
	if rec, rev, ok := c.take("k"); !ok || rec != b || rev != 2 {
		t.Fatalf("take = %v, %d, %v; want the latest put (b, 2)", rec, rev, ok)
	}
	if _, _, ok := c.take("k"); ok {
		t.Fatal("a record was given twice")
	}
	for i := range 2*recordCacheGen + 10 {
		c.put(fmt.Sprint(i), int64(i), a)
	}
	if n := c.len(); n > 2*recordCacheGen {
		t.Errorf("the cache holds %d records, over two generations of %d", n, recordCacheGen)
	}
	if _, _, ok := c.take("0"); ok {
		t.Error("the oldest record outlived two generations")
	}
	if _, _, ok := c.take(fmt.Sprint(2*recordCacheGen + 9)); !ok {
		t.Error("the newest record is not cached")
	}
	// A key put again moves to the newest generation.
	c.put("again", 1, a)
	for i := range recordCacheGen {
		c.put(fmt.Sprint("x", i), 1, a)
	}
	c.put("again", 2, b)
	for i := range recordCacheGen - 1 {
		c.put(fmt.Sprint("y", i), 1, a)
	}
	if rec, _, ok := c.take("again"); !ok || rec != b {
		t.Errorf("a key put again: %v, %v", rec, ok)
	}
}

// Reports use a record the cache holds at its stored revision, and fall
// back to etcd's when the cached one is stale: another host's (placed
// elsewhere since) or an older revision.
func TestCommitReportsCachedRecords(t *testing.T) {
	ctx, st, logger := embeddedStore(t)
	s := New(Config{Store: st, Logger: logger})
	key := func(i int) string {
		return store.Scoped("123456789012", "us-east-1", "tasks", "default", fmt.Sprintf("task-%d", i))
	}
	arn := func(i int) string { return fmt.Sprintf("arn:aws:ecs:us-east-1:123456789012:task/default/task-%d", i) }
	record := func(i int, node string) *taskRecord {
		return &taskRecord{Node: node, Task: Task{TaskArn: arn(i), LastStatus: agentapi.StatusProvisioning},
			Spec: agentapi.TaskSpec{TaskID: fmt.Sprintf("task-%d", i)}}
	}
	revs := map[int]int64{}
	for i := range 3 {
		if err := st.Put(ctx, key(i), record(i, "n1")); err != nil {
			t.Fatal(err)
		}
		var rec taskRecord
		rev, err := st.Get(ctx, key(i), &rec)
		if err != nil {
			t.Fatal(err)
		}
		revs[i] = rev
	}
	// task-0: cached as stored, with a mark that shows the cache was read.
	fresh := record(0, "n1")
	fresh.Task.Group = "from-cache"
	s.records.put(key(0), revs[0], fresh)
	// task-1: cached before it was placed (RunTask's record, no host yet).
	s.records.put(key(1), revs[1], record(1, ""))
	// task-2: cached at an older revision.
	s.records.put(key(2), revs[2]-1, record(2, "n1"))

	now := time.Now()
	var batch []*reportReq
	for i := range 3 {
		batch = append(batch, &reportReq{key: key(i), now: now, done: make(chan struct{}),
			rep: agentapi.StateReport{NodeID: "n1", TaskArn: arn(i), Seq: 1, Status: agentapi.StatusRunning}})
	}
	// task-2's stale revision fails its batch's transaction, and so the
	// whole batch goes to etcd's records: it is committed on its own.
	s.commitReports(ctx, batch[:2])
	s.commitReports(ctx, batch[2:])
	for i, r := range batch {
		<-r.done
		if r.err != nil {
			t.Errorf("task-%d's report: %v", i, r.err)
		}
		var rec taskRecord
		if _, err := st.Get(ctx, key(i), &rec); err != nil || rec.Task.LastStatus != agentapi.StatusRunning {
			t.Errorf("task-%d stored %s (%v), want RUNNING", i, rec.Task.LastStatus, err)
		}
		if got, want := rec.Task.Group, map[bool]string{true: "from-cache"}[i == 0]; got != want {
			t.Errorf("task-%d stored group %q, want %q", i, got, want)
		}
	}
	if n := s.records.len(); n != 0 {
		t.Errorf("%d records left in the cache; reports take theirs", n)
	}
}

// Placement takes RunTask's records from the cache (a mark only the cached
// copy has is what it stores), a stale one fails its batch's comparison and
// is placed from etcd's record, and a batch it commits leaves its records
// cached, at their new revision, for their first reports.
func TestPlacementRecordCache(t *testing.T) {
	ctx, st, logger := embeddedStore(t)
	s := New(Config{Store: st, Logger: logger})
	sc := scope{"000000000000", "us-east-1"}
	record := func(id string) *taskRecord {
		arn := "arn:aws:ecs:us-east-1:000000000000:task/c/" + id
		return &taskRecord{Task: Task{TaskArn: arn, LastStatus: agentapi.StatusProvisioning, DesiredStatus: agentapi.StatusRunning},
			Spec: agentapi.TaskSpec{TaskArn: arn, TaskID: id, Account: sc.account, Region: sc.region, CPU: 256, MemoryMiB: 512}}
	}
	place := func(ids ...string) {
		t.Helper()
		var arns []string
		var ps []scheduler.Placement
		for _, id := range ids {
			arn := record(id).Task.TaskArn
			arns = append(arns, arn)
			ps = append(ps, scheduler.Placement{TaskID: arn, NodeID: "node-1", AZ: "az1"})
		}
		read := s.readPending(ctx, arns)
		if len(read) != len(ids) {
			t.Fatalf("read %d pending tasks, want %d", len(read), len(ids))
		}
		s.commitPlan(ctx, ps, read)
	}
	stored := func(id string) (*taskRecord, int64) {
		t.Helper()
		var r taskRecord
		rev, err := st.Get(ctx, taskKey(sc, "c", id), &r)
		if err != nil {
			t.Fatal(err)
		}
		return &r, rev
	}
	for _, id := range []string{"fresh", "stale"} {
		if err := st.Put(ctx, taskKey(sc, "c", id), record(id)); err != nil {
			t.Fatal(err)
		}
	}
	_, rev := stored("fresh")
	marked := record("fresh")
	marked.Task.Group = "from-cache"
	s.records.put(taskKey(sc, "c", "fresh"), rev, marked)
	place("fresh")
	if r, _ := stored("fresh"); r.Node != "node-1" || r.Task.Group != "from-cache" {
		t.Errorf("fresh: stored node %q, group %q; want node-1 and the cached record's group", r.Node, r.Task.Group)
	}
	r, rev := stored("fresh")
	if c, crev, ok := s.records.take(taskKey(sc, "c", "fresh")); !ok || crev != rev || c.Node != r.Node {
		t.Errorf("after its batch: cached %v at %d (%v), want the stored record at %d", c, crev, ok, rev)
	}

	_, rev = stored("stale")
	s.records.put(taskKey(sc, "c", "stale"), rev-1, record("stale"))
	place("stale")
	if r, _ := stored("stale"); r.Node != "node-1" {
		t.Errorf("stale: stored node %q, want node-1", r.Node)
	}
}
