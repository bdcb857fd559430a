// Package launch measures how long berth takes to launch a Fargate task:
// RunTask until DescribeTasks says RUNNING, with the image already on the
// host, task after task, broken down into the steps the time goes to; and, in
// the same run on the same containerd, the floor: a bare containerd start of
// the same image (floor.go).
package launch

import (
	"context"
	"errors"
	"flag"
	"fmt"
	goruntime "runtime"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berthdev/berth/bench"
)

// Names of the agent metrics the breakdown reads (internal/agent/metrics.go).
const (
	metricStep     = "berth_agent_task_step_seconds"
	metricLaunch   = "berth_agent_task_launch_seconds"
	metricReceived = "berth_agent_task_received_timestamp_seconds"
)

// fargateQuoted is AWS's launch time for Fargate as commonly quoted; it
// cannot be measured here.
const fargateQuoted = 30 * time.Second

// Benchmark is the launch-latency benchmark.
type Benchmark struct {
	tasks, floor int
	poll         time.Duration
}

// New returns the benchmark with its defaults (50 tasks, 50 floor starts,
// 5 ms polling).
func New() *Benchmark { return &Benchmark{tasks: 50, floor: 50, poll: 5 * time.Millisecond} }

// Name implements bench.Benchmark.
func (b *Benchmark) Name() string { return "launch" }

// Title implements bench.Benchmark.
func (b *Benchmark) Title() string { return "Launch latency: RunTask → RUNNING" }

// Flags implements bench.Benchmark.
func (b *Benchmark) Flags(fs *flag.FlagSet) {
	fs.IntVar(&b.tasks, "launch.tasks", b.tasks, "tasks to launch, one after another (1–1000)")
	fs.IntVar(&b.floor, "launch.floor", b.floor, "bare containerd starts for the floor (1–1000)")
	fs.DurationVar(&b.poll, "launch.poll", b.poll, "pause between DescribeTasks polls while waiting for RUNNING")
}

// sample is one task's launch, timed by the client, split by the agent's
// metrics, and as the task's own timestamps tell it.
type sample struct {
	total time.Duration // RunTask sent → DescribeTasks shows RUNNING
	api   time.Duration // RunTask round trip
	// handoff is RunTask reply → agent has the task (placement, long poll).
	// Placement starts before the reply is sent, so it is negative when the
	// agent had the task before the client had the reply.
	handoff time.Duration
	launch  time.Duration // agent has the task → RUNNING report accepted
	sandbox time.Duration // netns + cgroup
	pull    time.Duration // image check
	delete  time.Duration // removing a leftover container before the start
	start   time.Duration // containerd: create container, snapshot, task; start
	reports time.Duration // waiting for the RUNNING report to be accepted
	nReport uint64
	agent   time.Duration // launch not in the steps above: the agent's own work
	observe time.Duration // RUNNING accepted → the client's poll sees it
	polls   int
	// cpu is the CPU time the berth dev process (server, agent, etcd)
	// used from just before RunTask to just after the last scrape, in
	// 10 ms ticks: it includes serving the polls and one scrape.
	cpu time.Duration

	// From DescribeTasks' timestamps (millisecond precision).
	tsCreated, tsPullStart, tsPullStop, tsStarted time.Time
}

func (b *Benchmark) validate() error {
	if b.tasks < 1 || b.tasks > 1000 || b.floor < 1 || b.floor > 1000 {
		return fmt.Errorf("launch: -launch.tasks and -launch.floor must be 1–1000 (got %d, %d)", b.tasks, b.floor)
	}
	if b.poll < 0 || b.poll > time.Second {
		return fmt.Errorf("launch: -launch.poll must be 0–1s (got %s)", b.poll)
	}
	return nil
}

// Run implements bench.Benchmark.
func (b *Benchmark) Run(ctx context.Context, h *bench.Harness) (*bench.Result, error) {
	if err := b.validate(); err != nil {
		return nil, err
	}
	dev, err := h.StartDev(ctx)
	if err != nil {
		return nil, err
	}
	r := &runner{dev: dev, poll: b.poll, cluster: "bench"}
	if err := r.setup(ctx); err != nil {
		return nil, err
	}
	// The dev host offers NumCPU × 1024 CPU units: keep the tasks that run
	// side by side one fewer than fit, stopping them between launches.
	hostUnits := goruntime.NumCPU() * 1024
	batch := max(1, min(hostUnits/256-1, 10))

	h.Log.Info("warm-up task (pulls the image onto the host)")
	warm, arn, err := r.launch(ctx, 2*time.Minute)
	if err != nil {
		return nil, fmt.Errorf("warm-up task: %w", err)
	}
	if err := r.dev.StopTasks(ctx, r.cluster, []string{arn}); err != nil {
		return nil, err
	}
	h.Log.Info("warm-up done", "took", warm.total)

	fl, err := openFloor(ctx, dev, h.Berth)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err := fl.close(); err != nil {
			h.Log.Info("floor cleanup", "err", err)
		}
	}()
	for _, v := range floorVariants { // untimed warm-ups
		if _, err := fl.once(ctx, v); err != nil {
			return nil, err
		}
	}

	m, err := b.measure(ctx, h, r, fl, batch)
	if err != nil {
		return nil, err
	}
	m.hostUnits, m.batch, m.describeRTT = hostUnits, batch, r.describeRTT()
	return b.result(m), nil
}

// measure launches the tasks and runs the floor. Launches and floor starts
// alternate, so that both see the same machine: other work on it moves both
// alike. Tasks are stopped batch by batch, between launches.
func (b *Benchmark) measure(ctx context.Context, h *bench.Harness, r *runner, fl *floor, batch int) (measurements, error) {
	m := measurements{floor: make([][]floorSample, len(floorVariants))}
	var running []string
	for i := 0; i < max(b.tasks, b.floor); i++ {
		if i < b.tasks {
			s, arn, err := r.launch(ctx, time.Minute)
			if err != nil {
				return m, fmt.Errorf("task %d of %d: %w", i+1, b.tasks, err)
			}
			m.tasks = append(m.tasks, s)
			running = append(running, arn)
		}
		if i < b.floor {
			for j, v := range floorVariants {
				s, err := fl.once(ctx, v)
				if err != nil {
					return m, err
				}
				m.floor[j] = append(m.floor[j], s)
			}
		}
		if len(running) >= batch || (len(running) > 0 && i == b.tasks-1) {
			if err := r.dev.StopTasks(ctx, r.cluster, running); err != nil {
				return m, err
			}
			running = nil
		}
		if (i+1)%10 == 0 {
			h.Log.Info("progress", "tasks", len(m.tasks), "floor_starts", len(m.floor[0]))
		}
	}
	return m, nil
}

// measurements is everything one run measured.
type measurements struct {
	tasks            []sample
	floor            [][]floorSample // by floorVariants
	hostUnits, batch int
	describeRTT      time.Duration
}

// runner launches and stops tasks in one dev env.
type runner struct {
	dev     *bench.Dev
	poll    time.Duration
	cluster string
	taskDef string

	describeCalls int
	describeTime  time.Duration
}

// setup creates the cluster and the task definition: FARGATE 256/512,
// awsvpc, one essential container running `sleep 3600`, stopTimeout 2.
func (r *runner) setup(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := r.dev.ECS.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String(r.cluster)}); err != nil {
		return fmt.Errorf("create cluster: %w", err)
	}
	out, err := r.dev.ECS.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{
		Family: aws.String("bench-sleep"), NetworkMode: types.NetworkModeAwsvpc, Cpu: aws.String("256"), Memory: aws.String("512"),
		RequiresCompatibilities: []types.Compatibility{types.CompatibilityFargate},
		ContainerDefinitions: []types.ContainerDefinition{{
			Name: aws.String("main"), Image: aws.String(r.dev.Image), Essential: aws.Bool(true),
			Command: []string{"sleep", "3600"}, StopTimeout: aws.Int32(2),
		}},
	})
	if err != nil {
		return fmt.Errorf("register task definition: %w", err)
	}
	r.taskDef = aws.ToString(out.TaskDefinition.TaskDefinitionArn)
	return nil
}

// launch runs one task and times it until DescribeTasks shows RUNNING.
func (r *runner) launch(ctx context.Context, timeout time.Duration) (sample, string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var s sample
	before, err := r.dev.Metrics(ctx)
	if err != nil {
		return s, "", err
	}
	t0 := time.Now()
	out, err := r.dev.ECS.RunTask(ctx, &ecs.RunTaskInput{
		Cluster: aws.String(r.cluster), TaskDefinition: aws.String(r.taskDef), LaunchType: types.LaunchTypeFargate,
		NetworkConfiguration: &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{Subnets: r.dev.Subnets}},
	})
	t1 := time.Now()
	if err != nil {
		return s, "", fmt.Errorf("RunTask: %w", err)
	}
	if len(out.Tasks) != 1 {
		return s, "", fmt.Errorf("RunTask: no task, failures %s", failures(out.Failures))
	}
	arn := aws.ToString(out.Tasks[0].TaskArn)
	task, seen, polls, err := r.waitRunning(ctx, arn)
	if err != nil {
		return s, arn, err
	}
	after, err := r.awaitLaunchMetrics(ctx, before)
	if err != nil {
		return s, arn, err
	}
	s = breakdown(before, after, t0, t1, seen)
	s.polls = polls
	s.tsCreated, s.tsPullStart = aws.ToTime(task.CreatedAt), aws.ToTime(task.PullStartedAt)
	s.tsPullStop, s.tsStarted = aws.ToTime(task.PullStoppedAt), aws.ToTime(task.StartedAt)
	if s.handoff < -s.api {
		return s, arn, fmt.Errorf("task %s: the agent's received time is before RunTask was sent: metrics belong to another task", arn)
	}
	return s, arn, nil
}

// waitRunning polls DescribeTasks every r.poll until the task is RUNNING.
func (r *runner) waitRunning(ctx context.Context, arn string) (types.Task, time.Time, int, error) {
	for polls := 1; ; polls++ {
		t0 := time.Now()
		out, err := r.dev.ECS.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(r.cluster), Tasks: []string{arn}})
		now := time.Now()
		r.describeCalls++
		r.describeTime += now.Sub(t0)
		if err != nil {
			return types.Task{}, now, polls, fmt.Errorf("DescribeTasks %s: %w", arn, err)
		}
		if len(out.Tasks) != 1 {
			return types.Task{}, now, polls, fmt.Errorf("DescribeTasks %s: failures %s", arn, failures(out.Failures))
		}
		switch t := out.Tasks[0]; aws.ToString(t.LastStatus) {
		case "RUNNING":
			return t, now, polls, nil
		case "DEACTIVATING", "STOPPING", "DEPROVISIONING", "STOPPED":
			return t, now, polls, fmt.Errorf("task %s stopped before it ran: %s: %s", arn, t.StopCode, aws.ToString(t.StoppedReason))
		}
		if r.poll > 0 {
			select {
			case <-ctx.Done():
				return types.Task{}, now, polls, fmt.Errorf("task %s not RUNNING: %w", arn, ctx.Err())
			case <-time.After(r.poll):
			}
		} else if ctx.Err() != nil {
			return types.Task{}, now, polls, fmt.Errorf("task %s not RUNNING: %w", arn, ctx.Err())
		}
	}
}

// awaitLaunchMetrics scrapes until the agent has recorded one more launch:
// the client can see RUNNING a moment before the agent has its reply.
func (r *runner) awaitLaunchMetrics(ctx context.Context, before bench.Metrics) (bench.Metrics, error) {
	_, n0 := before.Histogram(metricLaunch)
	deadline := time.Now().Add(5 * time.Second)
	for {
		after, err := r.dev.Metrics(ctx)
		if err != nil {
			return nil, err
		}
		_, n1 := after.Histogram(metricLaunch)
		switch {
		case n1 == n0+1:
			return after, nil
		case n1 > n0+1:
			return nil, fmt.Errorf("agent recorded %d launches during one task's: another task interfered", n1-n0)
		case time.Now().After(deadline):
			return nil, errors.New("the agent recorded no launch 5 s after RUNNING (is the agent's Registerer wired in internal/daemon?)")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// breakdown splits a launch with the agent metrics scraped around it.
func breakdown(before, after bench.Metrics, t0, t1, seen time.Time) sample {
	step := func(name string) (time.Duration, uint64) {
		return bench.HistogramDelta(before, after, metricStep, "step", name)
	}
	s := sample{total: seen.Sub(t0), api: t1.Sub(t0)}
	received := time.Unix(0, int64(after.Gauge(metricReceived)*1e9))
	s.handoff = received.Sub(t1)
	s.launch, _ = bench.HistogramDelta(before, after, metricLaunch)
	s.sandbox, _ = step("sandbox")
	s.pull, _ = step("pull")
	s.delete, _ = step("delete")
	s.start, _ = step("start")
	// Only RUNNING's report holds the launch up (the agent waits for it);
	// the earlier ones are sent while the containers start.
	_, s.nReport = step("report")
	s.reports, _ = step("report_wait")
	s.agent = s.launch - s.sandbox - s.pull - s.delete - s.start - s.reports
	s.observe = s.total - s.api - s.handoff - s.launch
	s.cpu = time.Duration((after.Counter("process_cpu_seconds_total") - before.Counter("process_cpu_seconds_total")) * float64(time.Second))
	return s
}

// describeRTT is the mean DescribeTasks round trip while waiting for RUNNING.
func (r *runner) describeRTT() time.Duration {
	if r.describeCalls == 0 {
		return 0
	}
	return r.describeTime / time.Duration(r.describeCalls)
}

func failures(fs []types.Failure) string {
	s := ""
	for _, f := range fs {
		s += fmt.Sprintf("[%s: %s %s]", aws.ToString(f.Arn), aws.ToString(f.Reason), aws.ToString(f.Detail))
	}
	return s
}
