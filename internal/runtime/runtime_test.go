package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/runtime/logdriver"
)

func TestNormalizeRef(t *testing.T) {
	tests := []struct{ in, want string }{
		{"busybox", "docker.io/library/busybox:latest"},
		{"library/busybox:1.36", "docker.io/library/busybox:1.36"},
		{"nginx:1.25", "docker.io/library/nginx:1.25"},
		{"user/app", "docker.io/user/app:latest"},
		{"127.0.0.1:4566/busybox:latest", "127.0.0.1:4566/busybox:latest"},
		{"localhost:5000/a/b", "localhost:5000/a/b:latest"},
		{"public.ecr.aws/x/y:v1", "public.ecr.aws/x/y:v1"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := NormalizeRef(tc.in)
			if err != nil || got != tc.want {
				t.Fatalf("NormalizeRef(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
	if _, err := NormalizeRef("UPPER/Case"); err == nil {
		t.Error("NormalizeRef accepted an invalid reference")
	}
}

func TestIsLoopbackHost(t *testing.T) {
	tests := []struct {
		host string
		want bool
	}{
		{"127.0.0.1:4566", true},
		{"127.1.2.3", true},
		{"localhost:5000", true},
		{"localhost", true},
		{"[::1]:5000", true},
		{"::1", true},
		{"docker.io", false},
		{"10.0.0.1:5000", false},
		{"localhost.example.com", false},
	}
	for _, tc := range tests {
		t.Run(tc.host, func(t *testing.T) {
			if got, _ := isLoopbackHost(tc.host); got != tc.want {
				t.Fatalf("isLoopbackHost(%q) = %v, want %v", tc.host, got, tc.want)
			}
		})
	}
}

func TestProcessArgs(t *testing.T) {
	imgEP, imgCmd := []string{"/entry"}, []string{"arg"}
	tests := []struct {
		name                   string
		imgEP, imgCmd, ep, cmd []string
		want                   []string
		wantErr                bool
	}{
		{name: "image defaults", imgEP: imgEP, imgCmd: imgCmd, want: []string{"/entry", "arg"}},
		{name: "command overrides CMD", imgEP: imgEP, imgCmd: imgCmd, cmd: []string{"x"}, want: []string{"/entry", "x"}},
		{name: "entrypoint drops image CMD", imgEP: imgEP, imgCmd: imgCmd, ep: []string{"/bin/sh"}, want: []string{"/bin/sh"}},
		{name: "entrypoint and command", imgEP: imgEP, imgCmd: imgCmd, ep: []string{"/bin/sh", "-c"}, cmd: []string{"echo"}, want: []string{"/bin/sh", "-c", "echo"}},
		{name: "empty entrypoint clears it", imgEP: imgEP, imgCmd: imgCmd, ep: []string{}, want: []string{"arg"}},
		{name: "cmd only image", imgCmd: []string{"sh"}, want: []string{"sh"}},
		{name: "nothing to run", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := processArgs(tc.imgEP, tc.imgCmd, tc.ep, tc.cmd)
			if (err != nil) != tc.wantErr || !slices.Equal(got, tc.want) {
				t.Fatalf("processArgs = %q, %v; want %q (err %v)", got, err, tc.want, tc.wantErr)
			}
		})
	}
	if !slices.Equal(imgEP, []string{"/entry"}) {
		t.Fatal("processArgs modified the image's entrypoint")
	}
}

func TestCapabilities(t *testing.T) {
	tests := []struct {
		in      []string
		want    []string
		wantErr bool
	}{
		{in: []string{"SYS_PTRACE", "cap_net_admin"}, want: []string{"CAP_SYS_PTRACE", "CAP_NET_ADMIN"}},
		{in: []string{"NOT_A_CAP"}, wantErr: true},
		{in: nil, want: nil},
	}
	for _, tc := range tests {
		got, err := capabilities(tc.in)
		if (err != nil) != tc.wantErr || !slices.Equal(got, tc.want) {
			t.Errorf("capabilities(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	if all, err := capabilities([]string{"ALL"}); err != nil || len(all) < 38 {
		t.Errorf("capabilities(ALL) = %d caps, %v", len(all), err)
	}
}

func TestPull(t *testing.T) {
	e := newTestEnv(t) // pulls once
	ctx := testContext(t)
	img, err := e.rt.Pull(ctx, e.image)
	if err != nil {
		t.Fatal(err)
	}
	if !img.Cached {
		t.Error("second pull was not Cached")
	}
	if !strings.HasPrefix(img.Digest, "sha256:") || img.Size <= 0 {
		t.Errorf("digest %q size %d", img.Digest, img.Size)
	}
	if !slices.Equal(img.Config.Cmd, []string{"sh"}) || !slices.Contains(img.Config.Env, "FROM_IMAGE=1") {
		t.Errorf("config = %+v", img.Config)
	}
	if _, err := e.rt.Pull(ctx, "127.0.0.1:1/nothing/here:latest"); err == nil {
		t.Error("pull from a closed port succeeded")
	}
}

func TestRunExitCodesAndLogs(t *testing.T) {
	e := newTestEnv(t)
	hostNet, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	var hostCaps string // the test runs as root: every capability
	for _, l := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(l, "CapEff:") {
			hostCaps = l
		}
	}
	tests := []struct {
		name     string
		mod      func(*ContainerSpec)
		wantCode int
		wantLog  []string // substrings of the log
		notLog   []string // not in the log
	}{
		{name: "echo", mod: func(s *ContainerSpec) { s.Command = []string{"echo", "hi"} }, wantLog: []string{"hi\n"}},
		{name: "exit 3", mod: func(s *ContainerSpec) { s.Command = []string{"sh", "-c", "exit 3"} }, wantCode: 3},
		{name: "stderr", mod: func(s *ContainerSpec) { s.Command = []string{"sh", "-c", "echo oops >&2; exit 1"} }, wantCode: 1, wantLog: []string{"oops"}},
		{name: "env appended", mod: func(s *ContainerSpec) {
			s.Command = []string{"sh", "-c", "echo $FOO $FROM_IMAGE"}
			s.Env = []string{"FOO=bar", "FROM_IMAGE=2"}
		}, wantLog: []string{"bar 2\n"}},
		{name: "entrypoint", mod: func(s *ContainerSpec) {
			s.Entrypoint = []string{"sh", "-c"}
			s.Command = []string{"echo from-entrypoint"}
		}, wantLog: []string{"from-entrypoint"}},
		{name: "workdir user hostname", mod: func(s *ContainerSpec) {
			s.Command = []string{"sh", "-c", "echo $(pwd) $(id -u):$(id -g) $(hostname)"}
			s.WorkingDir = "/tmp"
			s.User = "65534:65534"
			s.Hostname = "web-1"
		}, wantLog: []string{"/tmp 65534:65534 web-1"}},
		{name: "readonly rootfs", mod: func(s *ContainerSpec) {
			s.Command = []string{"touch", "/x"}
			s.ReadonlyRootfs = true
		}, wantCode: 1, wantLog: []string{"Read-only file system"}},
		{name: "security defaults", mod: func(s *ContainerSpec) {
			s.Command = []string{"grep", "-E", "^(NoNewPrivs|Seccomp):", "/proc/self/status"}
		}, wantLog: []string{"NoNewPrivs:\t1", "Seccomp:\t2"}},
		{name: "added capability", mod: func(s *ContainerSpec) {
			s.Command = []string{"grep", "^CapEff:", "/proc/self/status"}
			s.AddCapabilities = []string{"SYS_PTRACE"}
		}, wantLog: []string{"CapEff:\t00000000a80c25fb"}}, // default set + bit 19
		{name: "default capabilities", mod: func(s *ContainerSpec) {
			s.Command = []string{"grep", "^CapEff:", "/proc/self/status"}
		}, wantLog: []string{"CapEff:\t00000000a80425fb"}},
		{name: "privileged", mod: func(s *ContainerSpec) {
			s.Command = []string{"sh", "-c", "grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status; ls /dev"}
			s.Privileged = true
		}, wantLog: []string{hostCaps + "\n", "NoNewPrivs:\t0", "Seccomp:\t0", "loop"}},
		{name: "host network", mod: func(s *ContainerSpec) {
			s.Command = []string{"readlink", "/proc/self/ns/net"}
			s.HostNetwork = true
		}, wantLog: []string{hostNet}},
		{name: "own network", mod: func(s *ContainerSpec) {
			s.Command = []string{"readlink", "/proc/self/ns/net"}
		}, wantLog: []string{"net:["}, notLog: []string{hostNet}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testContext(t)
			spec := e.spec()
			spec.Labels = map[string]string{"test": tc.name}
			tc.mod(&spec)
			if pid := e.run(t, ctx, spec); pid == 0 {
				t.Error("pid 0")
			}
			st, err := e.rt.Wait(ctx, spec.ID)
			if err != nil {
				t.Fatal(err)
			}
			// The log is complete once the task is deleted.
			if err := e.rt.Delete(ctx, spec.ID); err != nil {
				t.Fatal(err)
			}
			logText := readLog(t, spec.LogPath)
			if st.Code != tc.wantCode || st.OOMKilled {
				t.Errorf("exit %+v, want code %d; log %q", st, tc.wantCode, logText)
			}
			if st.ExitedAt.IsZero() || time.Since(st.ExitedAt) > time.Minute {
				t.Errorf("ExitedAt = %v", st.ExitedAt)
			}
			for _, want := range tc.wantLog {
				if !strings.Contains(logText, want) {
					t.Errorf("log %q does not contain %q", logText, want)
				}
			}
			for _, not := range tc.notLog {
				if strings.Contains(logText, not) {
					t.Errorf("log %q contains %q", logText, not)
				}
			}
		})
	}
}

// TestLogs checks that no output is lost, in particular stderr written
// as the container exits (which containerd's own file logging loses now
// and then), and the fallback to that file logging without a log driver.
func TestLogs(t *testing.T) {
	e := newTestEnv(t)
	ctx := testContext(t)
	noDriver := e.cfg
	noDriver.LogDriver = ""
	plain, err := Start(ctx, noDriver) // same daemon, no log driver
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { plain.Close() })
	tests := []struct {
		name    string
		rt      *Runtime
		runs    int
		command []string
		want    string
	}{
		{name: "stderr at exit", rt: e.rt, runs: 20, command: []string{"sh", "-c", "echo out; echo err >&2; exit 2"}, want: "out\nerr\n"},
		{name: "many lines", rt: e.rt, runs: 1, command: []string{"sh", "-c", "i=0; while [ $i -lt 2000 ]; do echo line $i; echo eline $i >&2; i=$((i+1)); done"}},
		{name: "file logging fallback", rt: plain, runs: 3, command: []string{"echo", "plain"}, want: "plain\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for range tc.runs {
				spec := e.spec(tc.command...)
				if _, err := tc.rt.Run(ctx, spec); err != nil {
					t.Fatal(err)
				}
				if _, err := tc.rt.Wait(ctx, spec.ID); err != nil {
					t.Fatal(err)
				}
				if err := tc.rt.Delete(ctx, spec.ID); err != nil {
					t.Fatal(err)
				}
				got := readLog(t, spec.LogPath)
				// stdout and stderr are separate pipes: only the order of
				// lines within each stream is defined.
				if tc.want != "" && !sameLines(got, tc.want) {
					t.Fatalf("log %q, want the lines of %q", got, tc.want)
				}
				if tc.want == "" && (strings.Count(got, "\n") != 4000 || !strings.Contains(got, "line 1999\n") || !strings.Contains(got, "eline 1999\n")) {
					t.Fatalf("log has %d lines, want 4000 whole lines", strings.Count(got, "\n"))
				}
			}
		})
	}
}

func sameLines(a, b string) bool {
	la, lb := strings.SplitAfter(a, "\n"), strings.SplitAfter(b, "\n")
	slices.Sort(la)
	slices.Sort(lb)
	return slices.Equal(la, lb)
}

func TestRunErrors(t *testing.T) {
	e := newTestEnv(t)
	ctx := testContext(t)
	tests := []struct {
		name string
		mod  func(*ContainerSpec)
	}{
		{"unknown image", func(s *ContainerSpec) { s.Image = "127.0.0.1:1/not/pulled:latest" }},
		{"missing binary", func(s *ContainerSpec) { s.Command = []string{"/no/such/binary"} }},
		{"relative log path", func(s *ContainerSpec) { s.LogPath = "relative.log" }},
		{"bad capability", func(s *ContainerSpec) { s.AddCapabilities = []string{"FLY"} }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec := e.spec("true")
			tc.mod(&spec)
			if _, err := e.rt.Run(ctx, spec); err == nil {
				t.Fatal("Run succeeded")
			}
			// A failed Run leaves nothing behind.
			cs, err := e.rt.List(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range cs {
				if c.ID == spec.ID {
					t.Fatalf("failed container left behind: %+v", c)
				}
			}
		})
	}
}

func TestOOMKilled(t *testing.T) {
	e := newTestEnv(t)
	hog := []string{"dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"}
	tests := []struct {
		name          string
		taskMemoryMiB int   // limit on the task cgroup
		containerMem  int64 // limit on the container's own cgroup
		command       []string
		wantCode      int
		wantOOM       bool
	}{
		{name: "container limit", containerMem: 16 << 20, command: hog, wantCode: 137, wantOOM: true},
		{name: "task limit", taskMemoryMiB: 16, command: hog, wantCode: 137, wantOOM: true},
		{name: "under the limit", containerMem: 128 << 20, command: hog, wantCode: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testContext(t)
			spec := e.spec(tc.command...)
			spec.MemoryLimit = tc.containerMem
			if tc.taskMemoryMiB > 0 {
				spec.CgroupParent = "/" + uniqueID("berthtest")
				if err := CreateTaskCgroup(spec.CgroupParent, 0, tc.taskMemoryMiB); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() {
					if err := DeleteTaskCgroup(spec.CgroupParent); err != nil {
						t.Error(err)
					}
				})
			}
			e.run(t, ctx, spec)
			st, err := e.rt.Wait(ctx, spec.ID)
			if err != nil {
				t.Fatal(err)
			}
			if st.Code != tc.wantCode || st.OOMKilled != tc.wantOOM {
				t.Fatalf("exit %+v, want code %d OOMKilled %v; log %q", st, tc.wantCode, tc.wantOOM, readLog(t, spec.LogPath))
			}
			// List reports the same.
			cs, err := e.rt.List(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range cs {
				if c.ID == spec.ID && (c.Status != "stopped" || c.Exit == nil || c.Exit.OOMKilled != tc.wantOOM) {
					t.Fatalf("List: %+v exit %+v", c, c.Exit)
				}
			}
		})
	}
}

func TestCPUQuota(t *testing.T) {
	e := newTestEnv(t)
	ctx := testContext(t)
	task := "/" + uniqueID("berthtest")
	if err := CreateTaskCgroup(task, 256, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := DeleteTaskCgroup(task); err != nil {
			t.Error(err)
		}
	})
	spec := e.spec("sh", "-c", "while :; do :; done")
	spec.CgroupParent = task
	e.run(t, ctx, spec)
	time.Sleep(300 * time.Millisecond) // let it reach its steady state
	before, err := TaskCgroupCPUUsage(task)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	time.Sleep(2 * time.Second)
	after, err := TaskCgroupCPUUsage(task)
	if err != nil {
		t.Fatal(err)
	}
	cores := float64(after-before) / float64(time.Since(start))
	t.Logf("busy loop in a 256-unit task used %.3f cores", cores)
	if cores > 0.3 || cores < 0.1 {
		t.Fatalf("used %.3f cores, want about 0.25", cores)
	}
	if _, err := e.rt.Stop(ctx, spec.ID, syscall.SIGKILL, time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestStop(t *testing.T) {
	e := newTestEnv(t)
	tests := []struct {
		name     string
		command  []string
		timeout  time.Duration
		wantCode int
		minTime  time.Duration // escalation to SIGKILL takes the timeout
		maxTime  time.Duration
	}{
		// sleep is PID 1 of its namespace: the kernel drops SIGTERM for
		// it (no handler), so Stop escalates to SIGKILL.
		{name: "sleep ignores SIGTERM", command: []string{"sleep", "100"}, timeout: time.Second, wantCode: 137, minTime: time.Second, maxTime: 10 * time.Second},
		{name: "handler exits on SIGTERM", command: []string{"sh", "-c", "trap 'exit 0' TERM; echo ready; sleep 100 & wait"}, timeout: 20 * time.Second, wantCode: 0, maxTime: 10 * time.Second},
		{name: "trap in a sleep loop", command: []string{"sh", "-c", "trap 'exit 143' TERM; echo ready; while :; do sleep 1; done"}, timeout: 20 * time.Second, wantCode: 143, maxTime: 10 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testContext(t)
			spec := e.spec(tc.command...)
			e.run(t, ctx, spec)
			// A shell that is PID 1 ignores SIGTERM until its trap is set
			// (no handler): wait until it says so, however loaded the host.
			waitForLog(t, spec.LogPath, "ready", strings.Contains(strings.Join(tc.command, " "), "echo ready"))
			start := time.Now()
			st, err := e.rt.Stop(ctx, spec.ID, syscall.SIGTERM, tc.timeout)
			took := time.Since(start)
			if err != nil {
				t.Fatal(err)
			}
			if st.Code != tc.wantCode || st.OOMKilled {
				t.Fatalf("exit %+v, want %d", st, tc.wantCode)
			}
			if took < tc.minTime || took > tc.maxTime {
				t.Fatalf("Stop took %v, want %v..%v", took, tc.minTime, tc.maxTime)
			}
			// Idempotent: stopping again reports the same exit.
			again, err := e.rt.Stop(ctx, spec.ID, syscall.SIGTERM, time.Second)
			if err != nil || again.Code != st.Code {
				t.Fatalf("second Stop = %+v, %v", again, err)
			}
			if err := e.rt.Signal(ctx, spec.ID, syscall.SIGTERM); err == nil {
				t.Fatal("Signal to an exited container succeeded")
			}
		})
	}
}

func TestSignal(t *testing.T) {
	e := newTestEnv(t)
	ctx := testContext(t)
	spec := e.spec("sh", "-c", "trap 'echo got-usr1; exit 5' USR1; while :; do sleep 1; done")
	e.run(t, ctx, spec)
	time.Sleep(200 * time.Millisecond)
	if err := e.rt.Signal(ctx, spec.ID, syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	st, err := e.rt.Wait(ctx, spec.ID)
	if err != nil || st.Code != 5 {
		t.Fatalf("Wait = %+v, %v", st, err)
	}
	if err := e.rt.Delete(ctx, spec.ID); err != nil { // completes the log
		t.Fatal(err)
	}
	if !strings.Contains(readLog(t, spec.LogPath), "got-usr1") {
		t.Fatal("trap did not run")
	}
}

func TestExec(t *testing.T) {
	e := newTestEnv(t)
	ctx := testContext(t)
	spec := e.spec("sleep", "100")
	spec.Env = []string{"GREETING=hello"}
	e.run(t, ctx, spec)
	tests := []struct {
		name     string
		args     []string
		timeout  time.Duration
		wantCode int
		wantErr  error // nil: no error; errAny: any error
	}{
		{name: "true", args: []string{"true"}, wantCode: 0},
		{name: "CMD-SHELL exit 7", args: []string{"sh", "-c", "exit 7"}, wantCode: 7},
		{name: "sees container env", args: []string{"sh", "-c", `test "$GREETING" = hello`}, wantCode: 0},
		{name: "timeout", args: []string{"sleep", "10"}, timeout: 300 * time.Millisecond, wantErr: context.DeadlineExceeded},
		{name: "missing binary", args: []string{"/no/such/binary"}, wantErr: errAny},
		{name: "no args", args: nil, wantErr: errAny},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			code, err := e.rt.Exec(ctx, spec.ID, tc.args, tc.timeout)
			switch {
			case tc.wantErr == nil && (err != nil || code != tc.wantCode):
				t.Fatalf("Exec = %d, %v; want %d", code, err, tc.wantCode)
			case tc.wantErr == errAny && err == nil:
				t.Fatalf("Exec = %d, want an error", code)
			case tc.wantErr != nil && tc.wantErr != errAny && !errors.Is(err, tc.wantErr):
				t.Fatalf("Exec error %v, want %v", err, tc.wantErr)
			}
			if tc.timeout > 0 && time.Since(start) > tc.timeout+5*time.Second {
				t.Fatalf("Exec with timeout %v took %v", tc.timeout, time.Since(start))
			}
		})
	}
	if _, err := e.rt.Exec(ctx, "no-such-container", []string{"true"}, 0); !IsNotFound(err) {
		t.Fatalf("Exec in a missing container: %v, want NotFound", err)
	}
}

var errAny = errors.New("any error")

func TestDelete(t *testing.T) {
	e := newTestEnv(t)
	ctx := testContext(t)
	if err := e.rt.Delete(ctx, "never-existed"); err != nil {
		t.Fatalf("Delete of a missing container: %v", err)
	}
	spec := e.spec("sleep", "100")
	pid := e.run(t, ctx, spec)
	for i := range 2 {
		if err := e.rt.Delete(ctx, spec.ID); err != nil {
			t.Fatalf("Delete #%d: %v", i+1, err)
		}
	}
	if alive(int(pid)) {
		t.Fatal("container process still alive after Delete")
	}
	if _, err := e.rt.Wait(ctx, spec.ID); !IsNotFound(err) {
		t.Fatalf("Wait after Delete: %v, want NotFound", err)
	}
	// Its cgroup went with it.
	dir, err := memoryCgroupDir(e.cgroup + "/" + spec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("container cgroup %s still there: %v", dir, err)
	}
	// The same id can be used again.
	spec2 := spec
	spec2.Command = []string{"true"}
	e.run(t, ctx, spec2)
	if st, err := e.rt.Wait(ctx, spec2.ID); err != nil || st.Code != 0 {
		t.Fatalf("rerun: %+v, %v", st, err)
	}
}

// The log driver joins the task's cgroup in the cpu hierarchies, so that
// the CPU it spends copying a container's output counts against the task.
func TestLogDriverInTaskCgroup(t *testing.T) {
	e := newTestEnv(t)
	ctx := testContext(t)
	spec := e.spec("sh", "-c", "echo hello; sleep 30")
	e.run(t, ctx, spec)
	dirs, err := cpuCgroupDirs(e.cgroup)
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		if err != nil {
			t.Fatal(err)
		}
		var drivers int
		for _, pid := range strings.Fields(string(b)) {
			cmdline, err := os.ReadFile(filepath.Join("/proc", pid, "cmdline"))
			if err == nil && strings.Contains(string(cmdline), logdriver.Arg+"\x00"+spec.LogPath) {
				drivers++
			}
		}
		if drivers != 1 {
			t.Errorf("%s holds %d log drivers of %s (pids %q), want 1", dir, drivers, spec.ID, b)
		}
	}
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(readLog(t, spec.LogPath), "hello\n"); {
		if time.Now().After(deadline) {
			t.Fatalf("log: %q", readLog(t, spec.LogPath))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Containers of one shim group share one shim: a task costs one shim,
// however many containers it has; another group gets its own. A
// container's process is its shim's child.
func TestShimGroup(t *testing.T) {
	e := newTestEnv(t)
	ctx := testContext(t)
	group := filepath.Base(e.cgroup)
	parents := map[string]int{}
	for _, c := range []struct{ suffix, group string }{{"a1", "-a"}, {"a2", "-a"}, {"b1", "-b"}} {
		spec := e.spec("sleep", "100")
		spec.ID += "-" + c.suffix
		spec.ShimGroup = group + c.group
		pid := e.run(t, ctx, spec)
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			t.Fatal(err)
		}
		// pid (comm) state ppid …: comm may hold spaces, so split after ')'.
		fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		ppid, _ := strconv.Atoi(fields[1])
		parents[c.suffix] = ppid
	}
	if parents["a1"] != parents["a2"] || parents["a1"] == parents["b1"] {
		t.Fatalf("shims by container: %v, want a1 and a2 to share one and b1 another", parents)
	}
}

// waitForLog waits (up to 20 s) until the log file holds want; with wanted
// false it only gives the container a moment to start.
func waitForLog(t *testing.T, path, want string, wanted bool) {
	t.Helper()
	if !wanted {
		time.Sleep(200 * time.Millisecond)
		return
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(path); err == nil && strings.Contains(string(b), want) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("log %s never said %q", path, want)
}
