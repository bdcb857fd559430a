package ecs_test

import (
	"regexp"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berthdev/berth/internal/agentapi"
)

// TestTaskSpecRoleAndMetadata: a task definition's taskRoleArn (or the
// run's override) reaches the agent with a fresh credentials id per task,
// and the spec carries the task's tags and its containers' ARNs for the
// metadata endpoint.
func TestTaskSpecRoleAndMetadata(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	if _, err := e.agent.Register(ctx, agentapi.RegisterRequest{NodeID: "n1", AvailabilityZones: []string{"us-east-1a"}, CPU: 4096, MemoryMiB: 8192}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ecs.CreateCluster(ctx, &ecs.CreateClusterInput{}); err != nil {
		t.Fatal(err)
	}
	const role = "arn:aws:iam::000000000000:role/app"
	out, err := e.ecs.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{
		Family: aws.String("role"), NetworkMode: types.NetworkModeAwsvpc, Cpu: aws.String("256"), Memory: aws.String("512"),
		RequiresCompatibilities: []types.Compatibility{types.CompatibilityFargate}, TaskRoleArn: aws.String(role),
		ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("app"), Image: aws.String("busybox")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	run := func(td string, o *types.TaskOverride) string {
		res, err := e.ecs.RunTask(ctx, &ecs.RunTaskInput{TaskDefinition: aws.String(td), LaunchType: types.LaunchTypeFargate,
			Overrides: o, Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("a")}},
			NetworkConfiguration: &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{Subnets: []string{"subnet-1"}}}})
		if err != nil || len(res.Tasks) != 1 {
			t.Fatalf("run: %v %v", err, res)
		}
		return aws.ToString(res.Tasks[0].TaskArn)
	}
	withRole := aws.ToString(out.TaskDefinition.TaskDefinitionArn)
	a := run(withRole, nil)
	b := run(withRole, &types.TaskOverride{TaskRoleArn: aws.String(role + "-override")})
	c := run(e.register(t, "norole"), nil)
	specs := map[string]agentapi.TaskSpec{}
	for _, s := range e.poll(t, "n1", 3).Tasks {
		specs[s.TaskArn] = s
	}
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	if s := specs[a]; s.TaskRoleArn != role || !uuid.MatchString(s.CredentialsID) {
		t.Errorf("task with a role: TaskRoleArn %q CredentialsID %q", s.TaskRoleArn, s.CredentialsID)
	}
	if s := specs[b]; s.TaskRoleArn != role+"-override" || !uuid.MatchString(s.CredentialsID) || s.CredentialsID == specs[a].CredentialsID {
		t.Errorf("overridden role: TaskRoleArn %q CredentialsID %q (other task's %q)", s.TaskRoleArn, s.CredentialsID, specs[a].CredentialsID)
	}
	if s := specs[c]; s.TaskRoleArn != "" || s.CredentialsID != "" {
		t.Errorf("task without a role: TaskRoleArn %q CredentialsID %q", s.TaskRoleArn, s.CredentialsID)
	}
	s := specs[a]
	if s.Tags["team"] != "a" {
		t.Errorf("spec tags %v", s.Tags)
	}
	task := e.describe(t, "default", a)
	if len(s.Containers) != 1 || len(task.Containers) != 1 || s.Containers[0].ContainerArn != aws.ToString(task.Containers[0].ContainerArn) ||
		s.Containers[0].ContainerArn == "" {
		t.Errorf("container ARN in the spec %+v, DescribeTasks %+v", s.Containers, task.Containers)
	}
}
