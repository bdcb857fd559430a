package runtime

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/containerd"
	"golang.org/x/sys/unix"
)

// daemon is a private containerd whose every path lives under one data
// directory.
type daemon struct {
	dataDir  string
	binary   string
	root     string
	state    string
	socket   string
	config   string
	logPath  string
	pidPath  string
	lockPath string
	runcRoot string
	log      *slog.Logger
}

// children are the daemons this process started and has not reaped yet.
// It is process-wide because being a process's parent is: a later Runtime
// in the same process must reap a daemon an earlier one started.
var children = struct {
	sync.Mutex
	pids map[int]bool
}{pids: map[int]bool{}}

func newDaemon(dataDir, binary string, log *slog.Logger) *daemon {
	if binary == "" {
		binary = "containerd"
	}
	return &daemon{
		dataDir:  dataDir,
		binary:   binary,
		root:     filepath.Join(dataDir, "root"),
		state:    filepath.Join(dataDir, "state"),
		socket:   filepath.Join(dataDir, "containerd.sock"),
		config:   filepath.Join(dataDir, "config.toml"),
		logPath:  filepath.Join(dataDir, "containerd.log"),
		pidPath:  filepath.Join(dataDir, "containerd.pid"),
		lockPath: filepath.Join(dataDir, "containerd.lock"),
		runcRoot: filepath.Join(dataDir, "state", "runc"),
		log:      log,
	}
}

// configTOML is the private daemon's configuration (containerd 1.6+
// config version 2). The CRI plugin and the snapshotters berth does not use
// are disabled; every path containerd lets us choose is under the data
// directory. What remains under /run/containerd is the shims' sockets
// (/run/containerd/s/<hash of socket, namespace and id>, so distinct per
// instance).
func (d *daemon) configTOML() string {
	return fmt.Sprintf(`# Written by berth; rewritten on every daemon start.
version = 2
root = %q
state = %q
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper",
]

[grpc]
  address = %q

[ttrpc]
  address = %q

[debug]
  address = ""
  level = "info"

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = %q

[plugins."io.containerd.runtime.v1.linux"]
  runtime_root = %q
`, d.root, d.state, d.socket, d.socket+".ttrpc",
		filepath.Join(d.root, "opt"), filepath.Join(d.state, "runc-v1"))
}

// ensure returns a client of the daemon serving the data directory,
// starting one if none is running.
func (d *daemon) ensure(ctx context.Context, namespace string) (*containerd.Client, error) {
	if err := os.MkdirAll(d.dataDir, 0o711); err != nil {
		return nil, fmt.Errorf("start containerd: %w", err)
	}
	unlock, err := lockFile(ctx, d.lockPath)
	if err != nil {
		return nil, fmt.Errorf("start containerd: lock %s: %w", d.lockPath, err)
	}
	defer unlock()

	// A daemon left by an earlier berth process: reuse it.
	if _, err := os.Stat(d.socket); err == nil {
		c, err := connect(ctx, d.socket, namespace)
		if err == nil {
			d.log.InfoContext(ctx, "reusing running containerd", "socket", d.socket, "pid", d.findPid())
			return c, nil
		}
		d.log.InfoContext(ctx, "containerd socket not serving", "socket", d.socket, "err", err)
	}
	if pid := d.findPid(); pid > 0 {
		// Its process is alive but does not serve (yet): wait for it
		// rather than start a second daemon on the same directories.
		d.log.InfoContext(ctx, "waiting for running containerd", "pid", pid)
		return d.waitReady(ctx, namespace, pid)
	}

	for _, dir := range []string{d.root, d.state} {
		if err := os.MkdirAll(dir, 0o711); err != nil {
			return nil, fmt.Errorf("start containerd: %w", err)
		}
	}
	if err := os.WriteFile(d.config, []byte(d.configTOML()), 0o644); err != nil {
		return nil, fmt.Errorf("start containerd: write config: %w", err)
	}
	logFile, err := os.OpenFile(d.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("start containerd: open log: %w", err)
	}
	defer logFile.Close() // the daemon has its own copy of the descriptor
	binary, err := lookPath(d.binary)
	if err != nil {
		return nil, fmt.Errorf("start containerd: %w", err)
	}
	cmd := exec.Command(binary, "--config", d.config)
	cmd.Dir = d.dataDir
	cmd.Env = daemonEnv()
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	// Its own process group: a signal to berth's group (Ctrl-C, a
	// supervisor killing the group) does not reach containerd.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start containerd: %w", err)
	}
	pid := cmd.Process.Pid
	// The process is reaped by stop or by polling in waitReady, not by
	// cmd.Wait: it must be able to outlive this Runtime.
	cmd.Process.Release()
	children.Lock()
	children.pids[pid] = true
	children.Unlock()
	if err := os.WriteFile(d.pidPath, []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		d.kill(pid)
		return nil, fmt.Errorf("start containerd: write pid file: %w", err)
	}
	d.log.InfoContext(ctx, "started containerd", "pid", pid, "socket", d.socket, "log", d.logPath)
	c, err := d.waitReady(ctx, namespace, pid)
	if err != nil {
		d.kill(pid)
		return nil, err
	}
	return c, nil
}

// waitReady polls until the daemon with the given pid serves its socket.
func (d *daemon) waitReady(ctx context.Context, namespace string, pid int) (*containerd.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	for {
		if d.exited(pid) {
			return nil, fmt.Errorf("start containerd: exited before serving; log %s: %s", d.logPath, tail(d.logPath, 2048))
		}
		if _, err := os.Stat(d.socket); err == nil {
			c, err := connect(ctx, d.socket, namespace)
			if err == nil {
				return c, nil
			}
			lastErr = err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("start containerd: not serving %s: %w (last error: %v)", d.socket, ctx.Err(), lastErr)
		case <-tick.C:
		}
	}
}

// stop terminates the daemon serving the data directory: SIGTERM, then
// SIGKILL after stopTimeout or when ctx is done.
func (d *daemon) stop(ctx context.Context) error {
	pid := d.findPid()
	if pid == 0 {
		d.log.InfoContext(ctx, "containerd not running", "data_dir", d.dataDir)
		return nil
	}
	d.log.InfoContext(ctx, "stopping containerd", "pid", pid)
	if err := unix.Kill(pid, unix.SIGTERM); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("stop containerd %d: %w", pid, err)
	}
	if !d.waitExit(ctx, pid, stopTimeout) {
		d.log.WarnContext(ctx, "containerd did not stop in time, killing", "pid", pid)
		d.kill(pid)
		if !d.waitExit(context.WithoutCancel(ctx), pid, stopTimeout) {
			return fmt.Errorf("stop containerd %d: still running after SIGKILL", pid)
		}
	}
	if err := os.Remove(d.pidPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("stop containerd: %w", err)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("stop containerd %d: killed: %w", pid, ctx.Err())
	}
	return nil
}

// kill sends SIGKILL and does not wait.
func (d *daemon) kill(pid int) {
	if err := unix.Kill(pid, unix.SIGKILL); err != nil && !errors.Is(err, unix.ESRCH) {
		d.log.Warn("kill containerd", "pid", pid, "err", err)
	}
}

// waitExit polls until pid has exited, up to timeout or ctx's end.
func (d *daemon) waitExit(ctx context.Context, pid int, timeout time.Duration) bool {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if d.exited(pid) {
			return true
		}
		select {
		case <-ctx.Done():
			return d.exited(pid)
		case <-tick.C:
		}
	}
}

// exited reports whether pid is gone, reaping it if this process is its parent.
func (d *daemon) exited(pid int) bool {
	children.Lock()
	defer children.Unlock()
	if children.pids[pid] {
		var ws unix.WaitStatus
		got, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil)
		switch {
		case got == pid:
			delete(children.pids, pid)
			return true
		case errors.Is(err, unix.ECHILD):
			delete(children.pids, pid) // reaped elsewhere; use the generic check
		default:
			return false
		}
	}
	return !d.isOurDaemon(pid) && !exiting(pid)
}

// exiting reports whether pid is a process on its way out: the kernel has
// released its memory, so its cmdline reads empty and isOurDaemon no longer
// knows it, but it is not yet a zombie (it may still hold its files and
// sockets). Waiting for it to be gone needs this: the pid is not free yet.
func exiting(pid int) bool {
	if st, ok := procState(pid); !ok || st == 0 || st == 'Z' || st == 'X' {
		return false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return err == nil && len(cmdline) == 0
}

// procState is pid's state letter (field 3 of /proc/<pid>/stat, after the
// parenthesised command name: 'R', 'S', 'Z' …; 0 if it cannot be parsed),
// and whether the process exists.
func procState(pid int) (byte, bool) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) {
		return stat[i+2], true
	}
	return 0, true
}

// findPid returns the pid of the daemon running on this data directory,
// from the pid file or else by scanning /proc, or 0.
func (d *daemon) findPid() int {
	if b, err := os.ReadFile(d.pidPath); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 && d.isOurDaemon(pid) {
			return pid
		}
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if d.isOurDaemon(pid) {
			return pid
		}
	}
	return 0
}

// isOurDaemon reports whether pid is a live (not zombie) containerd
// started with this data directory's config file.
func (d *daemon) isOurDaemon(pid int) bool {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
	found := false
	for i := 0; i+1 < len(args); i++ {
		if (args[i] == "--config" || args[i] == "-c") && args[i+1] == d.config {
			found = true
			break
		}
	}
	if !found {
		return false
	}
	st, ok := procState(pid)
	return ok && st != 'Z'
}

// lockFile takes an exclusive flock on path, polling until ctx ends.
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, err
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// systemPath is appended to PATH so that containerd finds its shim and the
// shim finds runc (/usr/sbin on Debian) whatever berth's PATH is.
const systemPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

func daemonEnv() []string {
	env := os.Environ()
	for i, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			env[i] = "PATH=" + v + ":" + systemPath
			return env
		}
	}
	return append(env, "PATH="+systemPath)
}

func lookPath(binary string) (string, error) {
	if strings.Contains(binary, "/") {
		return binary, nil
	}
	if p, err := exec.LookPath(binary); err == nil {
		return p, nil
	}
	for _, dir := range filepath.SplitList(systemPath) {
		p := filepath.Join(dir, binary)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found in PATH or %s", binary, systemPath)
}

// tail returns up to the last n bytes of a file, for error messages.
func tail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > n {
		if _, err := f.Seek(-n, io.SeekEnd); err != nil {
			return err.Error()
		}
	}
	b, _ := io.ReadAll(f)
	return strings.TrimSpace(string(b))
}
