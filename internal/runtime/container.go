package runtime

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/api/types/runc/options"
	"github.com/containerd/containerd/cio"
	"github.com/containerd/containerd/containers"
	"github.com/containerd/containerd/contrib/seccomp"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/oci"
	"github.com/containerd/containerd/pkg/cap"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berthdev/berth/internal/runtime/logdriver"
)

// ContainerSpec describes one container of a task.
type ContainerSpec struct {
	ID     string            // containerd container id, unique
	Image  string            // ref already pulled
	Labels map[string]string // stored on the containerd container; List returns them
	// Entrypoint and Command follow Docker's (and so ECS's) rules: a nil
	// Entrypoint keeps the image's ENTRYPOINT and a nil Command the image's
	// CMD; a non-empty Entrypoint replaces the ENTRYPOINT and also drops the
	// image's CMD (as `docker run --entrypoint` does), so that only Command
	// follows it.
	Entrypoint []string
	Command    []string
	Env        []string // appended to the image's env (later wins)
	WorkingDir string
	User       string
	Hostname   string
	// NetNSPath is the network namespace (task sandbox) to join; the mount,
	// pid, ipc and uts namespaces are the container's own. Empty: a new,
	// unconnected network namespace.
	NetNSPath string
	// HostNetwork runs the container in the host's network namespace
	// (ECS's host network mode; NetNSPath is ignored), with the host's
	// /etc/hosts and /etc/resolv.conf, as docker --network host.
	HostNetwork bool
	// Privileged gives the container every capability, every device, no
	// seccomp filter, no masked or read-only paths of /proc and /sys, and
	// lets it gain privileges, as docker --privileged (ECS's privileged,
	// EC2 launch type only).
	Privileged bool
	// ShimGroup, when set, is shared by the containers that are to share
	// one containerd shim (a task's): the runc v2 shim serves every
	// container whose spec carries the same group annotation, so a task
	// costs one shim rather than one per container. Empty: a shim of its
	// own.
	ShimGroup string
	// CgroupParent is the task's absolute cgroup path, e.g. "/berth/<task>";
	// the container's cgroup is CgroupParent/ID. Empty: "/<namespace>/ID".
	CgroupParent      string
	CPUShares         uint64 // container cpu units (0: none)
	MemoryLimit       int64  // bytes, hard limit (0: none beyond the task's)
	MemoryReservation int64  // bytes, soft limit (0: none)
	ReadonlyRootfs    bool
	AddCapabilities   []string // e.g. "SYS_PTRACE" or "CAP_SYS_PTRACE"; "ALL" adds every one
	// LogPath is an absolute file that stdout and stderr are appended to,
	// line by line, by the log driver the shim starts (Config.LogDriver),
	// so logging goes on without the agent. Empty: output is discarded.
	// Output is copied asynchronously: when Wait returns the last lines
	// may still be in flight; the file is complete once Delete returns
	// (deleting the task drains the pipes).
	LogPath string
}

// shimGroupAnnotation groups containers into one runc v2 shim (containerd's
// shim manager reads it from the OCI spec).
const shimGroupAnnotation = "io.containerd.runc.v2.group"

// ExitStatus is how a container's main process ended.
type ExitStatus struct {
	Code      int // exit code; 128+n when killed by signal n
	ExitedAt  time.Time
	OOMKilled bool // killed by the kernel's OOM killer (Code 137)
}

// ContainerInfo is a container as List sees it.
type ContainerInfo struct {
	ID     string
	Labels map[string]string
	Image  string
	Status string // "created", "running", "stopped" or "unknown"
	Pid    uint32
	Exit   *ExitStatus // set when Status is "stopped"
}

// IsNotFound reports whether err says a container, task or image does not exist.
func IsNotFound(err error) bool { return errdefs.IsNotFound(err) }

// Run creates and starts a container, returning its main process's pid.
// Containers get containerd's default capabilities plus AddCapabilities,
// containerd's default seccomp profile and no_new_privileges, unless
// spec.Privileged.
func (r *Runtime) Run(ctx context.Context, spec ContainerSpec) (pid uint32, err error) {
	if spec.ID == "" {
		return 0, errors.New("run container: empty id")
	}
	if spec.LogPath != "" && !filepath.IsAbs(spec.LogPath) {
		return 0, fmt.Errorf("run container %s: log path %q is not absolute", spec.ID, spec.LogPath)
	}
	imgName, err := NormalizeRef(spec.Image)
	if err != nil {
		return 0, fmt.Errorf("run container %s: %w", spec.ID, err)
	}
	img, err := r.client.GetImage(ctx, imgName)
	if err != nil {
		return 0, fmt.Errorf("run container %s: image %s: %w", spec.ID, imgName, err)
	}
	imgSpec, err := img.Spec(ctx)
	if err != nil {
		return 0, fmt.Errorf("run container %s: image %s config: %w", spec.ID, imgName, err)
	}
	args, err := processArgs(imgSpec.Config.Entrypoint, imgSpec.Config.Cmd, spec.Entrypoint, spec.Command)
	if err != nil {
		return 0, fmt.Errorf("run container %s: %w", spec.ID, err)
	}
	caps, err := capabilities(spec.AddCapabilities)
	if err != nil {
		return 0, fmt.Errorf("run container %s: %w", spec.ID, err)
	}

	specOpts := []oci.SpecOpts{
		oci.WithImageConfig(img), // env, working dir, user
		oci.WithProcessArgs(args...),
		oci.WithEnv(spec.Env),
	}
	if spec.Privileged {
		specOpts = append(specOpts, oci.WithNewPrivileges) // containerd's default spec has it on
	} else {
		specOpts = append(specOpts, oci.WithNoNewPrivileges)
	}
	if spec.WorkingDir != "" {
		specOpts = append(specOpts, oci.WithProcessCwd(spec.WorkingDir))
	}
	if spec.User != "" {
		specOpts = append(specOpts, oci.WithUser(spec.User), withAdditionalGIDsOf(spec.User))
	}
	if spec.Hostname != "" {
		specOpts = append(specOpts, oci.WithHostname(spec.Hostname))
	}
	switch {
	case spec.HostNetwork:
		// No network namespace in the spec: runc leaves the container in
		// its own (the host's).
		specOpts = append(specOpts, oci.WithHostNamespace(specs.NetworkNamespace), oci.WithHostHostsFile, oci.WithHostResolvconf)
	case spec.NetNSPath != "":
		specOpts = append(specOpts, oci.WithLinuxNamespace(specs.LinuxNamespace{
			Type: specs.NetworkNamespace, Path: spec.NetNSPath,
		}))
	}
	if spec.CgroupParent != "" {
		specOpts = append(specOpts, oci.WithCgroup(strings.TrimSuffix(spec.CgroupParent, "/")+"/"+spec.ID))
	}
	if spec.CPUShares > 0 {
		specOpts = append(specOpts, oci.WithCPUShares(max(spec.CPUShares, 2)))
	}
	if spec.MemoryLimit > 0 {
		specOpts = append(specOpts, oci.WithMemoryLimit(uint64(spec.MemoryLimit)))
	}
	if spec.MemoryReservation > 0 {
		specOpts = append(specOpts, withMemoryReservation(spec.MemoryReservation))
	}
	if spec.ReadonlyRootfs {
		specOpts = append(specOpts, oci.WithRootFSReadonly())
	}
	if len(caps) > 0 {
		specOpts = append(specOpts, oci.WithAddedCapabilities(caps))
	}
	if spec.ShimGroup != "" {
		specOpts = append(specOpts, oci.WithAnnotations(map[string]string{shimGroupAnnotation: spec.ShimGroup}))
	}
	if spec.Privileged {
		// containerd's WithPrivileged is the capabilities, paths, sysfs,
		// cgroupfs and seccomp half of docker's --privileged; the devices
		// are the other half.
		specOpts = append(specOpts, oci.WithPrivileged, oci.WithAllDevicesAllowed, oci.WithHostDevices)
	} else {
		// Last: the default profile allows syscalls according to the
		// capabilities set above.
		specOpts = append(specOpts, seccomp.WithDefaultProfile())
	}

	var runtimeOpts any
	if r.runcRoot != "" {
		runtimeOpts = &options.Options{Root: r.runcRoot}
	}
	newOpts := []containerd.NewContainerOpts{
		containerd.WithImage(img),
		containerd.WithSnapshotter(snapshotter),
		containerd.WithNewSnapshot(spec.ID, img),
		containerd.WithContainerLabels(spec.Labels),
		containerd.WithRuntime(runtimeName, runtimeOpts),
		containerd.WithNewSpec(specOpts...),
	}
	c, err := r.client.NewContainer(ctx, spec.ID, newOpts...)
	if errdefs.IsAlreadyExists(err) && r.removeStaleSnapshot(ctx, spec.ID) {
		c, err = r.client.NewContainer(ctx, spec.ID, newOpts...)
	}
	if err != nil {
		return 0, fmt.Errorf("run container %s: create: %w", spec.ID, err)
	}
	cleanup := func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if derr := r.Delete(dctx, spec.ID); derr != nil {
			r.log.WarnContext(ctx, "clean up failed container", "id", spec.ID, "err", derr)
		}
	}
	ioCreator := cio.NullIO
	switch {
	case spec.LogPath != "" && r.logDriver != "":
		inv := logdriver.Invocation{Path: spec.LogPath}
		if spec.CgroupParent != "" {
			// The driver's CPU counts against the task's (see logdriver).
			dirs, cerr := cpuCgroupDirs(spec.CgroupParent)
			if cerr != nil {
				r.log.WarnContext(ctx, "log driver stays outside the task cgroup", "id", spec.ID, "err", cerr)
			}
			inv.CgroupDirs = dirs
		}
		ioCreator = cio.BinaryIO(r.logDriver, inv.Args())
	case spec.LogPath != "":
		ioCreator = cio.LogFile(spec.LogPath)
	}
	task, err := c.NewTask(ctx, ioCreator)
	// A Run of this id whose caller died mid-way (berth was killed while
	// containerd created the task) leaves a task bundle that containerd
	// removes, in more than one step, once it notices: until it is done, a
	// new shim for the id finds the bundle there ("mkdir …: file exists") or
	// loses it under its feet ("getwd: no such file or directory"). Wait for
	// containerd rather than fail the container.
	for wait := 50 * time.Millisecond; err != nil && shimStartFailed(err) && wait < 5*time.Second && ctx.Err() == nil; wait *= 2 {
		select {
		case <-ctx.Done():
		case <-time.After(wait):
			r.log.InfoContext(ctx, "retrying task create", "id", spec.ID, "err", err)
			task, err = c.NewTask(ctx, ioCreator)
		}
	}
	if err != nil {
		cleanup()
		return 0, fmt.Errorf("run container %s: create task: %w", spec.ID, err)
	}
	if err := task.Start(ctx); err != nil {
		cleanup()
		return 0, fmt.Errorf("run container %s: start: %w", spec.ID, err)
	}
	r.log.DebugContext(ctx, "container started", "id", spec.ID, "pid", task.Pid(), "args", args)
	return task.Pid(), nil
}

// removeStaleSnapshot removes the snapshot of a container that does not
// exist: what a Run leaves behind when its caller dies after the snapshot is
// prepared and before the container is created. It reports whether there was
// one to remove.
func (r *Runtime) removeStaleSnapshot(ctx context.Context, id string) bool {
	if _, err := r.client.LoadContainer(ctx, id); !errdefs.IsNotFound(err) {
		return false
	}
	if err := r.client.SnapshotService(snapshotter).Remove(ctx, id); err != nil {
		r.log.WarnContext(ctx, "remove stale snapshot", "id", id, "err", err)
		return false
	}
	r.log.InfoContext(ctx, "removed stale snapshot of an interrupted start", "id", id)
	return true
}

// shimStartFailed reports whether creating a task failed because its shim
// could not start: a failure of the host's plumbing, not of the container's
// spec (runc's own errors come later, from the started shim), and worth a
// retry. containerd's Unknown code carries it only as text.
func shimStartFailed(err error) bool {
	return strings.Contains(err.Error(), "failed to start shim")
}

// processArgs merges an image's ENTRYPOINT and CMD with the overrides the
// way Docker's daemon does.
func processArgs(imgEntrypoint, imgCmd, entrypoint, command []string) ([]string, error) {
	ep, cmd := entrypoint, command
	if len(ep) == 0 {
		if len(cmd) == 0 {
			cmd = imgCmd
		}
		if ep == nil {
			ep = imgEntrypoint
		}
	}
	args := append(slices.Clone(ep), cmd...)
	if len(args) == 0 {
		return nil, errors.New("no command: neither the image nor the container defines ENTRYPOINT or CMD")
	}
	return args, nil
}

// capabilities normalizes capability names to "CAP_X" and checks them.
func capabilities(names []string) ([]string, error) {
	known := cap.Known()
	var out []string
	for _, n := range names {
		n = strings.ToUpper(strings.TrimSpace(n))
		if n == "ALL" || n == "CAP_ALL" {
			return known, nil
		}
		if !strings.HasPrefix(n, "CAP_") {
			n = "CAP_" + n
		}
		if !slices.Contains(known, n) {
			return nil, fmt.Errorf("unknown capability %q", n)
		}
		out = append(out, n)
	}
	return out, nil
}

func withMemoryReservation(bytes int64) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		if s.Linux == nil {
			s.Linux = &specs.Linux{}
		}
		if s.Linux.Resources == nil {
			s.Linux.Resources = &specs.LinuxResources{}
		}
		if s.Linux.Resources.Memory == nil {
			s.Linux.Resources.Memory = &specs.LinuxMemory{}
		}
		s.Linux.Resources.Memory.Reservation = &bytes
		return nil
	}
}

// withAdditionalGIDsOf sets the supplementary groups of user ("name",
// "uid", "name:group" or "uid:gid") from the image's /etc/group.
func withAdditionalGIDsOf(user string) oci.SpecOpts {
	name, _, _ := strings.Cut(user, ":")
	return oci.WithAdditionalGIDs(name)
}

// Wait blocks until the container's main process exits and returns how.
// It works for containers started by an earlier agent process and for ones
// that have already exited (until they are deleted). It waits through a
// restart of containerd. The container's log is complete only after Delete.
func (r *Runtime) Wait(ctx context.Context, id string) (ExitStatus, error) {
	for {
		c, task, err := r.loadTask(ctx, id)
		if err != nil {
			return ExitStatus{}, fmt.Errorf("wait for %s: %w", id, err)
		}
		ch, err := task.Wait(ctx)
		if err != nil {
			return ExitStatus{}, fmt.Errorf("wait for %s: %w", id, err)
		}
		st := <-ch
		code, at, err := st.Result()
		if err == nil {
			return r.exitStatus(ctx, c, code, at), nil
		}
		if ctx.Err() != nil {
			return ExitStatus{}, fmt.Errorf("wait for %s: %w", id, ctx.Err())
		}
		if err = errdefs.FromGRPC(err); !errdefs.IsUnavailable(err) {
			return ExitStatus{}, fmt.Errorf("wait for %s: %w", id, err)
		}
		r.log.WarnContext(ctx, "containerd unavailable while waiting, retrying", "id", id, "err", err)
		select {
		case <-ctx.Done():
			return ExitStatus{}, fmt.Errorf("wait for %s: %w", id, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// Signal sends sig to the container's main process.
func (r *Runtime) Signal(ctx context.Context, id string, sig syscall.Signal) error {
	_, task, err := r.loadTask(ctx, id)
	if err != nil {
		return fmt.Errorf("signal %s: %w", id, err)
	}
	if err := task.Kill(ctx, sig); err != nil {
		return fmt.Errorf("signal %s with %v: %w", id, sig, err)
	}
	return nil
}

// Stop sends sig (SIGTERM if 0) to the container's main process, waits up
// to timeout for it to exit, then sends SIGKILL. Stopping a container that
// has already exited returns its exit status.
func (r *Runtime) Stop(ctx context.Context, id string, sig syscall.Signal, timeout time.Duration) (ExitStatus, error) {
	if sig == 0 {
		sig = syscall.SIGTERM
	}
	c, task, err := r.loadTask(ctx, id)
	if err != nil {
		return ExitStatus{}, fmt.Errorf("stop %s: %w", id, err)
	}
	waitCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch, err := task.Wait(waitCtx)
	if err != nil {
		return ExitStatus{}, fmt.Errorf("stop %s: %w", id, err)
	}
	// NotFound: the process has already exited.
	if err := task.Kill(ctx, sig); err != nil && !errdefs.IsNotFound(err) {
		return ExitStatus{}, fmt.Errorf("stop %s: signal %v: %w", id, sig, err)
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var st containerd.ExitStatus
	select {
	case st = <-ch:
	case <-timer.C:
		r.log.InfoContext(ctx, "container did not stop in time, killing", "id", id, "timeout", timeout)
		if err := task.Kill(ctx, syscall.SIGKILL, containerd.WithKillAll); err != nil && !errdefs.IsNotFound(err) {
			return ExitStatus{}, fmt.Errorf("stop %s: kill: %w", id, err)
		}
		st = <-ch
	}
	code, at, err := st.Result()
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return ExitStatus{}, fmt.Errorf("stop %s: wait: %w", id, err)
	}
	return r.exitStatus(ctx, c, code, at), nil
}

// Exec runs args as a new process inside the running container (with the
// container's user, env and working directory) and returns its exit code;
// output is discarded. With timeout > 0, a process still running after
// timeout is killed and an error wrapping context.DeadlineExceeded returned.
func (r *Runtime) Exec(ctx context.Context, id string, args []string, timeout time.Duration) (exitCode int, err error) {
	if len(args) == 0 {
		return -1, fmt.Errorf("exec in %s: no command", id)
	}
	c, task, err := r.loadTask(ctx, id)
	if err != nil {
		return -1, fmt.Errorf("exec in %s: %w", id, err)
	}
	spec, err := c.Spec(ctx)
	if err != nil {
		return -1, fmt.Errorf("exec in %s: spec: %w", id, err)
	}
	if spec.Process == nil {
		return -1, fmt.Errorf("exec in %s: spec has no process", id)
	}
	pspec := *spec.Process
	pspec.Args = args
	pspec.Terminal = false
	execID := "exec-" + randomHex(8)

	waitCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	p, err := task.Exec(ctx, execID, &pspec, cio.NullIO)
	if err != nil {
		return -1, fmt.Errorf("exec in %s: %w", id, err)
	}
	defer func() {
		dctx, dcancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer dcancel()
		if _, derr := p.Delete(dctx, containerd.WithProcessKill); derr != nil && !errdefs.IsNotFound(derr) {
			r.log.WarnContext(ctx, "delete exec process", "id", id, "exec", execID, "err", derr)
		}
	}()
	ch, err := p.Wait(waitCtx)
	if err != nil {
		return -1, fmt.Errorf("exec in %s: wait: %w", id, err)
	}
	if err := p.Start(ctx); err != nil {
		return -1, fmt.Errorf("exec %v in %s: start: %w", args, id, err)
	}
	var expired <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expired = t.C
	}
	select {
	case st := <-ch:
		code, _, err := st.Result()
		if err != nil {
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			return -1, fmt.Errorf("exec in %s: wait: %w", id, err)
		}
		return int(code), nil
	case <-expired:
		return -1, fmt.Errorf("exec %v in %s: timed out after %v: %w", args, id, timeout, context.DeadlineExceeded)
	}
}

// Delete removes a container: kills its processes if still running,
// deletes the task, the container and its snapshot. Deleting a container
// that does not exist is not an error.
func (r *Runtime) Delete(ctx context.Context, id string) error {
	c, err := r.client.LoadContainer(ctx, id)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete %s: %w", id, err)
	}
	task, err := c.Task(ctx, nil)
	switch {
	case err == nil:
		if _, err := task.Delete(ctx, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("delete %s: task: %w", id, err)
		}
	case !errdefs.IsNotFound(err):
		return fmt.Errorf("delete %s: load task: %w", id, err)
	}
	if err := c.Delete(ctx, containerd.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("delete %s: %w", id, err)
	}
	return nil
}

// List returns every container in the Runtime's namespace, with its state,
// for adoption after an agent restart. A container without a task (never
// started, or its task deleted) is "created".
func (r *Runtime) List(ctx context.Context) ([]ContainerInfo, error) {
	cs, err := r.client.Containers(ctx)
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	out := make([]ContainerInfo, 0, len(cs))
	for _, c := range cs {
		info, err := c.Info(ctx, containerd.WithoutRefreshedMetadata)
		if errdefs.IsNotFound(err) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("list containers: %s: %w", c.ID(), err)
		}
		ci := ContainerInfo{ID: info.ID, Labels: info.Labels, Image: info.Image, Status: "created"}
		task, err := c.Task(ctx, nil)
		switch {
		case errdefs.IsNotFound(err):
			out = append(out, ci)
			continue
		case err != nil:
			return nil, fmt.Errorf("list containers: %s: task: %w", c.ID(), err)
		}
		st, err := task.Status(ctx)
		if err != nil {
			if errdefs.IsNotFound(err) {
				out = append(out, ci)
				continue
			}
			return nil, fmt.Errorf("list containers: %s: status: %w", c.ID(), err)
		}
		ci.Pid = task.Pid()
		switch st.Status {
		case containerd.Created, containerd.Running, containerd.Stopped:
			ci.Status = string(st.Status)
		case containerd.Paused, containerd.Pausing:
			ci.Status = string(containerd.Running)
		default:
			ci.Status = "unknown"
		}
		if st.Status == containerd.Stopped {
			es := r.exitStatus(ctx, c, st.ExitStatus, st.ExitTime)
			ci.Exit = &es
		}
		out = append(out, ci)
	}
	return out, nil
}

func (r *Runtime) loadTask(ctx context.Context, id string) (containerd.Container, containerd.Task, error) {
	c, err := r.client.LoadContainer(ctx, id)
	if err != nil {
		return nil, nil, fmt.Errorf("load container: %w", err)
	}
	task, err := c.Task(ctx, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("load task: %w", err)
	}
	return c, task, nil
}

// exitStatus builds an ExitStatus, deciding OOMKilled: the process was
// killed by SIGKILL and the kernel's OOM killer killed a process of the
// container's own cgroup (the counter is kept on the cgroup of the victim,
// whether the limit hit was the container's or the task's). The cgroup is
// there until the container's task is deleted.
func (r *Runtime) exitStatus(ctx context.Context, c containerd.Container, code uint32, at time.Time) ExitStatus {
	es := ExitStatus{Code: int(code), ExitedAt: at}
	if code != 128+uint32(syscall.SIGKILL) {
		return es
	}
	spec, err := c.Spec(ctx)
	if err != nil || spec.Linux == nil || spec.Linux.CgroupsPath == "" {
		r.log.WarnContext(ctx, "cannot tell whether container was OOM-killed: no cgroup path", "id", c.ID(), "err", err)
		return es
	}
	kills, err := oomKills(spec.Linux.CgroupsPath)
	if err != nil {
		r.log.WarnContext(ctx, "cannot tell whether container was OOM-killed", "id", c.ID(), "err", err)
		return es
	}
	es.OOMKilled = kills > 0
	return es
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails
	return hex.EncodeToString(b)
}
