// Package agent is the host agent: it registers a host's capacity with the
// control plane, learns the tasks placed on it through a long poll, runs each
// task with one goroutine that alone owns that task's statuses (see task.go),
// and reports every transition back. Containers live in containerd, which
// outlives the agent: on start the agent adopts what is already running.
package agent

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/runtime"
)

// Runtime is what the agent needs of the container runtime (runtime.Runtime).
type Runtime interface {
	Pull(ctx context.Context, ref string, opts ...runtime.PullOption) (runtime.Image, error)
	Run(ctx context.Context, spec runtime.ContainerSpec) (uint32, error)
	Wait(ctx context.Context, id string) (runtime.ExitStatus, error)
	Stop(ctx context.Context, id string, sig syscall.Signal, timeout time.Duration) (runtime.ExitStatus, error)
	Exec(ctx context.Context, id string, args []string, timeout time.Duration) (int, error)
	Delete(ctx context.Context, id string) error
	List(ctx context.Context) ([]runtime.ContainerInfo, error)
}

// Sandboxes creates and removes the per-task isolation shared by a task's
// containers: a network namespace (with the task's ENI, if it has one, and
// that ENI's firewall; on the host's bridge network in bridge mode; none in
// host mode) and a cgroup with the task's limits. Create is idempotent: a
// restarted agent calls it again for the tasks it adopts, and gets the same
// sandbox (address, host ports) back.
type Sandboxes interface {
	// Create makes the sandbox of spec; fw is the ENI's firewall as last
	// known (nil: none yet, all ingress is denied until one is applied).
	Create(spec agentapi.TaskSpec, fw *agentapi.Firewall) (SandboxInfo, error)
	// ApplyFirewall replaces the firewall of the task's ENI.
	ApplyFirewall(spec agentapi.TaskSpec, fw agentapi.Firewall) error
	// Delete removes the sandbox; absent parts are not an error. A spec
	// with only TaskID set (an orphan found at start) is enough.
	Delete(spec agentapi.TaskSpec) error
	// Sweep removes the sandboxes of this agent whose task keep does not
	// keep: what a crash left behind.
	Sweep(keep func(taskID string) bool) error
}

// SandboxInfo is what Sandboxes.Create made.
type SandboxInfo struct {
	// NetNS is the network namespace the containers join; empty in host
	// network mode (they stay in the host's).
	NetNS string
	// Cgroup is the task's cgroup.
	Cgroup string
	// Network and Address place a bridge-mode task: its bridge network (a
	// VPC-like namespace the metadata server listens in) and its address
	// there. Empty in other modes (an awsvpc task's are its ENI's).
	Network, Address string
	// Bindings are the task's published ports (bridge and host modes), as
	// its reports carry them.
	Bindings []agentapi.NetworkBinding
}

// ControlPlane is the agent's side of the agent protocol (agentapi.Client).
type ControlPlane interface {
	Register(ctx context.Context, r agentapi.RegisterRequest) (agentapi.RegisterResponse, error)
	Heartbeat(ctx context.Context, r agentapi.RegisterRequest) error
	Tasks(ctx context.Context, node string, since int64, wait time.Duration) (agentapi.TasksResponse, error)
	Report(ctx context.Context, r agentapi.StateReport) error
	RegistryAuth(ctx context.Context, r agentapi.RegistryAuthRequest) (agentapi.RegistryAuth, error)
	TargetHealth(ctx context.Context, r agentapi.TargetHealthReport) error
}

// Config configures an agent.
type Config struct {
	Node      agentapi.RegisterRequest
	DataDir   string // logs live under DataDir/logs
	Server    ControlPlane
	Runtime   Runtime
	Sandboxes Sandboxes
	Logger    *slog.Logger
	// PollWait is how long one long poll may wait (default 30s).
	PollWait time.Duration
	// Metrics, if set, times the agent's steps (see Metrics).
	Metrics *Metrics
	// HostsFile is where the load balancers' DNS names are kept (default
	// /etc/hosts, see hosts.go).
	HostsFile string
	// LBNetwork is how load balancers reach their VPCs (default the
	// host's, internal/netns).
	LBNetwork LBNetwork
	// MetadataNetwork opens the task metadata servers (default: in each VPC
	// namespace, see metadata.go); Credentials fetches task role
	// credentials (default: Server, if it can).
	MetadataNetwork MetadataNetwork
	Credentials     CredentialsSource
	// APIURL is the control plane's AWS API endpoint (e.g.
	// http://127.0.0.1:4566). Tasks reach it at http://169.254.170.2 (their
	// AWS_ENDPOINT_URL), proxied by the metadata server: berth's own VPC
	// endpoint. Empty: no such endpoint.
	APIURL string
}

// Agent runs the tasks placed on one host.
type Agent struct {
	cfg Config
	log *slog.Logger

	mu    sync.Mutex
	tasks map[string]*managedTask // by task ARN
	done  map[string]bool         // tasks that reached STOPPED here
	wg    sync.WaitGroup

	fw   *firewalls
	lbs  *lbRunner
	meta *metadataService
	logs *logShippers
}

// New creates an agent.
func New(cfg Config) *Agent {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.PollWait == 0 {
		cfg.PollWait = 30 * time.Second
	}
	sink, _ := cfg.Server.(logSink) // awslogs shipping; before instrument wraps Server
	if cs, ok := cfg.Server.(CredentialsSource); ok && cfg.Credentials == nil {
		cfg.Credentials = cs
	}
	cfg = cfg.Metrics.instrument(cfg)
	a := &Agent{cfg: cfg, log: cfg.Logger.With("node", cfg.Node.NodeID), tasks: map[string]*managedTask{}, done: map[string]bool{}}
	a.fw = newFirewalls(a)
	a.lbs = newLBRunner(a)
	cfg.Metrics.watchTasks(a.liveTasks)
	a.meta = newMetadataService(a)
	a.logs = newLogShippers(a, sink)
	return a
}

// liveTasks are the specs of the tasks this agent runs that have not
// reached STOPPED here.
func (a *Agent) liveTasks() []agentapi.TaskSpec {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]agentapi.TaskSpec, 0, len(a.tasks))
	for arn, t := range a.tasks {
		if !a.done[arn] {
			out = append(out, t.spec)
		}
	}
	return out
}

// LogPath is where a container's stdout and stderr go.
func LogPath(dataDir, taskID, container string) string {
	return filepath.Join(dataDir, "logs", taskID, container+".log")
}

// Run registers the host and runs its tasks until ctx ends. Tasks keep running
// in containerd after Run returns; the next agent adopts them.
func (a *Agent) Run(ctx context.Context) error {
	hb, err := a.register(ctx)
	if err != nil {
		return err
	}
	existing, err := a.cfg.Runtime.List(ctx)
	if err != nil {
		return fmt.Errorf("list containers to adopt: %w", err)
	}
	byTask := map[string][]runtime.ContainerInfo{}
	for _, c := range existing {
		if arn := c.Labels[labelTaskArn]; arn != "" {
			byTask[arn] = append(byTask[arn], c)
		}
	}
	a.logs.setContext(ctx)
	defer a.logs.wait()
	var wg sync.WaitGroup
	wg.Add(4)
	go func() { defer wg.Done(); a.heartbeat(ctx, hb) }()
	go func() { defer wg.Done(); a.fw.run(ctx) }()
	go func() { defer wg.Done(); a.lbs.run(ctx) }()
	go func() { defer wg.Done(); a.meta.run(ctx) }()
	defer wg.Wait()
	defer a.wg.Wait()

	var since int64
	first := true
	for ctx.Err() == nil {
		resp, err := a.cfg.Server.Tasks(ctx, a.cfg.Node.NodeID, since, a.cfg.PollWait)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			a.log.Warn("poll tasks", "err", err)
			sleep(ctx, time.Second)
			since = 0
			continue
		}
		since = resp.Revision
		a.fw.update(resp.Firewalls, resp.AddressSets)
		a.lbs.update(resp.LoadBalancers)
		a.reconcile(ctx, resp, byTask)
		if first {
			a.collectOrphans(ctx, resp, byTask)
			byTask = nil
			first = false
		}
	}
	return nil
}

func (a *Agent) register(ctx context.Context) (time.Duration, error) {
	for {
		resp, err := a.cfg.Server.Register(ctx, a.cfg.Node)
		if err == nil {
			a.log.Info("registered with control plane", "azs", a.cfg.Node.AvailabilityZones)
			hb := time.Duration(resp.HeartbeatSeconds) * time.Second
			if hb <= 0 {
				hb = 5 * time.Second
			}
			return hb, nil
		}
		a.log.Warn("register", "err", err)
		if !sleep(ctx, time.Second) {
			return 0, ctx.Err()
		}
	}
}

func (a *Agent) heartbeat(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := a.cfg.Server.Heartbeat(ctx, a.cfg.Node); err != nil && ctx.Err() == nil {
				a.log.Warn("heartbeat", "err", err)
			}
		}
	}
}

// reconcile starts a goroutine for each new task and passes desired-state
// changes to the ones already running.
func (a *Agent) reconcile(ctx context.Context, resp agentapi.TasksResponse, adopt map[string][]runtime.ContainerInfo) {
	known := map[string]string{}
	for _, k := range resp.Known {
		known[k.TaskArn] = k.LastStatus
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, spec := range resp.Tasks {
		if a.done[spec.TaskArn] {
			continue
		}
		if mt, ok := a.tasks[spec.TaskArn]; ok {
			mt.setDesired(spec)
			continue
		}
		mt := newManagedTask(a, spec, known[spec.TaskArn], adopt[spec.TaskArn])
		a.tasks[spec.TaskArn] = mt
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			stopped := mt.run(ctx)
			a.mu.Lock()
			delete(a.tasks, spec.TaskArn)
			if stopped {
				a.done[spec.TaskArn] = true
			}
			a.mu.Unlock()
		}()
	}
	// Forget finished tasks the control plane no longer lists.
	listed := map[string]bool{}
	for _, spec := range resp.Tasks {
		listed[spec.TaskArn] = true
	}
	for arn := range a.done {
		if !listed[arn] {
			delete(a.done, arn)
		}
	}
}

// collectOrphans removes containers of tasks the control plane no longer
// places here (for example, tasks that stopped while the agent was down and
// were purged since).
func (a *Agent) collectOrphans(ctx context.Context, resp agentapi.TasksResponse, byTask map[string][]runtime.ContainerInfo) {
	listed := map[string]bool{}
	for _, spec := range resp.Tasks {
		listed[spec.TaskArn] = true
	}
	for arn, cs := range byTask {
		if listed[arn] {
			continue
		}
		for _, c := range cs {
			a.log.Info("removing orphaned container", "task", arn, "container", c.ID)
			if _, err := a.cfg.Runtime.Stop(ctx, c.ID, syscall.SIGKILL, time.Second); err != nil && !runtime.IsNotFound(err) {
				a.log.Warn("stop orphan", "container", c.ID, "err", err)
			}
			if err := a.cfg.Runtime.Delete(ctx, c.ID); err != nil {
				a.log.Warn("delete orphan", "container", c.ID, "err", err)
			}
		}
	}
	ids := map[string]bool{}
	for _, spec := range resp.Tasks {
		ids[spec.TaskID] = true
	}
	if err := a.cfg.Sandboxes.Sweep(func(id string) bool { return ids[id] }); err != nil {
		a.log.Warn("remove leftover sandboxes", "err", err)
	}
}

// sleep waits d or until ctx ends; it reports whether the full wait passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
