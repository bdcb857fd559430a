package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berthdev/berth/internal/agent"
)

// hostProc is one process of a task as the host sees it: its pid and its
// start time (in clock ticks since boot), which together name the process
// even if the pid were reused.
type hostProc struct {
	Pid   int
	Start string
}

func (p hostProc) String() string { return fmt.Sprintf("%d@%s", p.Pid, p.Start) }

// procStart reads a process's start time from /proc/PID/stat ("" when the
// process is gone or a zombie).
func procStart(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	// The command (field 2) may hold spaces; the fields after it do not.
	s := string(b)
	rest := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	// rest[0] is field 3 (state); starttime is field 22.
	if len(rest) < 20 || rest[0] == "Z" {
		return ""
	}
	return rest[19]
}

// taskID is the last part of a task ARN.
func taskIDOf(arn string) string { return arn[strings.LastIndexByte(arn, '/')+1:] }

// taskProcs lists the live processes in a task's cgroup (its containers'
// processes, in the container cgroups below /berth/<task id>).
func taskProcs(arn string) []hostProc {
	var out []hostProc
	for _, pid := range cgroupProcs(agent.CgroupPath(taskIDOf(arn))) {
		if st := procStart(pid); st != "" {
			out = append(out, hostProc{Pid: pid, Start: st})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Pid < out[j].Pid })
	return out
}

// waitProcs polls until a task's cgroup holds at least one live process.
func waitProcs(t *testing.T, arn string, timeout time.Duration) []hostProc {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if ps := taskProcs(arn); len(ps) > 0 {
			return ps
		}
		if time.Now().After(deadline) {
			t.Fatalf("task %s: no processes in cgroup %s after %s", arn, agent.CgroupPath(taskIDOf(arn)), timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitNoProcs polls until a task's cgroup holds no live process.
func waitNoProcs(t *testing.T, arn string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ps := taskProcs(arn)
		if len(ps) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("task %s: processes %v still alive after %s", arn, ps, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func alive(p hostProc) bool { return procStart(p.Pid) == p.Start }

// runningSnapshot is what must not change about a running task across a
// restart of berth.
type runningSnapshot struct {
	arn       string
	procs     []hostProc
	runtimeID string
	startedAt time.Time
}

func snapshotRunning(t *testing.T, e *devEnv, cluster, arn string) runningSnapshot {
	t.Helper()
	task := e.waitStatus(cluster, arn, "RUNNING", time.Minute)
	if aws.ToString(task.LastStatus) != "RUNNING" || len(task.Containers) != 1 || task.StartedAt == nil {
		t.Fatalf("task %s: %s containers %+v", arn, aws.ToString(task.LastStatus), task.Containers)
	}
	return runningSnapshot{arn: arn, procs: waitProcs(t, arn, 10*time.Second),
		runtimeID: aws.ToString(task.Containers[0].RuntimeId), startedAt: *task.StartedAt}
}

// checkSame asserts the task is RUNNING as before: same ARN, container,
// start time and the very same processes, alive.
func (s runningSnapshot) checkSame(t *testing.T, e *devEnv, cluster, when string) {
	t.Helper()
	task := e.describe(cluster, s.arn)
	if aws.ToString(task.TaskArn) != s.arn || aws.ToString(task.LastStatus) != "RUNNING" ||
		aws.ToString(task.DesiredStatus) != "RUNNING" {
		t.Errorf("%s: task %s is %s/%s, want RUNNING", when, s.arn, aws.ToString(task.LastStatus), aws.ToString(task.DesiredStatus))
	}
	if len(task.Containers) != 1 || aws.ToString(task.Containers[0].LastStatus) != "RUNNING" ||
		aws.ToString(task.Containers[0].RuntimeId) != s.runtimeID || task.Containers[0].ExitCode != nil {
		t.Errorf("%s: task %s containers %+v, want RUNNING with runtimeId %s", when, s.arn, task.Containers, s.runtimeID)
	}
	if task.StartedAt == nil || !task.StartedAt.Equal(s.startedAt) {
		t.Errorf("%s: task %s startedAt %v, was %v", when, s.arn, task.StartedAt, s.startedAt)
	}
	now := taskProcs(s.arn)
	if fmt.Sprint(now) != fmt.Sprint(s.procs) {
		t.Errorf("%s: task %s processes %v, were %v", when, s.arn, now, s.procs)
	}
	for _, p := range s.procs {
		if !alive(p) {
			t.Errorf("%s: task %s process %v is gone", when, s.arn, p)
		}
	}
}

// TestRestartKeepsRunningTasks: SIGKILL of berth dev with two tasks running,
// start it again on the same data dir: both tasks are RUNNING with the same
// ARNs and the very same processes; StopTask still works on one while the
// other keeps running, across a second restart too.
func TestRestartKeepsRunningTasks(t *testing.T) {
	e := startDev(t)
	td := e.registerTask("long", "256", "512", e.container("main", "sleep", "300"))
	a := snapshotRunning(t, e, "r", e.runTask("r", td))
	b := snapshotRunning(t, e, "r", e.runTask("r", td))
	t.Logf("task %s: processes %v; task %s: processes %v", taskIDOf(a.arn), a.procs, taskIDOf(b.arn), b.procs)
	if a.procs[0].Pid == b.procs[0].Pid {
		t.Fatalf("two tasks share process %v", a.procs)
	}

	e.kill()
	// The containers outlive berth.
	for _, s := range []runningSnapshot{a, b} {
		for _, p := range s.procs {
			if !alive(p) {
				t.Fatalf("process %v of %s died with berth", p, s.arn)
			}
		}
	}
	e.start()
	a.checkSame(t, e, "r", "after restart")
	b.checkSame(t, e, "r", "after restart")
	lt, err := e.ECS.ListTasks(e.ctx(), &ecs.ListTasksInput{Cluster: aws.String("r")})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lt.TaskArns)
	want := []string{a.arn, b.arn}
	sort.Strings(want)
	if strings.Join(lt.TaskArns, " ") != strings.Join(want, " ") {
		t.Errorf("ListTasks after restart: %v, want %v", lt.TaskArns, want)
	}
	dc, err := e.ECS.DescribeClusters(e.ctx(), &ecs.DescribeClustersInput{Clusters: []string{"r"}})
	if err != nil || len(dc.Clusters) != 1 || dc.Clusters[0].RunningTasksCount != 2 {
		t.Errorf("DescribeClusters after restart: %v %+v", err, dc)
	}

	// StopTask still works on an adopted task, and only on that one. The
	// stop also shows the new agent has taken both tasks over (it learns of
	// them in one poll), so the check of the other one after it is one of
	// the adopted task, not just of what the control plane remembered.
	if _, err := e.ECS.StopTask(e.ctx(), &ecs.StopTaskInput{Cluster: aws.String("r"), Task: aws.String(a.arn)}); err != nil {
		t.Fatalf("StopTask after restart: %v", err)
	}
	stopped := e.waitStatus("r", a.arn, "STOPPED", 30*time.Second)
	if aws.ToString(stopped.LastStatus) != "STOPPED" || stopped.StopCode != types.TaskStopCodeUserInitiated {
		t.Errorf("stopped adopted task: %s %q", aws.ToString(stopped.LastStatus), stopped.StopCode)
	}
	if len(stopped.Containers) != 1 || aws.ToString(stopped.Containers[0].LastStatus) != "STOPPED" ||
		stopped.Containers[0].ExitCode == nil {
		t.Errorf("stopped adopted task containers %+v, want STOPPED with an exit code", stopped.Containers)
	}
	waitNoProcs(t, a.arn, 10*time.Second)
	for _, p := range a.procs {
		if alive(p) {
			t.Errorf("process %v of the stopped task still runs", p)
		}
	}
	b.checkSame(t, e, "r", "after stopping the other task")

	// And once more: the survivor survives a second SIGKILL, also once the
	// new agent is demonstrably at work (it ran a new task).
	e.kill()
	e.start()
	c := snapshotRunning(t, e, "r", e.runTask("r", td))
	b.checkSame(t, e, "r", "after a second restart")
	c.checkSame(t, e, "r", "new task after a second restart")
	if task := e.describe("r", a.arn); aws.ToString(task.LastStatus) != "STOPPED" || task.StopCode != types.TaskStopCodeUserInitiated {
		t.Errorf("stopped task after a second restart: %s %q", aws.ToString(task.LastStatus), task.StopCode)
	}
}

// TestRestartNoticesExitWhileDown: an essential container that exits while
// berth is down stops its task, with its exit code, once berth is back.
func TestRestartNoticesExitWhileDown(t *testing.T) {
	e := startDev(t)
	// The container exits 5 once /tmp/go exists in it: the test decides
	// when, so the exit falls in the window where berth is down.
	td := e.registerTask("exit5", "256", "512",
		e.container("main", "sh", "-c", "while [ ! -e /tmp/go ]; do sleep 0.1; done; exit 5"))
	arn := e.runTask("x", td)
	snap := snapshotRunning(t, e, "x", arn)

	e.kill()
	if err := os.WriteFile(filepath.Join(fmt.Sprintf("/proc/%d/root", snap.procs[0].Pid), "tmp", "go"), nil, 0o644); err != nil {
		t.Fatalf("signal the container: %v", err)
	}
	waitNoProcs(t, arn, 10*time.Second)
	// Still RUNNING as far as the (dead) control plane last knew.
	e.start()
	task := e.waitStatus("x", arn, "STOPPED", 30*time.Second)
	if aws.ToString(task.LastStatus) != "STOPPED" || task.StopCode != types.TaskStopCodeEssentialContainerExited {
		t.Fatalf("task that exited while berth was down: %s %q (%s)", aws.ToString(task.LastStatus), task.StopCode,
			aws.ToString(task.StoppedReason))
	}
	if len(task.Containers) != 1 || task.Containers[0].ExitCode == nil || *task.Containers[0].ExitCode != 5 {
		t.Errorf("containers %+v, want exit code 5", task.Containers)
	}
	if task.StoppedAt == nil || task.ExecutionStoppedAt == nil {
		t.Errorf("stoppedAt %v executionStoppedAt %v", task.StoppedAt, task.ExecutionStoppedAt)
	}
}

// TestRestartDuringStop: berth is killed while a task is stopping (inside
// its stopTimeout); after the restart the stop completes, UserInitiated, and
// the container is gone.
func TestRestartDuringStop(t *testing.T) {
	e := startDev(t)
	// sleep as PID 1 ignores SIGTERM, so the stop takes the full 2 s
	// stopTimeout before SIGKILL: berth dies inside that window.
	td := e.registerTask("slowstop", "256", "512", e.container("main", "sleep", "300"))
	arn := e.runTask("s", td)
	snap := snapshotRunning(t, e, "s", arn)
	if _, err := e.ECS.StopTask(e.ctx(), &ecs.StopTaskInput{Cluster: aws.String("s"), Task: aws.String(arn)}); err != nil {
		t.Fatal(err)
	}
	e.kill()
	if !alive(snap.procs[0]) {
		t.Logf("container already gone when berth was killed")
	}
	e.start()
	task := e.waitStatus("s", arn, "STOPPED", 30*time.Second)
	if aws.ToString(task.LastStatus) != "STOPPED" || task.StopCode != types.TaskStopCodeUserInitiated {
		t.Fatalf("task stopped across a restart: %s %q", aws.ToString(task.LastStatus), task.StopCode)
	}
	if len(task.Containers) != 1 || aws.ToString(task.Containers[0].LastStatus) != "STOPPED" {
		t.Errorf("containers %+v", task.Containers)
	}
	waitNoProcs(t, arn, 10*time.Second)
	// Its sandbox is gone too.
	if _, err := os.Stat(filepath.Join("/sys/fs/cgroup/memory", agent.CgroupPath(taskIDOf(arn)))); err == nil {
		t.Errorf("task cgroup %s still exists after STOPPED", agent.CgroupPath(taskIDOf(arn)))
	}
}

// containerCgroups maps each container cgroup of a task (a directory below
// the task's cgroup) to the number of live processes in it.
func containerCgroups(arn string) map[string]int {
	out := map[string]int{}
	dir := filepath.Join("/sys/fs/cgroup/pids", agent.CgroupPath(taskIDOf(arn)))
	entries, _ := os.ReadDir(dir)
	for _, en := range entries {
		if !en.IsDir() {
			continue
		}
		n := 0
		for _, pid := range cgroupProcs(filepath.Join(agent.CgroupPath(taskIDOf(arn)), en.Name())) {
			if procStart(pid) != "" {
				n++
			}
		}
		if n > 0 {
			out[en.Name()] = n
		}
	}
	return out
}

// TestRestartDuringLaunch kills berth at moments spread over a task's launch
// (while containerd prepares the snapshot, creates the container, starts
// the shim): after the restart every task reaches RUNNING with exactly one
// container, and stops cleanly.
func TestRestartDuringLaunch(t *testing.T) {
	e := startDev(t)
	// The shell exits on SIGTERM at once, so each stop is quick.
	td := e.registerTask("launch", "256", "512",
		e.container("main", "sh", "-c", `trap "exit 0" TERM; sleep 300 & wait`))
	// Every 10 ms from 0 to 150 ms: the windows that matter are a few tens
	// of milliseconds wide on a 2-core machine.
	for delay := time.Duration(0); delay <= 150*time.Millisecond; delay += 10 * time.Millisecond {
		arn := e.runTask("launch", td)
		time.Sleep(delay) // where in the launch berth dies; not an assertion
		e.kill()
		e.start()
		task := e.waitStatus("launch", arn, "RUNNING", 30*time.Second)
		if aws.ToString(task.LastStatus) != "RUNNING" {
			t.Errorf("killed %s into the launch: task %s %q (%s)", delay, aws.ToString(task.LastStatus),
				task.StopCode, aws.ToString(task.StoppedReason))
			continue
		}
		waitProcs(t, arn, 10*time.Second)
		if cgs := containerCgroups(arn); len(cgs) != 1 {
			t.Errorf("killed %s into the launch: container cgroups with processes %v, want exactly one", delay, cgs)
		}
		if _, err := e.ECS.StopTask(e.ctx(), &ecs.StopTaskInput{Cluster: aws.String("launch"), Task: aws.String(arn)}); err != nil {
			t.Fatalf("StopTask: %v", err)
		}
		task = e.waitStatus("launch", arn, "STOPPED", 30*time.Second)
		if task.StopCode != types.TaskStopCodeUserInitiated {
			t.Errorf("killed %s into the launch: stopped with %q", delay, task.StopCode)
		}
		waitNoProcs(t, arn, 10*time.Second)
	}
}

// TestRestartCleansTempMounts: a berth killed while containerd's client had
// a container's rootfs mounted for a moment (to read its /etc/group while
// building the spec) leaves that mount in the temp dir; the next start
// removes it, and only it. The leftover is made by hand here: an overlay of
// layers in this env's containerd dir, where containerd's client puts them.
func TestRestartCleansTempMounts(t *testing.T) {
	e := startDev(t)
	socks, _ := filepath.Glob(filepath.Join(e.DataDir, "*", "*", "containerd.sock"))
	if len(socks) != 1 {
		t.Fatalf("containerd sockets under the data dir: %v, want one", socks)
	}
	e.kill()
	overlay := func(layerDir string) string {
		t.Helper()
		l1, l2 := filepath.Join(layerDir, "layer1"), filepath.Join(layerDir, "layer2")
		for _, d := range []string{l1, l2} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		mp, err := os.MkdirTemp("", "containerd-mount")
		if err != nil {
			t.Fatal(err)
		}
		if err := syscall.Mount("overlay", mp, "overlay", syscall.MS_RDONLY, "lowerdir="+l1+":"+l2); err != nil {
			t.Fatalf("mount overlay: %v", err)
		}
		t.Cleanup(func() { _ = syscall.Unmount(mp, syscall.MNT_DETACH); _ = os.Remove(mp) })
		return mp
	}
	stale := overlay(filepath.Join(filepath.Dir(socks[0]), "root", "e2e-fake-snapshot"))
	other := overlay(t.TempDir()) // someone else's: must stay
	e.start()
	mounted := map[string]bool{}
	for _, m := range mountPoints() {
		mounted[m] = true
	}
	if mounted[stale] {
		t.Errorf("%s is still mounted after the restart", stale)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("%s still exists after the restart (%v)", stale, err)
	}
	if !mounted[other] {
		t.Errorf("%s, not berth's, was unmounted", other)
	}
	// And tasks still start.
	arn := e.runTask("m", e.registerTask("m", "256", "512", e.container("main", "sleep", "300")))
	if task := e.waitStatus("m", arn, "RUNNING", 30*time.Second); aws.ToString(task.LastStatus) != "RUNNING" {
		t.Errorf("task after the restart: %s", aws.ToString(task.LastStatus))
	}
}

// mountPoints lists the host's mount points.
func mountPoints() []string {
	b, _ := os.ReadFile("/proc/self/mountinfo")
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 4 {
			out = append(out, f[4])
		}
	}
	return out
}
