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
// and answers a poll at once when the spec changed since its revision.
type fakePlane struct {
	mu         sync.Mutex
	rev        int64
	desired    map[string]string   // node → desired status of its task
	reports    map[string][]string // node → statuses reported, in order
	seqs       map[string][]int64
	heartbeats int
	// reportDelay is how long the plane takes to answer a report.
	reportDelay time.Duration
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
		p.desired[req.NodeID] = agentapi.StatusRunning
		p.rev++
		_ = json.NewEncoder(w).Encode(agentapi.RegisterResponse{HeartbeatSeconds: 1})
	case agentapi.PathHeartbeat:
		p.heartbeats++
		_, _ = w.Write([]byte("{}"))
	case agentapi.PathTasks:
		node := r.URL.Query().Get("node")
		since, _ := strconv.ParseInt(r.URL.Query().Get("since"), 10, 64)
		if since >= p.rev { // nothing new: a short wait stands in for the long poll
			p.mu.Unlock()
			time.Sleep(20 * time.Millisecond)
			p.mu.Lock()
		}
		resp := agentapi.TasksResponse{Revision: p.rev, Tasks: []agentapi.TaskSpec{{TaskArn: "arn:" + node, CPU: 256, MemoryMiB: 512,
			DesiredStatus: p.desired[node], Containers: []agentapi.ContainerSpec{{Name: "app"}}}}}
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
	p := &fakePlane{desired: map[string]string{}, reports: map[string][]string{}, seqs: map[string][]int64{}, reportDelay: reportDelay}
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
	p.mu.Lock()
	for _, n := range nodes {
		p.desired[n] = agentapi.StatusStopped
	}
	p.rev++
	p.mu.Unlock()
	for f.Stats().Stopped < int64(len(nodes)) {
		if ctx.Err() != nil {
			t.Fatalf("stats %+v: not every task stopped", f.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(1100 * time.Millisecond) // a heartbeat interval
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
		if len(h.Tasks) != 1 || h.Tasks[0].Status != agentapi.StatusStopped {
			t.Errorf("host %s: tasks %+v, want its one task STOPPED", h.Reg.NodeID, h.Tasks)
		}
	}
}
