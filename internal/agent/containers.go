package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/netns"
	"github.com/berthdev/berth/internal/runtime"
)

// container is the agent's view of one container of a task; only the task's
// goroutine touches it.
type container struct {
	spec    agentapi.ContainerSpec
	id      string // containerd id
	image   *runtime.Image
	status  string
	started bool
	exit    *runtime.ExitStatus
	reason  string
	health  string
	pid     uint32
	// startedAt is when this agent started it (zero for adopted ones).
	startedAt time.Time
}

func (c *container) state() agentapi.ContainerState {
	s := agentapi.ContainerState{Name: c.spec.Name, Status: c.status, Reason: c.reason, HealthStatus: c.health, Pid: c.pid}
	if c.started {
		s.RuntimeID = c.id
	}
	if c.image != nil {
		s.ImageDigest = c.image.Digest
	}
	if c.exit != nil {
		code := c.exit.Code
		s.ExitCode = &code
	}
	return s
}

// containerID names a container in containerd: task id and container name,
// hashed when that is longer than containerd's 76-character limit.
func containerID(taskID, name string) string {
	id := taskID + "-" + name
	if len(id) <= 76 {
		return id
	}
	h := sha256.Sum256([]byte(name))
	return taskID + "-" + hex.EncodeToString(h[:8])
}

func (t *managedTask) byName(name string) *container {
	for _, c := range t.containers {
		if c.spec.Name == name {
			return c
		}
	}
	return nil
}

// provision makes the sandbox: network namespace and task cgroup.
func (t *managedTask) provision(ctx context.Context) string {
	if t.stopWanted() {
		return agentapi.StatusDeactivating
	}
	if err := t.createSandbox(); err != nil {
		return t.fail(agentapi.StopTaskFailedToStart, "ResourceInitializationError: "+err.Error())
	}
	return agentapi.StatusPending
}

// startContainers pulls the images and starts the containers in dependsOn order.
func (t *managedTask) startContainers(ctx context.Context) string {
	if t.stopWanted() {
		return agentapi.StatusDeactivating
	}
	if next := t.pull(ctx); next != "" {
		return next
	}
	for {
		if t.stopCode != "" || t.stopWanted() {
			return agentapi.StatusDeactivating
		}
		if next := t.startReady(ctx); next != "" {
			return next
		}
		if t.allStarted() {
			return agentapi.StatusActivating
		}
		if !t.await(ctx) {
			return ""
		}
	}
}

// pull fetches every image the task needs; "" when all are present.
func (t *managedTask) pull(ctx context.Context) string {
	now := time.Now()
	t.pullStarted = &now
	images := map[string]*runtime.Image{}
	auth := t.registryAuth(ctx)
	for _, c := range t.containers {
		if c.started {
			continue
		}
		img, ok := images[c.spec.Image]
		if !ok {
			pulled, err := t.a.cfg.Runtime.Pull(ctx, c.spec.Image, auth.pullOptions(c.spec.Image)...)
			if ctx.Err() != nil {
				return ""
			}
			if err != nil {
				reason := "CannotPullContainerError: " + err.Error()
				c.reason = reason
				return t.fail(agentapi.StopTaskFailedToStart, reason)
			}
			img = &pulled
			images[c.spec.Image] = img
		}
		c.image = img
	}
	done := time.Now()
	t.pullStopped = &done
	return ""
}

// taskAuth is the task's own account's credentials for the control plane's
// registry, if it has one.
type taskAuth struct{ agentapi.RegistryAuth }

// registryAuth asks the control plane for the task account's registry
// credentials; without them images are pulled anonymously.
func (t *managedTask) registryAuth(ctx context.Context) taskAuth {
	a, err := t.a.cfg.Server.RegistryAuth(ctx, agentapi.RegistryAuthRequest{NodeID: t.a.cfg.Node.NodeID, TaskArn: t.spec.TaskArn})
	if err != nil {
		t.a.log.Debug("no registry credentials; pulling anonymously", "task", t.spec.TaskID, "err", err)
		return taskAuth{}
	}
	return taskAuth{a}
}

// pullOptions passes the credentials to a pull from one of the hosts they
// are for, and to no other.
func (a taskAuth) pullOptions(ref string) []runtime.PullOption {
	host, err := runtime.RegistryHost(ref)
	if err != nil || a.Password == "" {
		return nil
	}
	for _, h := range a.Hosts {
		if h == host {
			return []runtime.PullOption{runtime.WithCredentials(host, a.Username, a.Password)}
		}
	}
	return nil
}

func (t *managedTask) allStarted() bool {
	for _, c := range t.containers {
		if !c.started {
			return false
		}
	}
	return true
}

// startReady starts every container whose dependencies are met. It returns
// DEACTIVATING when a container cannot start or never will.
func (t *managedTask) startReady(ctx context.Context) string {
	for progress := true; progress; {
		progress = false
		for _, c := range t.containers {
			if c.started {
				continue
			}
			next, started := t.startIfReady(ctx, c)
			if next != "" {
				return next
			}
			progress = progress || started
		}
	}
	return ""
}

// startIfReady starts c if its dependencies are met; it returns the status to
// move to when c cannot start or never will, and whether it started c.
func (t *managedTask) startIfReady(ctx context.Context, c *container) (string, bool) {
	ready, never := t.dependenciesMet(c)
	if never != "" {
		c.reason = never
		return t.fail(agentapi.StopTaskFailedToStart, never), false
	}
	if !ready {
		return "", false
	}
	if err := t.startOne(ctx, c); err != nil {
		if ctx.Err() != nil {
			return "", false
		}
		c.reason = "CannotStartContainerError: " + err.Error()
		if ie := (*resourceInitError)(nil); errors.As(err, &ie) {
			c.reason = ie.Error()
		}
		return t.fail(agentapi.StopTaskFailedToStart, c.reason), false
	}
	// The task's next transition reports the container too; report it
	// now only if others still wait for their dependencies.
	if !t.allStarted() && !t.report(ctx) {
		return "", false
	}
	return "", true
}

// dependenciesMet evaluates a container's dependsOn: whether it may start
// now, or why it never will.
func (t *managedTask) dependenciesMet(c *container) (ready bool, never string) {
	for _, d := range c.spec.DependsOn {
		dep := t.byName(d.ContainerName)
		if dep == nil {
			return false, fmt.Sprintf("DependencyError: container %s depends on unknown container %s", c.spec.Name, d.ContainerName)
		}
		switch d.Condition {
		case agentapi.ConditionStart:
			if !dep.started {
				return false, ""
			}
		case agentapi.ConditionComplete:
			if dep.exit == nil {
				return false, ""
			}
		case agentapi.ConditionSuccess:
			if dep.exit == nil {
				return false, ""
			}
			if dep.exit.Code != 0 {
				return false, fmt.Sprintf("DependencyError: container %s needs %s to exit 0 (SUCCESS), it exited %d", c.spec.Name, dep.spec.Name, dep.exit.Code)
			}
		case agentapi.ConditionHealthy:
			if dep.exit != nil || dep.health == agentapi.HealthUnhealthy {
				return false, fmt.Sprintf("DependencyError: container %s needs %s to be HEALTHY, it is %s", c.spec.Name, dep.spec.Name, orUnknown(dep))
			}
			if dep.health != agentapi.HealthHealthy {
				return false, ""
			}
		}
	}
	return true, ""
}

func orUnknown(c *container) string {
	if c.exit != nil {
		return "stopped"
	}
	if c.health == "" {
		return agentapi.HealthUnknown
	}
	return c.health
}

// startOne creates and starts a container and begins watching it.
func (t *managedTask) startOne(ctx context.Context, c *container) error {
	cs := c.spec
	logPath := LogPath(t.a.cfg.DataDir, t.spec.TaskID, cs.Name)
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return fmt.Errorf("log dir: %w", err)
	}
	execEnv := "AWS_ECS_FARGATE"
	if t.spec.LaunchType == "EC2" {
		execEnv = "AWS_ECS_EC2"
	}
	env := []string{
		"AWS_REGION=" + t.spec.Region, "AWS_DEFAULT_REGION=" + t.spec.Region, "AWS_EXECUTION_ENV=" + execEnv,
	}
	if t.a.cfg.APIURL != "" && t.a.meta.serves(t.spec) {
		// berth's API inside the VPC (see apiProxy); the user's own
		// environment, which comes after, may point elsewhere.
		env = append(env, "AWS_ENDPOINT_URL=http://"+netns.MetadataAddr.String())
	}
	for _, kv := range cs.Environment {
		env = append(env, kv.Name+"="+kv.Value)
	}
	env = append(env, t.a.meta.env(t.spec, c.id)...) // after the user's: they win
	labels := map[string]string{}
	for k, v := range cs.Labels {
		labels[k] = v
	}
	labels[labelTaskArn] = t.spec.TaskArn
	labels[labelTaskID] = t.spec.TaskID
	labels[labelContainerName] = cs.Name
	labels[labelCluster] = t.spec.ClusterArn
	labels[labelFamily] = t.spec.Family
	labels[labelRevision] = strconv.Itoa(t.spec.Revision)
	hostname := cs.Hostname
	if hostname == "" {
		hostname = "task-" + t.spec.TaskID[:min(12, len(t.spec.TaskID))]
	}
	spec := runtime.ContainerSpec{
		ID: c.id, Image: cs.Image, Labels: labels, Entrypoint: cs.EntryPoint, Command: cs.Command, Env: env,
		WorkingDir: cs.WorkingDirectory, User: cs.User, Hostname: hostname, NetNSPath: t.netns,
		CgroupParent: t.cgroup, CPUShares: uint64(cs.CPU), MemoryLimit: int64(cs.MemoryMiB) << 20,
		MemoryReservation: int64(cs.MemoryReservationMiB) << 20, ReadonlyRootfs: cs.ReadonlyRootfs,
		AddCapabilities: cs.AddCapabilities, LogPath: logPath,
		HostNetwork: t.spec.NetworkMode == agentapi.NetworkModeHost, Privileged: cs.Privileged,
		ShimGroup: "task-" + t.spec.TaskID, // one shim per task
	}
	if c.image != nil {
		spec.Image = c.image.Ref
	}
	if usesAWSLogs(cs) {
		if err := t.a.logs.prepare(ctx, t.spec, cs); err != nil {
			return err
		}
	}
	_ = t.a.cfg.Runtime.Delete(ctx, c.id) // a leftover of an interrupted start
	// A container may ask for its metadata the moment it runs, before the
	// snapshot below: the one it finds must already have the pull times.
	t.a.meta.publish(t.metaSnapshot())
	pid, err := t.a.cfg.Runtime.Run(ctx, spec)
	if err != nil {
		return err
	}
	if usesAWSLogs(cs) {
		t.a.logs.start(t.spec, cs, c.id, logPath)
	}
	c.started, c.status, c.pid, c.startedAt = true, agentapi.ContainerRunning, pid, time.Now()
	t.a.meta.publish(t.metaSnapshot())
	if cs.HealthCheck != nil && len(cs.HealthCheck.Command) > 0 && cs.HealthCheck.Command[0] != "NONE" {
		c.health = agentapi.HealthUnknown
	}
	t.watch(ctx, c)
	return nil
}

// watch starts the goroutines that follow a running container: its exit and
// its health checks. They belong to the task and end with its context.
func (t *managedTask) watch(ctx context.Context, c *container) {
	send := func(ev event) {
		select {
		case t.events <- ev:
		case <-ctx.Done():
		}
	}
	hctx, stopHealth := context.WithCancel(ctx)
	t.helpers.Add(1)
	go func() {
		defer t.helpers.Done()
		defer stopHealth()
		st, err := t.a.cfg.Runtime.Wait(ctx, c.id)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			st = runtime.ExitStatus{Code: 255, ExitedAt: time.Now()}
		}
		send(event{kind: evExited, name: c.spec.Name, exit: st})
	}()
	hc := c.spec.HealthCheck
	if hc == nil || len(hc.Command) == 0 || hc.Command[0] == "NONE" {
		return
	}
	t.helpers.Add(1)
	go func() {
		defer t.helpers.Done()
		healthLoop(hctx, t.a.cfg.Runtime, c.id, hc, func(status string) {
			send(event{kind: evHealth, name: c.spec.Name, health: status})
		})
	}()
}

// healthLoop runs a container's health check as Docker and ECS do: a probe
// every interval with a timeout; retries consecutive failures make it
// UNHEALTHY, except during startPeriod; one success makes it HEALTHY. berth
// runs the first probe one second after start instead of a whole interval
// later, so that HEALTHY dependencies start without a needless wait; a
// failure of such an early probe does not count.
func healthLoop(ctx context.Context, rt Runtime, id string, hc *agentapi.HealthCheck, changed func(string)) {
	args := hc.Command[1:]
	if hc.Command[0] == "CMD-SHELL" {
		args = []string{"/bin/sh", "-c", joinArgs(hc.Command[1:])}
	}
	interval := time.Duration(hc.Interval) * time.Second
	timeout := time.Duration(hc.Timeout) * time.Second
	// Failures count only after the start period and after the first
	// interval, when Docker would have run its first probe: an early probe
	// can only make a container HEALTHY sooner, never UNHEALTHY sooner.
	grace := time.Now().Add(max(time.Duration(hc.StartPeriod)*time.Second, interval))
	status, failures := agentapi.HealthUnknown, 0
	next := time.Second
	for sleep(ctx, next) {
		next = interval
		code, err := rt.Exec(ctx, id, args, timeout)
		if ctx.Err() != nil {
			return
		}
		if err == nil && code == 0 {
			failures = 0
			if status != agentapi.HealthHealthy {
				status = agentapi.HealthHealthy
				changed(status)
			}
			continue
		}
		if time.Now().Before(grace) {
			continue
		}
		failures++
		if failures >= hc.Retries && status != agentapi.HealthUnhealthy {
			status = agentapi.HealthUnhealthy
			changed(status)
		}
	}
}

func joinArgs(a []string) string {
	s := ""
	for i, x := range a {
		if i > 0 {
			s += " "
		}
		s += x
	}
	return s
}

// apply records a container event; an essential container's exit stops the task.
func (t *managedTask) apply(ev event) {
	c := t.byName(ev.name)
	if c == nil {
		return
	}
	switch ev.kind {
	case evExited:
		if c.exit != nil {
			return
		}
		st := ev.exit
		c.exit, c.status, c.pid = &st, agentapi.ContainerStopped, 0
		if st.OOMKilled {
			c.reason = "OutOfMemoryError: Container killed due to memory usage"
		}
		if c.spec.Essential && t.stopCode == "" {
			t.fail(agentapi.StopEssentialContainerExited, "Essential container in task exited")
		}
	case evHealth:
		if c.exit == nil {
			c.health = ev.health
		}
	}
	t.health = t.taskHealth()
}

// taskHealth: UNHEALTHY if an essential container is; HEALTHY when every
// essential container with a health check is; UNKNOWN otherwise.
func (t *managedTask) taskHealth() string {
	checked, healthy := 0, 0
	for _, c := range t.containers {
		if !c.spec.Essential || c.health == "" {
			continue
		}
		checked++
		switch c.health {
		case agentapi.HealthUnhealthy:
			return agentapi.HealthUnhealthy
		case agentapi.HealthHealthy:
			healthy++
		}
	}
	if checked == 0 {
		return ""
	}
	if healthy == checked {
		return agentapi.HealthHealthy
	}
	return agentapi.HealthUnknown
}

// stopContainers stops every running container: the image's STOPSIGNAL
// (default SIGTERM), then SIGKILL after the container's stopTimeout (default
// 30s, at most 120s).
func (t *managedTask) stopContainers(ctx context.Context) string {
	var wg sync.WaitGroup
	results := make([]*runtime.ExitStatus, len(t.containers))
	for i, c := range t.containers {
		if !c.started || c.exit != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := t.a.cfg.Runtime.Stop(ctx, c.id, t.stopSignal(ctx, c), stopTimeout(c.spec))
			if err != nil {
				if runtime.IsNotFound(err) {
					st = runtime.ExitStatus{Code: 137, ExitedAt: time.Now()}
				} else {
					t.a.log.Warn("stop container", "container", c.id, "err", err)
					return
				}
			}
			results[i] = &st
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return ""
	}
	for i, st := range results {
		if st != nil {
			t.apply(event{kind: evExited, name: t.containers[i].spec.Name, exit: *st})
		}
	}
	for _, c := range t.containers {
		if c.status != agentapi.ContainerStopped {
			c.status = agentapi.ContainerStopped
		}
	}
	now := time.Now()
	t.execStopped = &now
	return agentapi.StatusDeprovisioning
}

func stopTimeout(cs agentapi.ContainerSpec) time.Duration {
	s := cs.StopTimeoutSeconds
	if s <= 0 {
		s = 30
	}
	if s > 120 {
		s = 120
	}
	return time.Duration(s) * time.Second
}

// stopSignal is the image's STOPSIGNAL, SIGTERM when it has none.
func (t *managedTask) stopSignal(ctx context.Context, c *container) syscall.Signal {
	if c.image == nil {
		if img, err := t.a.cfg.Runtime.Pull(ctx, c.spec.Image); err == nil {
			c.image = &img
		}
	}
	if c.image == nil || c.image.Config.StopSignal == "" {
		return syscall.SIGTERM
	}
	return parseSignal(c.image.Config.StopSignal)
}

func parseSignal(s string) syscall.Signal {
	if n, err := strconv.Atoi(s); err == nil && n > 0 && n < 65 {
		return syscall.Signal(n)
	}
	if sig := unix.SignalNum(s); sig != 0 {
		return sig
	}
	if sig := unix.SignalNum("SIG" + s); sig != 0 {
		return sig
	}
	return syscall.SIGTERM
}
