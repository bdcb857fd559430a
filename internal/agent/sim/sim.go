// Package sim is a TEST DOUBLE of the host agent, for scale tests and
// benchmarks: a Fleet of simulated hosts that join the control plane through
// the real agent protocol (agentapi.Client: Register, Heartbeat, the Tasks
// long poll, Report) and walk each task placed on them through ECS's
// statuses with configurable delays, but start no containers, make no
// sandbox and pull nothing. Never use it to run real work.
//
// One process hosts ten thousand of them, so nothing is per task but a small
// struct: each host has one goroutine (its long poll), and every timed item
// (a task's next step, its report, a host's heartbeat) is an entry in a
// timer heap of its kind that a fixed pool of workers drains. As the real
// agent does (agent/reports.go), a task's launch goes on while its reports
// wait, and a report sends the latest status the task has reached: a host
// with a backlog of reports sends one per launch rather than three. The
// long polls share one HTTP transport (one connection per host while it
// polls; MaxPolls caps them when file descriptors are short) and the
// reports another, with idle connections kept so that nothing dials per
// request.
package sim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"
	"unique"

	"github.com/berthdev/berth/internal/agentapi"
)

// Range is a delay drawn uniformly from [Min, Max] (Max < Min means Min).
type Range struct{ Min, Max time.Duration }

func (r Range) draw(rng *rand.Rand) time.Duration {
	if r.Max <= r.Min {
		return r.Min
	}
	return r.Min + time.Duration(rng.Int64N(int64(r.Max-r.Min)+1))
}

// Timing is how long a simulated host takes for each step of a task, as the
// real agent would (agent/task.go's transitions).
type Timing struct {
	Provision Range // PROVISIONING → PENDING: sandbox (netns, cgroup)
	Start     Range // PENDING → ACTIVATING: image pull, containers started
	Activate  Range // ACTIVATING → RUNNING
	Stop      Range // each step of a stop: DEACTIVATING, STOPPING, DEPROVISIONING, STOPPED
}

// DefaultTiming is a launch of about 20–60 ms per task with the image cached,
// the order of berth's measured launch on this machine, and quick stops.
func DefaultTiming() Timing {
	return Timing{
		Provision: Range{5 * time.Millisecond, 15 * time.Millisecond},
		Start:     Range{10 * time.Millisecond, 40 * time.Millisecond},
		Activate:  Range{1 * time.Millisecond, 5 * time.Millisecond},
		Stop:      Range{1 * time.Millisecond, 5 * time.Millisecond},
	}
}

// Config configures a Fleet.
type Config struct {
	URL   string // the control plane, e.g. http://127.0.0.1:4566
	Token string // the agents' join token
	// PollWait is how long one long poll may wait (default 20s).
	PollWait time.Duration
	// Workers send reports and heartbeats (default 64).
	Workers int
	// MaxPolls caps the long polls in flight, i.e. the connections they
	// hold (0: one per host). A host over the cap waits for a connection.
	MaxPolls int
	Timing   Timing
	// Seed drives the delays (0: a fixed default).
	Seed   uint64
	Logger *slog.Logger
}

// Fleet is a set of simulated hosts.
type Fleet struct {
	cfg    Config
	log    *slog.Logger
	poll   *agentapi.Client
	report *agentapi.Client
	beats  *agentapi.Beats
	hosts  []*host

	q     timerQueue // tasks' reports
	steps timerQueue // tasks' next steps: never behind a backlog of reports
	hb    timerQueue // heartbeats: never behind a backlog of reports

	registered atomic.Int64
	assigned   atomic.Int64 // tasks handed to a host (first seen in a poll)
	running    atomic.Int64 // tasks whose RUNNING report was accepted and that have not stopped
	stopped    atomic.Int64 // tasks whose STOPPED report was accepted
	reports    atomic.Int64 // reports accepted
	retries    atomic.Int64 // reports or heartbeats that failed and were retried
	gone       atomic.Int64 // tasks whose report was refused with 404 or 409
	pollBeats  atomic.Int64 // polls that renewed their host's lease
}

// New creates an empty fleet; Add hosts, then Run it.
func New(cfg Config) *Fleet {
	if cfg.PollWait <= 0 {
		cfg.PollWait = 20 * time.Second
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 64
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Seed == 0 {
		cfg.Seed = 1
	}
	f := &Fleet{cfg: cfg, log: cfg.Logger}
	// Heartbeats ride on the polls while they return often, as the real
	// agent's do (agentapi.Beats): both clients share the renewals.
	f.beats = &agentapi.Beats{}
	f.report = &agentapi.Client{BaseURL: cfg.URL, Token: cfg.Token, HTTP: &http.Client{Transport: transport(2*cfg.Workers+1024, 0)}, Beats: f.beats}
	return f
}

// transport is an HTTP transport to one host that keeps idle connections
// (so requests do not dial) and opens at most max at once (0: no cap).
func transport(idle, max int) *http.Transport {
	return &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        idle,
		MaxIdleConnsPerHost: idle,
		MaxConnsPerHost:     max,
		IdleConnTimeout:     2 * time.Minute,
	}
}

// Add adds a host; reg.NodeID must be unique. Call before Run.
func (f *Fleet) Add(reg agentapi.RegisterRequest) {
	f.hosts = append(f.hosts, &host{f: f, reg: reg, tasks: map[string]*task{}})
}

// Run registers every host and runs them until ctx ends; it returns ctx's
// error, or the first registration that failed.
func (f *Fleet) Run(ctx context.Context) error {
	// A simulated host enforces no firewall: it takes the address sets its
	// polls carry off the wire and drops them.
	f.poll = &agentapi.Client{BaseURL: f.cfg.URL, Token: f.cfg.Token, DiscardAddressSets: true, Beats: f.beats,
		HTTP: &http.Client{Transport: transport(len(f.hosts)+1, f.cfg.MaxPolls)}}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	work := make(chan item)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Add(2)
	go func() { defer wg.Done(); f.q.dispatch(ctx, work) }()
	beats := make(chan item)
	go func() { defer wg.Done(); f.hb.dispatch(ctx, beats) }()
	// A step sends nothing: a few workers keep up with any number of
	// hosts, as each real host advances its tasks while its reports wait.
	steps := make(chan item)
	wg.Add(1)
	go func() { defer wg.Done(); f.steps.dispatch(ctx, steps) }()
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(f.cfg.Seed, uint64(i)|1<<62))
			for {
				select {
				case <-ctx.Done():
					return
				case it := <-steps:
					f.step(it, rng)
				}
			}
		}()
	}
	// As many heartbeats in flight as a loaded control plane needs to keep
	// every host's lease (real agents each have their own goroutine).
	for i := 0; i < min(8+len(f.hosts)/16, 1024); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case it := <-beats:
					f.heartbeat(ctx, it.host)
				}
			}
		}()
	}
	for i := 0; i < f.cfg.Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(f.cfg.Seed, uint64(i)))
			for {
				select {
				case <-ctx.Done():
					return
				case it := <-work:
					f.sendReport(ctx, it, rng)
				}
			}
		}()
	}
	// Register with the workers' concurrency, then poll.
	errc := make(chan error, 1)
	sem := make(chan struct{}, f.cfg.Workers)
	for i, h := range f.hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			hb, err := h.register(ctx)
			<-sem
			if err != nil {
				select {
				case errc <- fmt.Errorf("register %s: %w", h.reg.NodeID, err):
				default:
				}
				cancel()
				return
			}
			f.registered.Add(1)
			h.hb = hb
			// Heartbeats spread over the interval, not all at once.
			f.hb.push(item{at: time.Now().Add(hb * time.Duration(i%97+1) / 98), host: h})
			h.pollLoop(ctx, uint64(i))
		}()
	}
	<-ctx.Done()
	select {
	case err := <-errc:
		return err
	default:
		return ctx.Err()
	}
}

// Stats are the fleet's counters.
type Stats struct {
	Hosts, Registered           int
	Assigned, Running, Stopped  int64
	Reports, Retries, QueueSize int64
	// Gone are tasks a report was refused for with 404 or 409: the control
	// plane no longer has them on that host, and the host stops reporting.
	Gone int64
	// Heartbeats were sent; HeartbeatsFolded were left out, the hosts'
	// leases renewed by their polls (agentapi.Beats); PollBeats are the
	// polls that renewed a lease.
	Heartbeats, HeartbeatsFolded, PollBeats int64
}

// Stats returns the counters now.
func (f *Fleet) Stats() Stats {
	st := Stats{Hosts: len(f.hosts), Registered: int(f.registered.Load()), Assigned: f.assigned.Load(),
		Running: f.running.Load(), Stopped: f.stopped.Load(), Reports: f.reports.Load(), Retries: f.retries.Load(),
		QueueSize: int64(f.q.len()), Gone: f.gone.Load()}
	st.Heartbeats, st.HeartbeatsFolded = f.beats.Counts()
	st.PollBeats = f.pollBeats.Load()
	return st
}

// HostState is what one simulated host was given.
type HostState struct {
	Reg agentapi.RegisterRequest
	// Tasks are every task the host's long poll ever listed, by ARN.
	Tasks []TaskState
}

// TaskState is a task as its host knows it.
type TaskState struct {
	Arn              string
	CPU, MemoryMiB   int
	AvailabilityZone string
	Status           string // the last status the control plane accepted from this host
	// Listed is whether the host's last poll still listed the task (a
	// STOPPED task's spec goes, and so does that of a task the control
	// plane stopped itself, e.g. because the host was lost).
	Listed bool
	// ListedAt is when a poll first listed the task, RunningAt when its
	// RUNNING report was accepted (zero: not yet).
	ListedAt, RunningAt time.Time
}

// Hosts returns each host's tasks, hosts in the order added and tasks by ARN.
func (f *Fleet) Hosts() []HostState {
	out := make([]HostState, len(f.hosts))
	for i, h := range f.hosts {
		h.mu.Lock()
		hs := HostState{Reg: h.reg, Tasks: make([]TaskState, 0, len(h.tasks))}
		for _, t := range h.tasks {
			hs.Tasks = append(hs.Tasks, TaskState{Arn: t.arn, CPU: t.cpu, MemoryMiB: t.mem, AvailabilityZone: t.az, Status: t.status, Listed: !t.unlisted,
				ListedAt: t.listedAt, RunningAt: t.runningAt})
		}
		h.mu.Unlock()
		sort.Slice(hs.Tasks, func(a, b int) bool { return hs.Tasks[a].Arn < hs.Tasks[b].Arn })
		out[i] = hs
	}
	return out
}

// WaitRunning waits until n tasks are RUNNING, checking every interval.
func (f *Fleet) WaitRunning(ctx context.Context, n int64, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for f.running.Load() < n {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d tasks running: %w", f.running.Load(), n, ctx.Err())
		case <-t.C:
		}
	}
	return nil
}

// heartbeat renews a host's registration and queues the next one.
func (f *Fleet) heartbeat(ctx context.Context, h *host) {
	err := f.report.Heartbeat(ctx, h.reg)
	next := h.hb
	if err != nil && ctx.Err() == nil {
		f.retries.Add(1)
		next = time.Second
	}
	f.hb.push(item{at: time.Now().Add(next), host: h})
}

// step moves a task to its next status and makes sure a report of it is
// queued.
func (f *Fleet) step(it item, rng *rand.Rand) {
	t, h := it.task, it.host
	h.mu.Lock()
	defer h.mu.Unlock()
	t.stepQueued = false
	next := t.next()
	if next == "" || t.gone {
		return
	}
	t.reach(next, time.Now())
	if !t.reporting {
		t.reporting = true
		f.q.push(item{at: time.Now(), host: h, task: t})
	}
	h.schedule(t, rng)
}

// sendReport sends the report of the status the task has reached by now
// (a newer status overtakes one not yet sent, as agent/reports.go does),
// and queues another if the task moved on while it was in flight.
func (f *Fleet) sendReport(ctx context.Context, it item, rng *rand.Rand) {
	t, h := it.task, it.host
	h.mu.Lock()
	rep := t.report(h.reg.NodeID, time.Now())
	h.mu.Unlock()
	err := f.report.Report(ctx, rep)
	if ctx.Err() != nil {
		return
	}
	var se *agentapi.StatusError
	switch {
	case err == nil:
		f.reports.Add(1)
	case errors.As(err, &se) && (se.Code == http.StatusNotFound || se.Code == http.StatusConflict):
		// Purged, or no longer placed here: nothing more to report.
		h.mu.Lock()
		t.reporting, t.gone = false, true
		h.mu.Unlock()
		f.gone.Add(1)
		return
	default:
		f.retries.Add(1)
		f.q.push(item{at: time.Now().Add(500 * time.Millisecond), host: h, task: t})
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	was := t.status
	t.status, t.seq = rep.Status, rep.Seq
	if t.status == agentapi.StatusRunning && was != agentapi.StatusRunning {
		f.running.Add(1)
		t.runningAt = time.Now()
	}
	if was == agentapi.StatusRunning && t.status != agentapi.StatusRunning {
		f.running.Add(-1)
	}
	if t.status == agentapi.StatusStopped {
		f.stopped.Add(1)
	}
	if t.reached != t.status {
		f.q.push(item{at: time.Now(), host: h, task: t})
		return
	}
	t.reporting = false
	h.schedule(t, rng)
}

// host is one simulated host.
type host struct {
	f   *Fleet
	reg agentapi.RegisterRequest
	hb  time.Duration

	mu    sync.Mutex
	tasks map[string]*task // every task ever listed, by task id
}

func (h *host) register(ctx context.Context) (time.Duration, error) {
	var last error
	for attempt := 0; attempt < 20; attempt++ {
		resp, err := h.f.report.Register(ctx, h.reg)
		if err == nil {
			hb := time.Duration(resp.HeartbeatSeconds) * time.Second
			if hb <= 0 {
				hb = 5 * time.Second
			}
			return hb, nil
		}
		last = err
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return 0, last
}

// pollLoop is the host's goroutine: the long poll, as the real agent runs
// it, but asking for deltas it applies to its own tasks (TasksDelta): the
// agentapi.Client's whole lists, held for ten thousand hosts, would be most
// of this process's heap.
func (h *host) pollLoop(ctx context.Context, seed uint64) {
	rng := rand.New(rand.NewPCG(h.f.cfg.Seed, seed|1<<63))
	var since int64
	for ctx.Err() == nil {
		resp, err := h.f.poll.TasksDelta(ctx, h.reg.NodeID, since, h.f.cfg.PollWait)
		if err == nil && resp.LeaseRenewed {
			h.f.pollBeats.Add(1)
		}
		if err == nil && !h.reconcile(resp, rng) {
			err = fmt.Errorf("the delta lists tasks the host never saw")
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			h.f.log.Debug("simulated host: poll", "node", h.reg.NodeID, "err", err)
			since = 0
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		since = resp.Revision
	}
}

// reconcile takes on new tasks and hands desired-state changes to known
// ones, from a whole reply or a delta; it reports false when a delta's
// present ids name a task the host never saw (it must ask for all again).
func (h *host) reconcile(resp agentapi.TasksResponse, rng *rand.Rand) bool {
	var known map[string]string
	if len(resp.Known) > 0 {
		known = make(map[string]string, len(resp.Known))
		for _, k := range resp.Known {
			known[k.TaskArn] = k.LastStatus
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	now := time.Now()
	for i := range resp.Tasks {
		spec := &resp.Tasks[i]
		t, ok := h.tasks[spec.TaskID]
		if !ok {
			t = &task{arn: spec.TaskArn, cpu: spec.CPU, mem: spec.MemoryMiB, az: intern(spec.AvailabilityZone),
				status: known[spec.TaskArn], listedAt: now}
			if agentapi.TaskStatusRank(t.status) < agentapi.TaskStatusRank(agentapi.StatusPending) {
				t.status = agentapi.StatusProvisioning
			}
			t.reached = t.status
			for _, c := range spec.Containers {
				t.containers = append(t.containers, intern(c.Name))
			}
			h.tasks[spec.TaskID] = t
			h.f.assigned.Add(1)
		}
		t.desired, t.stopCode, t.stopReason = intern(spec.DesiredStatus), intern(spec.StopCode), spec.StoppedReason
		t.unlisted = false
		h.schedule(t, rng)
	}
	// The ids of every task the node has now: a delta's present ids (none
	// left: nothing to mark), or a whole reply's specs.
	var ids []string
	switch {
	case resp.Delta && resp.PresentSame:
		return true
	case resp.Delta:
		ids = resp.Present
	case len(h.tasks) == len(resp.Tasks):
		return true
	default:
		for i := range resp.Tasks {
			ids = append(ids, resp.Tasks[i].TaskID)
		}
	}
	listed := make(map[string]bool, len(ids))
	for _, id := range ids {
		if h.tasks[id] == nil { // only a delta can name one
			return false
		}
		listed[id] = true
	}
	for id, t := range h.tasks {
		t.unlisted = !listed[id]
	}
	return true
}

// intern returns the fleet's one copy of a string many tasks share (a
// zone, a container's name, a status), so that a million tasks do not each
// hold their own.
func intern(s string) string { return unique.Make(s).Value() }

// schedule queues the task's next step, if it has one, none is queued and
// the step need not wait for a report (task.waitsForReport); h.mu is held.
func (h *host) schedule(t *task, rng *rand.Rand) {
	if t.stepQueued || t.gone || t.waitsForReport() {
		return
	}
	next := t.next()
	if next == "" {
		return
	}
	tm := h.f.cfg.Timing
	var d time.Duration
	switch next {
	case agentapi.StatusPending:
		d = tm.Provision.draw(rng)
	case agentapi.StatusActivating:
		d = tm.Start.draw(rng)
	case agentapi.StatusRunning:
		d = tm.Activate.draw(rng)
	default:
		d = tm.Stop.draw(rng)
	}
	t.stepQueued = true
	h.f.steps.push(item{at: time.Now().Add(d), host: h, task: t})
}
