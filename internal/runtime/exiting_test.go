package runtime

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestExiting: a live process with a command line is not exiting, nor is
// a zombie or a pid that does not exist; a process whose command line reads
// empty (as an exiting one's does, and a kernel thread's) is.
func TestExiting(t *testing.T) {
	if exiting(os.Getpid()) {
		t.Error("this test's own process reads as exiting")
	}
	if exiting(1 << 22) { // above pid_max's largest value
		t.Error("a pid that does not exist reads as exiting")
	}
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Skip(err)
	}
	t.Cleanup(func() { _ = cmd.Wait() })
	for deadline := time.Now().Add(5 * time.Second); !isZombie(cmd.Process.Pid) && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if !isZombie(cmd.Process.Pid) {
		t.Fatal("the child never became a zombie")
	}
	if exiting(cmd.Process.Pid) {
		t.Error("a zombie reads as exiting")
	}
	// kthreadd: alive, with an empty command line.
	if comm, err := os.ReadFile("/proc/2/comm"); err == nil && strings.TrimSpace(string(comm)) == "kthreadd" && !exiting(2) {
		t.Error("a process with an empty command line does not read as exiting")
	}
}

func isZombie(pid int) bool {
	st, ok := procState(pid)
	return ok && st == 'Z'
}
