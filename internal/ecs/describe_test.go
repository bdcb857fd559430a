package ecs_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// DescribeTasks answers a task's tags only when asked to include TAGS, and
// otherwise the task as stored.
func TestDescribeTasksTags(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	if _, err := e.ecs.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("default")}); err != nil {
		t.Fatal(err)
	}
	td := e.register(t, "tagged")
	out, err := e.ecs.RunTask(ctx, &ecs.RunTaskInput{TaskDefinition: aws.String(td), LaunchType: types.LaunchTypeFargate,
		Tags:                 []types.Tag{{Key: aws.String("team"), Value: aws.String("infra")}},
		NetworkConfiguration: &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{Subnets: []string{"subnet-1"}}}})
	if err != nil || len(out.Tasks) != 1 {
		t.Fatalf("RunTask: %v %v", out, err)
	}
	arn := out.Tasks[0].TaskArn
	plain, err := e.ecs.DescribeTasks(ctx, &ecs.DescribeTasksInput{Tasks: []string{aws.ToString(arn)}})
	if err != nil || len(plain.Tasks) != 1 {
		t.Fatalf("DescribeTasks: %v %v", plain, err)
	}
	if got := plain.Tasks[0]; len(got.Tags) != 0 || aws.ToString(got.TaskArn) != aws.ToString(arn) || aws.ToString(got.LastStatus) == "" {
		t.Fatalf("without include TAGS: tags %v, arn %s, lastStatus %q", got.Tags, aws.ToString(got.TaskArn), aws.ToString(got.LastStatus))
	}
	tagged, err := e.ecs.DescribeTasks(ctx, &ecs.DescribeTasksInput{Tasks: []string{aws.ToString(arn)}, Include: []types.TaskField{types.TaskFieldTags}})
	if err != nil || len(tagged.Tasks) != 1 {
		t.Fatalf("DescribeTasks include TAGS: %v %v", tagged, err)
	}
	if tags := tagged.Tasks[0].Tags; len(tags) != 1 || aws.ToString(tags[0].Key) != "team" {
		t.Fatalf("with include TAGS: tags %v", tags)
	}
}
