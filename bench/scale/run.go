// Package scale is the scheduler-at-scale run (issue 8, item 4): simulated
// hosts (internal/agent/sim) across availability zones join berth's control
// plane through the agent protocol, many aws-sdk-go-v2 clients launch Fargate
// tasks of mixed sizes with RunTask (count 10), and the run lasts until every
// task is placed and reported RUNNING. Check then verifies what the
// scheduler promises. The CI-sized run is a test of this package; the large
// one is the `scale` benchmark of `make bench` (bench.go).
package scale

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berthdev/berth/internal/agent/sim"
	"github.com/berthdev/berth/internal/agentapi"
)

// Size is a Fargate task size: CPU units and MiB, a valid pair of the
// Fargate table.
type Size struct{ CPU, MemoryMiB int }

// FargateMix is the sizes tasks are drawn from in turn: the small sizes
// most often, as most Fargate tasks are small, and every CPU row of the
// Fargate table up to 4 vCPU.
var FargateMix = []Size{
	{256, 512}, {256, 512}, {256, 1024}, {256, 2048},
	{512, 1024}, {512, 2048}, {512, 4096},
	{1024, 2048}, {1024, 4096}, {1024, 8192},
	{2048, 4096}, {2048, 8192},
	{4096, 8192}, {4096, 16384},
}

// mixMean is the mean size of FargateMix, per task.
func mixMean() (cpu, mem float64) {
	for _, s := range FargateMix {
		cpu += float64(s.CPU)
		mem += float64(s.MemoryMiB)
	}
	return cpu / float64(len(FargateMix)), mem / float64(len(FargateMix))
}

// Spec is one scale run.
type Spec struct {
	Hosts, Tasks int
	Zones        []string // e.g. us-east-1a, us-east-1b, us-east-1c
	// HostCPU and HostMemoryMiB are each host's capacity (0: sized so the
	// tasks fill Fill of the fleet).
	HostCPU, HostMemoryMiB int
	Fill                   float64 // default 0.6
	// Clients are the goroutines calling RunTask (count 10 each call).
	Clients int
	Fleet   sim.Config // URL and Token are filled in
	Logger  *slog.Logger
	// Limit ends the run after this long from the first RunTask even if not
	// every task is RUNNING (0: none): the outcome is then Partial, with
	// how far the run got.
	Limit time.Duration
}

func (s *Spec) defaults() {
	if len(s.Zones) == 0 {
		s.Zones = []string{"us-east-1a", "us-east-1b", "us-east-1c"}
	}
	if s.Fill <= 0 {
		s.Fill = 0.6
	}
	if s.Clients <= 0 {
		s.Clients = 32
	}
	if s.Logger == nil {
		s.Logger = slog.Default()
	}
	if s.HostCPU == 0 || s.HostMemoryMiB == 0 {
		cpu, mem := mixMean()
		perHost := float64(s.Tasks) / float64(s.Hosts) / s.Fill
		// Whole vCPUs and GiB, as a machine would have.
		s.HostCPU = (int(cpu*perHost)/1024 + 1) * 1024
		s.HostMemoryMiB = (int(mem*perHost)/1024 + 1) * 1024
	}
}

// Outcome is what a run measured and what Check verifies.
type Outcome struct {
	Spec Spec
	// Launched are the tasks RunTask accepted, with their sizes, by ARN.
	Launched map[string]Size
	// Registered is how long all hosts took to register.
	Registered time.Duration
	// Submitted is first RunTask → last RunTask answered; Assigned → every
	// task is in a host's long poll; Running → every task reported RUNNING.
	Submitted, Assigned, Running time.Duration
	RunTaskCalls                 int
	Hosts                        []sim.HostState
	Stats                        sim.Stats
	// Partial: the Limit passed first. Stats say how far the run got at
	// Elapsed; the phases not reached are 0.
	Partial bool
	Elapsed time.Duration
	// CPU is the CPU time the whole process (control plane, etcd, simulated
	// hosts and clients) used during the run, when the caller measured it:
	// steadier from run to run on a shared machine than the rates are.
	CPU time.Duration
	// Split is the run's CPU time by part of the process (see cpuSplit),
	// when the caller profiled it.
	Split map[string]time.Duration
}

// Run starts the fleet on cp, launches the tasks, and returns once every task
// is RUNNING (or ctx ends: an error). The fleet is stopped before it returns.
func Run(ctx context.Context, cp *ControlPlane, spec Spec) (*Outcome, error) {
	spec.defaults()
	if spec.Tasks%10 != 0 {
		return nil, fmt.Errorf("tasks (%d) must be a multiple of 10: RunTask launches 10 at a time", spec.Tasks)
	}
	out := &Outcome{Spec: spec, Launched: make(map[string]Size, spec.Tasks)}
	var tds []string
	var err error
	asPart(ctx, partClients, func(ctx context.Context) { tds, err = setup(ctx, cp.ECS) })
	if err != nil {
		return nil, err
	}
	fc := spec.Fleet
	fc.URL, fc.Token, fc.Logger = cp.URL, cp.AgentToken, spec.Logger
	fleet := sim.New(fc)
	for i := 0; i < spec.Hosts; i++ {
		fleet.Add(agentapi.RegisterRequest{NodeID: fmt.Sprintf("sim-%05d", i), AvailabilityZones: []string{spec.Zones[i%len(spec.Zones)]},
			CPU: spec.HostCPU, MemoryMiB: spec.HostMemoryMiB, Pool: agentapi.PoolFargate, Address: "127.0.0.1:1"})
	}
	fctx, stopFleet := context.WithCancel(ctx)
	fleetDone := make(chan error, 1)
	go asPart(fctx, partHosts, func(ctx context.Context) { fleetDone <- fleet.Run(ctx) })
	defer func() { stopFleet(); <-fleetDone }()

	start := time.Now()
	for fleet.Stats().Registered < spec.Hosts {
		select {
		case err := <-fleetDone:
			fleetDone <- err
			return nil, fmt.Errorf("fleet: %w", err)
		case <-ctx.Done():
			return nil, fmt.Errorf("%d of %d hosts registered: %w", fleet.Stats().Registered, spec.Hosts, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	out.Registered = time.Since(start)
	spec.Logger.Warn("scale: hosts registered", "hosts", spec.Hosts, "took", out.Registered)

	start = time.Now()
	subnets := make([]string, len(spec.Zones))
	for i, z := range spec.Zones {
		subnets[i] = "subnet-" + z
	}
	var mu sync.Mutex
	var next atomic.Int64
	calls := spec.Tasks / 10
	// While the clients submit, say how far they and the fleet are.
	submitting := make(chan struct{})
	go func() {
		t := time.NewTicker(10 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-submitting:
				return
			case <-t.C:
				st := fleet.Stats()
				spec.Logger.Warn("scale: submitting", "calls", min(next.Load(), int64(calls)), "of", calls, "assigned", st.Assigned,
					"running", st.Running, "reports", st.Reports, "retries", st.Retries, "gone", st.Gone, "queued", st.QueueSize,
					"elapsed", time.Since(start).Round(time.Second))
			}
		}
	}()
	errc := make(chan error, spec.Clients)
	var wg sync.WaitGroup
	for c := 0; c < spec.Clients; c++ {
		wg.Add(1)
		go asPart(ctx, partClients, func(ctx context.Context) {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= calls || ctx.Err() != nil || (spec.Limit > 0 && time.Since(start) > spec.Limit) {
					return
				}
				k := i % len(FargateMix)
				resp, err := runTask(ctx, cp.ECS, tds[k], subnets)
				if err != nil {
					errc <- fmt.Errorf("RunTask %d: %w", i, err)
					return
				}
				mu.Lock()
				for _, t := range resp.Tasks {
					// A copy: the SDK's strings share a block per reply,
					// which the ARN alone would keep.
					out.Launched[strings.Clone(aws.ToString(t.TaskArn))] = FargateMix[k]
				}
				mu.Unlock()
				if len(resp.Failures) > 0 {
					errc <- fmt.Errorf("RunTask %d: failures: %s", i, aws.ToString(resp.Failures[0].Reason))
					return
				}
			}
		})
	}
	wg.Wait()
	close(submitting)
	close(errc)
	if err := <-errc; err != nil {
		return nil, err
	}
	out.RunTaskCalls = min(int(next.Load()), calls)
	if spec.Limit > 0 && time.Since(start) > spec.Limit {
		return partial(out, fleet, start), nil
	}
	out.Submitted = time.Since(start)
	spec.Logger.Warn("scale: tasks submitted", "tasks", len(out.Launched), "took", out.Submitted)

	want := int64(spec.Tasks)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	lastLog := time.Now()
	for {
		st := fleet.Stats()
		if out.Assigned == 0 && st.Assigned >= want {
			out.Assigned = time.Since(start)
		}
		if st.Running >= want {
			out.Running = time.Since(start)
			break
		}
		if spec.Limit > 0 && time.Since(start) > spec.Limit {
			return partial(out, fleet, start), nil
		}
		if st.Gone > 0 {
			// Nothing in this run stops a task: a refused report is a bug.
			return nil, fmt.Errorf("the control plane refused the reports of %d tasks as not placed on their host (%d of %d running)", st.Gone, st.Running, want)
		}
		if time.Since(lastLog) > 10*time.Second {
			spec.Logger.Warn("scale: progress", "assigned", st.Assigned, "running", st.Running, "reports", st.Reports,
				"retries", st.Retries, "gone", st.Gone, "queued", st.QueueSize, "elapsed", time.Since(start).Round(time.Second))
			lastLog = time.Now()
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%d of %d tasks assigned, %d running: %w", st.Assigned, want, st.Running, ctx.Err())
		case <-tick.C:
		}
	}
	spec.Logger.Warn("scale: all running", "tasks", want, "took", out.Running)
	out.Stats = fleet.Stats()
	out.Hosts = fleet.Hosts()
	return out, nil
}

// partial ends a run at its limit with how far it got.
func partial(out *Outcome, fleet *sim.Fleet, start time.Time) *Outcome {
	out.Partial, out.Elapsed, out.Stats = true, time.Since(start), fleet.Stats()
	out.Spec.Logger.Warn("scale: limit reached", "elapsed", out.Elapsed.Round(time.Second), "submitted", len(out.Launched),
		"assigned", out.Stats.Assigned, "running", out.Stats.Running)
	return out
}

// setup creates the default cluster and a task definition per size.
func setup(ctx context.Context, c *awsecs.Client) ([]string, error) {
	if _, err := c.CreateCluster(ctx, &awsecs.CreateClusterInput{}); err != nil {
		return nil, fmt.Errorf("create cluster: %w", err)
	}
	var arns []string
	for _, s := range FargateMix {
		out, err := c.RegisterTaskDefinition(ctx, &awsecs.RegisterTaskDefinitionInput{
			Family:      aws.String(fmt.Sprintf("scale-%d-%d", s.CPU, s.MemoryMiB)),
			NetworkMode: types.NetworkModeAwsvpc, Cpu: aws.String(fmt.Sprint(s.CPU)), Memory: aws.String(fmt.Sprint(s.MemoryMiB)),
			RequiresCompatibilities: []types.Compatibility{types.CompatibilityFargate},
			ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("app"), Image: aws.String("busybox"),
				Essential: aws.Bool(true), Command: []string{"sleep", "infinity"}}},
		})
		if err != nil {
			return nil, fmt.Errorf("register task definition: %w", err)
		}
		arns = append(arns, aws.ToString(out.TaskDefinition.TaskDefinitionArn))
	}
	return arns, nil
}

func runTask(ctx context.Context, c *awsecs.Client, td string, subnets []string) (*awsecs.RunTaskOutput, error) {
	return c.RunTask(ctx, &awsecs.RunTaskInput{TaskDefinition: aws.String(td), Count: aws.Int32(10),
		LaunchType: types.LaunchTypeFargate,
		NetworkConfiguration: &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{
			Subnets: subnets}}})
}

// Check verifies what the scheduler promises for the run: every launched
// task is on exactly one host's assign list and nothing else is; it runs in
// that host's zone with the size it was launched with; no host holds more
// CPU or memory than it offers; and the zones' task counts are within one of
// each other (Fargate placement sends each task to the allowed zone with the
// fewest tasks, counting every task already placed, so with capacity to
// spare the counts never differ by more than one at any moment). It returns
// every violation found.
func Check(o *Outcome) error {
	var errs []error
	add := func(format string, a ...any) {
		if len(errs) < 20 {
			errs = append(errs, fmt.Errorf(format, a...))
		}
	}
	on := map[string]string{}
	perZone := map[string]int{}
	for _, h := range o.Hosts {
		cpu, mem := 0, 0
		zone := h.Reg.AvailabilityZones[0]
		for _, t := range h.Tasks {
			if prev, ok := on[t.Arn]; ok {
				add("task %s is on two hosts: %s and %s", t.Arn, prev, h.Reg.NodeID)
			}
			on[t.Arn] = h.Reg.NodeID
			size, ok := o.Launched[t.Arn]
			if !ok {
				add("host %s has task %s, which was never launched", h.Reg.NodeID, t.Arn)
				continue
			}
			if t.CPU != size.CPU || t.MemoryMiB != size.MemoryMiB {
				add("task %s has size %d/%d on its host, launched as %d/%d", t.Arn, t.CPU, t.MemoryMiB, size.CPU, size.MemoryMiB)
			}
			if t.AvailabilityZone != zone {
				add("task %s is in zone %q on host %s of zone %s", t.Arn, t.AvailabilityZone, h.Reg.NodeID, zone)
			}
			if t.Status != agentapi.StatusRunning {
				add("task %s is %s, not RUNNING", t.Arn, t.Status)
			}
			if !t.Listed {
				add("task %s left host %s's list: the control plane stopped it (the host lost?)", t.Arn, h.Reg.NodeID)
				continue
			}
			cpu += t.CPU
			mem += t.MemoryMiB
			perZone[zone]++
		}
		if cpu > h.Reg.CPU || mem > h.Reg.MemoryMiB {
			add("host %s holds %d CPU / %d MiB, offers %d / %d", h.Reg.NodeID, cpu, mem, h.Reg.CPU, h.Reg.MemoryMiB)
		}
	}
	for arn := range o.Launched {
		if _, ok := on[arn]; !ok {
			add("task %s is on no host", arn)
		}
	}
	lo, hi := -1, 0
	for _, z := range o.Spec.Zones {
		n := perZone[z]
		if lo < 0 || n < lo {
			lo = n
		}
		hi = max(hi, n)
	}
	if hi-lo > 1 {
		add("zones are not balanced: %v tasks per zone", perZone)
	}
	return errors.Join(errs...)
}
