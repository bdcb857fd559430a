package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// TestFargateSpotInterruption: a service on FARGATE_SPOT; the operator
// reclaims the host's Spot capacity (`berth admin spot-interrupt`); the
// containers see SIGTERM, the tasks stop with stopCode SpotInterruption, and
// the service is back at its desired count within 10 s.
func TestFargateSpotInterruption(t *testing.T) {
	t.Parallel()
	e := startDev(t)
	ctx := e.ctx()
	if _, err := e.ECS.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("spot")}); err != nil {
		t.Fatal(err)
	}
	c := e.container("main", "sh", "-c", `trap "echo got TERM; exit 0" TERM; echo ready; while true; do sleep 1; done`)
	td := e.registerTask("spot", "256", "512", c)
	if _, err := e.ECS.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("spot"), ServiceName: aws.String("s"),
		TaskDefinition: aws.String(td), DesiredCount: aws.Int32(2),
		CapacityProviderStrategy: []types.CapacityProviderStrategyItem{{CapacityProvider: aws.String("FARGATE_SPOT"), Weight: 1}},
		NetworkConfiguration:     &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{Subnets: e.subnets()}}}); err != nil {
		t.Fatal(err)
	}
	running := func() []types.Task {
		arns := e.serviceTaskArns("spot", "s")
		if len(arns) == 0 {
			return nil
		}
		d, err := e.ECS.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String("spot"), Tasks: arns})
		if err != nil {
			t.Fatal(err)
		}
		var out []types.Task
		for _, tk := range d.Tasks {
			if aws.ToString(tk.LastStatus) == "RUNNING" && aws.ToString(tk.DesiredStatus) == "RUNNING" {
				out = append(out, tk)
			}
		}
		return out
	}
	waitRunning := func(n int, timeout time.Duration, not map[string]bool) []types.Task {
		t.Helper()
		deadline := time.Now().Add(timeout)
		for {
			var fresh []types.Task
			for _, tk := range running() {
				if !not[aws.ToString(tk.TaskArn)] {
					fresh = append(fresh, tk)
				}
			}
			if len(fresh) >= n {
				return fresh
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d new tasks RUNNING after %s, want %d", len(fresh), timeout, n)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	first := waitRunning(2, 60*time.Second, nil)
	old := map[string]bool{}
	for _, tk := range first {
		if aws.ToString(tk.CapacityProviderName) != "FARGATE_SPOT" {
			t.Fatalf("task on %q, want FARGATE_SPOT", aws.ToString(tk.CapacityProviderName))
		}
		old[aws.ToString(tk.TaskArn)] = true
		e.waitContainerLog("spot", aws.ToString(tk.TaskArn), "main", "ready", 10*time.Second)
	}

	out := e.berth("admin", "spot-interrupt")
	interrupted := time.Now()
	for arn := range old {
		if !strings.Contains(out, arn) {
			t.Fatalf("spot-interrupt printed %q, lacking %s", out, arn)
		}
	}
	waitRunning(2, 10*time.Second, old)
	t.Logf("the service was back at 2 RUNNING %.1f s after the interruption", time.Since(interrupted).Seconds())
	for arn := range old {
		tk := e.waitStatus("spot", arn, "STOPPED", 30*time.Second)
		if tk.StopCode != types.TaskStopCodeSpotInterruption || aws.ToString(tk.StoppedReason) != "Your Spot Task was interrupted." {
			t.Fatalf("interrupted task: %s %q", tk.StopCode, aws.ToString(tk.StoppedReason))
		}
		if log := e.containerLogs("spot", arn, "main"); strings.Count(log, "got TERM") != 1 {
			t.Fatalf("the container did not see SIGTERM once: %q", log)
		}
	}
}
