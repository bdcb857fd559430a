package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// awsCLIPath is Debian's AWS CLI v2. The `aws` on PATH may be another one.
const awsCLIPath = "/usr/bin/aws"

// awsCLI runs the real AWS CLI against one berth dev env. It never talks to
// real AWS: every call names the endpoint explicitly, and the environment
// holds nothing but test keys, empty config files and a scratch HOME.
type awsCLI struct {
	t        *testing.T
	endpoint string
	dir      string
	env      []string
	subnets  []string // the default subnets
}

func newAWSCLI(t *testing.T, e *devEnv) *awsCLI {
	t.Helper()
	if _, err := os.Stat(awsCLIPath); err != nil {
		t.Skipf("AWS CLI v2 not installed at %s", awsCLIPath)
	}
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	if err := os.MkdirAll(home, 0o755); err != nil {
		t.Fatal(err)
	}
	config, creds := filepath.Join(dir, "config"), filepath.Join(dir, "credentials")
	for _, f := range []string{config, creds} {
		if err := os.WriteFile(f, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return &awsCLI{t: t, endpoint: e.URL, dir: dir, subnets: e.subnets(), env: []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"AWS_ACCESS_KEY_ID=test",
		"AWS_SECRET_ACCESS_KEY=test",
		"AWS_DEFAULT_REGION=us-east-1",
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=" + config,
		"AWS_SHARED_CREDENTIALS_FILE=" + creds,
		"AWS_PAGER=",
	}}
}

// run runs `aws ARGS… --endpoint-url URL --output json` (bounded by two
// minutes, enough for the slowest waiter we use) and returns stdout and stderr.
func (a *awsCLI) run(args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	full := append(append([]string{}, args...), "--endpoint-url", a.endpoint, "--output", "json", "--no-cli-pager")
	cmd := exec.CommandContext(ctx, awsCLIPath, full...)
	cmd.Env = a.env
	cmd.Dir = a.dir
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		err = errors.Join(err, ctx.Err())
	}
	return stdout.String(), stderr.String(), err
}

// call runs a command that must succeed and decodes its JSON reply into out
// (nil: the reply is ignored but must be empty or JSON).
func (a *awsCLI) call(out any, args ...string) {
	a.t.Helper()
	stdout, stderr, err := a.run(args...)
	if err != nil {
		a.t.Fatalf("aws %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, stdout, stderr)
	}
	if out == nil {
		if s := strings.TrimSpace(stdout); s != "" && !json.Valid([]byte(s)) {
			a.t.Fatalf("aws %s: reply is not JSON: %q", strings.Join(args, " "), stdout)
		}
		return
	}
	if err := json.Unmarshal([]byte(stdout), out); err != nil {
		a.t.Fatalf("aws %s: decode reply %q: %v (stderr %s)", strings.Join(args, " "), stdout, err, stderr)
	}
}

// fail runs a command that must fail with the given AWS error code and
// returns the message the CLI printed.
func (a *awsCLI) fail(code string, args ...string) string {
	a.t.Helper()
	stdout, stderr, err := a.run(args...)
	if err == nil {
		a.t.Fatalf("aws %s succeeded (%s), want %s", strings.Join(args, " "), stdout, code)
	}
	want := "An error occurred (" + code + ")"
	if !strings.Contains(stderr, want) {
		a.t.Fatalf("aws %s: stderr %q, want %q", strings.Join(args, " "), stderr, want)
	}
	msg := strings.TrimSpace(stderr[strings.LastIndex(stderr, ":")+1:])
	if msg == "" {
		a.t.Fatalf("aws %s: empty error message in %q", strings.Join(args, " "), stderr)
	}
	return msg
}

// writeJSON writes v as a JSON file in the CLI's scratch dir and returns a
// file:// reference to it.
func (a *awsCLI) writeJSON(name string, v any) string {
	a.t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		a.t.Fatal(err)
	}
	p := filepath.Join(a.dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		a.t.Fatal(err)
	}
	return "file://" + p
}

// The reply shapes the tests read, as the CLI prints them.
type cliContainer struct {
	Name       string `json:"name"`
	LastStatus string `json:"lastStatus"`
	RuntimeID  string `json:"runtimeId"`
	ExitCode   *int   `json:"exitCode"`
	Reason     string `json:"reason"`
}

type cliTask struct {
	TaskArn            string         `json:"taskArn"`
	ClusterArn         string         `json:"clusterArn"`
	TaskDefinitionArn  string         `json:"taskDefinitionArn"`
	LastStatus         string         `json:"lastStatus"`
	DesiredStatus      string         `json:"desiredStatus"`
	StopCode           string         `json:"stopCode"`
	StoppedReason      string         `json:"stoppedReason"`
	AvailabilityZone   string         `json:"availabilityZone"`
	LaunchType         string         `json:"launchType"`
	PlatformVersion    string         `json:"platformVersion"`
	Cpu                string         `json:"cpu"`
	Memory             string         `json:"memory"`
	CreatedAt          string         `json:"createdAt"`
	PullStartedAt      string         `json:"pullStartedAt"`
	PullStoppedAt      string         `json:"pullStoppedAt"`
	StartedAt          string         `json:"startedAt"`
	StoppingAt         string         `json:"stoppingAt"`
	StoppedAt          string         `json:"stoppedAt"`
	ExecutionStoppedAt string         `json:"executionStoppedAt"`
	Containers         []cliContainer `json:"containers"`
}

type cliFailure struct {
	Arn    string `json:"arn"`
	Reason string `json:"reason"`
}

type cliCluster struct {
	ClusterArn        string `json:"clusterArn"`
	ClusterName       string `json:"clusterName"`
	Status            string `json:"status"`
	RunningTasksCount int    `json:"runningTasksCount"`
	PendingTasksCount int    `json:"pendingTasksCount"`
}

type cliTag struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// cliTaskDef is a task definition file for register-task-definition.
func cliTaskDef(family, image string, command ...string) map[string]any {
	return map[string]any{
		"family":                  family,
		"networkMode":             "awsvpc",
		"requiresCompatibilities": []string{"FARGATE"},
		"cpu":                     "256",
		"memory":                  "512",
		"containerDefinitions": []map[string]any{{
			"name": "main", "image": image, "essential": true, "command": command, "stopTimeout": 2,
		}},
	}
}

// network is run-task's --network-configuration: the default subnets.
func (a *awsCLI) network() string {
	return "awsvpcConfiguration={subnets=[" + strings.Join(a.subnets, ",") + "],assignPublicIp=DISABLED}"
}

// register registers a task definition from a JSON file and returns its ARN.
func (a *awsCLI) register(name string, def map[string]any) string {
	a.t.Helper()
	var reg struct {
		TaskDefinition struct {
			TaskDefinitionArn string `json:"taskDefinitionArn"`
			Family            string `json:"family"`
			Revision          int    `json:"revision"`
			Status            string `json:"status"`
		} `json:"taskDefinition"`
	}
	a.call(&reg, "ecs", "register-task-definition", "--cli-input-json", a.writeJSON(name+".json", def))
	td := reg.TaskDefinition
	if td.TaskDefinitionArn == "" || td.Family != def["family"] || td.Revision < 1 || td.Status != "ACTIVE" {
		a.t.Fatalf("register-task-definition replied %+v", td)
	}
	return td.TaskDefinitionArn
}

// runTask runs one Fargate task and returns its ARN.
func (a *awsCLI) runTask(cluster, taskDef string, extra ...string) string {
	a.t.Helper()
	var run struct {
		Tasks    []cliTask    `json:"tasks"`
		Failures []cliFailure `json:"failures"`
	}
	args := append([]string{"ecs", "run-task", "--cluster", cluster, "--task-definition", taskDef,
		"--launch-type", "FARGATE", "--network-configuration", a.network()}, extra...)
	a.call(&run, args...)
	if len(run.Tasks) != 1 || len(run.Failures) != 0 || run.Tasks[0].TaskArn == "" {
		a.t.Fatalf("run-task replied tasks %+v failures %+v", run.Tasks, run.Failures)
	}
	return run.Tasks[0].TaskArn
}

func (a *awsCLI) describeTask(cluster, arn string) cliTask {
	a.t.Helper()
	var d struct {
		Tasks    []cliTask    `json:"tasks"`
		Failures []cliFailure `json:"failures"`
	}
	a.call(&d, "ecs", "describe-tasks", "--cluster", cluster, "--tasks", arn)
	if len(d.Tasks) != 1 || len(d.Failures) != 0 {
		a.t.Fatalf("describe-tasks %s: tasks %+v failures %+v", arn, d.Tasks, d.Failures)
	}
	return d.Tasks[0]
}

// waitTasks runs `aws ecs wait tasks-running|tasks-stopped`, which polls
// every 6 s and gives up after its own attempts (our run bound cuts it
// at two minutes).
func (a *awsCLI) waitTasks(waiter, cluster string, arns ...string) {
	a.t.Helper()
	a.call(nil, append([]string{"ecs", "wait", waiter, "--cluster", cluster, "--tasks"}, arns...)...)
}

// waitStatus polls describe-tasks until the task reaches status (or
// STOPPED), for the steps where the waiters' fixed 6 s delay only costs time.
func (a *awsCLI) waitStatus(cluster, arn, status string, timeout time.Duration) cliTask {
	a.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		task := a.describeTask(cluster, arn)
		if task.LastStatus == status || task.LastStatus == "STOPPED" {
			return task
		}
		if time.Now().After(deadline) {
			a.t.Fatalf("task %s: still %s after %s, want %s", arn, task.LastStatus, timeout, status)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func requireFields(t *testing.T, what string, fields map[string]string) {
	t.Helper()
	for name, v := range fields {
		if v == "" {
			t.Errorf("%s: %s is empty", what, name)
		}
	}
}

// TestAWSCLITaskLifecycle drives a Fargate task through its whole life with
// the real AWS CLI: register from a JSON file, run, wait, stop, and a task
// whose essential container exits on its own.
func TestAWSCLITaskLifecycle(t *testing.T) {
	e := startDev(t)
	aws := newAWSCLI(t, e)

	var created struct {
		Cluster cliCluster `json:"cluster"`
	}
	aws.call(&created, "ecs", "create-cluster", "--cluster-name", "cli")
	if created.Cluster.ClusterName != "cli" || created.Cluster.Status != "ACTIVE" ||
		!strings.HasSuffix(created.Cluster.ClusterArn, ":cluster/cli") {
		t.Fatalf("create-cluster replied %+v", created.Cluster)
	}
	tdArn := aws.register("sleep", cliTaskDef("cli-sleep", e.Image, "sleep", "300"))
	if !strings.HasSuffix(tdArn, ":task-definition/cli-sleep:1") {
		t.Fatalf("task definition ARN %q", tdArn)
	}

	arn := aws.runTask("cli", "cli-sleep")
	aws.waitTasks("tasks-running", "cli", arn)
	task := aws.describeTask("cli", arn)
	if task.LastStatus != "RUNNING" || task.DesiredStatus != "RUNNING" {
		t.Fatalf("after wait tasks-running: last %s desired %s", task.LastStatus, task.DesiredStatus)
	}
	if !strings.HasPrefix(task.AvailabilityZone, "us-east-1") || len(task.AvailabilityZone) != len("us-east-1a") {
		t.Errorf("availabilityZone %q", task.AvailabilityZone)
	}
	if task.LaunchType != "FARGATE" {
		t.Errorf("launchType %q", task.LaunchType)
	}
	if task.Cpu != "256" || task.Memory != "512" {
		t.Errorf("cpu %q memory %q, want 256/512", task.Cpu, task.Memory)
	}
	if task.TaskDefinitionArn != tdArn || task.ClusterArn != created.Cluster.ClusterArn {
		t.Errorf("taskDefinitionArn %q clusterArn %q", task.TaskDefinitionArn, task.ClusterArn)
	}
	requireFields(t, "running task", map[string]string{"platformVersion": task.PlatformVersion,
		"createdAt": task.CreatedAt, "pullStartedAt": task.PullStartedAt, "pullStoppedAt": task.PullStoppedAt,
		"startedAt": task.StartedAt})
	if task.StoppedAt != "" || task.StopCode != "" {
		t.Errorf("running task has stoppedAt %q stopCode %q", task.StoppedAt, task.StopCode)
	}
	if len(task.Containers) != 1 {
		t.Fatalf("containers %+v", task.Containers)
	}
	if c := task.Containers[0]; c.Name != "main" || c.LastStatus != "RUNNING" || c.RuntimeID == "" || c.ExitCode != nil {
		t.Errorf("container %+v, want main RUNNING with a runtimeId and no exit code", c)
	}

	var describedClusters struct {
		Clusters []cliCluster `json:"clusters"`
	}
	aws.call(&describedClusters, "ecs", "describe-clusters", "--clusters", "cli")
	if len(describedClusters.Clusters) != 1 || describedClusters.Clusters[0].RunningTasksCount != 1 {
		t.Errorf("describe-clusters with one running task: %+v", describedClusters.Clusters)
	}

	var stopped struct {
		Task cliTask `json:"task"`
	}
	aws.call(&stopped, "ecs", "stop-task", "--cluster", "cli", "--task", arn, "--reason", "done with it")
	if stopped.Task.TaskArn != arn || stopped.Task.DesiredStatus != "STOPPED" {
		t.Fatalf("stop-task replied %+v", stopped.Task)
	}
	aws.waitTasks("tasks-stopped", "cli", arn)
	task = aws.describeTask("cli", arn)
	if task.LastStatus != "STOPPED" || task.StopCode != "UserInitiated" || task.StoppedReason != "done with it" {
		t.Errorf("stopped task: last %s stopCode %q reason %q", task.LastStatus, task.StopCode, task.StoppedReason)
	}
	requireFields(t, "stopped task", map[string]string{"stoppingAt": task.StoppingAt, "stoppedAt": task.StoppedAt,
		"executionStoppedAt": task.ExecutionStoppedAt, "startedAt": task.StartedAt})
	if len(task.Containers) != 1 || task.Containers[0].LastStatus != "STOPPED" {
		t.Errorf("stopped task containers %+v", task.Containers)
	}

	// An essential container that exits stops its task with its exit code.
	aws.register("exit3", cliTaskDef("cli-exit3", e.Image, "sh", "-c", "exit 3"))
	arn3 := aws.runTask("cli", "cli-exit3:1")
	aws.waitTasks("tasks-stopped", "cli", arn3)
	task = aws.describeTask("cli", arn3)
	if task.LastStatus != "STOPPED" || task.StopCode != "EssentialContainerExited" || task.StoppedReason == "" {
		t.Errorf("exit 3 task: last %s stopCode %q reason %q", task.LastStatus, task.StopCode, task.StoppedReason)
	}
	if len(task.Containers) != 1 || task.Containers[0].ExitCode == nil || *task.Containers[0].ExitCode != 3 {
		t.Errorf("exit 3 task containers %+v, want exitCode 3", task.Containers)
	}
	requireFields(t, "exited task", map[string]string{"stoppedAt": task.StoppedAt,
		"executionStoppedAt": task.ExecutionStoppedAt, "createdAt": task.CreatedAt})
}

// TestAWSCLIListsTagsAndDelete covers the list, describe, deregister, tagging
// and delete-cluster commands of the real AWS CLI.
func TestAWSCLIListsTagsAndDelete(t *testing.T) {
	e := startDev(t)
	aws := newAWSCLI(t, e)

	aws.call(nil, "ecs", "create-cluster", "--cluster-name", "alpha")
	aws.call(nil, "ecs", "create-cluster", "--cluster-name", "beta")
	var clusters struct {
		ClusterArns []string `json:"clusterArns"`
	}
	aws.call(&clusters, "ecs", "list-clusters")
	names := map[string]bool{}
	for _, a := range clusters.ClusterArns {
		names[a[strings.LastIndex(a, "/")+1:]] = true
	}
	if !names["alpha"] || !names["beta"] {
		t.Fatalf("list-clusters %v lacks alpha and beta", clusters.ClusterArns)
	}

	// Task definitions: two revisions of one family, one of another.
	aws.register("web1", cliTaskDef("web", e.Image, "sleep", "300"))
	aws.register("web2", cliTaskDef("web", e.Image, "sleep", "301"))
	aws.register("batch", cliTaskDef("batch", e.Image, "sh", "-c", "exit 0"))
	var tds struct {
		TaskDefinitionArns []string `json:"taskDefinitionArns"`
	}
	aws.call(&tds, "ecs", "list-task-definitions", "--family-prefix", "web")
	if len(tds.TaskDefinitionArns) != 2 || !strings.HasSuffix(tds.TaskDefinitionArns[0], "task-definition/web:1") ||
		!strings.HasSuffix(tds.TaskDefinitionArns[1], "task-definition/web:2") {
		t.Errorf("list-task-definitions --family-prefix web: %v", tds.TaskDefinitionArns)
	}
	var fams struct {
		Families []string `json:"families"`
	}
	aws.call(&fams, "ecs", "list-task-definition-families")
	if strings.Join(fams.Families, ",") != "batch,web" {
		t.Errorf("list-task-definition-families: %v", fams.Families)
	}
	var desc struct {
		TaskDefinition struct {
			Family               string `json:"family"`
			Revision             int    `json:"revision"`
			Status               string `json:"status"`
			Cpu                  string `json:"cpu"`
			Memory               string `json:"memory"`
			NetworkMode          string `json:"networkMode"`
			ContainerDefinitions []struct {
				Name        string   `json:"name"`
				Image       string   `json:"image"`
				Command     []string `json:"command"`
				StopTimeout int      `json:"stopTimeout"`
			} `json:"containerDefinitions"`
		} `json:"taskDefinition"`
	}
	aws.call(&desc, "ecs", "describe-task-definition", "--task-definition", "web")
	d := desc.TaskDefinition
	if d.Family != "web" || d.Revision != 2 || d.Status != "ACTIVE" || d.Cpu != "256" || d.Memory != "512" ||
		d.NetworkMode != "awsvpc" || len(d.ContainerDefinitions) != 1 ||
		strings.Join(d.ContainerDefinitions[0].Command, " ") != "sleep 301" || d.ContainerDefinitions[0].StopTimeout != 2 ||
		d.ContainerDefinitions[0].Image != e.Image {
		t.Errorf("describe-task-definition web (latest): %+v", d)
	}
	aws.call(&desc, "ecs", "deregister-task-definition", "--task-definition", "web:1")
	if desc.TaskDefinition.Status != "INACTIVE" || desc.TaskDefinition.Revision != 1 {
		t.Errorf("deregister-task-definition web:1 replied %+v", desc.TaskDefinition)
	}
	aws.call(&tds, "ecs", "list-task-definitions", "--family-prefix", "web")
	if len(tds.TaskDefinitionArns) != 1 || !strings.HasSuffix(tds.TaskDefinitionArns[0], "web:2") {
		t.Errorf("after deregister, list-task-definitions: %v", tds.TaskDefinitionArns)
	}
	aws.call(&tds, "ecs", "list-task-definitions", "--status", "INACTIVE")
	if len(tds.TaskDefinitionArns) != 1 || !strings.HasSuffix(tds.TaskDefinitionArns[0], "web:1") {
		t.Errorf("list-task-definitions --status INACTIVE: %v", tds.TaskDefinitionArns)
	}
	aws.call(&desc, "ecs", "describe-task-definition", "--task-definition", "web:1")
	if desc.TaskDefinition.Status != "INACTIVE" {
		t.Errorf("describe-task-definition web:1 after deregister: status %q", desc.TaskDefinition.Status)
	}

	// Tasks: one running web task and one finished batch task in alpha.
	web := aws.runTask("alpha", "web")
	batch := aws.runTask("alpha", "batch")
	if got := aws.waitStatus("alpha", web, "RUNNING", time.Minute); got.LastStatus != "RUNNING" {
		t.Fatalf("web task %s, want RUNNING", got.LastStatus)
	}
	aws.waitStatus("alpha", batch, "STOPPED", time.Minute)
	var list struct {
		TaskArns []string `json:"taskArns"`
	}
	aws.call(&list, "ecs", "list-tasks", "--cluster", "alpha")
	if strings.Join(list.TaskArns, ",") != web {
		t.Errorf("list-tasks (desired RUNNING): %v, want [%s]", list.TaskArns, web)
	}
	aws.call(&list, "ecs", "list-tasks", "--cluster", "alpha", "--desired-status", "STOPPED")
	if strings.Join(list.TaskArns, ",") != batch {
		t.Errorf("list-tasks --desired-status STOPPED: %v, want [%s]", list.TaskArns, batch)
	}
	aws.call(&list, "ecs", "list-tasks", "--cluster", "alpha", "--family", "web")
	if strings.Join(list.TaskArns, ",") != web {
		t.Errorf("list-tasks --family web: %v", list.TaskArns)
	}
	aws.call(&list, "ecs", "list-tasks", "--cluster", "alpha", "--family", "batch", "--desired-status", "STOPPED")
	if strings.Join(list.TaskArns, ",") != batch {
		t.Errorf("list-tasks --family batch --desired-status STOPPED: %v", list.TaskArns)
	}
	aws.call(&list, "ecs", "list-tasks", "--cluster", "beta")
	if len(list.TaskArns) != 0 {
		t.Errorf("list-tasks in empty cluster beta: %v", list.TaskArns)
	}

	// Tags on a task and on a cluster.
	var alpha struct {
		Clusters []cliCluster `json:"clusters"`
	}
	aws.call(&alpha, "ecs", "describe-clusters", "--clusters", "alpha")
	if len(alpha.Clusters) != 1 {
		t.Fatalf("describe-clusters alpha: %+v", alpha.Clusters)
	}
	if alpha.Clusters[0].RunningTasksCount != 1 || alpha.Clusters[0].PendingTasksCount != 0 {
		t.Errorf("describe-clusters alpha: running %d pending %d, want 1 and 0",
			alpha.Clusters[0].RunningTasksCount, alpha.Clusters[0].PendingTasksCount)
	}
	for _, res := range []string{web, alpha.Clusters[0].ClusterArn} {
		aws.call(nil, "ecs", "tag-resource", "--resource-arn", res, "--tags", "key=env,value=test", "key=team,value=infra")
		var tags struct {
			Tags []cliTag `json:"tags"`
		}
		aws.call(&tags, "ecs", "list-tags-for-resource", "--resource-arn", res)
		got := map[string]string{}
		for _, tg := range tags.Tags {
			got[tg.Key] = tg.Value
		}
		if len(got) != 2 || got["env"] != "test" || got["team"] != "infra" {
			t.Errorf("tags of %s after tag-resource: %+v", res, tags.Tags)
		}
		aws.call(nil, "ecs", "untag-resource", "--resource-arn", res, "--tag-keys", "team")
		aws.call(&tags, "ecs", "list-tags-for-resource", "--resource-arn", res)
		if len(tags.Tags) != 1 || tags.Tags[0] != (cliTag{Key: "env", Value: "test"}) {
			t.Errorf("tags of %s after untag-resource team: %+v", res, tags.Tags)
		}
	}

	// A cluster with a running task cannot be deleted; once it stops, it can.
	aws.fail("ClusterContainsTasksException", "ecs", "delete-cluster", "--cluster", "alpha")
	aws.call(nil, "ecs", "stop-task", "--cluster", "alpha", "--task", web)
	aws.waitStatus("alpha", web, "STOPPED", time.Minute)
	var deleted struct {
		Cluster cliCluster `json:"cluster"`
	}
	aws.call(&deleted, "ecs", "delete-cluster", "--cluster", "alpha")
	if deleted.Cluster.Status != "INACTIVE" || deleted.Cluster.ClusterName != "alpha" {
		t.Errorf("delete-cluster replied %+v", deleted.Cluster)
	}
	aws.call(&alpha, "ecs", "describe-clusters", "--clusters", "alpha")
	if len(alpha.Clusters) != 1 || alpha.Clusters[0].Status != "INACTIVE" {
		t.Errorf("describe-clusters after delete: %+v", alpha.Clusters)
	}
	aws.call(&clusters, "ecs", "list-clusters")
	for _, a := range clusters.ClusterArns {
		if strings.HasSuffix(a, "/alpha") {
			t.Errorf("list-clusters still lists deleted alpha: %v", clusters.ClusterArns)
		}
	}
	aws.fail("ClusterNotFoundException", "ecs", "list-tasks", "--cluster", "alpha")
}
