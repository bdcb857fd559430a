package e2e

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// oomReason is what ECS reports for a container the kernel OOM-killed.
const oomReason = "OutOfMemoryError: Container killed due to memory usage"

// memoryHog doubles a shell variable until the shell cannot hold it: it
// needs more memory than any limit the tests set (at 256 MiB of string the
// next step needs 768 MiB), with nothing but busybox sh.
var memoryHog = []string{"sh", "-c", `x=a; while true; do x=$x$x; done`}

// TestMemoryLimitOOM: a 512 MiB task whose only container grows without
// bound is OOM-killed: STOPPED, exit code 137, ECS's OOM reason.
func TestMemoryLimitOOM(t *testing.T) {
	e := startDev(t)
	td := e.registerTask("oom", "256", "512", e.container("hog", memoryHog...))
	arn := e.runTask("limits", td)
	task := e.waitStatus("limits", arn, "STOPPED", 90*time.Second)
	c := findContainer(task, "hog")
	if c.ExitCode == nil || *c.ExitCode != 137 {
		t.Fatalf("hog exit code: want 137; task %s", taskSummary(task))
	}
	if got := aws.ToString(c.Reason); got != oomReason {
		t.Fatalf("hog reason %q, want %q", got, oomReason)
	}
	if task.StopCode != types.TaskStopCodeEssentialContainerExited {
		t.Fatalf("stopCode %q, want EssentialContainerExited", task.StopCode)
	}
}

// TestContainerMemoryLimit: a container's own hard limit (memory: 32 MiB) is
// enforced below the task's 512 MiB: the container is OOM-killed at its own
// limit while the task's other container runs on.
func TestContainerMemoryLimit(t *testing.T) {
	e := startDev(t)
	hog := e.container("hog", memoryHog...)
	hog.Essential = aws.Bool(false)
	hog.Memory = aws.Int32(32)
	td := e.registerTask("ctrmem", "256", "512", e.container("main", "sleep", "300"), hog)
	arn := e.runTask("limits", td)
	id := idFromArn(arn)
	task := e.pollTask("limits", arn, 60*time.Second, "with hog stopped", func(t types.Task) bool {
		return aws.ToString(findContainer(t, "hog").LastStatus) == "STOPPED" || aws.ToString(t.LastStatus) == "STOPPED"
	}, nil)
	if got := aws.ToString(task.LastStatus); got != "RUNNING" {
		t.Fatalf("task %s, want RUNNING (hog is not essential); %s", got, taskSummary(task))
	}
	c := findContainer(task, "hog")
	if c.ExitCode == nil || *c.ExitCode != 137 || aws.ToString(c.Reason) != oomReason {
		t.Fatalf("hog: want exit 137 and %q; task %s", oomReason, taskSummary(task))
	}
	// The task never came near its own 512 MiB: the 32 MiB limit killed the hog.
	if peak := e.taskCgroupInt("memory", id, "memory.max_usage_in_bytes"); peak >= 128<<20 {
		t.Fatalf("task cgroup peaked at %d MiB: the container's 32 MiB limit was not what stopped the hog", peak>>20)
	}
	if got := aws.ToString(findContainer(task, "main").LastStatus); got != "RUNNING" {
		t.Fatalf("main is %s, want RUNNING", got)
	}
}

// TestCPUQuota: a busy loop in a 256-unit task uses at most 0.3 of a core
// over 2 s, measured from the task cgroup's cpuacct.usage; the same loop in a
// 1024-unit task uses a whole core (at least 0.6, so that the measurement
// can tell the two apart). The task cgroups hold the task's memory as a hard
// limit and a CFS quota of cpu/1024 periods.
func TestCPUQuota(t *testing.T) {
	e := startDev(t)
	loop := []string{"sh", "-c", "while :; do :; done"}
	small := e.runTask("limits", e.registerTask("spin256", "256", "512", e.container("spin", loop...)))
	big := e.runTask("limits", e.registerTask("spin1024", "1024", "2048", e.container("spin", loop...)))
	for _, arn := range []string{small, big} {
		if got := aws.ToString(e.waitStatus("limits", arn, "RUNNING", 60*time.Second).LastStatus); got != "RUNNING" {
			t.Fatalf("task %s is %s, want RUNNING", arn, got)
		}
	}

	// (c) The limits on the task cgroups.
	for _, tc := range []struct {
		arn       string
		cpu, mem  int64
		wantQuota int64 // per 100 ms period
	}{{small, 256, 512, 25000}, {big, 1024, 2048, 100000}} {
		id := idFromArn(tc.arn)
		if got := e.taskCgroupInt("memory", id, "memory.limit_in_bytes"); got != tc.mem<<20 {
			t.Errorf("task %d/%d: memory.limit_in_bytes %d, want %d", tc.cpu, tc.mem, got, tc.mem<<20)
		}
		period := e.taskCgroupInt("cpu", id, "cpu.cfs_period_us")
		quota := e.taskCgroupInt("cpu", id, "cpu.cfs_quota_us")
		if quota != tc.cpu*period/1024 || period != 100000 || quota != tc.wantQuota {
			t.Errorf("task %d/%d: cfs quota %d per period %d, want %d per 100000", tc.cpu, tc.mem, quota, period, tc.wantQuota)
		}
	}

	// (b) CPU used over 2 s by each busy loop, at the same time.
	usage := func(arn string) time.Duration {
		return time.Duration(e.taskCgroupInt("cpuacct", idFromArn(arn), "cpuacct.usage"))
	}
	deadline := time.Now().Add(10 * time.Second)
	for usage(small) == 0 || usage(big) == 0 { // the loops have begun
		if time.Now().After(deadline) {
			t.Fatalf("busy loops used no CPU in 10 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Every 2 s window must keep the 256-unit loop at 0.3 of a core or less.
	// Other work on the host can only lower what the loops get, so the
	// 1024-unit control needs one window of at least 0.6 core: on a busy
	// host the windows repeat, up to 15 of them, until one shows it.
	var bigBest float64
	for window := 1; window <= 15 && bigBest < 0.6; window++ {
		s0, b0, t0 := usage(small), usage(big), time.Now()
		time.Sleep(2 * time.Second) // the measurement window
		s1, b1, t1 := usage(small), usage(big), time.Now()
		wall := t1.Sub(t0).Seconds()
		smallCores, bigCores := (s1-s0).Seconds()/wall, (b1-b0).Seconds()/wall
		t.Logf("window %d, %.2fs: 256-unit task used %.3f cores, 1024-unit task %.3f cores", window, wall, smallCores, bigCores)
		if smallCores > 0.3 {
			t.Errorf("256-unit task used %.3f of a core over %.2fs, want at most 0.3", smallCores, wall)
		}
		bigBest = max(bigBest, bigCores)
	}
	if bigBest < 0.6 {
		t.Errorf("1024-unit task used at most %.3f of a core in any 2 s window, want at least 0.6", bigBest)
	}
	for _, arn := range []string{small, big} {
		if st := e.describe("limits", arn); aws.ToString(st.LastStatus) != "RUNNING" {
			t.Errorf("task %s: %s after the measurement, want RUNNING", arn, taskSummary(st))
		}
	}
}
