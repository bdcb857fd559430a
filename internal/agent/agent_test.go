package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/runtime"
)

// fakeRuntime runs no processes: a container "runs" until its exit channel
// is fed, by the test or by Stop.
type fakeRuntime struct {
	mu       sync.Mutex
	running  map[string]chan runtime.ExitStatus
	started  []string
	pullErr  error
	runs     int
	existing []runtime.ContainerInfo
	exitOn   map[string]int // container id -> exit code right after start
}

func newFakeRuntime() *fakeRuntime {
	return &fakeRuntime{running: map[string]chan runtime.ExitStatus{}, exitOn: map[string]int{}}
}

func (f *fakeRuntime) Pull(_ context.Context, ref string, _ ...runtime.PullOption) (runtime.Image, error) {
	if f.pullErr != nil {
		return runtime.Image{}, f.pullErr
	}
	return runtime.Image{Ref: ref, Digest: "sha256:abc"}, nil
}

func (f *fakeRuntime) Run(_ context.Context, spec runtime.ContainerSpec) (uint32, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.runs++
	f.started = append(f.started, spec.Labels[labelContainerName])
	ch := make(chan runtime.ExitStatus, 1)
	f.running[spec.ID] = ch
	if code, ok := f.exitOn[spec.ID]; ok {
		ch <- runtime.ExitStatus{Code: code, ExitedAt: time.Now()}
	}
	return 100, nil
}

func (f *fakeRuntime) ch(id string) chan runtime.ExitStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	ch, ok := f.running[id]
	if !ok {
		ch = make(chan runtime.ExitStatus, 1)
		f.running[id] = ch
	}
	return ch
}

func (f *fakeRuntime) Wait(ctx context.Context, id string) (runtime.ExitStatus, error) {
	select {
	case st := <-f.ch(id):
		f.ch(id) <- st // later waiters see it too
		return st, nil
	case <-ctx.Done():
		return runtime.ExitStatus{}, ctx.Err()
	}
}

func (f *fakeRuntime) exit(id string, code int) {
	f.ch(id) <- runtime.ExitStatus{Code: code, ExitedAt: time.Now()}
}

func (f *fakeRuntime) Stop(_ context.Context, id string, _ syscall.Signal, _ time.Duration) (runtime.ExitStatus, error) {
	st := runtime.ExitStatus{Code: 143, ExitedAt: time.Now()}
	select {
	case f.ch(id) <- st:
	default:
	}
	return st, nil
}

func (f *fakeRuntime) Exec(context.Context, string, []string, time.Duration) (int, error) {
	return 0, nil
}
func (f *fakeRuntime) Delete(context.Context, string) error                  { return nil }
func (f *fakeRuntime) List(context.Context) ([]runtime.ContainerInfo, error) { return f.existing, nil }

type fakeSandboxes struct{ created, deleted int }

func (s *fakeSandboxes) Create(agentapi.TaskSpec, *agentapi.Firewall) (SandboxInfo, error) {
	s.created++
	return SandboxInfo{NetNS: "/run/netns/x", Cgroup: "/berth/x"}, nil
}
func (s *fakeSandboxes) ApplyFirewall(agentapi.TaskSpec, agentapi.Firewall) error { return nil }
func (s *fakeSandboxes) Delete(agentapi.TaskSpec) error                           { s.deleted++; return nil }
func (s *fakeSandboxes) Sweep(func(string) bool) error                            { return nil }

// fakeServer hands out specs and records reports.
type fakeServer struct {
	mu      sync.Mutex
	specs   []agentapi.TaskSpec
	known   []agentapi.KnownState
	reports []agentapi.StateReport
	changed chan struct{}
}

func newFakeServer(specs ...agentapi.TaskSpec) *fakeServer {
	return &fakeServer{specs: specs, changed: make(chan struct{}, 1)}
}

func (s *fakeServer) Register(context.Context, agentapi.RegisterRequest) (agentapi.RegisterResponse, error) {
	return agentapi.RegisterResponse{HeartbeatSeconds: 60}, nil
}
func (s *fakeServer) Heartbeat(context.Context, agentapi.RegisterRequest) error { return nil }

func (s *fakeServer) RegistryAuth(context.Context, agentapi.RegistryAuthRequest) (agentapi.RegistryAuth, error) {
	return agentapi.RegistryAuth{}, errors.New("no registry here")
}

func (s *fakeServer) Tasks(ctx context.Context, _ string, since int64, _ time.Duration) (agentapi.TasksResponse, error) {
	if since > 0 {
		select {
		case <-s.changed:
		case <-ctx.Done():
			return agentapi.TasksResponse{}, ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return agentapi.TasksResponse{Revision: since + 1, Tasks: append([]agentapi.TaskSpec{}, s.specs...), Known: s.known}, nil
}

func (s *fakeServer) Report(_ context.Context, r agentapi.StateReport) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reports = append(s.reports, r)
	return nil
}

func (s *fakeServer) setDesired(arn, status string) {
	s.mu.Lock()
	for i := range s.specs {
		if s.specs[i].TaskArn == arn {
			s.specs[i].DesiredStatus = status
		}
	}
	s.mu.Unlock()
	s.changed <- struct{}{}
}

// statuses returns the task statuses reported, deduplicated in order.
func (s *fakeServer) statuses() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, r := range s.reports {
		if len(out) == 0 || out[len(out)-1] != r.Status {
			out = append(out, r.Status)
		}
	}
	return out
}

func (s *fakeServer) last() agentapi.StateReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reports[len(s.reports)-1]
}

func (s *fakeServer) waitStatus(t *testing.T, status string) agentapi.StateReport {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		s.mu.Lock()
		n := len(s.reports)
		var r agentapi.StateReport
		if n > 0 {
			r = s.reports[n-1]
		}
		s.mu.Unlock()
		if n > 0 && r.Status == status {
			return r
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("task never reported %s; statuses %v", status, s.statuses())
	return agentapi.StateReport{}
}

func spec(containers ...agentapi.ContainerSpec) agentapi.TaskSpec {
	return agentapi.TaskSpec{TaskArn: "arn:aws:ecs:r:1:task/c/t1", TaskID: "t1", Region: "r", CPU: 256, MemoryMiB: 512,
		DesiredStatus: agentapi.StatusRunning, Containers: containers}
}

func startAgent(t *testing.T, srv *fakeServer, rt *fakeRuntime, sb *fakeSandboxes) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	a := New(Config{Node: agentapi.RegisterRequest{NodeID: "n"}, DataDir: t.TempDir(), Server: srv, Runtime: rt,
		Sandboxes: sb, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	done := make(chan struct{})
	go func() { _ = a.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

func equal(a, b []string) bool { return fmt.Sprint(a) == fmt.Sprint(b) }

// launchAndStop splits statuses after RUNNING.
func launchAndStop(statuses []string) (launch, stop []string) {
	for i, s := range statuses {
		if s == agentapi.StatusRunning {
			return statuses[:i+1], statuses[i+1:]
		}
	}
	return statuses, nil
}

func TestLifecycleToRunningAndUserStop(t *testing.T) {
	srv := newFakeServer(spec(agentapi.ContainerSpec{Name: "app", Image: "img", Essential: true}))
	rt, sb := newFakeRuntime(), &fakeSandboxes{}
	startAgent(t, srv, rt, sb)
	srv.waitStatus(t, agentapi.StatusRunning)
	srv.setDesired("arn:aws:ecs:r:1:task/c/t1", agentapi.StatusStopped)
	r := srv.waitStatus(t, agentapi.StatusStopped)
	// A launch's reports may skip statuses (a newer one overtakes one not
	// yet sent); a stop's are each sent.
	launch, stop := launchAndStop(srv.statuses())
	for i, st := range launch {
		if st == agentapi.StatusProvisioning || i > 0 && agentapi.TaskStatusRank(st) <= agentapi.TaskStatusRank(launch[i-1]) {
			t.Fatalf("launch statuses %v, want some of PENDING, ACTIVATING in order, then RUNNING", launch)
		}
	}
	if want := []string{"DEACTIVATING", "STOPPING", "DEPROVISIONING", "STOPPED"}; !equal(stop, want) {
		t.Fatalf("stop statuses %v, want %v", stop, want)
	}
	if r.StopCode != agentapi.StopUserInitiated || r.Containers[0].ExitCode == nil || *r.Containers[0].ExitCode != 143 {
		t.Fatalf("final report %+v", r)
	}
	if r.PullStartedAt == nil || r.PullStoppedAt == nil || r.StartedAt == nil || r.ExecutionStoppedAt == nil || r.StoppingAt == nil {
		t.Fatalf("timestamps missing: %+v", r)
	}
	if sb.created != 1 || sb.deleted != 1 {
		t.Fatalf("sandbox created %d deleted %d", sb.created, sb.deleted)
	}
	for i := 1; i < len(srv.reports); i++ {
		if srv.reports[i].Seq <= srv.reports[i-1].Seq {
			t.Fatal("report sequence numbers must grow")
		}
	}
}

func TestEssentialExitStopsTask(t *testing.T) {
	srv := newFakeServer(spec(
		agentapi.ContainerSpec{Name: "side", Image: "img", Essential: false},
		agentapi.ContainerSpec{Name: "app", Image: "img", Essential: true},
	))
	rt := newFakeRuntime()
	startAgent(t, srv, rt, &fakeSandboxes{})
	srv.waitStatus(t, agentapi.StatusRunning)
	rt.exit(containerID("t1", "side"), 1) // non-essential: the task keeps running
	time.Sleep(50 * time.Millisecond)
	if s := srv.last().Status; s != agentapi.StatusRunning {
		t.Fatalf("non-essential exit moved the task to %s", s)
	}
	rt.exit(containerID("t1", "app"), 3)
	r := srv.waitStatus(t, agentapi.StatusStopped)
	if r.StopCode != agentapi.StopEssentialContainerExited || r.StoppedReason != "Essential container in task exited" {
		t.Fatalf("stop %q %q", r.StopCode, r.StoppedReason)
	}
	codes := map[string]int{}
	for _, c := range r.Containers {
		codes[c.Name] = *c.ExitCode
	}
	if codes["app"] != 3 || codes["side"] != 1 {
		t.Fatalf("exit codes %v", codes)
	}
}

func TestPullFailure(t *testing.T) {
	srv := newFakeServer(spec(agentapi.ContainerSpec{Name: "app", Image: "nope", Essential: true}))
	rt := newFakeRuntime()
	rt.pullErr = errors.New("not found")
	startAgent(t, srv, rt, &fakeSandboxes{})
	r := srv.waitStatus(t, agentapi.StatusStopped)
	if r.StopCode != agentapi.StopTaskFailedToStart || r.StoppedReason != "CannotPullContainerError: not found" {
		t.Fatalf("stop %q %q", r.StopCode, r.StoppedReason)
	}
	if rt.runs != 0 {
		t.Fatal("a container started although its image could not be pulled")
	}
}

func TestDependsOn(t *testing.T) {
	tests := []struct {
		name     string
		cond     string
		initExit int
		want     string // final status to wait for
		started  []string
	}{
		{"success met", agentapi.ConditionSuccess, 0, agentapi.StatusRunning, []string{"init", "app"}},
		{"success never met", agentapi.ConditionSuccess, 1, agentapi.StatusStopped, []string{"init"}},
		{"complete met by failure", agentapi.ConditionComplete, 1, agentapi.StatusRunning, []string{"init", "app"}},
		{"start", agentapi.ConditionStart, -1, agentapi.StatusRunning, []string{"init", "app"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFakeServer(spec(
				agentapi.ContainerSpec{Name: "app", Image: "img", Essential: true,
					DependsOn: []agentapi.Dependency{{ContainerName: "init", Condition: tc.cond}}},
				agentapi.ContainerSpec{Name: "init", Image: "img", Essential: false},
			))
			rt := newFakeRuntime()
			if tc.initExit >= 0 {
				rt.exitOn[containerID("t1", "init")] = tc.initExit
			}
			startAgent(t, srv, rt, &fakeSandboxes{})
			r := srv.waitStatus(t, tc.want)
			rt.mu.Lock()
			started := append([]string{}, rt.started...)
			rt.mu.Unlock()
			if !equal(started, tc.started) {
				t.Fatalf("start order %v, want %v", started, tc.started)
			}
			if tc.want == agentapi.StatusStopped && r.StopCode != agentapi.StopTaskFailedToStart {
				t.Fatalf("stop code %q", r.StopCode)
			}
		})
	}
}

func TestAdoptRunningContainer(t *testing.T) {
	s := spec(agentapi.ContainerSpec{Name: "app", Image: "img", Essential: true})
	srv := newFakeServer(s)
	srv.known = []agentapi.KnownState{{TaskArn: s.TaskArn, LastStatus: agentapi.StatusRunning}}
	rt := newFakeRuntime()
	rt.existing = []runtime.ContainerInfo{{ID: containerID("t1", "app"), Status: "running", Pid: 42,
		Labels: map[string]string{labelTaskArn: s.TaskArn, labelContainerName: "app", labelTaskID: "t1"}}}
	startAgent(t, srv, rt, &fakeSandboxes{})
	time.Sleep(100 * time.Millisecond)
	if rt.runs != 0 {
		t.Fatal("adopted container was started again")
	}
	rt.exit(containerID("t1", "app"), 7)
	r := srv.waitStatus(t, agentapi.StatusStopped)
	if r.StopCode != agentapi.StopEssentialContainerExited || *r.Containers[0].ExitCode != 7 {
		t.Fatalf("%+v", r)
	}
}

func TestParseSignal(t *testing.T) {
	for in, want := range map[string]syscall.Signal{"SIGTERM": syscall.SIGTERM, "SIGQUIT": syscall.SIGQUIT, "INT": syscall.SIGINT, "9": syscall.SIGKILL, "bogus": syscall.SIGTERM} {
		if got := parseSignal(in); got != want {
			t.Errorf("parseSignal(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestContainerID(t *testing.T) {
	long := containerID("0123456789abcdef0123456789abcdef", string(make([]byte, 200)))
	if len(long) > 76 {
		t.Fatalf("id %q longer than containerd allows", long)
	}
	if id := containerID("t", "app"); id != "t-app" {
		t.Fatalf("short id %q", id)
	}
}

func (s *fakeServer) TargetHealth(context.Context, agentapi.TargetHealthReport) error { return nil }
