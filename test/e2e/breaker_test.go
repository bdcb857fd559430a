package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// TestCircuitBreakerRollsBack: a service of 2 tasks with the deployment
// circuit breaker (rollback on) is stable on a good revision; an update to
// a revision whose image does not exist fails its tasks until the breaker
// trips (3 failed tasks: half of 2, clamped to at least 3), which marks the
// deployment FAILED and rolls back to the good revision, whose new
// deployment completes. The events say so in ECS's words, and the service
// runs only tasks of the good revision.
func TestCircuitBreakerRollsBack(t *testing.T) {
	t.Parallel() // waits on health checks and rollouts: overlaps with the other service tests (own env, own address pools)
	e := startDev(t)
	ctx := e.ctx()
	if _, err := e.ECS.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("cb")}); err != nil {
		t.Fatal(err)
	}
	good := e.registerTask("cb", "256", "512", e.container("app", "sleep", "3600"))
	bad := e.container("app", "sleep", "3600")
	missing := strings.TrimPrefix(e.URL, "http://") + "/nope:missing"
	bad.Image = aws.String(missing)
	badTD := e.registerTask("cb", "256", "512", bad)

	if _, err := e.ECS.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("cb"), ServiceName: aws.String("app"),
		TaskDefinition: aws.String(good), DesiredCount: aws.Int32(2), LaunchType: types.LaunchTypeFargate,
		DeploymentConfiguration: &types.DeploymentConfiguration{MaximumPercent: aws.Int32(200), MinimumHealthyPercent: aws.Int32(100),
			DeploymentCircuitBreaker: &types.DeploymentCircuitBreaker{Enable: true, Rollback: true}},
		NetworkConfiguration: &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{Subnets: e.subnets()}}}); err != nil {
		t.Fatal(err)
	}
	in := &ecs.DescribeServicesInput{Cluster: aws.String("cb"), Services: []string{"app"}}
	waiter := ecs.NewServicesStableWaiter(e.ECS, func(o *ecs.ServicesStableWaiterOptions) { o.MinDelay, o.MaxDelay = time.Second, 2*time.Second })
	if err := waiter.Wait(ctx, in, 90*time.Second); err != nil {
		t.Fatalf("services-stable: %v\n%s", err, lbDiag(e, nil, "cb", "app", ""))
	}
	describe := func() types.Service {
		t.Helper()
		out, err := e.ECS.DescribeServices(ctx, in)
		if err != nil || len(out.Services) != 1 {
			t.Fatalf("describe-services: %v %+v", err, out)
		}
		return out.Services[0]
	}
	// The first deployment completes; it is what a rollback returns to.
	var goodDep string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(300 * time.Millisecond) {
		s := describe()
		if len(s.Deployments) == 1 && s.Deployments[0].RolloutState == types.DeploymentRolloutStateCompleted {
			goodDep = aws.ToString(s.Deployments[0].Id)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("first deployment not COMPLETED:\n%s", lbDiag(e, nil, "cb", "app", ""))
		}
	}

	updated := time.Now()
	up, err := e.ECS.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("cb"), Service: aws.String("app"),
		TaskDefinition: aws.String(badTD)})
	if err != nil {
		t.Fatal(err)
	}
	badDep := ""
	for _, d := range up.Service.Deployments {
		if aws.ToString(d.Status) == "PRIMARY" {
			badDep = aws.ToString(d.Id)
		}
	}
	if badDep == "" || badDep == goodDep || aws.ToString(up.Service.TaskDefinition) != badTD {
		t.Fatalf("update-service replied deployments %+v task definition %s", up.Service.Deployments, aws.ToString(up.Service.TaskDefinition))
	}

	// Within 2 minutes: the bad deployment FAILED (seen at least once; it
	// leaves the list once the rollback is done), then a PRIMARY of the
	// good revision, alone and COMPLETED.
	var failed *types.Deployment
	for deadline := updated.Add(2 * time.Minute); ; time.Sleep(300 * time.Millisecond) {
		s := describe()
		for _, d := range s.Deployments {
			if aws.ToString(d.Id) == badDep && d.RolloutState == types.DeploymentRolloutStateFailed && failed == nil {
				failed = &d
				t.Logf("deployment FAILED after %s: %s (failed tasks %d)", time.Since(updated).Round(100*time.Millisecond),
					aws.ToString(d.RolloutStateReason), d.FailedTasks)
			}
		}
		done := false
		if failed != nil && len(s.Deployments) >= 1 {
			p := s.Deployments[0]
			done = aws.ToString(p.Status) == "PRIMARY" && aws.ToString(p.TaskDefinition) == good &&
				aws.ToString(p.Id) != goodDep && aws.ToString(p.Id) != badDep &&
				p.RolloutState == types.DeploymentRolloutStateCompleted && p.RunningCount == 2 && len(s.Deployments) == 1
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no failed deployment rolled back within 2 minutes (failed seen: %v):\n%s", failed != nil, lbDiag(e, nil, "cb", "app", ""))
		}
	}
	t.Logf("rolled back and completed after %s", time.Since(updated).Round(100*time.Millisecond))
	if failed.FailedTasks < 3 {
		t.Errorf("failed deployment counts %d failed tasks, want at least 3 (the threshold for 2 tasks)", failed.FailedTasks)
	}
	if aws.ToString(failed.RolloutStateReason) == "" || aws.ToString(failed.TaskDefinition) != badTD {
		t.Errorf("failed deployment %+v: want a reason and the bad revision", *failed)
	}
	if !strings.Contains(aws.ToString(failed.RolloutStateReason), "circuit breaker") {
		t.Errorf("failed deployment's reason %q does not name the circuit breaker", aws.ToString(failed.RolloutStateReason))
	}

	s := describe()
	if aws.ToString(s.TaskDefinition) != good || s.RunningCount != 2 || s.DesiredCount != 2 {
		t.Errorf("service after rollback: task definition %s running %d desired %d", aws.ToString(s.TaskDefinition), s.RunningCount, s.DesiredCount)
	}
	// Events are newest first: the steady state after the rollback, the
	// rollback, the failure.
	var msgs []string
	for _, ev := range s.Events {
		msgs = append(msgs, aws.ToString(ev.Message))
	}
	find := func(want string) int {
		for i, m := range msgs {
			if strings.Contains(m, want) {
				return i
			}
		}
		t.Errorf("no event %q in:\n%s", want, strings.Join(msgs, "\n"))
		return -1
	}
	failedAt := find(fmt.Sprintf("(service app) deployment %s deployment failed: tasks failed to start.", badDep))
	rollingAt := find(fmt.Sprintf("(service app) rolling back to deployment %s.", goodDep))
	steadyAt := find("(service app) has reached a steady state.")
	if failedAt >= 0 && rollingAt >= 0 && steadyAt >= 0 && !(steadyAt < rollingAt && rollingAt <= failedAt) {
		t.Errorf("events out of order (newest first): steady %d, rolling back %d, failed %d:\n%s", steadyAt, rollingAt, failedAt, strings.Join(msgs, "\n"))
	}

	// Running: only the good revision. Stopped: the bad revision's tasks
	// failed to start, pulling an image that does not exist.
	list, err := e.ECS.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String("cb"), ServiceName: aws.String("app")})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.TaskArns) != 2 {
		t.Errorf("running tasks %v, want 2", list.TaskArns)
	}
	for _, a := range list.TaskArns {
		task := e.describe("cb", a)
		if aws.ToString(task.TaskDefinitionArn) != good || aws.ToString(task.LastStatus) != "RUNNING" {
			t.Errorf("task %s: %s %s, want RUNNING of %s", a, aws.ToString(task.TaskDefinitionArn), aws.ToString(task.LastStatus), good)
		}
	}
	stopped, err := e.ECS.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String("cb"), ServiceName: aws.String("app"),
		DesiredStatus: types.DesiredStatusStopped})
	if err != nil {
		t.Fatal(err)
	}
	nBad := 0
	for _, a := range stopped.TaskArns {
		task := e.describe("cb", a)
		if aws.ToString(task.TaskDefinitionArn) != badTD {
			continue
		}
		nBad++
		if task.StopCode != types.TaskStopCodeTaskFailedToStart || !strings.Contains(aws.ToString(task.StoppedReason), "CannotPullContainerError") {
			t.Errorf("bad revision's task %s stopped with %s %q, want TaskFailedToStart and CannotPullContainerError", a, task.StopCode,
				aws.ToString(task.StoppedReason))
		}
	}
	if nBad < 3 {
		t.Errorf("%d stopped tasks of the bad revision, want at least 3", nBad)
	}
	if d := time.Since(updated); d > 2*time.Minute {
		t.Errorf("the rollback took %s", d)
	}
}
