package e2e

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berthdev/berth/internal/demoimage"
)

// TestTaskRoleInsideTask: a static AWS client (testdata/taskclient, built
// here and shipped as an image) runs in a task with a task role and no
// keys: it gets the role's credentials from 169.254.170.2 and calls berth's
// ECS API through AWS_ENDPOINT_URL (berth's API inside the VPC). Its own
// account's clusters are listed, another account's cluster is MISSING, and
// once the task has STOPPED the credentials it was served are refused.
func TestTaskRoleInsideTask(t *testing.T) {
	t.Parallel() // mostly waits on its tasks; its own berth dev and address pools
	e := startDev(t)
	ctx := e.ctx()
	bin := filepath.Join(t.TempDir(), "taskclient")
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", bin, "./testdata/taskclient")
	build.Env = append(build.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the task client: %v\n%s", err, out)
	}
	image, err := demoimage.PushBinary(ctx, strings.TrimPrefix(e.URL, "http://"), "taskclient", bin, "taskclient", "berth e2e: taskclient")
	if err != nil {
		t.Fatal(err)
	}
	newAWSCLI(t, e).call(nil, "iam", "create-role", "--role-name", "client-task", "--assume-role-policy-document",
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}`)
	const other = "arn:aws:ecs:us-east-1:111111111111:cluster/roles"
	out, err := e.ECS.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{
		Family: aws.String("client"), NetworkMode: types.NetworkModeAwsvpc, Cpu: aws.String("256"), Memory: aws.String("512"),
		RequiresCompatibilities: []types.Compatibility{types.CompatibilityFargate},
		TaskRoleArn:             aws.String("client-task"),
		ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("client"), Image: aws.String(image),
			Essential: aws.Bool(true), Command: []string{other}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	arn := e.runTask("roles", aws.ToString(out.TaskDefinition.TaskDefinitionArn))
	task := e.waitStatus("roles", arn, "STOPPED", 90*time.Second)
	logs := e.containerLogs("roles", arn, "client")
	if len(task.Containers) != 1 || aws.ToInt32(task.Containers[0].ExitCode) != 0 {
		t.Fatalf("task client: %+v\n%s", task.Containers, logs)
	}
	line := func(prefix string) string {
		for _, l := range strings.Split(logs, "\n") {
			if rest, ok := strings.CutPrefix(l, prefix+" "); ok {
				return strings.TrimSpace(rest)
			}
		}
		t.Fatalf("no %s line in the task's log:\n%s", prefix, logs)
		return ""
	}
	if got := line("LIST"); got != "arn:aws:ecs:us-east-1:000000000000:cluster/roles" {
		t.Errorf("ListClusters inside the task: %q", got)
	}
	if got := line("OTHER"); got != "MISSING" {
		t.Errorf("DescribeClusters of another account's cluster inside the task: %q", got)
	}
	creds := strings.Fields(line("CREDS"))
	if len(creds) != 3 || !strings.HasPrefix(creds[0], "ASIA") {
		t.Fatalf("credentials the task was served: %q", creds)
	}
	// The task is STOPPED: what it was served no longer works.
	cfg := e.awsConfig()
	cfg.Credentials = credentials.NewStaticCredentialsProvider(creds[0], creds[1], creds[2])
	if _, err := ecs.NewFromConfig(cfg).ListClusters(ctx, &ecs.ListClustersInput{}); err == nil ||
		!strings.Contains(err.Error(), "UnrecognizedClientException") {
		t.Errorf("a stopped task's credentials: %v, want UnrecognizedClientException", err)
	}
}
