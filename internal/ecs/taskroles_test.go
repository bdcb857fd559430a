package ecs_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berthdev/berth/internal/agentapi"
	becs "github.com/berthdev/berth/internal/ecs"
)

// fakeRoles trusts one role, "ok", of account 000000000000.
type fakeRoles struct {
	mu      sync.Mutex
	minted  int
	revoked []string
	gone    bool // the role was deleted: nothing is assumable
}

const okRole = "arn:aws:iam::000000000000:role/ok"

func (f *fakeRoles) AssumeRole(_ context.Context, account, ref, _ string) (string, error) {
	f.mu.Lock()
	gone := f.gone
	f.mu.Unlock()
	if !gone && account == "000000000000" && (ref == okRole || ref == "ok") {
		return okRole, nil
	}
	return "", fmt.Errorf("role %s: %w", ref, becs.ErrRoleNotAssumable)
}

func (f *fakeRoles) Credentials(_ context.Context, _, roleArn, _, taskID string) (agentapi.TaskCredentials, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.minted++
	return agentapi.TaskCredentials{RoleArn: roleArn, AccessKeyID: fmt.Sprintf("ASIA%016d", f.minted), SecretAccessKey: "s",
		Token: "tok-" + taskID, Expiration: time.Now().Add(6 * time.Hour)}, nil
}

func (f *fakeRoles) Revoke(_ context.Context, taskID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.revoked = append(f.revoked, taskID)
	return nil
}

func (f *fakeRoles) wasRevoked(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.revoked {
		if r == id {
			return true
		}
	}
	return false
}

func TestTaskRoleCredentials(t *testing.T) {
	roles := &fakeRoles{}
	e := newEnvWith(t, becs.Config{TaskRoles: roles})
	ctx := ctxT(t)
	if _, err := e.ecs.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("c")}); err != nil {
		t.Fatal(err)
	}
	regWithRole := func(family, role string) string {
		out, err := e.ecs.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{
			Family: aws.String(family), NetworkMode: types.NetworkModeAwsvpc, Cpu: aws.String("256"), Memory: aws.String("512"),
			RequiresCompatibilities: []types.Compatibility{types.CompatibilityFargate}, TaskRoleArn: aws.String(role),
			ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("app"), Image: aws.String("busybox")}},
		})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.TaskDefinition.TaskDefinitionArn)
	}
	runIn := func(td string, o *types.TaskOverride) error {
		_, err := e.ecs.RunTask(ctx, &ecs.RunTaskInput{Cluster: aws.String("c"), TaskDefinition: aws.String(td), Overrides: o,
			NetworkConfiguration: &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{Subnets: []string{"subnet-1"}}}})
		return err
	}
	// A role ECS cannot assume refuses the run, as ECS does.
	bad := regWithRole("bad", "arn:aws:iam::000000000000:role/untrusting")
	err := runIn(bad, nil)
	if apiCode(err) != "ClientException" || !strings.Contains(err.Error(),
		"ECS was unable to assume the role 'arn:aws:iam::000000000000:role/untrusting' that was provided for this task.") {
		t.Errorf("RunTask with an unassumable role: %v", err)
	}
	good := regWithRole("good", okRole)
	if err := runIn(good, &types.TaskOverride{TaskRoleArn: aws.String("arn:aws:iam::111111111111:role/ok")}); apiCode(err) != "ClientException" {
		t.Errorf("RunTask overriding with another account's role: %v", err)
	}
	if _, err := e.agent.Register(ctx, agentapi.RegisterRequest{NodeID: "n1", AvailabilityZones: []string{"us-east-1a"}, CPU: 4096, MemoryMiB: 8192}); err != nil {
		t.Fatal(err)
	}
	if err := runIn(good, nil); err != nil {
		t.Fatal(err)
	}
	plain := e.register(t, "plain")
	e.run(t, "c", plain, 1)
	resp := e.poll(t, "n1", 2)
	var withRole, without agentapi.TaskSpec
	for _, s := range resp.Tasks {
		if s.Family == "good" {
			withRole = s
		} else {
			without = s
		}
	}
	if withRole.TaskRoleArn != okRole || len(withRole.CredentialsID) != 36 || without.TaskRoleArn != "" || without.CredentialsID != "" {
		t.Fatalf("specs: with role %+v, without %+v", withRole, without)
	}

	creds, err := e.agent.TaskCredentials(ctx, agentapi.TaskCredentialsRequest{NodeID: "n1", TaskArn: withRole.TaskArn})
	if err != nil || creds.RoleArn != okRole || creds.Token != "tok-"+withRole.TaskID || !strings.HasPrefix(creds.AccessKeyID, "ASIA") {
		t.Fatalf("TaskCredentials: %+v %v", creds, err)
	}
	for name, req := range map[string]agentapi.TaskCredentialsRequest{
		"another node":    {NodeID: "n2", TaskArn: withRole.TaskArn},
		"a task, no role": {NodeID: "n1", TaskArn: without.TaskArn},
		"no such task":    {NodeID: "n1", TaskArn: strings.Replace(withRole.TaskArn, withRole.TaskID, strings.Repeat("0", 32), 1)},
		"not an ARN":      {NodeID: "n1", TaskArn: "task"},
	} {
		if _, err := e.agent.TaskCredentials(ctx, req); err == nil || !strings.Contains(err.Error(), "404") && !strings.Contains(err.Error(), "400") {
			t.Errorf("%s: %v, want a refusal", name, err)
		}
	}

	// A role deleted (or no longer trusting ECS) under a running task: no
	// new credentials, and the host is told why.
	roles.mu.Lock()
	roles.gone = true
	roles.mu.Unlock()
	if _, err := e.agent.TaskCredentials(ctx, agentapi.TaskCredentialsRequest{NodeID: "n1", TaskArn: withRole.TaskArn}); err == nil ||
		!strings.Contains(err.Error(), "403") || !strings.Contains(err.Error(), "ECS was unable to assume the role") {
		t.Errorf("credentials of a role gone: %v, want 403", err)
	}
	roles.mu.Lock()
	roles.gone = false
	roles.mu.Unlock()

	// STOPPED revokes the task's credentials, and none are handed out after.
	now := time.Now()
	for i, st := range []string{"PENDING", "RUNNING", "STOPPED"} {
		if err := e.agent.Report(ctx, agentapi.StateReport{NodeID: "n1", TaskArn: withRole.TaskArn, Seq: int64(i + 1), Status: st, StartedAt: &now}); err != nil {
			t.Fatal(err)
		}
	}
	if !roles.wasRevoked(withRole.TaskID) {
		t.Errorf("STOPPED did not revoke the task's credentials (revoked %v)", roles.revoked)
	}
	if _, err := e.agent.TaskCredentials(ctx, agentapi.TaskCredentialsRequest{NodeID: "n1", TaskArn: withRole.TaskArn}); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("credentials of a stopped task: %v, want 404", err)
	}
}

func TestDescribeClustersOfAnotherAccount(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	if _, err := e.ecs.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("shared")}); err != nil {
		t.Fatal(err)
	}
	foreign := "arn:aws:ecs:us-east-1:111111111111:cluster/shared"
	out, err := e.ecs.DescribeClusters(ctx, &ecs.DescribeClustersInput{Clusters: []string{foreign, "arn:aws:ecs:us-east-1:000000000000:cluster/shared"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Clusters) != 1 || len(out.Failures) != 1 || aws.ToString(out.Failures[0].Arn) != foreign || aws.ToString(out.Failures[0].Reason) != "MISSING" {
		t.Errorf("DescribeClusters: %+v failures %+v", out.Clusters, out.Failures)
	}
	if _, err := e.ecs.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String(foreign)}); apiCode(err) != "ClusterNotFoundException" {
		t.Errorf("ListTasks in another account's cluster: %v", err)
	}
}

// TestServiceWithUnassumableRole: the service launches nothing and says why
// in one event, as ECS does, rather than running tasks without credentials.
func TestServiceWithUnassumableRole(t *testing.T) {
	e := newEnvWith(t, becs.Config{TaskRoles: &fakeRoles{}})
	ctx := ctxT(t)
	if _, err := e.ecs.CreateCluster(ctx, &ecs.CreateClusterInput{}); err != nil {
		t.Fatal(err)
	}
	out, err := e.ecs.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{
		Family: aws.String("web"), NetworkMode: types.NetworkModeAwsvpc, Cpu: aws.String("256"), Memory: aws.String("512"),
		RequiresCompatibilities: []types.Compatibility{types.CompatibilityFargate}, TaskRoleArn: aws.String("arn:aws:iam::000000000000:role/nope"),
		ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("app"), Image: aws.String("busybox")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	e.createService(t, &ecs.CreateServiceInput{ServiceName: aws.String("web"), TaskDefinition: out.TaskDefinition.TaskDefinitionArn,
		DesiredCount: aws.Int32(2), LaunchType: types.LaunchTypeFargate})
	want := "(service web) failed to launch a task with (error ECS was unable to assume the role 'arn:aws:iam::000000000000:role/nope'"
	var events []types.ServiceEvent
	eventually(t, "the launch failure event", func() bool {
		d, err := e.ecs.DescribeServices(ctx, &ecs.DescribeServicesInput{Services: []string{"web"}})
		if err != nil || len(d.Services) != 1 {
			return false
		}
		events = d.Services[0].Events
		return len(events) > 0 && strings.HasPrefix(aws.ToString(events[0].Message), want)
	})
	time.Sleep(1500 * time.Millisecond) // more passes: the event is not repeated
	d, err := e.ecs.DescribeServices(ctx, &ecs.DescribeServicesInput{Services: []string{"web"}})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, ev := range d.Services[0].Events {
		if strings.HasPrefix(aws.ToString(ev.Message), want) {
			n++
		}
	}
	if n != 1 || len(e.serviceTasks(t, "web")) != 0 {
		t.Errorf("events %d (want 1), tasks %v (want none)", n, e.serviceTasks(t, "web"))
	}
}
