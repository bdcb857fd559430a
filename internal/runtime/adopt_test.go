package runtime

import (
	"os"
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

// TestAdoption restarts the agent side (a new Runtime on the same data
// directory reuses the running containerd) and then containerd itself
// (the shims keep the containers running), and checks that List and Wait
// find the containers every time.
func TestAdoption(t *testing.T) {
	e := newTestEnv(t)
	ctx := testContext(t)
	pid1 := daemonPid(t, e.dataDir)

	running := e.spec("sleep", "100")
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
	if pid := daemonPid(t, e.dataDir); pid != pid1 || syscall.Kill(pid1, 0) != nil {
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
	if syscall.Kill(pid1, 0) == nil {
		t.Fatal("containerd still running after Shutdown")
	}
	if syscall.Kill(int(runningPid), 0) != nil {
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
