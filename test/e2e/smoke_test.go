package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestBerthRunWait runs the human CLI's run --wait: it returns the essential
// container's exit code, and the logs show what the container printed.
func TestBerthRunWait(t *testing.T) {
	e := startDev(t)
	out, err := e.berthErr("run", "--wait", e.Image, "sh", "-c", "echo hello from the task; exit 3")
	if err == nil || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("berth run --wait: err %v, want exit status 3 (output %q)", err, out)
	}
	id := strings.TrimSpace(strings.Split(out, "\n")[0])
	logs := e.berth("logs", id)
	if !strings.Contains(logs, "hello from the task") {
		t.Fatalf("logs %q lack the output", logs)
	}
	ps := e.berth("ps", "-a")
	if !strings.Contains(ps, id) || !strings.Contains(ps, "STOPPED") || !strings.Contains(ps, "main=3") {
		t.Fatalf("ps -a:\n%s", ps)
	}
	task := e.waitStatus("default", id, "STOPPED", 10*time.Second)
	if task.StopCode != "EssentialContainerExited" {
		t.Fatalf("stopCode %q", task.StopCode)
	}
}
