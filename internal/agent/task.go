package agent

import (
	"context"
	"sync"
	"time"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/runtime"
)

// Labels the agent puts on every container; the com.amazonaws.ecs ones are
// the labels the ECS agent uses.
const (
	labelTaskArn       = "com.amazonaws.ecs.task-arn"
	labelContainerName = "com.amazonaws.ecs.container-name"
	labelCluster       = "com.amazonaws.ecs.cluster"
	labelFamily        = "com.amazonaws.ecs.task-definition-family"
	labelRevision      = "com.amazonaws.ecs.task-definition-version"
	labelTaskID        = "berth.task-id"
)

// A managed task is driven through ECS's lifecycle by a table: each known
// status maps to the step that does the work of leaving it and returns the
// status reached (or "" when the agent is shutting down):
//
//	PROVISIONING ─provision─► PENDING ─startContainers─► ACTIVATING ─activate─► RUNNING
//	                             │  (failed to start,          │                    │
//	                             │   or told to stop)          ▼                    ▼ supervise
//	                             └─────────────────────► DEACTIVATING ◄──────────────┘ (essential exit / StopTask)
//	                                                          │ deactivate
//	                                                          ▼
//	                   STOPPED ◄─deprovision─ DEPROVISIONING ◄─stopContainers─ STOPPING
//
// Only the task's own goroutine (run) changes its statuses.
var transitions = map[string]func(*managedTask, context.Context) string{
	agentapi.StatusProvisioning:   (*managedTask).provision,
	agentapi.StatusPending:        (*managedTask).startContainers,
	agentapi.StatusActivating:     (*managedTask).activate,
	agentapi.StatusRunning:        (*managedTask).supervise,
	agentapi.StatusDeactivating:   (*managedTask).deactivate,
	agentapi.StatusStopping:       (*managedTask).stopContainers,
	agentapi.StatusDeprovisioning: (*managedTask).deprovision,
}

type eventKind int

const (
	evExited eventKind = iota
	evHealth
)

type event struct {
	kind   eventKind
	name   string
	exit   runtime.ExitStatus
	health string
}

type managedTask struct {
	a     *Agent
	known string

	mu      sync.Mutex
	desired agentapi.TaskSpec // latest spec from the control plane
	wake    chan struct{}     // a new desired spec arrived

	spec       agentapi.TaskSpec // the spec the task was started with
	containers []*container
	adopt      []runtime.ContainerInfo
	events     chan event
	helpers    sync.WaitGroup // waiters and health checkers of this task
	netns      string
	cgroup     string
	network    string                    // bridge mode: the bridge network
	address    string                    // bridge mode: the task's address on it
	bindings   []agentapi.NetworkBinding // bridge and host modes: published ports
	stopCode   string
	stopReason string
	health     string
	lastSeq    int64

	pullStarted, pullStopped, started, stopping, execStopped *time.Time

	received time.Time // when this agent took the task on

	reports *reportSender // run's: sends the task's reports
}

func newManagedTask(a *Agent, spec agentapi.TaskSpec, known string, adopt []runtime.ContainerInfo) *managedTask {
	t := &managedTask{a: a, known: known, desired: spec, spec: spec, adopt: adopt, received: time.Now(),
		wake: make(chan struct{}, 1), events: make(chan event, 4*len(spec.Containers)+4)}
	a.cfg.Metrics.taskReceived(t.received)
	for _, cs := range spec.Containers {
		t.containers = append(t.containers, &container{spec: cs, id: containerID(spec.TaskID, cs.Name), status: agentapi.ContainerPending})
	}
	return t
}

// setDesired hands the task a newer spec (e.g. desired status STOPPED).
func (t *managedTask) setDesired(spec agentapi.TaskSpec) {
	t.mu.Lock()
	t.desired = spec
	t.mu.Unlock()
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// stopWanted reports whether the control plane wants the task stopped, and
// takes its stop code and reason if no other reason came first.
func (t *managedTask) stopWanted() bool {
	t.mu.Lock()
	d := t.desired
	t.mu.Unlock()
	if d.DesiredStatus != agentapi.StatusStopped {
		return false
	}
	if t.stopCode == "" {
		t.stopCode, t.stopReason = d.StopCode, d.StoppedReason
		if t.stopCode == "" {
			t.stopCode, t.stopReason = agentapi.StopUserInitiated, "Task stopped by user"
		}
	}
	return true
}

// fail records why the task is stopping, unless a reason was recorded first.
func (t *managedTask) fail(code, reason string) string {
	if t.stopCode == "" {
		t.stopCode, t.stopReason = code, reason
	}
	return agentapi.StatusDeactivating
}

// run drives the task until it is STOPPED (true) or the agent shuts down (false).
func (t *managedTask) run(ctx context.Context) bool {
	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		t.helpers.Wait()
	}()
	log := t.a.log.With("task", t.spec.TaskID)
	t.reports = newReportSender(t.a.cfg.Server.Report, log)
	t.helpers.Add(1)
	go func() { defer t.helpers.Done(); t.reports.run(ctx) }()
	t.recover(ctx)
	launching := t.known == agentapi.StatusProvisioning
	launched := func() {}
	if launching {
		// Log shipping gives way until the task runs (or fails).
		launched = t.a.logs.launches.start()
		defer launched()
	}
	for t.known != agentapi.StatusStopped {
		step, ok := transitions[t.known]
		if !ok {
			log.Error("no transition from status", "status", t.known)
			return false
		}
		next := step(t, ctx)
		if next == "" || ctx.Err() != nil {
			return false
		}
		if agentapi.TaskStatusRank(next) <= agentapi.TaskStatusRank(t.known) {
			log.Error("transition does not move forward", "from", t.known, "to", next)
			return false
		}
		log.Debug("task transition", "from", t.known, "to", next)
		t.known = next
		if !t.report(ctx) {
			return false
		}
		if launching && t.known == agentapi.StatusRunning {
			t.a.cfg.Metrics.taskLaunched(t.received)
		}
		if agentapi.TaskStatusRank(t.known) >= agentapi.TaskStatusRank(agentapi.StatusRunning) {
			launched() // running, or stopping after a failed launch
		}
	}
	return true
}

// recover decides where a task resumes: a new task starts at PROVISIONING; a
// task this host ran before the agent restarted resumes at the status the
// control plane last accepted, with its containers reattached.
func (t *managedTask) recover(ctx context.Context) {
	rank := agentapi.TaskStatusRank(t.known)
	if rank < agentapi.TaskStatusRank(agentapi.StatusPending) {
		t.known = agentapi.StatusProvisioning
		for _, c := range t.adopt { // half-made containers of an interrupted start
			_ = t.a.cfg.Runtime.Delete(ctx, c.ID)
		}
		return
	}
	if rank < agentapi.TaskStatusRank(agentapi.StatusDeprovisioning) {
		if err := t.createSandbox(); err != nil {
			t.a.log.Warn("reopen sandbox", "task", t.spec.TaskID, "err", err)
		}
	}
	for _, c := range t.containers { // ship what their output still holds
		if usesAWSLogs(c.spec) {
			t.a.logs.start(t.spec, c.spec, c.id, LogPath(t.a.cfg.DataDir, t.spec.TaskID, c.spec.Name))
		}
	}
	found := map[string]runtime.ContainerInfo{}
	for _, c := range t.adopt {
		found[c.Labels[labelContainerName]] = c
	}
	for _, c := range t.containers {
		info, ok := found[c.spec.Name]
		switch {
		case ok && info.Status == "running":
			c.started, c.status, c.pid = true, agentapi.ContainerRunning, info.Pid
			t.watch(ctx, c)
		case ok && info.Status == "stopped" && info.Exit != nil:
			c.started, c.status = true, agentapi.ContainerRunning
			t.events <- event{kind: evExited, name: c.spec.Name, exit: *info.Exit}
		case ok:
			_ = t.a.cfg.Runtime.Delete(ctx, info.ID) // created but never started
		case rank >= agentapi.TaskStatusRank(agentapi.StatusRunning) && rank < agentapi.TaskStatusRank(agentapi.StatusDeactivating):
			// It ran, and its container is gone: the host lost it.
			c.started, c.status = true, agentapi.ContainerStopped
			c.reason = "container was lost while the agent was down"
			if c.spec.Essential {
				t.fail(agentapi.StopEssentialContainerExited, "Essential container in task exited")
			}
		}
	}
	t.a.meta.publish(t.metaSnapshot()) // the adopted containers, for the metadata endpoint
}

// activate would register the task with load balancers; there are none yet.
func (t *managedTask) activate(ctx context.Context) string {
	now := time.Now()
	t.started = &now
	return agentapi.StatusRunning
}

// supervise watches a running task until it must stop.
func (t *managedTask) supervise(ctx context.Context) string {
	for {
		if t.stopCode != "" || t.stopWanted() {
			return agentapi.StatusDeactivating
		}
		if next := t.startReady(ctx); next != "" {
			return next
		}
		if !t.await(ctx) {
			return ""
		}
	}
}

// await waits for something to happen to the task: a new desired state, or
// a container event, which it records and reports. It returns false when the
// agent shuts down.
func (t *managedTask) await(ctx context.Context) bool {
	select {
	case <-ctx.Done():
		return false
	case <-t.wake:
		return true
	case ev := <-t.events:
		t.apply(ev)
		return t.report(ctx)
	}
}

func (t *managedTask) deactivate(ctx context.Context) string {
	now := time.Now()
	t.stopping = &now
	return agentapi.StatusStopping
}

// deprovision removes the containers and the sandbox; logs stay.
func (t *managedTask) deprovision(ctx context.Context) string {
	for _, c := range t.containers {
		if err := t.a.cfg.Runtime.Delete(ctx, c.id); err != nil {
			t.a.log.Warn("delete container", "container", c.id, "err", err)
		}
	}
	// Deleting a container has ended its log driver: ship the rest.
	deadline := time.Now().Add(shipFinishTimeout)
	for _, c := range t.containers {
		if usesAWSLogs(c.spec) {
			t.a.logs.finish(c.id, max(time.Until(deadline), 0))
		}
	}
	t.a.fw.detached(t.spec)
	if err := t.a.cfg.Sandboxes.Delete(t.spec); err != nil {
		t.a.log.Warn("delete sandbox", "task", t.spec.TaskID, "err", err)
	}
	return agentapi.StatusStopped
}

// createSandbox makes (or, after a restart, finds) the task's sandbox with
// its ENI's latest firewall, and from then on keeps that firewall current.
func (t *managedTask) createSandbox() error {
	fw := t.a.fw.latest(t.spec)
	sb, err := t.a.cfg.Sandboxes.Create(t.spec, fw)
	if err != nil {
		return err
	}
	t.netns, t.cgroup = sb.NetNS, sb.Cgroup
	t.network, t.address, t.bindings = sb.Network, sb.Address, sb.Bindings
	t.a.fw.attached(t.spec, fw)
	t.a.meta.publish(t.metaSnapshot())
	return nil
}

// report hands the task's current state to its reportSender. Before the
// task is RUNNING it returns at once (the launch goes on while the report
// is sent, and a newer one replaces it if it is still waiting); from RUNNING
// on it waits until the control plane has taken it. False if the agent
// shuts down first.
func (t *managedTask) report(ctx context.Context) bool {
	seq := time.Now().UnixNano()
	if seq <= t.lastSeq {
		seq = t.lastSeq + 1
	}
	t.lastSeq = seq
	t.a.meta.publish(t.metaSnapshot())
	rep := agentapi.StateReport{
		NodeID: t.a.cfg.Node.NodeID, TaskArn: t.spec.TaskArn, Seq: seq, Status: t.known, HealthStatus: t.health,
		PullStartedAt: t.pullStarted, PullStoppedAt: t.pullStopped, StartedAt: t.started, StoppingAt: t.stopping,
		ExecutionStoppedAt: t.execStopped, NetworkBindings: t.bindings,
	}
	if agentapi.TaskStatusRank(t.known) >= agentapi.TaskStatusRank(agentapi.StatusDeactivating) {
		rep.StopCode, rep.StoppedReason = t.stopCode, t.stopReason
	}
	for _, c := range t.containers {
		rep.Containers = append(rep.Containers, c.state())
	}
	t.reports.put(rep)
	if agentapi.TaskStatusRank(t.known) < agentapi.TaskStatusRank(agentapi.StatusRunning) {
		return ctx.Err() == nil
	}
	defer t.a.cfg.Metrics.observeStep("report_wait", time.Now())
	return t.reports.flush(ctx)
}
