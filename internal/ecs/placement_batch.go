package ecs

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/scheduler"
	"github.com/berthdev/berth/internal/store"
)

// Placement's plan applier. A pass reads the pending tasks in batches, plans
// on one snapshot, and commits the plan in batches: one etcd transaction
// binds up to batchTasks tasks, conditioned on every one of their records
// being unchanged since the pass read it (optimistic concurrency, as a
// single task's commit is). Several batches are in flight at once, so that
// etcd's raft shares one fsync among them. A batch that fails its condition
// (a StopTask, or another replica, changed one of its tasks) is committed
// again task by task through commitPlacement, which re-reads each task.
// One round trip per task made a pass of 20,000 tasks take over two minutes
// on this machine, nearly all of it waiting for fsyncs.

const (
	// batchTasks is how many tasks one transaction binds: 2 ops each (the
	// record and the assign key) and a comparison, under etcd's default
	// limit of 128 ops per transaction (--max-txn-ops), and about 4 KiB
	// each, well under its 1.5 MiB request limit.
	batchTasks = 40
	// batchENITasks is how many tasks one transaction binds when it also
	// attaches their interfaces (eniBatcher): 2 ops each, and 4 for the
	// interface and one per security group.
	batchENITasks = 12
	// maxTxnOps is etcd's default limit of operations (and comparisons)
	// in one transaction.
	maxTxnOps = 128
	// batchReads is how many task records one read transaction fetches.
	batchReads = 128
	// readsInFlight is how many batches are read at once.
	readsInFlight = 8
	// commitsInFlight is how many batches are committed at once. Each
	// waits for raft and for the writes queued before it, and so does
	// every other write (RunTask's, the reports'): more in flight is more
	// placements a second, and a longer wait for everyone else.
	commitsInFlight = 8
	// backlogInFlight is how many are committed at once when a pass has a
	// backlog of more than backlogTasks tasks: under a million-task load a
	// commit took hundreds of milliseconds and 8 in flight bounded
	// placement to ~620 tasks a second, while in the throughput benchmark
	// 32 in flight made RunTask's p99 go from ~160 to ~220 ms, and with a
	// threshold of 1,280 tasks, which its passes reached now and then, the
	// p99 at 4 clients from ~220 to ~330 ms.
	backlogInFlight = 32
	backlogTasks    = 5000
)

// pendingTask is a pending task as a placement pass read it.
type pendingTask struct {
	rec *taskRecord
	rev int64 // the record's mod revision
}

// readPending reads the records of the pending tasks arns: those the
// record cache holds from it, the rest from etcd, batchReads per
// transaction.
func (s *Service) readPending(ctx context.Context, arns []string) map[string]pendingTask {
	out := make(map[string]pendingTask, len(arns))
	var mu sync.Mutex
	s.forChunks(len(arns), batchReads, readsInFlight, func(lo, hi int) {
		ops := make([]clientv3.Op, 0, hi-lo)
		keys := make([]string, 0, hi-lo)
		got := make(map[string]pendingTask, hi-lo)
		for _, arn := range arns[lo:hi] {
			key, ok := taskKeyFromArn(arn)
			if !ok {
				continue
			}
			if rec, rev, ok := s.records.take(key); ok {
				got[arn] = pendingTask{rec: rec, rev: rev}
				continue
			}
			ops = append(ops, s.st.OpGet(key))
			keys = append(keys, arn)
		}
		if len(ops) > 0 {
			s.readRecords(ctx, ops, keys, got)
		}
		mu.Lock()
		for k, v := range got {
			out[k] = v
		}
		mu.Unlock()
	})
	return out
}

// readRecords reads the records of the pending tasks arns (ops gets each
// one's record) into got; a task whose record is gone is left out.
func (s *Service) readRecords(ctx context.Context, ops []clientv3.Op, arns []string, got map[string]pendingTask) {
	resp, err := s.st.C.Txn(ctx).Then(ops...).Commit()
	if err != nil {
		s.log.Warn("read pending tasks", "err", err)
		return
	}
	for i, r := range resp.Responses {
		kvs := r.GetResponseRange().Kvs
		if len(kvs) == 0 {
			continue
		}
		var rec taskRecord
		if err := unmarshalTask(kvs[0].Value, &rec); err != nil {
			continue
		}
		got[arns[i]] = pendingTask{rec: &rec, rev: kvs[0].ModRevision}
	}
}

// forChunks calls fn on [lo, hi) chunks of n items of at most size, at most
// inFlight at a time, and waits for them.
func (s *Service) forChunks(n, size, inFlight int, fn func(lo, hi int)) {
	sem := make(chan struct{}, inFlight)
	var wg sync.WaitGroup
	for lo := 0; lo < n; lo += size {
		hi := min(lo+size, n)
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			fn(lo, hi)
		}()
	}
	wg.Wait()
}

// commitPlan commits a pass's placements. Fargate tasks still waiting for a
// host go in batches; the rest (EC2 tasks, which name their container
// instance, and tasks stopped meanwhile) one by one through commitPlacement.
func (s *Service) commitPlan(ctx context.Context, ps []scheduler.Placement, read map[string]pendingTask) {
	var batch []scheduler.Placement
	for _, p := range ps {
		pt, ok := read[p.TaskID]
		if ok && pt.rec.Task.LaunchType != compatEC2 && pt.rec.Node == "" && pt.rec.Task.DesiredStatus != agentapi.StatusStopped {
			batch = append(batch, p)
			continue
		}
		if err := s.commitPlacement(ctx, p, pt.rec); err != nil {
			s.log.Warn("commit placement", "task", p.TaskID, "err", err)
		}
	}
	size := batchTasks
	if _, ok := s.cfg.Networks.(eniBatcher); ok {
		size = batchENITasks
	}
	inFlight := commitsInFlight
	if len(batch) > backlogTasks {
		inFlight = backlogInFlight
	}
	s.forChunks(len(batch), size, inFlight, func(lo, hi int) {
		if err := s.commitBatch(ctx, batch[lo:hi], read); err != nil {
			s.log.Warn("commit placement batch", "tasks", hi-lo, "err", err)
		}
	})
}

// commitBatch binds ps (Fargate tasks that had no host when read) in one
// transaction; an awsvpc task first gets its interface, as in
// commitPlacement. If any record changed since it was read, every task of
// the batch is committed on its own instead.
func (s *Service) commitBatch(ctx context.Context, ps []scheduler.Placement, read map[string]pendingTask) error {
	cmps := make([]clientv3.Cmp, 0, len(ps))
	ops := make([]clientv3.Op, 0, 2*len(ps)) // the record and the assign key
	var bound []scheduler.Placement
	var enis []*agentapi.ENI
	var attached []bool
	var part store.TxnPart
	if b, ok := s.cfg.Networks.(eniBatcher); ok {
		enis, attached, part = s.prepareBatch(ctx, b, ps, read)
	} else {
		enis, attached = s.attachBatch(ctx, ps, read)
	}
	// The preparer hears the outcome once, also when this returns early.
	var once sync.Once
	finish := func(committed bool) {
		once.Do(func() {
			if part.Done != nil {
				part.Done(committed)
			}
		})
	}
	defer finish(false)
	type boundRecord struct {
		key string
		rec *taskRecord
	}
	var cached []boundRecord
	for i, p := range ps {
		pt := read[p.TaskID]
		r := *pt.rec // shallow: bindTask copies the slices it changes
		key, _ := taskKeyFromArn(p.TaskID)
		if !attached[i] {
			continue
		}
		eni := enis[i]
		assign, err := bindTask(&r, p, "", eni)
		if err != nil {
			return err
		}
		b, err := encodeTask(&r)
		if err != nil {
			return fmt.Errorf("encode %s: %w", key, err)
		}
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(key), "=", pt.rev))
		ops = append(ops, store.OpPutBytes(key, b), assign)
		bound = append(bound, p)
		cached = append(cached, boundRecord{key, &r})
	}
	cmps, ops = append(cmps, part.Cmps...), append(ops, part.Ops...)
	if len(ops) == 0 {
		return nil
	}
	if (len(ops) > maxTxnOps || len(cmps) > maxTxnOps) && len(ps) > 1 {
		// Tasks in many groups, with public addresses: in halves.
		finish(false)
		mid := len(ps) / 2
		return errors.Join(s.commitBatch(ctx, ps[:mid], read), s.commitBatch(ctx, ps[mid:], read))
	}
	resp, err := s.st.C.Txn(ctx).If(cmps...).Then(ops...).Commit()
	finish(err == nil && resp.Succeeded)
	if err != nil {
		return fmt.Errorf("commit %d placements: %w", len(bound), err)
	}
	if !resp.Succeeded {
		var errs []error
		for _, p := range bound {
			if err := s.commitPlacement(ctx, p, read[p.TaskID].rec); err != nil {
				errs = append(errs, fmt.Errorf("task %s: %w", p.TaskID, err))
			}
		}
		return errors.Join(errs...)
	}
	// Their first reports will want them next.
	for _, c := range cached {
		s.records.put(c.key, resp.Header.Revision, c.rec)
	}
	return nil
}

// eniBatcher is a Networks that can prepare the interfaces of a batch of
// tasks for the placement's own transaction (internal/vpc does): one
// transaction binds the batch and attaches its interfaces, where one per
// interface came before it.
type eniBatcher interface {
	PrepareENIs(ctx context.Context, reqs []agentapi.ENIRequest) ([]agentapi.ENI, []error, store.TxnPart)
}

// prepareBatch prepares the interfaces of ps's awsvpc tasks (see
// eniBatcher), with attachBatch's results; part holds their writes.
func (s *Service) prepareBatch(ctx context.Context, b eniBatcher, ps []scheduler.Placement, read map[string]pendingTask) (enis []*agentapi.ENI, attached []bool, part store.TxnPart) {
	enis, attached = make([]*agentapi.ENI, len(ps)), make([]bool, len(ps))
	var reqs []agentapi.ENIRequest
	var at []int // reqs[j] is ps[at[j]]'s
	for i, p := range ps {
		r := read[p.TaskID].rec
		if r.Awsvpc == nil {
			attached[i] = true
			continue
		}
		reqs = append(reqs, agentapi.ENIRequest{Account: r.Spec.Account, Region: r.Spec.Region, AttachmentID: r.eniAttachmentID(),
			Node: p.NodeID, Subnets: r.Awsvpc.subnetsIn(p.AZ), Groups: r.Awsvpc.Groups, AssignPublicIP: r.Awsvpc.AssignPublicIP})
		at = append(at, i)
	}
	if len(reqs) == 0 {
		return enis, attached, store.TxnPart{}
	}
	got, errs, part := b.PrepareENIs(ctx, reqs)
	for j, i := range at {
		p := ps[i]
		if reason, ok := failureReason(errs[j]); ok {
			key, _ := taskKeyFromArn(p.TaskID)
			if err := s.failToStart(ctx, key, reason); err != nil {
				s.log.Warn("fail task to start", "task", p.TaskID, "err", err)
			}
			continue
		}
		if errs[j] != nil {
			s.log.Warn("attach network interface", "task", p.TaskID, "err", errs[j])
			continue // still pending: the next pass retries
		}
		enis[i], attached[i] = &got[j], true
	}
	return enis, attached, part
}

// attachConcurrency is how many of a batch's interfaces are attached at
// once: one after another, a batch of 40 awsvpc tasks waited for 40 etcd
// round trips before its own commit.
const attachConcurrency = 8

// attachBatch attaches the interfaces of ps's awsvpc tasks, several at
// once. attached[i] is false for a task that must not be bound now: its
// attach failed (it stays pending, and the next pass retries) or cannot
// succeed (it is stopped, as RunTask's asynchronous failures are).
func (s *Service) attachBatch(ctx context.Context, ps []scheduler.Placement, read map[string]pendingTask) (enis []*agentapi.ENI, attached []bool) {
	enis, attached = make([]*agentapi.ENI, len(ps)), make([]bool, len(ps))
	sem := make(chan struct{}, attachConcurrency)
	var wg sync.WaitGroup
	for i, p := range ps {
		r := read[p.TaskID].rec
		if r.Awsvpc == nil || s.cfg.Networks == nil {
			attached[i] = true
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			a, err := s.cfg.Networks.AttachENI(ctx, r.Spec.Account, r.Spec.Region, r.eniAttachmentID(), p.NodeID,
				r.Awsvpc.subnetsIn(p.AZ), r.Awsvpc.Groups, r.Awsvpc.AssignPublicIP)
			if reason, ok := failureReason(err); ok {
				key, _ := taskKeyFromArn(p.TaskID)
				if err := s.failToStart(ctx, key, reason); err != nil {
					s.log.Warn("fail task to start", "task", p.TaskID, "err", err)
				}
				return
			}
			if err != nil {
				s.log.Warn("attach network interface", "task", p.TaskID, "err", err)
				return
			}
			enis[i], attached[i] = &a, true
		}()
	}
	wg.Wait()
	return enis, attached
}

// bindTask gives a task without a host its node, zone, container instance
// (EC2) and interface, and returns the op that puts its spec under the
// node's assign prefix.
func bindTask(r *taskRecord, p scheduler.Placement, instance string, eni *agentapi.ENI) (clientv3.Op, error) {
	r.Node = p.NodeID
	r.Task.ContainerInstanceArn, r.Spec.ContainerInstanceArn = instance, instance
	r.Task.AvailabilityZone = p.AZ
	r.Spec.AvailabilityZone = p.AZ
	if eni != nil {
		r.setENI(*eni)
	}
	r.Task.Version++
	return putJSON(store.Key("assign", p.NodeID, r.Spec.TaskID), r.Spec)
}

// assignedUsage is what a placement snapshot needs of an assigned task's
// spec: decoding only these fields of every assign key costs a fraction of
// decoding whole specs, and a pass decodes all of them.
type assignedUsage struct {
	CPU              int                    `json:"cpu"`
	MemoryMiB        int                    `json:"memoryMiB"`
	Group            string                 `json:"group,omitempty"`
	PortMappings     []agentapi.PortMapping `json:"portMappings,omitempty"`
	AvailabilityZone string                 `json:"availabilityZone,omitempty"`
}

// sleepCtx waits d or until ctx ends; it reports whether d passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
