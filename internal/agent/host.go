package agent

import (
	"errors"
	"fmt"

	"github.com/berthdev/berth/internal/netns"
	"github.com/berthdev/berth/internal/runtime"
)

// HostSandboxes makes task sandboxes on this host: a named network namespace
// ("berth-<task id>") and a cgroup ("/berth/<task id>") holding the task's CPU
// quota and memory limit, under which each container gets its own cgroup.
type HostSandboxes struct{}

// SandboxName is the network namespace name of a task.
func SandboxName(taskID string) string { return "berth-" + taskID }

// CgroupPath is the cgroup of a task.
func CgroupPath(taskID string) string { return "/berth/" + taskID }

// Create makes (or finds, after a restart) a task's sandbox.
func (HostSandboxes) Create(taskID string, cpuUnits, memoryMiB int) (string, string, error) {
	sb, err := netns.CreateSandbox(SandboxName(taskID))
	if err != nil {
		return "", "", fmt.Errorf("network namespace: %w", err)
	}
	if err := runtime.CreateTaskCgroup(CgroupPath(taskID), cpuUnits, memoryMiB); err != nil {
		_ = netns.DeleteSandbox(SandboxName(taskID))
		return "", "", fmt.Errorf("task cgroup: %w", err)
	}
	return sb.Path(), CgroupPath(taskID), nil
}

// Delete removes a task's sandbox; absent parts are not an error.
func (HostSandboxes) Delete(taskID string) error {
	return errors.Join(netns.DeleteSandbox(SandboxName(taskID)), runtime.DeleteTaskCgroup(CgroupPath(taskID)))
}
