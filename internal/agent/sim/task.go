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
	reached        string // the status the host has brought the task to
	status         string // last status the control plane accepted
	seq            int64
	stepQueued     bool      // its next step is in the timer queue
	reporting      bool      // a report of it is queued or in flight
	gone           bool      // the control plane no longer has it here
	unlisted       bool      // the last poll did not list it
	listedAt       time.Time // when a poll first listed it
	runningAt      time.Time // when its RUNNING report was accepted
	pullStartedAt  time.Time
	startedAt      time.Time
	stoppingAt     time.Time
	executionEnded time.Time
}

// next is the status the task moves to next, "" when it has arrived: the
// real agent's lifecycle (agent/task.go), one status at a time.
func (t *task) next() string {
	rank := agentapi.TaskStatusRank(t.reached)
	if t.desired == agentapi.StatusStopped {
		switch {
		case t.reached == agentapi.StatusStopped:
			return ""
		case rank < agentapi.TaskStatusRank(agentapi.StatusDeactivating):
			return agentapi.StatusDeactivating
		case t.reached == agentapi.StatusDeactivating:
			return agentapi.StatusStopping
		case t.reached == agentapi.StatusStopping:
			return agentapi.StatusDeprovisioning
		default:
			return agentapi.StatusStopped
		}
	}
	switch t.reached {
	case agentapi.StatusProvisioning:
		return agentapi.StatusPending
	case agentapi.StatusPending:
		return agentapi.StatusActivating
	case agentapi.StatusActivating:
		return agentapi.StatusRunning
	}
	return ""
}

// waitsForReport reports whether the task's next step waits until the
// control plane has taken the status it reached: from RUNNING on, as the
// real agent does (agent/reports.go); a launch goes on while its reports
// are sent.
func (t *task) waitsForReport() bool {
	return t.status != t.reached && agentapi.TaskStatusRank(t.reached) >= agentapi.TaskStatusRank(agentapi.StatusRunning)
}

// reach moves the task to status at now, with the timestamps the real agent
// takes on the way.
func (t *task) reach(status string, now time.Time) {
	t.reached = status
	switch status {
	case agentapi.StatusPending:
		t.pullStartedAt = now
	case agentapi.StatusRunning:
		t.startedAt = now
	case agentapi.StatusDeactivating:
		t.stoppingAt = now
	case agentapi.StatusStopping, agentapi.StatusDeprovisioning, agentapi.StatusStopped:
		if t.executionEnded.IsZero() {
			t.executionEnded = now
		}
	}
}

// report is the report of the status the task has reached, with the
// timestamps and container states the real agent sends.
func (t *task) report(node string, now time.Time) agentapi.StateReport {
	seq := now.UnixNano()
	if seq <= t.seq {
		seq = t.seq + 1
	}
	status := t.reached
	rep := agentapi.StateReport{NodeID: node, TaskArn: t.arn, Seq: seq, Status: status}
	cs := agentapi.ContainerPending
	switch status {
	case agentapi.StatusRunning, agentapi.StatusActivating:
		cs = agentapi.ContainerRunning
	case agentapi.StatusDeactivating:
		if !t.startedAt.IsZero() {
			cs = agentapi.ContainerRunning
		}
	case agentapi.StatusStopping, agentapi.StatusDeprovisioning, agentapi.StatusStopped:
		cs = agentapi.ContainerStopped
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

// item is a timed step of a host: a task's next step or its report, or
// (task nil) a heartbeat; each kind has its own timerQueue.
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
