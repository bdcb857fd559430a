// Package throughput measures how many RunTask calls and task launches a
// second berth's control plane sustains (issue 8): the ECS API, SigV4, the
// placement controller and the agent protocol over loopback on an embedded
// etcd, with simulated hosts (internal/agent/sim) that report each task's
// transitions but start no containers, and aws-sdk-go-v2 clients in many
// goroutines. The load steps up until RunTask's p99 passes a second.
package throughput

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berthdev/berth/bench"
	"github.com/berthdev/berth/bench/scale"
	"github.com/berthdev/berth/internal/agent/sim"
	"github.com/berthdev/berth/internal/agentapi"
)

// Benchmark is the throughput benchmark.
type Benchmark struct {
	hosts   int
	step    time.Duration
	clients string
	// server: measure a `berth server` process with its real VPC control
	// plane, rather than the control plane in process with interfaces
	// handed out in memory (see the note in Details).
	server bool
}

// New returns the benchmark of the control plane in process, with its
// defaults.
func New() *Benchmark {
	return &Benchmark{hosts: 300, step: 5 * time.Second, clients: "1,2,4,8,16,32,64"}
}

// NewServer returns the benchmark of a `berth server` process with its
// real VPC control plane.
func NewServer() *Benchmark {
	b := New()
	b.server = true
	return b
}

// Name implements bench.Benchmark.
func (b *Benchmark) Name() string {
	if b.server {
		return "throughput-server"
	}
	return "throughput"
}

// Title implements bench.Benchmark.
func (b *Benchmark) Title() string {
	if b.server {
		return "berth server throughput: RunTask calls and task launches per second, with the real VPC control plane"
	}
	return "Control plane throughput: RunTask calls and task launches per second"
}

// Flags implements bench.Benchmark.
func (b *Benchmark) Flags(fs *flag.FlagSet) {
	p := b.Name() + "."
	fs.IntVar(&b.hosts, p+"hosts", b.hosts, "simulated hosts (3 zones)")
	fs.DurationVar(&b.step, p+"step", b.step, "how long each load step calls RunTask")
	fs.StringVar(&b.clients, p+"clients", b.clients, "concurrent clients of each step, comma-separated")
}

// hostVCPU is each simulated host's size in vCPU (and a quarter of its
// GiB): big enough that the sweep never fills the hosts (300 hosts hold
// 307,200 of the benchmark's 0.25-vCPU tasks), whatever the rate.
const hostVCPU = 256

// level is one load step's outcome.
type level struct {
	clients        int
	calls, tasks   int
	errors         int
	callsPerSec    float64
	launchesPerSec float64 // tasks RUNNING per second, from the step's start until the last is
	p50, p99       time.Duration
	// answered is when RunTask returned each of the step's tasks, by ARN.
	answered map[string]time.Time
	// toRunning is the time from RunTask's answer until the task's RUNNING
	// report was accepted: its p50, p99 and largest; slowest is the
	// timeline of the task that took longest.
	toRunning50, toRunning99, toRunningMax time.Duration
	slowest                                string
}

// Run implements bench.Benchmark.
func (b *Benchmark) Run(ctx context.Context, h *bench.Harness) (*bench.Result, error) {
	var steps []int
	for _, f := range strings.Split(b.clients, ",") {
		var n int
		if _, err := fmt.Sscan(strings.TrimSpace(f), &n); err != nil || n < 1 {
			return nil, fmt.Errorf("throughput: bad -throughput.clients %q", b.clients)
		}
		steps = append(steps, n)
	}
	zones := []string{"us-east-1a", "us-east-1b", "us-east-1c"}
	url, token, c, newSubnets, err := b.controlPlane(ctx, h, zones)
	if err != nil {
		return nil, err
	}
	fleet := sim.New(sim.Config{URL: url, Token: token, Timing: sim.DefaultTiming(), Workers: 128, Logger: h.Log})
	for i := range b.hosts {
		fleet.Add(agentapi.RegisterRequest{NodeID: fmt.Sprintf("sim-%05d", i), AvailabilityZones: []string{zones[i%3]},
			CPU: hostVCPU * 1024, MemoryMiB: 4 * hostVCPU * 1024, Pool: agentapi.PoolFargate, Address: "127.0.0.1:1"})
	}
	fctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() { _ = fleet.Run(fctx) }()
	for deadline := time.Now().Add(time.Minute); fleet.Stats().Registered < b.hosts; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%d of %d simulated hosts registered", fleet.Stats().Registered, b.hosts)
		}
	}
	if _, err := c.CreateCluster(ctx, &awsecs.CreateClusterInput{}); err != nil {
		return nil, err
	}
	td, err := c.RegisterTaskDefinition(ctx, &awsecs.RegisterTaskDefinitionInput{Family: aws.String("throughput"),
		NetworkMode: types.NetworkModeAwsvpc, Cpu: aws.String("256"), Memory: aws.String("512"),
		RequiresCompatibilities: []types.Compatibility{types.CompatibilityFargate},
		ContainerDefinitions:    []types.ContainerDefinition{{Name: aws.String("app"), Image: aws.String("busybox"), Command: []string{"sleep", "3600"}}}})
	if err != nil {
		return nil, err
	}
	var levels []level
	launched := int64(0)
	for _, n := range steps {
		subnets, err := newSubnets(ctx)
		if err != nil {
			return nil, err
		}
		in := &awsecs.RunTaskInput{TaskDefinition: td.TaskDefinition.TaskDefinitionArn, Count: aws.Int32(10), LaunchType: types.LaunchTypeFargate,
			NetworkConfiguration: &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{Subnets: subnets}}}
		l, err := b.step1(ctx, c, in, n)
		if err != nil {
			return nil, err
		}
		launched += int64(l.tasks)
		start := time.Now().Add(-b.step)
		// A task that fails to start (its subnets full, say) never runs:
		// give up rather than wait for it.
		wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		err = fleet.WaitRunning(wctx, launched, 20*time.Millisecond)
		cancel()
		if err != nil {
			st := fleet.Stats()
			return nil, fmt.Errorf("throughput: after the step of %d clients: %w; %d tasks were handed to a host (the server's log says why)", n, err, st.Assigned)
		}
		l.launchesPerSec = float64(l.tasks) / time.Since(start).Seconds()
		l.timeToRunning(fleet.Hosts())
		h.Log.Info("throughput step", "clients", n, "calls_per_s", int(l.callsPerSec), "launches_per_s", int(l.launchesPerSec), "p99", l.p99,
			"to_running_p99", l.toRunning99, "slowest", l.slowest)
		levels = append(levels, l)
		if l.p99 > time.Second {
			break
		}
	}
	return b.result(levels, fleet.Stats()), nil
}

// controlPlane starts what the benchmark measures: a `berth server`
// process, or the control plane in this process (bench/scale's, with the
// VPC control plane's interfaces handed out in memory). newSubnets gives
// the subnets of a step.
func (b *Benchmark) controlPlane(ctx context.Context, h *bench.Harness, zones []string) (url, token string, c *awsecs.Client,
	newSubnets func(context.Context) ([]string, error), err error) {
	if b.server {
		srv, newSubnets, err := startServer(ctx, h, zones)
		if err != nil {
			return "", "", nil, nil, err
		}
		return srv.URL, srv.AgentToken, srv.ECS, newSubnets, nil
	}
	dir, err := os.MkdirTemp("", "berth-throughput-")
	if err != nil {
		return "", "", nil, nil, err
	}
	h.Cleanup(func() { _ = os.RemoveAll(dir) })
	cp, err := scale.StartControlPlane(ctx, scale.ControlPlaneConfig{DataDir: filepath.Join(dir, "etcd"), Logger: h.Log})
	if err != nil {
		return "", "", nil, nil, err
	}
	h.Cleanup(cp.Close)
	var subnets []string
	for _, z := range zones {
		subnets = append(subnets, "subnet-"+z)
	}
	return cp.URL, cp.AgentToken, cp.ECS, func(context.Context) ([]string, error) { return subnets, nil }, nil
}

// step1 runs n clients calling RunTask (count 10) back to back for the step.
func (b *Benchmark) step1(ctx context.Context, c *awsecs.Client, in *awsecs.RunTaskInput, n int) (level, error) {
	var mu sync.Mutex
	var lat []time.Duration
	l := level{clients: n, answered: map[string]time.Time{}}
	end := time.Now().Add(b.step)
	var wg sync.WaitGroup
	start := time.Now()
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) && ctx.Err() == nil {
				t0 := time.Now()
				out, err := c.RunTask(ctx, in)
				d := time.Since(t0)
				mu.Lock()
				l.calls++
				if err != nil || len(out.Failures) > 0 {
					l.errors++
				} else {
					l.tasks += len(out.Tasks)
					lat = append(lat, d)
					for _, t := range out.Tasks {
						l.answered[aws.ToString(t.TaskArn)] = t0.Add(d)
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	l.callsPerSec = float64(l.calls) / time.Since(start).Seconds()
	slices.Sort(lat)
	if len(lat) > 0 {
		l.p50, l.p99 = lat[len(lat)/2], lat[min(len(lat)-1, len(lat)*99/100)]
	}
	if l.errors > l.calls/100 {
		return l, fmt.Errorf("throughput: %d of %d RunTask calls failed with %d clients", l.errors, l.calls, n)
	}
	return l, nil
}

// timeToRunning sets the step's times from RunTask's answer to RUNNING
// from what the hosts saw, and the slowest task's timeline: whether it
// waited to be placed and listed, or for its reports.
func (l *level) timeToRunning(hosts []sim.HostState) {
	var d []time.Duration
	for _, h := range hosts {
		for _, t := range h.Tasks {
			at, ok := l.answered[t.Arn]
			if !ok || t.RunningAt.IsZero() {
				continue
			}
			took := t.RunningAt.Sub(at)
			d = append(d, took)
			if took > l.toRunningMax {
				l.toRunningMax = took
				l.slowest = fmt.Sprintf("%s on %s: listed %s and RUNNING %s after RunTask answered",
					t.Arn, h.Reg.NodeID, t.ListedAt.Sub(at).Round(time.Millisecond), took.Round(time.Millisecond))
			}
		}
	}
	slices.Sort(d)
	if len(d) > 0 {
		l.toRunning50, l.toRunning99 = d[len(d)/2], d[min(len(d)-1, len(d)*99/100)]
	}
}

func (b *Benchmark) result(levels []level, st sim.Stats) *bench.Result {
	best := level{}
	for _, l := range levels {
		if l.p99 <= 200*time.Millisecond && l.launchesPerSec > best.launchesPerSec {
			best = l
		}
	}
	peak := level{}
	for _, l := range levels {
		if l.launchesPerSec > peak.launchesPerSec {
			peak = l
		}
	}
	var d strings.Builder
	if b.server {
		fmt.Fprintf(&d, "A `berth server --throttle off` process (the whole control plane: the ECS API behind SigV4, the placement controller, the agent protocol's server, the VPC control plane allocating each task's interface in a VPC of the benchmark's with a /18 subnet per zone, a fresh VPC for each load step so that none finds its subnets full, on its embedded etcd) on loopback; ")
	} else {
		fmt.Fprintf(&d, "The control plane in this process (the ECS API behind the SigV4 router, the placement controller, the agent protocol's server, an embedded etcd; the VPC control plane replaced by a stand-in that hands out interfaces in memory, as in the scale benchmark), served over loopback HTTP; ")
	}
	fmt.Fprintf(&d, "%d simulated hosts (`internal/agent/sim`, 3 zones, %d vCPU and %d GiB each, so capacity never runs out: room for %d of these tasks) that take their tasks through the agent protocol's long poll and walk them PENDING → ACTIVATING → RUNNING with 20–60 ms of simulated work, starting no containers; as the real agent does, a launch goes on while its reports are sent, and a status reached while a report is still waiting replaces it (so a task sends one to three reports). aws-sdk-go-v2 clients call RunTask (count 10, FARGATE 256/512, awsvpc) back to back for %s per step, more clients each step, until RunTask's p99 passes a second. Launches per second: the step's tasks divided by the time from the step's start until the last of them was reported RUNNING. No throttling (berth server's default caps launches at AWS's 20 a second: run it with `--throttle off` for this).\n\n", b.hosts, hostVCPU, 4*hostVCPU, b.hosts*hostVCPU*4, b.step)
	if b.server {
		d.WriteString("Every task's interface is attached in its VPC's default security group, whose rule admits its own members: each attach changes the group's address set, which every host with a task in the group follows (as deltas). A task costs the store a share of three kinds of write transaction: RunTask's (ten tasks each), a placement batch's, which also attaches the tasks' interfaces (12 tasks each), and its state reports' (those that come while 4 batches are being stored are stored together). The server and the simulated hosts share this machine's two cores, and the server takes most of them at the higher steps: the bound is CPU, and each step starts with more tasks placed than the one before.\n\n")
	} else {
		d.WriteString("The `throughput-server` benchmark drives a `berth server` process with its real VPC control plane instead.\n\n")
	}
	d.WriteString("| clients | RunTask calls/s | task launches/s (RUNNING) | RunTask p50 | RunTask p99 | RunTask's answer → RUNNING p50 | p99 | max | calls | failed |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, l := range levels {
		fmt.Fprintf(&d, "| %d | %.0f | %.0f | %s | %s | %s | %s | %s | %d | %d |\n", l.clients, l.callsPerSec, l.launchesPerSec,
			bench.Seconds(l.p50), bench.Seconds(l.p99), bench.Seconds(l.toRunning50), bench.Seconds(l.toRunning99), bench.Seconds(l.toRunningMax), l.calls, l.errors)
	}
	d.WriteString("\nRunTask answers once a task is stored (PROVISIONING); placement, the host's long poll and the host's reports follow. When RunTask accepts tasks faster than they are placed, they wait in PROVISIONING, and the answer → RUNNING times grow with each step.")
	var slow level
	for _, l := range levels {
		if l.toRunningMax > slow.toRunningMax {
			slow = l
		}
	}
	if slow.slowest != "" {
		fmt.Fprintf(&d, " The slowest task (at %d clients): %s.", slow.clients, slow.slowest)
	}
	d.WriteString("\n")
	fmt.Fprintf(&d, "\nThe fleet accepted %d reports (%d retried).\n", st.Reports, st.Retries)
	aws20 := &bench.Anchor{Name: "AWS Fargate's default task launch rate per account (20/s, burst 100)", Value: bench.Value{Num: 20, Unit: "tasks/s"},
		Source: "docs.aws.amazon.com/AmazonECS/latest/userguide/throttling.html"}
	// The two variants' summary rows must not share names (merging
	// matches rows by name).
	fig := func(name string) string {
		if b.server {
			return "berth server: " + name
		}
		return name
	}
	return &bench.Result{
		Figures: []bench.Figure{
			{Name: fig("task launches/s sustained with RunTask p99 ≤ 200 ms"), Value: bench.Value{Num: best.launchesPerSec, Unit: "tasks/s"}, Anchor: aws20,
				Target: "≥ 500 tasks/s", Met: bench.Met(best.launchesPerSec >= 500)},
			{Name: fig("RunTask p99 at that load (its client count is in the table below)"), Value: bench.Seconds(best.p99),
				Target: "≤ 200 ms", Met: bench.Met(best.clients > 0 && best.p99 <= 200*time.Millisecond)},
			{Name: fig("peak task launches/s (any latency)"), Value: bench.Value{Num: peak.launchesPerSec, Unit: "tasks/s"}, Anchor: aws20},
			{Name: fig("RunTask calls/s at that load"), Value: bench.Value{Num: best.callsPerSec, Unit: "calls/s"},
				Anchor: &bench.Anchor{Name: "AWS's default RunTask rate (20 calls/s)", Value: bench.Value{Num: 20, Unit: "calls/s"}, Source: "same page"}},
		},
		Details: d.String(),
		Reproduce: []string{
			b.reproduce(),
		},
	}
}

// reproduce is the command that runs this benchmark as it ran.
func (b *Benchmark) reproduce() string {
	berth := "/bin/true"
	if b.server {
		berth = "bin/berth"
	}
	n := b.Name()
	return fmt.Sprintf("go run ./bench/cmd/berthbench -berth %s -run '^%s$' -%s.hosts %d -%s.step %s -%s.clients %s -out /tmp/%s.md",
		berth, n, n, b.hosts, n, b.step, n, b.clients, n)
}
