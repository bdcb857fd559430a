package runtime

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func daemonPid(t *testing.T, dataDir string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, "containerd.pid"))
	if err != nil {
		t.Fatalf("pid file: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// alive reports whether pid is running (exists and is not a zombie
// waiting for an init that reaps slowly).
func alive(pid int) bool {
	st, ok := procState(pid)
	return ok && st != 0 && st != 'Z'
}

// TestAdoption restarts the agent side (a new Runtime on the same data
// directory reuses the running containerd) and then containerd itself
// (the shims keep the containers running), and checks that List and Wait
// find the containers every time.
func TestAdoption(t *testing.T) {
	e := newTestEnv(t)
	ctx := testContext(t)
	pid1 := daemonPid(t, e.dataDir)

	running := e.spec("sh", "-c", "echo before; while [ ! -e /tmp/go ]; do sleep 0.2; done; echo after; sleep 100")
	running.Labels = map[string]string{"berth.task": "t1", "berth.container": "web"}
	runningPid := e.run(t, ctx, running)
	exited := e.spec("sh", "-c", "exit 4")
	e.run(t, ctx, exited)
	if st, err := e.rt.Wait(ctx, exited.ID); err != nil || st.Code != 4 {
		t.Fatalf("Wait = %+v, %v", st, err)
	}

	checkList := func(t *testing.T, r *Runtime) {
		t.Helper()
		cs, err := r.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		found := map[string]ContainerInfo{}
		for _, c := range cs {
			found[c.ID] = c
		}
		c, ok := found[running.ID]
		if !ok || c.Status != "running" || c.Pid != runningPid || c.Labels["berth.container"] != "web" || c.Exit != nil || c.Image != e.image {
			t.Fatalf("running container listed as %+v (present %v)", c, ok)
		}
		c, ok = found[exited.ID]
		if !ok || c.Status != "stopped" || c.Exit == nil || c.Exit.Code != 4 {
			t.Fatalf("exited container listed as %+v exit %+v (present %v)", c, c.Exit, ok)
		}
	}

	// 1. Agent restart: close the Runtime, start a new one.
	if err := e.rt.Close(); err != nil {
		t.Fatal(err)
	}
	rt2, err := Start(ctx, e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.rt = rt2
	if pid := daemonPid(t, e.dataDir); pid != pid1 || !alive(pid1) {
		t.Fatalf("containerd was not reused: pid %d, was %d", pid, pid1)
	}
	checkList(t, rt2)
	if st, err := rt2.Wait(ctx, exited.ID); err != nil || st.Code != 4 {
		t.Fatalf("Wait on an exited container after restart = %+v, %v", st, err)
	}

	// 2. containerd restart: the shim keeps the container running.
	if err := rt2.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if alive(pid1) {
		t.Fatal("containerd still running after Shutdown")
	}
	if !alive(int(runningPid)) {
		t.Fatal("container died with containerd")
	}
	rt3, err := Start(ctx, e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.rt = rt3
	if pid := daemonPid(t, e.dataDir); pid == pid1 {
		t.Fatal("no new containerd started")
	}
	checkList(t, rt3)

	// The adopted container still runs processes and still logs.
	if code, err := rt3.Exec(ctx, running.ID, []string{"touch", "/tmp/go"}, 10*time.Second); err != nil || code != 0 {
		t.Fatalf("Exec after restarts = %d, %v", code, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(readLog(t, running.LogPath), "after\n") {
		if time.Now().After(deadline) {
			t.Fatalf("log after restarts: %q", readLog(t, running.LogPath))
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Wait started before the container exits gets its status.
	type result struct {
		st  ExitStatus
		err error
	}
	done := make(chan result, 1)
	go func() {
		st, err := rt3.Wait(ctx, running.ID)
		done <- result{st, err}
	}()
	time.Sleep(100 * time.Millisecond)
	if err := syscall.Kill(int(runningPid), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if r.err != nil || r.st.Code != 137 || r.st.OOMKilled {
			t.Fatalf("Wait = %+v, %v", r.st, r.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Wait did not return after the container was killed")
	}
}

// TestStartWithAddress connects to a running containerd without starting one.
func TestStartWithAddress(t *testing.T) {
	e := newTestEnv(t)
	ctx := testContext(t)
	rt, err := Start(ctx, Config{Address: e.rt.Address(), Namespace: e.cfg.Namespace, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rt.Pull(ctx, e.image); err != nil {
		t.Fatal(err)
	}
	// Shutdown of an external daemon only disconnects.
	if err := rt.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := e.rt.List(ctx); err != nil {
		t.Fatalf("containerd stopped by a Runtime that did not start it: %v", err)
	}
	if _, err := Start(ctx, Config{Address: filepath.Join(t.TempDir(), "none.sock")}); err == nil {
		t.Fatal("Start with a dead address succeeded")
	}
}

// TestHelperAgent is the "berth process" of TestDaemonSurvivesAgentKill:
// it starts a private containerd, says so, and waits to be killed.
func TestHelperAgent(t *testing.T) {
	dir := os.Getenv("BERTH_HELPER_DATADIR")
	if dir == "" {
		t.Skip("helper process of TestDaemonSurvivesAgentKill")
	}
	rt, err := Start(context.Background(), Config{DataDir: dir, Namespace: "berth-test"})
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("ready")
	time.Sleep(time.Minute) // killed before this ends
	rt.Close()
}

// TestDaemonSurvivesAgentKill SIGKILLs the whole process group of a berth
// process that started containerd; containerd keeps running and the next
// Start reuses it.
func TestDaemonSurvivesAgentKill(t *testing.T) {
	requireRoot(t)
	ctx := testContext(t)
	e := &testEnv{t: t, dataDir: t.TempDir(), cgroup: "/" + uniqueID("berthtest")}
	e.cfg = Config{DataDir: e.dataDir, Namespace: "berth-test", Logger: testLogger(t)}
	if err := CreateTaskCgroup(e.cgroup, 0, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.cleanup)

	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperAgent$", "-test.v")
	cmd.Env = append(os.Environ(), "BERTH_HELPER_DATADIR="+e.dataDir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	helper := cmd.Process.Pid
	waited := false
	t.Cleanup(func() {
		if !waited { // its group still exists: the helper leads it
			_ = syscall.Kill(-helper, syscall.SIGKILL)
			_ = cmd.Wait()
		}
	})
	sc := bufio.NewScanner(out)
	ready := false
	for sc.Scan() {
		t.Logf("helper: %s", sc.Text())
		if sc.Text() == "ready" {
			ready = true
			break
		}
	}
	if !ready {
		t.Fatal("helper did not start containerd")
	}
	pid := daemonPid(t, e.dataDir)
	if err := syscall.Kill(-helper, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	waited = true
	time.Sleep(100 * time.Millisecond)
	if !alive(pid) {
		t.Fatal("containerd died with the berth process group")
	}

	rt, err := Start(ctx, e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.rt = rt
	if got := daemonPid(t, e.dataDir); got != pid {
		t.Fatalf("containerd pid %d, want the running %d reused", got, pid)
	}
	if err := rt.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if alive(pid) {
		t.Fatal("containerd still running after Shutdown by a process that did not start it")
	}
}
