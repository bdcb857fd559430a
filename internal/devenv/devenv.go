// Package devenv runs a `berth dev` process for tools that drive berth from
// outside, such as the benchmarks: it starts the binary with its own data
// directory and loopback port, says when it is ready, stops it, and removes
// everything it left on the host (CleanupDataDir).
package devenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// RegisteredLine is what `berth dev` logs once its agent has joined the
// control plane.
const RegisteredLine = "registered with control plane"

// Env is one `berth dev` process.
type Env struct {
	Bin     string // the berth binary
	DataDir string
	Addr    string // host:port on 127.0.0.1
	URL     string // http://Addr
	LogPath string // the process's stdout and stderr
	// Args are more flags for `berth dev`, after --data-dir and --listen
	// (e.g. "--lb-address-pool", "127.101.250.0/24"); set before Start.
	Args []string
	// Role is the subcommand run (default "dev"; "server" runs the control
	// plane alone, and Ready is then Healthy).
	Role string

	cmd    *exec.Cmd
	exited chan struct{}
	http   *http.Client
}

// FreeAddr returns a loopback address with a port that was free a moment ago.
//
// The port is below the kernel's ephemeral range: a port from that range
// (what listening on :0 gives) can be taken, while an env that restarts is
// down, as the local port of any outgoing connection on the host, and the
// env then cannot listen on its address again. Ports below the range are
// only ever taken by a listener that names them.
func FreeAddr() (string, error) {
	low := ephemeralLow()
	for range 200 {
		port := 10000 + rand.IntN(low-10000)
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		addr := l.Addr().String()
		l.Close()
		return addr, nil
	}
	return "", fmt.Errorf("find a free port: none free of 200 tried between 10000 and %d", low)
}

// ephemeralLow is the first port of the kernel's ephemeral range (32768
// if it cannot be read, or leaves too little room below it).
func ephemeralLow() int {
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > 11000 {
				return n
			}
		}
	}
	return 32768
}

// New describes an env; Start runs it. addr must be a 127.0.0.1 address.
func New(bin, dataDir, addr string) (*Env, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || net.ParseIP(host) == nil || !net.ParseIP(host).IsLoopback() {
		return nil, fmt.Errorf("dev env address %q: want a loopback host:port", addr)
	}
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		return nil, fmt.Errorf("dev env data dir: %w", err)
	}
	return &Env{Bin: bin, DataDir: abs, Addr: addr, URL: "http://" + addr,
		http: &http.Client{Timeout: 2 * time.Second}}, nil
}

// Start starts the process and returns at once; WaitReady says when it
// serves. Each Start logs to a new file in the data dir.
func (e *Env) Start() error {
	if e.cmd != nil {
		return errors.New("berth dev already started")
	}
	if err := os.MkdirAll(e.DataDir, 0o755); err != nil {
		return fmt.Errorf("dev env data dir: %w", err)
	}
	e.LogPath = filepath.Join(e.DataDir, fmt.Sprintf("berth-%d.log", time.Now().UnixNano()))
	logf, err := os.Create(e.LogPath)
	if err != nil {
		return fmt.Errorf("dev env log: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(e.Bin, append([]string{e.role(), "--data-dir", e.DataDir, "--listen", e.Addr}, e.Args...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s dev: %w", e.Bin, err)
	}
	e.cmd = cmd
	e.exited = make(chan struct{})
	go func() { _ = cmd.Wait(); close(e.exited) }()
	return nil
}

// Ready reports whether the server answers /_berth/health and (for `berth
// dev`) its agent has registered.
func (e *Env) Ready() bool { return e.Healthy() && (e.role() != "dev" || e.Registered()) }

func (e *Env) role() string {
	if e.Role == "" {
		return "dev"
	}
	return e.Role
}

// PID is the process's id (0 before Start).
func (e *Env) PID() int {
	if e.cmd == nil || e.cmd.Process == nil {
		return 0
	}
	return e.cmd.Process.Pid
}

// Healthy reports whether the server answers /_berth/health with 200.
func (e *Env) Healthy() bool {
	resp, err := e.http.Get(e.URL + "/_berth/health")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// Registered reports whether the agent has logged that it registered.
func (e *Env) Registered() bool {
	b, _ := os.ReadFile(e.LogPath)
	return bytes.Contains(b, []byte(RegisteredLine))
}

// WaitReady polls Ready every poll until it holds, the process exits, ctx
// ends, or timeout passes.
func (e *Env) WaitReady(ctx context.Context, poll, timeout time.Duration) error {
	return e.WaitFor(ctx, e.Ready, poll, timeout)
}

// WaitFor polls cond every poll until it holds, the process exits, ctx ends,
// or timeout passes.
func (e *Env) WaitFor(ctx context.Context, cond func() bool, poll, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		if cond() {
			return nil
		}
		select {
		case <-e.exited:
			return fmt.Errorf("berth dev exited before it was ready; log:\n%s", e.Log())
		case <-ctx.Done():
			return fmt.Errorf("berth dev not ready after %s: %w; log:\n%s", timeout, ctx.Err(), e.Log())
		case <-tick.C:
		}
	}
}

// Log returns the last 4 KiB of the current log.
func (e *Env) Log() string {
	b, _ := os.ReadFile(e.LogPath)
	if len(b) > 4096 {
		b = b[len(b)-4096:]
	}
	return string(b)
}

// Stop sends SIGTERM and waits up to grace for the process to exit, then
// kills it. Containers and their shims live on until CleanupDataDir.
func (e *Env) Stop(grace time.Duration) {
	if e.cmd == nil {
		return
	}
	_ = e.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-e.exited:
	case <-time.After(grace):
		_ = e.cmd.Process.Signal(syscall.SIGKILL)
		<-e.exited
	}
	e.cmd = nil
}

// Destroy stops the process and removes everything the env left on the
// host, data dir included.
func (e *Env) Destroy() {
	e.Stop(15 * time.Second)
	CleanupDataDir(e.DataDir)
}

// Berth runs a CLI verb against the env (keys test/test) and returns its
// stdout.
func (e *Env) Berth(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, e.Bin, append([]string{"--data-dir", e.DataDir, "--endpoint", e.URL}, args...)...)
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("berth %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out), nil
}

// ContainerdSocket is the socket of the env's private containerd.
func (e *Env) ContainerdSocket() string {
	return filepath.Join(e.DataDir, "agent", "containerd", "containerd.sock")
}

// RuncRoot is the runc state directory the env's agent hands its shims.
func (e *Env) RuncRoot() string {
	return filepath.Join(e.DataDir, "agent", "containerd", "state", "runc")
}
