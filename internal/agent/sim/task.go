package sim

import (
	"container/heap"
	"context"
	"sync"
	"time"

	"github.com/berthdev/berth/internal/agentapi"
)

// task is one task on a simulated host: only what its reports need.
type task struct {
	arn            string
	cpu, mem       int
	az             string
	containers     []string
	desired        string
	stopCode       string
	stopReason     string
	status         string // last status the control plane accepted
	seq            int64
	queued         bool // a step of it is in the timer queue
	gone           bool // the control plane no longer has it here
	unlisted       bool // the last poll did not list it
	pullStartedAt  time.Time
	startedAt      time.Time
	stoppingAt     time.Time
	executionEnded time.Time
}

// next is the status the task moves to next, "" when it has arrived: the
// real agent's lifecycle (agent/task.go), one status at a time.
func (t *task) next() string {
	rank := agentapi.TaskStatusRank(t.status)
	if t.desired == agentapi.StatusStopped {
		switch {
		case t.status == agentapi.StatusStopped:
			return ""
		case rank < agentapi.TaskStatusRank(agentapi.StatusDeactivating):
			return agentapi.StatusDeactivating
		case t.status == agentapi.StatusDeactivating:
			return agentapi.StatusStopping
		case t.status == agentapi.StatusStopping:
			return agentapi.StatusDeprovisioning
		default:
			return agentapi.StatusStopped
		}
	}
	switch t.status {
	case agentapi.StatusProvisioning:
		return agentapi.StatusPending
	case agentapi.StatusPending:
		return agentapi.StatusActivating
	case agentapi.StatusActivating:
		return agentapi.StatusRunning
	}
	return ""
}

// reportFor is the report of the task reaching status, with the timestamps
// and container states the real agent sends.
func (t *task) reportFor(node, status string, now time.Time) agentapi.StateReport {
	seq := now.UnixNano()
	if seq <= t.seq {
		seq = t.seq + 1
	}
	rep := agentapi.StateReport{NodeID: node, TaskArn: t.arn, Seq: seq, Status: status}
	cs := agentapi.ContainerPending
	switch status {
	case agentapi.StatusPending:
		t.pullStartedAt = now
	case agentapi.StatusRunning:
		t.startedAt = now
		cs = agentapi.ContainerRunning
	case agentapi.StatusDeactivating:
		t.stoppingAt = now
		if !t.startedAt.IsZero() {
			cs = agentapi.ContainerRunning
		}
	case agentapi.StatusStopping, agentapi.StatusDeprovisioning, agentapi.StatusStopped:
		if t.executionEnded.IsZero() {
			t.executionEnded = now
		}
		cs = agentapi.ContainerStopped
	case agentapi.StatusActivating:
		cs = agentapi.ContainerRunning
	}
	set := func(tm time.Time) *time.Time {
		if tm.IsZero() {
			return nil
		}
		return &tm
	}
	rep.PullStartedAt, rep.PullStoppedAt = set(t.pullStartedAt), set(t.startedAt)
	rep.StartedAt, rep.StoppingAt, rep.ExecutionStoppedAt = set(t.startedAt), set(t.stoppingAt), set(t.executionEnded)
	if agentapi.TaskStatusRank(status) >= agentapi.TaskStatusRank(agentapi.StatusDeactivating) {
		rep.StopCode, rep.StoppedReason = t.stopCode, t.stopReason
		if rep.StopCode == "" {
			rep.StopCode, rep.StoppedReason = agentapi.StopUserInitiated, "Task stopped by user"
		}
	}
	for _, name := range t.containers {
		c := agentapi.ContainerState{Name: name, Status: cs, RuntimeID: "sim-" + name}
		if cs == agentapi.ContainerStopped {
			zero := 0
			c.ExitCode = &zero
		}
		rep.Containers = append(rep.Containers, c)
	}
	return rep
}

// item is a timed step: a task's next report, or (task nil) a heartbeat.
type item struct {
	at   time.Time
	host *host
	task *task
}

// timerQueue is one heap of timed steps for the whole fleet, drained by
// dispatch: a timer per task would do, but ten thousand hosts with a
// hundred tasks each make a million timers; the heap keeps one.
type timerQueue struct {
	mu   sync.Mutex
	h    itemHeap
	wake chan struct{}
}

type itemHeap []item

func (h itemHeap) Len() int           { return len(h) }
func (h itemHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h itemHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *itemHeap) Push(x any)        { *h = append(*h, x.(item)) }
func (h *itemHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	old[len(old)-1] = item{}
	*h = old[:len(old)-1]
	return it
}

func (q *timerQueue) wakeCh() chan struct{} {
	if q.wake == nil {
		q.wake = make(chan struct{}, 1)
	}
	return q.wake
}

func (q *timerQueue) push(it item) {
	q.mu.Lock()
	heap.Push(&q.h, it)
	first := q.h[0].at.Equal(it.at)
	w := q.wakeCh()
	q.mu.Unlock()
	if first {
		select {
		case w <- struct{}{}:
		default:
		}
	}
}

func (q *timerQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.h)
}

// dispatch hands each step to work when it is due, until ctx ends.
func (q *timerQueue) dispatch(ctx context.Context, work chan<- item) {
	q.mu.Lock()
	w := q.wakeCh()
	q.mu.Unlock()
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		q.mu.Lock()
		var wait time.Duration = time.Hour
		var due []item
		now := time.Now()
		for len(q.h) > 0 && !q.h[0].at.After(now) && len(due) < 1024 {
			due = append(due, heap.Pop(&q.h).(item))
		}
		if len(q.h) > 0 {
			wait = q.h[0].at.Sub(now)
		}
		q.mu.Unlock()
		for _, it := range due {
			select {
			case work <- it:
			case <-ctx.Done():
				return
			}
		}
		if len(due) > 0 {
			continue
		}
		t.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-w:
		case <-t.C:
		}
	}
}
