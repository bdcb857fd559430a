package network

import (
	"context"
	"errors"
	"fmt"
	goruntime "runtime"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berthdev/berth/bench"
)

// Names of the agent metrics read per launch (internal/agent/metrics.go).
const (
	metricStep     = "berth_agent_task_step_seconds"
	metricLaunch   = "berth_agent_task_launch_seconds"
	metricReceived = "berth_agent_task_received_timestamp_seconds"
)

// launchSample is one real launch in berth dev, as bench/launch times it.
type launchSample struct {
	total time.Duration // RunTask sent → DescribeTasks shows RUNNING
	api   time.Duration // RunTask round trip
	// handoff is RunTask reply → the agent has the task: placement, with
	// the control plane's ENI allocation (vpc.AttachENI, an etcd
	// transaction), the assignment, the agent's long poll.
	handoff time.Duration
	sandbox time.Duration // the agent's sandbox step: netns + ENI + firewall + cgroup
	agent   time.Duration // the agent's whole launch, task received → RUNNING accepted
}

// launcher runs tasks in a berth dev: FARGATE 256/512, awsvpc in the
// default subnets, `sleep 3600`.
type launcher struct {
	dev       *bench.Dev
	poll      time.Duration
	cluster   string
	taskDef   string
	hostUnits int
	batch     int // tasks left running side by side before they are stopped
}

func newLauncher(ctx context.Context, dev *bench.Dev, poll time.Duration) (*launcher, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	r := &launcher{dev: dev, poll: poll, cluster: "bench-network", hostUnits: goruntime.NumCPU() * 1024}
	// The dev host offers NumCPU × 1024 units: keep one fewer task than fit.
	r.batch = max(1, min(r.hostUnits/taskCPU-1, 10))
	if _, err := dev.ECS.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String(r.cluster)}); err != nil {
		return nil, fmt.Errorf("create cluster: %w", err)
	}
	out, err := dev.ECS.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{
		Family: aws.String("bench-network-sleep"), NetworkMode: types.NetworkModeAwsvpc,
		Cpu: aws.String(fmt.Sprint(taskCPU)), Memory: aws.String(fmt.Sprint(taskMemoryMiB)),
		RequiresCompatibilities: []types.Compatibility{types.CompatibilityFargate},
		ContainerDefinitions: []types.ContainerDefinition{{
			Name: aws.String("main"), Image: aws.String(dev.Image), Essential: aws.Bool(true),
			Command: []string{"sleep", "3600"}, StopTimeout: aws.Int32(2),
		}},
	})
	if err != nil {
		return nil, fmt.Errorf("register task definition: %w", err)
	}
	r.taskDef = aws.ToString(out.TaskDefinition.TaskDefinitionArn)
	return r, nil
}

// launchAndStop runs one task until RUNNING and stops it.
func (r *launcher) launchAndStop(ctx context.Context) (launchSample, error) {
	s, arn, err := r.launch(ctx, 2*time.Minute)
	if arn != "" {
		if serr := r.dev.StopTasks(ctx, r.cluster, []string{arn}); err == nil {
			err = serr
		}
	}
	return s, err
}

// launch runs one task and times it until DescribeTasks shows RUNNING,
// with the agent's metrics scraped before and after. It returns the task's
// ARN once RunTask has made it, also with an error.
func (r *launcher) launch(ctx context.Context, timeout time.Duration) (launchSample, string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var s launchSample
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
		return s, "", fmt.Errorf("RunTask: no task, failures %v", out.Failures)
	}
	arn := aws.ToString(out.Tasks[0].TaskArn)
	seen, err := r.waitRunning(ctx, arn)
	if err != nil {
		return s, arn, err
	}
	after, err := r.awaitLaunchMetrics(ctx, before)
	if err != nil {
		return s, arn, err
	}
	received := time.Unix(0, int64(after.Gauge(metricReceived)*1e9))
	s = launchSample{total: seen.Sub(t0), api: t1.Sub(t0), handoff: received.Sub(t1)}
	s.sandbox, _ = bench.HistogramDelta(before, after, metricStep, "step", "sandbox")
	s.agent, _ = bench.HistogramDelta(before, after, metricLaunch)
	if s.handoff < -s.api {
		return s, arn, fmt.Errorf("task %s: the agent's received time is before RunTask was sent: metrics belong to another task", arn)
	}
	return s, arn, nil
}

// waitRunning polls DescribeTasks every r.poll until the task is RUNNING
// and returns when the client saw it.
func (r *launcher) waitRunning(ctx context.Context, arn string) (time.Time, error) {
	for {
		out, err := r.dev.ECS.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(r.cluster), Tasks: []string{arn}})
		now := time.Now()
		if err != nil {
			return now, fmt.Errorf("DescribeTasks %s: %w", arn, err)
		}
		if len(out.Tasks) != 1 {
			return now, fmt.Errorf("DescribeTasks %s: failures %v", arn, out.Failures)
		}
		switch t := out.Tasks[0]; aws.ToString(t.LastStatus) {
		case "RUNNING":
			return now, nil
		case "DEACTIVATING", "STOPPING", "DEPROVISIONING", "STOPPED":
			return now, fmt.Errorf("task %s stopped before it ran: %s: %s", arn, t.StopCode, aws.ToString(t.StoppedReason))
		}
		select {
		case <-ctx.Done():
			return now, fmt.Errorf("task %s not RUNNING: %w", arn, ctx.Err())
		case <-time.After(r.poll):
		}
	}
}

// awaitLaunchMetrics scrapes until the agent has recorded one more launch:
// the client can see RUNNING a moment before the agent has its reply.
func (r *launcher) awaitLaunchMetrics(ctx context.Context, before bench.Metrics) (bench.Metrics, error) {
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
			return nil, errors.New("the agent recorded no launch 5 s after RUNNING")
		}
		time.Sleep(2 * time.Millisecond)
	}
}
