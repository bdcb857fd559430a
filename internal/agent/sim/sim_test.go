package sim

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/agentapi"
)

func TestNext(t *testing.T) {
	for _, tc := range []struct{ status, desired, want string }{
		{agentapi.StatusProvisioning, agentapi.StatusRunning, agentapi.StatusPending},
		{agentapi.StatusPending, agentapi.StatusRunning, agentapi.StatusActivating},
		{agentapi.StatusActivating, agentapi.StatusRunning, agentapi.StatusRunning},
		{agentapi.StatusRunning, agentapi.StatusRunning, ""},
		{agentapi.StatusPending, agentapi.StatusStopped, agentapi.StatusDeactivating},
		{agentapi.StatusRunning, agentapi.StatusStopped, agentapi.StatusDeactivating},
		{agentapi.StatusDeactivating, agentapi.StatusStopped, agentapi.StatusStopping},
		{agentapi.StatusStopping, agentapi.StatusStopped, agentapi.StatusDeprovisioning},
		{agentapi.StatusDeprovisioning, agentapi.StatusStopped, agentapi.StatusStopped},
		{agentapi.StatusStopped, agentapi.StatusStopped, ""},
	} {
		tk := &task{reached: tc.status, desired: tc.desired}
		if got := tk.next(); got != tc.want {
			t.Errorf("next of %s (desired %s) = %q, want %q", tc.status, tc.desired, got, tc.want)
		}
	}
}

// fakePlane is the control plane's side of the agent protocol for one task
// per host: it lists the task until told to stop it, records every report,
// and answers a poll at once when the spec changed since its revision. It
// answers a delta as the control plane does: the spec only if it changed
// after since, and the present ids only when the task left (dropped).
type fakePlane struct {
	mu         sync.Mutex
	rev        int64
	desired    map[string]string   // node → desired status of its task
	specRev    map[string]int64    // node → revision its task's spec last changed at
	droppedRev map[string]int64    // node → revision its task left it at (0: it has not)
	reports    map[string][]string // node → statuses reported, in order
	seqs       map[string][]int64
	heartbeats int
	// reportDelay is how long the plane takes to answer a report.
	reportDelay time.Duration
	// ghost: the first delta to this node lists a task it never had, so
	// the host must ask for every task again (wholeAfterGhost counts it).
	ghost           string
	ghostSent       bool
	wholeAfterGhost int
}

// change sets what every node's task is to be at a new revision: drop
// takes them off their hosts.
func (p *fakePlane) change(desired string, drop bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rev++
	for n := range p.desired {
		if drop {
			p.droppedRev[n] = p.rev
		} else {
			p.desired[n], p.specRev[n] = desired, p.rev
		}
	}
}

func (p *fakePlane) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer tok" {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch r.URL.Path {
	case agentapi.PathRegister:
		var req agentapi.RegisterRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		p.rev++
		p.desired[req.NodeID], p.specRev[req.NodeID] = agentapi.StatusRunning, p.rev
		_ = json.NewEncoder(w).Encode(agentapi.RegisterResponse{HeartbeatSeconds: 1})
	case agentapi.PathHeartbeat:
		p.heartbeats++
		_, _ = w.Write([]byte("{}"))
	case agentapi.PathTasks:
		q := r.URL.Query()
		node := q.Get("node")
		since, _ := strconv.ParseInt(q.Get("since"), 10, 64)
		if since >= p.rev { // nothing new: a short wait stands in for the long poll
			p.mu.Unlock()
			time.Sleep(20 * time.Millisecond)
			p.mu.Lock()
		}
		resp := agentapi.TasksResponse{Revision: p.rev, Delta: q.Get("delta") == "1" && since > 0}
		id := "task-" + node
		spec := agentapi.TaskSpec{TaskArn: "arn:" + id, TaskID: id, CPU: 256, MemoryMiB: 512,
			DesiredStatus: p.desired[node], Containers: []agentapi.ContainerSpec{{Name: "app"}}}
		dropped := p.droppedRev[node]
		switch {
		case !resp.Delta:
			if p.ghostSent && node == p.ghost {
				p.wholeAfterGhost++
			}
			if dropped == 0 {
				resp.Tasks = []agentapi.TaskSpec{spec}
			}
		case node == p.ghost && !p.ghostSent:
			p.ghostSent = true
			resp.Present = []string{id, "task-ghost"}
		case dropped > since: // it left: the present ids tell
		case dropped != 0:
			resp.PresentSame = q.Get("keep") == "1"
		default:
			if p.specRev[node] > since {
				resp.Tasks = []agentapi.TaskSpec{spec}
			}
			resp.PresentSame = q.Get("keep") == "1"
			if !resp.PresentSame {
				resp.Present = []string{id}
			}
		}
		_ = json.NewEncoder(w).Encode(resp)
	case agentapi.PathReport:
		p.mu.Unlock()
		time.Sleep(p.reportDelay)
		p.mu.Lock()
		var rep agentapi.StateReport
		_ = json.NewDecoder(r.Body).Decode(&rep)
		p.reports[rep.NodeID] = append(p.reports[rep.NodeID], rep.Status)
		p.seqs[rep.NodeID] = append(p.seqs[rep.NodeID], rep.Seq)
		_, _ = w.Write([]byte("{}"))
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

// Each host walks its task through the statuses to RUNNING, and, told to
// stop it, through every status to STOPPED, with growing sequence numbers;
// hosts heartbeat. A launch goes on while its reports are in flight, so a
// control plane slow to answer hears fewer of its statuses (the latest
// overtakes one not yet sent); a stop waits for each.
func TestFleetLifecycle(t *testing.T) {
	for _, tc := range []struct {
		name        string
		reportDelay time.Duration
		skips       bool // the launch must skip a status
	}{
		{"quick control plane", 0, false},
		{"slow control plane", 30 * time.Millisecond, true},
	} {
		t.Run(tc.name, func(t *testing.T) { testFleetLifecycle(t, tc.reportDelay, tc.skips) })
	}
}

func testFleetLifecycle(t *testing.T, reportDelay time.Duration, skips bool) {
	p := &fakePlane{desired: map[string]string{}, specRev: map[string]int64{}, droppedRev: map[string]int64{},
		reports: map[string][]string{}, seqs: map[string][]int64{}, reportDelay: reportDelay, ghost: "h2"}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	tiny := Range{time.Millisecond, 3 * time.Millisecond}
	f := New(Config{URL: srv.URL, Token: "tok", PollWait: time.Second, Workers: 4,
		Timing: Timing{Provision: tiny, Start: tiny, Activate: tiny, Stop: tiny}})
	nodes := []string{"h1", "h2", "h3"}
	for _, n := range nodes {
		f.Add(agentapi.RegisterRequest{NodeID: n, AvailabilityZones: []string{"az1"}, CPU: 1024, MemoryMiB: 2048})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	if err := f.WaitRunning(ctx, int64(len(nodes)), 5*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	p.change(agentapi.StatusStopped, false)
	for f.Stats().Stopped < int64(len(nodes)) {
		if ctx.Err() != nil {
			t.Fatalf("stats %+v: not every task stopped", f.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	p.change("", true)                  // the STOPPED tasks leave their hosts
	time.Sleep(1100 * time.Millisecond) // a heartbeat interval, and the hosts' polls
	cancel()
	<-done
	stopWant := []string{agentapi.StatusDeactivating, agentapi.StatusStopping, agentapi.StatusDeprovisioning, agentapi.StatusStopped}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, n := range nodes {
		got := p.reports[n]
		i := slices.Index(got, agentapi.StatusRunning)
		if i < 0 || !slices.Equal(got[i+1:], stopWant) {
			t.Errorf("%s reported %v, want some of PENDING, ACTIVATING, then RUNNING, then %v", n, got, stopWant)
			continue
		}
		for j, st := range got[:i+1] {
			if st == agentapi.StatusProvisioning || j > 0 && agentapi.TaskStatusRank(st) <= agentapi.TaskStatusRank(got[j-1]) {
				t.Errorf("%s's launch reported %v, want some of PENDING, ACTIVATING in order, then RUNNING", n, got[:i+1])
			}
		}
		if skips && i == 2 {
			t.Errorf("%s reported every launch status %v although each report took %v", n, got[:i+1], reportDelay)
		}
		if !slices.IsSorted(p.seqs[n]) || len(slices.Compact(slices.Clone(p.seqs[n]))) != len(p.seqs[n]) {
			t.Errorf("%s: sequence numbers do not grow: %v", n, p.seqs[n])
		}
	}
	if p.heartbeats < len(nodes) {
		t.Errorf("%d heartbeats, want at least one per host", p.heartbeats)
	}
	if st := f.Stats(); st.Running != 0 || st.Assigned != int64(len(nodes)) {
		t.Errorf("stats %+v: want 0 running, %d assigned", st, len(nodes))
	}
	for _, h := range f.Hosts() {
		if len(h.Tasks) != 1 || h.Tasks[0].Status != agentapi.StatusStopped || h.Tasks[0].Listed {
			t.Errorf("host %s: tasks %+v, want its one task STOPPED and no longer listed", h.Reg.NodeID, h.Tasks)
		}
	}
	if !p.ghostSent || p.wholeAfterGhost == 0 {
		t.Errorf("a delta listed a task host %s never saw (sent: %v), and the host asked for every task %d times since, want at least once",
			p.ghost, p.ghostSent, p.wholeAfterGhost)
	}
}
