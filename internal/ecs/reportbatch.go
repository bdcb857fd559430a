package ecs

import (
	"context"
	"fmt"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/store"
)

// Agents' state reports, committed in batches.
//
// Every task reports two or three transitions, each a rewrite of its
// record: most of the store's writes when many tasks start at once, and
// etcd applies writes one transaction after another. Reports that arrive
// while others are being committed are gathered and committed together:
// one read of their records, one transaction that requires each record
// unchanged since. When a record changed meanwhile (StopTask, placement),
// that batch falls back to applying its reports one by one, as a lone
// report is. A report's answer waits for its batch's commit, so an agent
// never hears "accepted" for a report that is not stored.

// How reports become batches. A dispatcher queues the reports as they
// come and hands a batch (all queued, up to reportBatch) to a committer
// while fewer than reportEager batches are being committed, or, once a
// whole batch is queued, while fewer than reportWorkers are. Under light
// load a report is committed at once, alone or with the few that came
// during the commits in flight: etcd applies one transaction after
// another, and a report per transaction (1,500 a second at 500 launches a
// second) queued RunTask's writes behind them. Under a backlog (a million
// tasks starting) up to reportWorkers full batches are committed at once,
// as etcd's latency then bounds each. reportBatch is the most reports in
// one transaction (each takes a comparison and up to two operations,
// within etcd's 128 per transaction).
const (
	reportEager   = 4
	reportWorkers = 32
	reportBatch   = 48
)

// reportReq is one report waiting in the queue.
type reportReq struct {
	key  string
	rep  agentapi.StateReport
	now  time.Time
	done chan struct{} // closed once rec, wasRunning and err are set

	rec        *taskRecord
	wasRunning bool
	err        error
}

// applyAgentReport stores a report: through the batch workers while Run
// runs them, else on its own.
func (s *Service) applyAgentReport(ctx context.Context, key string, rep agentapi.StateReport, now time.Time) (*taskRecord, bool, error) {
	req := &reportReq{key: key, rep: rep, now: now, done: make(chan struct{})}
	select {
	case s.reports <- req:
	case <-s.reportersGone():
		s.applyReportAlone(ctx, req)
		return req.rec, req.wasRunning, req.err
	case <-ctx.Done():
		return nil, false, ctx.Err()
	}
	select {
	case <-req.done:
		return req.rec, req.wasRunning, req.err
	case <-ctx.Done():
		// The batch still commits it; the agent, not hearing back, sends
		// it again, which is then stale and accepted.
		return nil, false, ctx.Err()
	}
}

// reportersGone is closed while no batch worker runs.
func (s *Service) reportersGone() <-chan struct{} {
	s.reportersMu.Lock()
	defer s.reportersMu.Unlock()
	return s.reportersOff
}

// runReporters runs the dispatcher and the committers until ctx ends;
// then the reports still queued are answered with an error.
func (s *Service) runReporters(ctx context.Context) {
	s.reportersMu.Lock()
	s.reportersOff = make(chan struct{}) // open: committers run
	s.reportersMu.Unlock()
	batches := make(chan []*reportReq)
	finished := make(chan struct{}, reportWorkers) // a committer finished a batch
	var wg sync.WaitGroup
	for range reportWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range batches {
				s.commitReports(ctx, b)
				finished <- struct{}{}
			}
		}()
	}
	queue := s.dispatchReports(ctx, batches, finished)
	close(batches)
	wg.Wait()
	s.reportersMu.Lock()
	close(s.reportersOff)
	s.reportersMu.Unlock()
	// Those still queued, and senders that got in before the close.
	err := fmt.Errorf("the control plane is stopping: %w", ctx.Err())
	failReports(queue, err)
	for {
		select {
		case req := <-s.reports:
			failReports([]*reportReq{req}, err)
		default:
			return
		}
	}
}

// dispatchReports queues reports and hands them to the committers in
// batches (see reportEager) until ctx ends; it returns those still queued.
func (s *Service) dispatchReports(ctx context.Context, batches chan<- []*reportReq, finished <-chan struct{}) []*reportReq {
	var queue []*reportReq
	inflight := 0
	for {
		var out chan<- []*reportReq
		var next []*reportReq
		if len(queue) > 0 && (inflight < reportEager || (len(queue) >= reportBatch && inflight < reportWorkers)) {
			out, next = batches, queue[:min(len(queue), reportBatch)]
		}
		select {
		case <-ctx.Done():
			return queue
		case req := <-s.reports:
			queue = append(queue, req)
		case out <- next:
			queue = queue[len(next):] // next keeps its part; appends go after it
			inflight++
		case <-finished:
			inflight--
		}
	}
}

// applyReportAlone stores one report in its own transaction.
func (s *Service) applyReportAlone(ctx context.Context, req *reportReq) {
	defer close(req.done)
	req.rec, req.err = store.Mutate(ctx, s.st, req.key, func(rec *taskRecord) ([]clientv3.Op, error) {
		ops, was, err := applyOne(rec, req)
		req.wasRunning = was
		return ops, err
	})
}

// applyOne applies req to rec: the operations to commit with rec besides
// its own write, and whether the task was RUNNING or later before.
func applyOne(rec *taskRecord, req *reportReq) ([]clientv3.Op, bool, error) {
	if rec.Node != req.rep.NodeID {
		return nil, false, fmt.Errorf("%w %s", errNotOnNode, req.rep.NodeID)
	}
	was := agentapi.TaskStatusRank(rec.Task.LastStatus) >= agentapi.TaskStatusRank(agentapi.StatusRunning)
	if !applyReport(rec, &req.rep, req.now) {
		return nil, was, errStaleReport
	}
	if rec.Task.LastStatus == agentapi.StatusStopped {
		return []clientv3.Op{clientv3.OpDelete(store.Key("assign", rec.Node, rec.Spec.TaskID))}, was, nil
	}
	return nil, was, nil
}

// failReports answers reqs with err.
func failReports(reqs []*reportReq, err error) {
	for _, req := range reqs {
		req.err = err
		close(req.done)
	}
}

// commitReports stores a batch: one read of the records (those the record
// cache does not hold), one transaction. Each report's answer is set and
// its done closed.
func (s *Service) commitReports(ctx context.Context, batch []*reportReq) {
	type entry struct {
		rec     *taskRecord
		rev     int64
		changed bool
		cached  bool // from the record cache: perhaps not the latest
		extra   []clientv3.Op
	}
	entries := map[string]*entry{}
	var keys, unread []string
	for _, req := range batch {
		if _, ok := entries[req.key]; ok {
			continue
		}
		keys = append(keys, req.key)
		if rec, rev, ok := s.records.take(req.key); ok {
			entries[req.key] = &entry{rec: rec, rev: rev, cached: true}
			continue
		}
		entries[req.key] = nil
		unread = append(unread, req.key)
	}
	if len(unread) > 0 {
		ops := make([]clientv3.Op, len(unread))
		for i, k := range unread {
			ops[i] = s.st.OpGet(k)
		}
		resp, err := s.st.C.Txn(ctx).Then(ops...).Commit()
		if err != nil {
			failReports(batch, fmt.Errorf("read reported tasks: %w", err))
			return
		}
		for i, rr := range resp.Responses {
			kvs := rr.GetResponseRange().Kvs
			if len(kvs) == 0 {
				continue
			}
			rec := new(taskRecord)
			if err := unmarshalTask(kvs[0].Value, rec); err != nil {
				continue // answered below as the lone path would: a decode error
			}
			entries[unread[i]] = &entry{rec: rec, rev: kvs[0].ModRevision}
		}
	}
	// Apply in arrival order; each report's answer is the record as it
	// left it (a shallow copy: later reports assign fields, and copy the
	// slices they change, so they never mutate what an earlier copy
	// points to).
	pending := batch[:0:0]
	for _, req := range batch {
		e := entries[req.key]
		if e == nil {
			s.applyReportAlone(ctx, req) // absent or undecodable: its own answer
			continue
		}
		extra, was, err := applyOne(e.rec, req)
		req.wasRunning = was
		if err != nil && e.cached {
			// Perhaps only the cached record's verdict: etcd's decides.
			s.applyReportAlone(ctx, req)
			continue
		}
		if err != nil {
			req.err = err
			close(req.done)
			continue
		}
		e.changed = true
		e.extra = append(e.extra, extra...)
		cp := *e.rec
		req.rec = &cp
		pending = append(pending, req)
	}
	cmps := make([]clientv3.Cmp, 0, len(keys))
	writes := make([]clientv3.Op, 0, len(keys))
	for _, k := range keys {
		e := entries[k]
		if e == nil || !e.changed {
			continue
		}
		b, err := encodeTask(e.rec)
		if err != nil {
			failReports(pending, fmt.Errorf("encode %s: %w", k, err))
			return
		}
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(k), "=", e.rev))
		writes = append(writes, store.OpPutBytes(k, b))
		writes = append(writes, e.extra...)
	}
	if len(writes) == 0 {
		return
	}
	tr, err := s.st.C.Txn(ctx).If(cmps...).Then(writes...).Commit()
	switch {
	case err != nil:
		failReports(pending, fmt.Errorf("store reports: %w", err))
	case tr.Succeeded:
		for _, req := range pending {
			close(req.done)
		}
	default:
		// A record changed since it was read: apply these one by one.
		for _, req := range pending {
			req.rec, req.wasRunning, req.err = nil, false, nil
			s.applyReportAlone(ctx, req)
		}
	}
}
