package e2e

import (
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// TestServiceAcrossZones: a service of 3 tasks over the 3 default subnets
// reaches a steady state (the SDK's services-stable waiter), spreads over
// the zones, replaces a task that is stopped, and rolls to a new revision.
func TestServiceAcrossZones(t *testing.T) {
	t.Parallel() // waits on health checks and rollouts: overlaps with the other service tests (own env, own address pools)
	e := startDev(t)
	ctx := e.ctx()
	if _, err := e.ECS.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("svc")}); err != nil {
		t.Fatal(err)
	}
	td1 := e.registerTask("svc", "256", "512", e.container("app", "sleep", "3600"))
	_, err := e.ECS.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("svc"), ServiceName: aws.String("web"),
		TaskDefinition: aws.String(td1), DesiredCount: aws.Int32(3), LaunchType: types.LaunchTypeFargate,
		NetworkConfiguration: &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{Subnets: e.subnets()}}})
	if err != nil {
		t.Fatal(err)
	}
	waiter := ecs.NewServicesStableWaiter(e.ECS, func(o *ecs.ServicesStableWaiterOptions) { o.MinDelay, o.MaxDelay = time.Second, 2*time.Second })
	stable := func() {
		t.Helper()
		in := &ecs.DescribeServicesInput{Cluster: aws.String("svc"), Services: []string{"web"}}
		if err := waiter.Wait(ctx, in, 2*time.Minute); err != nil {
			t.Fatalf("services-stable: %v", err)
		}
	}
	tasks := func() []string {
		t.Helper()
		out, err := e.ECS.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String("svc"), ServiceName: aws.String("web")})
		if err != nil {
			t.Fatal(err)
		}
		return out.TaskArns
	}
	stable()
	arns := tasks()
	zones := map[string]bool{}
	for _, a := range arns {
		zones[aws.ToString(e.describe("svc", a).AvailabilityZone)] = true
	}
	if len(arns) != 3 || len(zones) != 3 {
		t.Fatalf("tasks %v in zones %v, want 3 in 3", arns, zones)
	}
	if _, err := e.ECS.StopTask(ctx, &ecs.StopTaskInput{Cluster: aws.String("svc"), Task: aws.String(arns[0])}); err != nil {
		t.Fatal(err)
	}
	e.waitStatus("svc", arns[0], "STOPPED", time.Minute)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		now := tasks()
		if len(now) == 3 && !slices.Contains(now, arns[0]) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stopped task not replaced: %v", now)
		}
		time.Sleep(time.Second)
	}
	stable()
	td2 := e.registerTask("svc", "256", "512", e.container("app", "sleep", "3601"))
	if _, err := e.ECS.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("svc"), Service: aws.String("web"), TaskDefinition: aws.String(td2)}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	stable()
	for _, a := range tasks() {
		if got := aws.ToString(e.describe("svc", a).TaskDefinitionArn); got != td2 {
			t.Fatalf("task %s runs %s after the update", a, got)
		}
	}
	if _, err := e.ECS.DeleteService(ctx, &ecs.DeleteServiceInput{Cluster: aws.String("svc"), Service: aws.String("web"), Force: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
}
