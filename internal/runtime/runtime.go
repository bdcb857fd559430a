// Package runtime owns the berth agent's interface to containerd: starting
// (or reusing) a private containerd daemon, pulling images, running,
// waiting for, signalling, exec'ing into and deleting containers, listing
// them for adoption after an agent restart, and the cgroups v1 task cgroups
// that hold a task's CPU and memory limits.
//
// Containers survive the agent: their stdout/stderr is written by a log
// driver process the containerd shim starts (package logdriver), and a new
// Runtime on the same data directory finds them again with List and Wait.
package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/mount"
	"github.com/moby/sys/mountinfo"
)

const (
	// DefaultNamespace is the containerd namespace used when Config.Namespace is empty.
	DefaultNamespace = "berth"
	// runtimeName is the containerd runtime (shim) that runs containers.
	runtimeName = "io.containerd.runc.v2"
	// snapshotter is the snapshotter images are unpacked into.
	snapshotter = "overlayfs"
	// readyTimeout bounds how long Start waits for a daemon to serve.
	readyTimeout = 60 * time.Second
	// stopTimeout is how long Shutdown waits after SIGTERM before SIGKILL.
	stopTimeout = 10 * time.Second
)

// Config tells Start which containerd to use.
type Config struct {
	// DataDir holds a private containerd: root DataDir/root, state
	// DataDir/state, socket DataDir/containerd.sock, config
	// DataDir/config.toml, log DataDir/containerd.log, pid file
	// DataDir/containerd.pid, runc state DataDir/state/runc.
	DataDir string
	// Address, if set, is an existing containerd socket to connect to;
	// Start then starts nothing.
	Address string
	// Namespace is the containerd namespace; default DefaultNamespace.
	Namespace string
	// Binary is the containerd executable; default "containerd" on PATH.
	Binary string
	// LogDriver is the absolute path of an executable that runs
	// logdriver.MaybeRun first thing in main (the berth binary, or a small
	// dedicated one). The shim starts it for every container with a
	// LogPath to write the container's output. Empty: the shim's own file
	// logging (cio.LogFile), which can lose stderr written as a container
	// exits (a bug of containerd's 1.6/1.7 runc shim).
	LogDriver string
	// Logger receives the runtime's log; default discards.
	Logger *slog.Logger
}

// Runtime is a connection to containerd. It is safe for concurrent use.
type Runtime struct {
	client    *containerd.Client
	namespace string
	address   string
	runcRoot  string // runc state directory passed to the shim; "" for runc's default
	logDriver string // Config.LogDriver
	log       *slog.Logger
	daemon    *daemon // the private daemon; nil when connected to Config.Address

	imagesMu sync.Mutex
	images   map[string]Image // unpacked images described before, by manifest digest
}

// Start connects to containerd. With cfg.Address empty it uses a private
// containerd under cfg.DataDir: one already serving the socket (left by an
// earlier berth process) is reused, otherwise one is started in its own
// process group, so that it survives the berth process. Start returns once
// the daemon serves requests.
func Start(ctx context.Context, cfg Config) (*Runtime, error) {
	if cfg.Namespace == "" {
		cfg.Namespace = DefaultNamespace
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Runtime{namespace: cfg.Namespace, log: cfg.Logger, logDriver: cfg.LogDriver}
	if err := checkLogDriver(cfg.LogDriver); err != nil {
		return nil, fmt.Errorf("start runtime: %w", err)
	}
	if cfg.LogDriver == "" {
		cfg.Logger.WarnContext(ctx, "no log driver configured: using the shim's file logging, which can lose stderr written as a container exits")
	}
	if cfg.Address != "" {
		r.address = cfg.Address
		c, err := connect(ctx, cfg.Address, cfg.Namespace)
		if err != nil {
			return nil, fmt.Errorf("connect to containerd at %s: %w", cfg.Address, err)
		}
		r.client = c
		return r, nil
	}
	if cfg.DataDir == "" {
		return nil, errors.New("start containerd: Config.DataDir or Config.Address is required")
	}
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("start containerd: data dir: %w", err)
	}
	cleanupTempMounts(ctx, dataDir, cfg.Logger)
	d := newDaemon(dataDir, cfg.Binary, cfg.Logger)
	c, err := d.ensure(ctx, cfg.Namespace)
	if err != nil {
		return nil, err
	}
	r.client = c
	r.daemon = d
	r.address = d.socket
	r.runcRoot = d.runcRoot
	return r, nil
}

// cleanupTempMounts removes what a berth killed at the wrong moment left of
// the containerd client's temporary mounts: while building a container's
// spec, the client mounts the container's rootfs for a moment (under
// os.TempDir(), as containerd-mount*) to read its /etc/passwd and
// /etc/group. Only mounts of this runtime's own snapshots, found by the
// overlay layer paths in their options, are touched.
func cleanupTempMounts(ctx context.Context, dataDir string, log *slog.Logger) {
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(os.TempDir()))
	if err != nil {
		log.WarnContext(ctx, "list mounts", "err", err)
		return
	}
	for _, m := range mounts {
		if !strings.HasPrefix(filepath.Base(m.Mountpoint), "containerd-mount") ||
			!strings.Contains(m.VFSOptions, dataDir+string(filepath.Separator)) {
			continue
		}
		if err := mount.UnmountAll(m.Mountpoint, 0); err != nil {
			log.WarnContext(ctx, "remove temporary mount", "path", m.Mountpoint, "err", err)
			continue
		}
		_ = os.Remove(m.Mountpoint)
		log.InfoContext(ctx, "removed temporary mount left by an interrupted start", "path", m.Mountpoint)
	}
}

func checkLogDriver(path string) error {
	if path == "" {
		return nil
	}
	if !filepath.IsAbs(path) {
		return fmt.Errorf("log driver %q: not an absolute path", path)
	}
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("log driver: %w", err)
	}
	if !st.Mode().IsRegular() || st.Mode()&0o111 == 0 {
		return fmt.Errorf("log driver %s: not an executable file", path)
	}
	return nil
}

// connect dials a containerd socket and checks that it serves.
func connect(ctx context.Context, address, namespace string) (*containerd.Client, error) {
	c, err := containerd.New(address,
		containerd.WithDefaultNamespace(namespace),
		containerd.WithDefaultRuntime(runtimeName),
		containerd.WithTimeout(2*time.Second),
	)
	if err != nil {
		return nil, err
	}
	hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ok, err := c.IsServing(hctx)
	if err == nil && !ok {
		err = fmt.Errorf("not serving: %w", errdefs.ErrUnavailable)
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Address is the socket of the containerd this Runtime talks to.
func (r *Runtime) Address() string { return r.address }

// Namespace is the containerd namespace of this Runtime's containers.
func (r *Runtime) Namespace() string { return r.namespace }

// Client is the underlying containerd client, for what this package does
// not wrap. Calls need no namespace in their context: the client's default
// is the Runtime's namespace.
func (r *Runtime) Client() *containerd.Client { return r.client }

// Close disconnects from containerd. The daemon and the containers keep
// running.
func (r *Runtime) Close() error {
	if err := r.client.Close(); err != nil {
		return fmt.Errorf("close containerd client: %w", err)
	}
	return nil
}

// Shutdown stops the private containerd on this Runtime's data directory,
// whether this Runtime or an earlier process started it: SIGTERM, then
// SIGKILL after 10s. Containers' shims keep running, and a later Start
// finds them again. It also closes the connection. With Config.Address set
// it only closes the connection.
func (r *Runtime) Shutdown(ctx context.Context) error {
	closeErr := r.client.Close()
	if r.daemon == nil {
		if closeErr != nil {
			return fmt.Errorf("close containerd client: %w", closeErr)
		}
		return nil
	}
	if err := r.daemon.stop(ctx); err != nil {
		return err
	}
	return nil
}
