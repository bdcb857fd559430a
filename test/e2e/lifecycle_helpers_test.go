package e2e

// Helpers shared by the lifecycle tests (limits, isolation, deps, health,
// stop): polling DescribeTasks with a deadline, reading container logs and
// task cgroup files.

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// idFromArn is the task id: the last segment of a task ARN.
func idFromArn(arn string) string { return arn[strings.LastIndex(arn, "/")+1:] }

// findContainer returns the container named name of a described task.
func findContainer(task types.Task, name string) types.Container {
	for _, c := range task.Containers {
		if aws.ToString(c.Name) == name {
			return c
		}
	}
	return types.Container{}
}

// pollTask describes the task every 100 ms until cond holds and returns it;
// every description is also handed to each (may be nil), so a test can check
// an invariant on every state it sees. It fails the test after timeout.
func (e *devEnv) pollTask(cluster, arn string, timeout time.Duration, what string, cond func(types.Task) bool, each func(types.Task)) types.Task {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	var task types.Task
	for {
		task = e.describe(cluster, arn)
		if each != nil {
			each(task)
		}
		if cond(task) {
			return task
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("task %s: not %s after %s; last state: %s", arn, what, timeout, taskSummary(task))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// taskSummary is a one-line account of a task's state for failure messages.
func taskSummary(t types.Task) string {
	var b strings.Builder
	b.WriteString("status=" + aws.ToString(t.LastStatus) + " health=" + string(t.HealthStatus) +
		" stopCode=" + string(t.StopCode) + " reason=" + strconv.Quote(aws.ToString(t.StoppedReason)))
	for _, c := range t.Containers {
		b.WriteString(" [" + aws.ToString(c.Name) + " " + aws.ToString(c.LastStatus) + " health=" + string(c.HealthStatus))
		if c.ExitCode != nil {
			b.WriteString(" exit=" + strconv.Itoa(int(*c.ExitCode)))
		}
		if c.Reason != nil {
			b.WriteString(" reason=" + strconv.Quote(aws.ToString(c.Reason)))
		}
		b.WriteString("]")
	}
	return b.String()
}

// containerLogs returns what one container of a task has printed so far.
func (e *devEnv) containerLogs(cluster, arn, name string) string {
	e.t.Helper()
	return e.berth("logs", "--cluster", cluster, "--container", name, arn)
}

// waitContainerLog polls a container's log until it contains want and
// returns the log.
func (e *devEnv) waitContainerLog(cluster, arn, name, want string, timeout time.Duration) string {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		out := e.containerLogs(cluster, arn, name)
		if strings.Contains(out, want) {
			return out
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("container %s of %s: log lacks %q after %s; log:\n%s\ntask: %s",
				name, arn, want, timeout, out, taskSummary(e.describe(cluster, arn)))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// taskCgroupFile reads a file of a task's cgroup in one v1 hierarchy.
func taskCgroupFile(controller, taskID, file string) (string, error) {
	b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", controller, "berth", taskID, file))
	return strings.TrimSpace(string(b)), err
}

// taskCgroupInt reads an integer file of a task's cgroup.
func (e *devEnv) taskCgroupInt(controller, taskID, file string) int64 {
	e.t.Helper()
	s, err := taskCgroupFile(controller, taskID, file)
	if err != nil {
		e.t.Fatalf("task cgroup: %v", err)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		e.t.Fatalf("task cgroup %s/%s: %v", controller, file, err)
	}
	return n
}

// taskPids lists the host pids of every process in a task's cgroup,
// its containers' child cgroups included.
func taskPids(taskID string) []int { return cgroupProcs("/berth/" + taskID) }

// uptimeAfter parses the first field of a /proc/uptime line printed after
// marker in a log ("marker 123.45 678.90"), or -1.
func uptimeAfter(log, marker string) float64 {
	for _, line := range strings.Split(log, "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), marker+" ")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err == nil {
			return v
		}
	}
	return -1
}
