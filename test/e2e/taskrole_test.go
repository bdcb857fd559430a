package e2e

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/berthdev/berth/internal/agentapi"
)

// agentClient is a client of the agent protocol as the env's own agent
// is: the join token from the dev env file (BERTH_AGENT_TOKEN) and the
// agent's node id from its data dir.
func (e *devEnv) agentClient() (*agentapi.Client, string) {
	e.t.Helper()
	b, err := os.ReadFile(filepath.Join(e.DataDir, "env"))
	if err != nil {
		e.t.Fatal(err)
	}
	var token string
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "export BERTH_AGENT_TOKEN="); ok {
			token = strings.TrimSpace(v)
		}
	}
	node, err := os.ReadFile(filepath.Join(e.DataDir, "agent", "node-id"))
	if err != nil || token == "" {
		e.t.Fatalf("agent identity: token %q, node id: %v", token, err)
	}
	return &agentapi.Client{BaseURL: e.URL, Token: token}, strings.TrimSpace(string(node))
}

// TestTaskRole: a role trusting ecs-tasks.amazonaws.com, made with the AWS
// CLI's IAM; a task of a definition naming it runs; its credentials,
// fetched through the agent protocol as the agent fetches them, sign ECS
// and STS calls from this process as the task's account and role; another
// account's cluster is not theirs; once the task is STOPPED they are refused.
func TestTaskRole(t *testing.T) {
	t.Parallel() // mostly waits on its tasks; its own berth dev and address pools
	e := startDev(t)
	cli := newAWSCLI(t, e)
	const account = "000000000000"
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}`
	var role struct{ Role struct{ Arn, RoleId string } }
	cli.call(&role, "iam", "create-role", "--role-name", "app-task", "--assume-role-policy-document", trust)
	if role.Role.Arn != "arn:aws:iam::"+account+":role/app-task" {
		t.Fatalf("create-role: %+v", role)
	}
	cli.call(nil, "iam", "create-role", "--role-name", "lambda-only", "--assume-role-policy-document",
		strings.Replace(trust, "ecs-tasks.amazonaws.com", "lambda.amazonaws.com", 1))

	ctx := e.ctx()
	register := func(family, roleArn string) string {
		out, err := e.ECS.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{
			Family: aws.String(family), NetworkMode: types.NetworkModeAwsvpc, Cpu: aws.String("256"), Memory: aws.String("512"),
			RequiresCompatibilities: []types.Compatibility{types.CompatibilityFargate}, TaskRoleArn: aws.String(roleArn),
			ContainerDefinitions: []types.ContainerDefinition{e.container("app", "sleep", "600")},
		})
		if err != nil {
			t.Fatalf("register %s: %v", family, err)
		}
		return aws.ToString(out.TaskDefinition.TaskDefinitionArn)
	}
	// A role that does not trust ecs-tasks: RunTask refuses, as ECS does.
	bad := register("untrusted", "arn:aws:iam::"+account+":role/lambda-only")
	if _, err := e.ECS.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("roles")}); err != nil {
		t.Fatal(err)
	}
	_, err := e.ECS.RunTask(ctx, &ecs.RunTaskInput{Cluster: aws.String("roles"), TaskDefinition: aws.String(bad), LaunchType: types.LaunchTypeFargate,
		NetworkConfiguration: &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{Subnets: e.subnets()}}})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "ClientException" || !strings.Contains(ae.ErrorMessage(), "ECS was unable to assume the role") {
		t.Fatalf("RunTask with a role ECS cannot assume: %v", err)
	}

	arn := e.runTask("roles", register("with-role", role.Role.Arn))
	e.waitStatus("roles", arn, "RUNNING", 60*time.Second)

	agent, node := e.agentClient()
	creds, err := agent.TaskCredentials(ctx, agentapi.TaskCredentialsRequest{NodeID: node, TaskArn: arn})
	if err != nil {
		t.Fatalf("task credentials through the agent protocol: %v", err)
	}
	if creds.RoleArn != role.Role.Arn || !strings.HasPrefix(creds.AccessKeyID, "ASIA") || creds.Token == "" ||
		time.Until(creds.Expiration) < 5*time.Hour {
		t.Fatalf("credentials %+v", creds)
	}
	if again, err := agent.TaskCredentials(ctx, agentapi.TaskCredentialsRequest{NodeID: node, TaskArn: arn}); err != nil || again.AccessKeyID != creds.AccessKeyID {
		t.Errorf("asking again: %v %s, want the same set %s", err, again.AccessKeyID, creds.AccessKeyID)
	}
	if _, err := agent.TaskCredentials(ctx, agentapi.TaskCredentialsRequest{NodeID: "host-elsewhere", TaskArn: arn}); err == nil {
		t.Error("another node got the task's credentials")
	}

	cfg := aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(e.URL), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider(creds.AccessKeyID, creds.SecretAccessKey, creds.Token)}
	taskECS := ecs.NewFromConfig(cfg)
	clusters, err := taskECS.ListClusters(ctx, &ecs.ListClustersInput{})
	if err != nil {
		t.Fatalf("ListClusters with the task's credentials: %v", err)
	}
	if !contains(clusters.ClusterArns, "arn:aws:ecs:us-east-1:"+account+":cluster/roles") {
		t.Errorf("ListClusters as the task: %v", clusters.ClusterArns)
	}
	foreign := "arn:aws:ecs:us-east-1:111111111111:cluster/roles"
	dc, err := taskECS.DescribeClusters(ctx, &ecs.DescribeClustersInput{Clusters: []string{"roles", foreign}})
	if err != nil {
		t.Fatal(err)
	}
	if len(dc.Clusters) != 1 || aws.ToString(dc.Clusters[0].ClusterArn) != "arn:aws:ecs:us-east-1:"+account+":cluster/roles" ||
		len(dc.Failures) != 1 || aws.ToString(dc.Failures[0].Arn) != foreign || aws.ToString(dc.Failures[0].Reason) != "MISSING" {
		t.Errorf("DescribeClusters as the task: clusters %+v failures %+v", dc.Clusters, dc.Failures)
	}
	id, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	taskID := arn[strings.LastIndexByte(arn, '/')+1:]
	if err != nil || aws.ToString(id.Arn) != "arn:aws:sts::"+account+":assumed-role/app-task/"+taskID ||
		aws.ToString(id.UserId) != role.Role.RoleId+":"+taskID {
		t.Errorf("GetCallerIdentity as the task: %v %+v", err, id)
	}
	// Every protocol takes them: EC2 (query, EC2 style) and ECR (awsJson).
	taskEC2 := ec2.NewFromConfig(cfg)
	if vpcs, err := taskEC2.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{}); err != nil || len(vpcs.Vpcs) == 0 || aws.ToString(vpcs.Vpcs[0].OwnerId) != account {
		t.Errorf("DescribeVpcs as the task: %v", err)
	}
	if _, err := ecr.NewFromConfig(cfg).GetAuthorizationToken(ctx, &ecr.GetAuthorizationTokenInput{}); err != nil {
		t.Errorf("ECR GetAuthorizationToken as the task: %v", err)
	}

	// Stopped: the same credentials are refused at once.
	if _, err := e.ECS.StopTask(ctx, &ecs.StopTaskInput{Cluster: aws.String("roles"), Task: aws.String(arn)}); err != nil {
		t.Fatal(err)
	}
	e.waitStatus("roles", arn, "STOPPED", 60*time.Second)
	_, err = taskECS.ListClusters(ctx, &ecs.ListClustersInput{})
	if !errors.As(err, &ae) || ae.ErrorCode() != "UnrecognizedClientException" {
		t.Errorf("ListClusters with a stopped task's credentials: %v, want UnrecognizedClientException", err)
	}
	if _, err = taskEC2.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{}); !errors.As(err, &ae) || ae.ErrorCode() != "AuthFailure" {
		t.Errorf("DescribeVpcs with a stopped task's credentials: %v, want AuthFailure", err)
	}
	_, err = sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if !errors.As(err, &ae) || ae.ErrorCode() != "InvalidClientTokenId" {
		t.Errorf("GetCallerIdentity with a stopped task's credentials: %v, want InvalidClientTokenId", err)
	}
	if _, err := agent.TaskCredentials(ctx, agentapi.TaskCredentialsRequest{NodeID: node, TaskArn: arn}); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("credentials of a stopped task: %v, want 404", err)
	}
	cli.call(nil, "iam", "delete-role", "--role-name", "app-task")
	cli.fail("NoSuchEntity", "iam", "get-role", "--role-name", "app-task")
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
