package ecs_test

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berthdev/berth/internal/agentapi"
)

func TestCapacityProvidersAndSpot(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	c, err := e.ecs.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("c")})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Cluster.CapacityProviders; len(got) != 2 || got[0] != "FARGATE" || got[1] != "FARGATE_SPOT" {
		t.Fatalf("a new cluster's providers: %v", got)
	}
	d, err := e.ecs.DescribeCapacityProviders(ctx, &ecs.DescribeCapacityProvidersInput{})
	if err != nil || len(d.CapacityProviders) != 2 {
		t.Fatalf("describe providers: %v %+v", err, d)
	}
	if _, err := e.agent.Register(ctx, agentapi.RegisterRequest{NodeID: "h1", AvailabilityZones: []string{"us-east-1a"}, CPU: 8192, MemoryMiB: 16384}); err != nil {
		t.Fatal(err)
	}
	td := e.register(t, "fam")
	nc := &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{Subnets: []string{"subnet-1"}}}
	strategy := []types.CapacityProviderStrategyItem{
		{CapacityProvider: aws.String("FARGATE"), Base: 1, Weight: 1},
		{CapacityProvider: aws.String("FARGATE_SPOT"), Weight: 3},
	}
	run, err := e.ecs.RunTask(ctx, &ecs.RunTaskInput{Cluster: aws.String("c"), TaskDefinition: aws.String(td), Count: aws.Int32(5),
		CapacityProviderStrategy: strategy, NetworkConfiguration: nc})
	if err != nil {
		t.Fatal(err)
	}
	by := map[string]int{}
	for _, tk := range run.Tasks {
		by[aws.ToString(tk.CapacityProviderName)]++
		if tk.LaunchType != types.LaunchTypeFargate {
			t.Fatalf("launch type %s", tk.LaunchType)
		}
	}
	// base 1 on FARGATE, the other 4 split 1:3.
	if by["FARGATE"] != 2 || by["FARGATE_SPOT"] != 3 {
		t.Fatalf("split: %v", by)
	}
	// Refusals.
	for name, in := range map[string]*ecs.RunTaskInput{
		"both a launch type and a strategy": {LaunchType: types.LaunchTypeFargate, CapacityProviderStrategy: strategy},
		"a provider not on the cluster":     {CapacityProviderStrategy: []types.CapacityProviderStrategyItem{{CapacityProvider: aws.String("nope"), Weight: 1}}},
		"two bases": {CapacityProviderStrategy: []types.CapacityProviderStrategyItem{
			{CapacityProvider: aws.String("FARGATE"), Base: 1, Weight: 1}, {CapacityProvider: aws.String("FARGATE_SPOT"), Base: 1, Weight: 1}}},
	} {
		in.Cluster, in.TaskDefinition, in.NetworkConfiguration = aws.String("c"), aws.String(td), nc
		if _, err := e.ecs.RunTask(ctx, in); apiCode(err) != "InvalidParameterException" {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := e.ecs.CreateCapacityProvider(ctx, &ecs.CreateCapacityProviderInput{Name: aws.String("fargate-x"),
		AutoScalingGroupProvider: &types.AutoScalingGroupProvider{AutoScalingGroupArn: aws.String("asg")}}); apiCode(err) != "InvalidParameterException" {
		t.Errorf("a provider named fargate-x: %v", err)
	}

	// The operator reclaims h1's Spot capacity: only the Spot tasks stop,
	// with ECS's stop code.
	e.poll(t, "h1", 5)
	out, err := e.agent.SpotInterrupt(ctx, "h1")
	if err != nil || len(out.TaskArns) != 3 {
		t.Fatalf("spot interrupt: %v %+v", err, out)
	}
	for _, arn := range out.TaskArns {
		tk := e.describe(t, "c", arn)
		if aws.ToString(tk.CapacityProviderName) != "FARGATE_SPOT" || tk.StopCode != types.TaskStopCodeSpotInterruption || aws.ToString(tk.DesiredStatus) != "STOPPED" {
			t.Fatalf("interrupted task: %s %s %s", aws.ToString(tk.CapacityProviderName), tk.StopCode, aws.ToString(tk.DesiredStatus))
		}
	}
	// A container instance's token may not reclaim anything.
	if _, err := e.ecs.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("own")}); err != nil {
		t.Fatal(err)
	}
	host, _ := e.join(t, "own", "i-0000000000000000c", "us-east-1a", nil)
	if _, err := host.SpotInterrupt(ctx, "h1"); err == nil {
		t.Fatal("a user's host reclaimed Spot capacity")
	}
}

func TestUserCapacityProvider(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	if _, err := e.ecs.CreateCapacityProvider(ctx, &ecs.CreateCapacityProviderInput{Name: aws.String("mine"),
		AutoScalingGroupProvider: &types.AutoScalingGroupProvider{AutoScalingGroupArn: aws.String("arn:aws:autoscaling:us-east-1:000000000000:autoScalingGroup:x:autoScalingGroupName/mine")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ecs.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("own"), CapacityProviders: []string{"mine"},
		DefaultCapacityProviderStrategy: []types.CapacityProviderStrategyItem{{CapacityProvider: aws.String("mine"), Weight: 1}}}); err != nil {
		t.Fatal(err)
	}
	// The provider is the cluster's: another cluster may not take it.
	if _, err := e.ecs.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("other"), CapacityProviders: []string{"mine"}}); apiCode(err) != "InvalidParameterException" {
		t.Fatalf("a second cluster took the provider: %v", err)
	}
	td := e.registerEC2(t, "web", 256)
	// No instance of the provider yet: the task waits, PROVISIONING.
	run, err := e.ecs.RunTask(ctx, &ecs.RunTaskInput{Cluster: aws.String("own"), TaskDefinition: aws.String(td)})
	if err != nil || len(run.Tasks) != 1 {
		t.Fatalf("RunTask with the default strategy: %v %+v", err, run)
	}
	tk := run.Tasks[0]
	if tk.LaunchType != types.LaunchTypeEc2 || aws.ToString(tk.CapacityProviderName) != "mine" || aws.ToString(tk.LastStatus) != "PROVISIONING" {
		t.Fatalf("task: %s %s %s", tk.LaunchType, aws.ToString(tk.CapacityProviderName), aws.ToString(tk.LastStatus))
	}
	// An instance outside the provider does not take it; one inside does.
	outside, _ := e.join(t, "own", "i-0000000000000000d", "us-east-1a", nil)
	time.Sleep(1500 * time.Millisecond) // a placement pass or more
	if resp, err := outside.Tasks(ctx, "i-0000000000000000d", 0, time.Second); err != nil || len(resp.Tasks) != 0 {
		t.Fatalf("an instance outside the provider got %d tasks (%v)", len(resp.Tasks), err)
	}
	c := &agentapi.Client{BaseURL: e.url}
	joined, err := c.Join(ctx, agentapi.JoinRequest{Cluster: "own", NodeID: "i-0000000000000000e", AvailabilityZone: "us-east-1b",
		CPU: 2048, MemoryMiB: 4096, CapacityProvider: "mine"}, signer("test", "test"))
	if err != nil {
		t.Fatal(err)
	}
	c.Token = joined.Token
	if _, err := c.Register(ctx, agentapi.RegisterRequest{NodeID: "i-0000000000000000e", CPU: 2048, MemoryMiB: 4096}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := c.Tasks(ctx, "i-0000000000000000e", 0, time.Second)
		if err == nil && len(resp.Tasks) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the provider's instance was not given the task (%v)", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if got := aws.ToString(e.describe(t, "own", aws.ToString(tk.TaskArn)).ContainerInstanceArn); got != joined.ContainerInstanceArn {
		t.Fatalf("placed on %q, want %q", got, joined.ContainerInstanceArn)
	}
}

func TestUpdateServiceStrategy(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	if _, err := e.ecs.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("c")}); err != nil {
		t.Fatal(err)
	}
	td := e.register(t, "fam")
	nc := &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{Subnets: []string{"subnet-1"}}}
	if _, err := e.ecs.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("c"), ServiceName: aws.String("s"), TaskDefinition: aws.String(td),
		DesiredCount: aws.Int32(0), NetworkConfiguration: nc,
		CapacityProviderStrategy: []types.CapacityProviderStrategyItem{{CapacityProvider: aws.String("FARGATE"), Weight: 1}}}); err != nil {
		t.Fatal(err)
	}
	out, err := e.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("c"), Service: aws.String("s"),
		CapacityProviderStrategy: []types.CapacityProviderStrategyItem{{CapacityProvider: aws.String("FARGATE_SPOT"), Weight: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	svc := out.Service
	if len(svc.Deployments) != 2 || len(svc.Deployments[0].CapacityProviderStrategy) != 1 ||
		aws.ToString(svc.Deployments[0].CapacityProviderStrategy[0].CapacityProvider) != "FARGATE_SPOT" {
		t.Fatalf("deployments after a strategy change: %+v", svc.Deployments)
	}
	if _, err := e.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("c"), Service: aws.String("s"),
		PlacementStrategy: []types.PlacementStrategy{{Type: types.PlacementStrategyTypeRandom}}}); apiCode(err) != "InvalidParameterException" {
		t.Fatalf("a placement strategy on a Fargate service: %v", err)
	}
}
