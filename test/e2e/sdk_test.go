package e2e

import (
	"errors"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// sdkWaitRunning waits with the SDK's own TasksRunning waiter, polling faster
// than its default 6 s.
func sdkWaitRunning(t *testing.T, e *devEnv, cluster string, arns ...string) {
	t.Helper()
	w := ecs.NewTasksRunningWaiter(e.ECS, func(o *ecs.TasksRunningWaiterOptions) {
		o.MinDelay, o.MaxDelay = 200*time.Millisecond, time.Second
	})
	if err := w.Wait(e.ctx(), &ecs.DescribeTasksInput{Cluster: aws.String(cluster), Tasks: arns}, time.Minute); err != nil {
		t.Fatalf("wait tasks running %v: %v", arns, err)
	}
}

// sdkWaitStopped waits with the SDK's TasksStopped waiter.
func sdkWaitStopped(t *testing.T, e *devEnv, cluster string, arns ...string) {
	t.Helper()
	w := ecs.NewTasksStoppedWaiter(e.ECS, func(o *ecs.TasksStoppedWaiterOptions) {
		o.MinDelay, o.MaxDelay = 200*time.Millisecond, time.Second
	})
	if err := w.Wait(e.ctx(), &ecs.DescribeTasksInput{Cluster: aws.String(cluster), Tasks: arns}, time.Minute); err != nil {
		t.Fatalf("wait tasks stopped %v: %v", arns, err)
	}
}

// sdkRun runs count tasks of taskDef in an existing cluster.
func sdkRun(t *testing.T, e *devEnv, in *ecs.RunTaskInput) []types.Task {
	t.Helper()
	in.LaunchType = types.LaunchTypeFargate
	in.NetworkConfiguration = &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{
		Subnets: e.subnets(), AssignPublicIp: types.AssignPublicIpDisabled}}
	out, err := e.ECS.RunTask(e.ctx(), in)
	if err != nil {
		t.Fatalf("RunTask %s: %v", aws.ToString(in.TaskDefinition), err)
	}
	if len(out.Failures) != 0 {
		t.Fatalf("RunTask %s: failures %+v", aws.ToString(in.TaskDefinition), out.Failures)
	}
	return out.Tasks
}

func createCluster(t *testing.T, e *devEnv, name string) types.Cluster {
	t.Helper()
	out, err := e.ECS.CreateCluster(e.ctx(), &ecs.CreateClusterInput{ClusterName: aws.String(name)})
	if err != nil {
		t.Fatalf("CreateCluster %s: %v", name, err)
	}
	return *out.Cluster
}

func isZero(p *time.Time) bool { return p == nil || p.IsZero() }

// TestSDKTaskLifecycle is the AWS CLI lifecycle through aws-sdk-go-v2: run,
// RUNNING with every field set, StopTask to STOPPED (UserInitiated), and an
// essential container's exit code stopping its task.
func TestSDKTaskLifecycle(t *testing.T) {
	e := startDev(t)
	ctx := e.ctx()
	cluster := createCluster(t, e, "sdk")
	if aws.ToString(cluster.Status) != "ACTIVE" || !strings.HasSuffix(aws.ToString(cluster.ClusterArn), ":cluster/sdk") {
		t.Fatalf("CreateCluster: %+v", cluster)
	}
	tdArn := e.registerTask("sdk-sleep", "256", "512", e.container("main", "sleep", "300"))
	if !strings.HasSuffix(tdArn, ":task-definition/sdk-sleep:1") {
		t.Fatalf("task definition ARN %q", tdArn)
	}
	before := time.Now().Add(-time.Minute)
	tasks := sdkRun(t, e, &ecs.RunTaskInput{Cluster: aws.String("sdk"), TaskDefinition: aws.String("sdk-sleep"),
		StartedBy: aws.String("sdk-test"), Group: aws.String("g1")})
	if len(tasks) != 1 {
		t.Fatalf("RunTask returned %d tasks", len(tasks))
	}
	arn := aws.ToString(tasks[0].TaskArn)
	if s := aws.ToString(tasks[0].LastStatus); s != "PROVISIONING" {
		t.Errorf("RunTask reply lastStatus %s, want PROVISIONING", s)
	}
	sdkWaitRunning(t, e, "sdk", arn)

	task := e.describe("sdk", arn)
	if aws.ToString(task.LastStatus) != "RUNNING" || aws.ToString(task.DesiredStatus) != "RUNNING" {
		t.Fatalf("last %s desired %s", aws.ToString(task.LastStatus), aws.ToString(task.DesiredStatus))
	}
	az := aws.ToString(task.AvailabilityZone)
	if az != "us-east-1a" && az != "us-east-1b" && az != "us-east-1c" {
		t.Errorf("availabilityZone %q", az)
	}
	if task.LaunchType != types.LaunchTypeFargate || aws.ToString(task.PlatformVersion) == "" {
		t.Errorf("launchType %q platformVersion %q", task.LaunchType, aws.ToString(task.PlatformVersion))
	}
	if aws.ToString(task.Cpu) != "256" || aws.ToString(task.Memory) != "512" {
		t.Errorf("cpu %q memory %q", aws.ToString(task.Cpu), aws.ToString(task.Memory))
	}
	if aws.ToString(task.StartedBy) != "sdk-test" || aws.ToString(task.Group) != "g1" {
		t.Errorf("startedBy %q group %q", aws.ToString(task.StartedBy), aws.ToString(task.Group))
	}
	if aws.ToString(task.TaskDefinitionArn) != tdArn || aws.ToString(task.ClusterArn) != aws.ToString(cluster.ClusterArn) {
		t.Errorf("taskDefinitionArn %q clusterArn %q", aws.ToString(task.TaskDefinitionArn), aws.ToString(task.ClusterArn))
	}
	for name, ts := range map[string]*time.Time{"createdAt": task.CreatedAt, "pullStartedAt": task.PullStartedAt,
		"pullStoppedAt": task.PullStoppedAt, "startedAt": task.StartedAt} {
		if isZero(ts) || ts.Before(before) || ts.After(time.Now().Add(time.Minute)) {
			t.Errorf("%s = %v, want a time around now", name, ts)
		}
	}
	if !isZero(task.CreatedAt) && !isZero(task.StartedAt) && task.StartedAt.Before(*task.CreatedAt) {
		t.Errorf("startedAt %v before createdAt %v", task.StartedAt, task.CreatedAt)
	}
	if !isZero(task.StoppedAt) || task.StopCode != "" {
		t.Errorf("running task has stoppedAt %v stopCode %q", task.StoppedAt, task.StopCode)
	}
	if len(task.Containers) != 1 {
		t.Fatalf("containers %+v", task.Containers)
	}
	c := task.Containers[0]
	if aws.ToString(c.Name) != "main" || aws.ToString(c.LastStatus) != "RUNNING" || aws.ToString(c.RuntimeId) == "" ||
		c.ExitCode != nil || aws.ToString(c.Image) != e.Image {
		t.Errorf("container name %q status %q runtimeId %q exit %v image %q", aws.ToString(c.Name),
			aws.ToString(c.LastStatus), aws.ToString(c.RuntimeId), c.ExitCode, aws.ToString(c.Image))
	}
	dc, err := e.ECS.DescribeClusters(ctx, &ecs.DescribeClustersInput{Clusters: []string{"sdk"}})
	if err != nil || len(dc.Clusters) != 1 || dc.Clusters[0].RunningTasksCount != 1 {
		t.Errorf("DescribeClusters: %v %+v", err, dc)
	}

	// ListTasks filters, with the cluster named by its ARN.
	clusterArn := aws.String(aws.ToString(cluster.ClusterArn))
	for name, in := range map[string]*ecs.ListTasksInput{
		"startedBy":  {Cluster: clusterArn, StartedBy: aws.String("sdk-test")},
		"family":     {Cluster: clusterArn, Family: aws.String("sdk-sleep")},
		"launchType": {Cluster: clusterArn, LaunchType: types.LaunchTypeFargate},
		"RUNNING":    {Cluster: clusterArn, DesiredStatus: types.DesiredStatusRunning},
	} {
		lt, err := e.ECS.ListTasks(ctx, in)
		if err != nil || len(lt.TaskArns) != 1 || lt.TaskArns[0] != arn {
			t.Errorf("ListTasks by %s: %v %+v, want [%s]", name, err, lt, arn)
		}
	}
	for name, in := range map[string]*ecs.ListTasksInput{
		"other startedBy": {Cluster: clusterArn, StartedBy: aws.String("someone-else")},
		"other family":    {Cluster: clusterArn, Family: aws.String("sdk-exit3")},
		"STOPPED":         {Cluster: clusterArn, DesiredStatus: types.DesiredStatusStopped},
	} {
		lt, err := e.ECS.ListTasks(ctx, in)
		if err != nil || len(lt.TaskArns) != 0 {
			t.Errorf("ListTasks by %s: %v %+v, want none", name, err, lt)
		}
	}

	stop, err := e.ECS.StopTask(ctx, &ecs.StopTaskInput{Cluster: clusterArn, Task: aws.String(arn)})
	if err != nil {
		t.Fatalf("StopTask: %v", err)
	}
	if aws.ToString(stop.Task.DesiredStatus) != "STOPPED" {
		t.Errorf("StopTask reply desiredStatus %q", aws.ToString(stop.Task.DesiredStatus))
	}
	sdkWaitStopped(t, e, "sdk", arn)
	task = e.describe("sdk", arn)
	if aws.ToString(task.LastStatus) != "STOPPED" || task.StopCode != types.TaskStopCodeUserInitiated ||
		aws.ToString(task.StoppedReason) == "" {
		t.Errorf("stopped: last %s stopCode %q reason %q", aws.ToString(task.LastStatus), task.StopCode, aws.ToString(task.StoppedReason))
	}
	for name, ts := range map[string]*time.Time{"stoppingAt": task.StoppingAt, "stoppedAt": task.StoppedAt,
		"executionStoppedAt": task.ExecutionStoppedAt} {
		if isZero(ts) {
			t.Errorf("stopped task has no %s", name)
		}
	}
	if !isZero(task.StoppingAt) && !isZero(task.StoppedAt) && task.StoppedAt.Before(*task.StoppingAt) {
		t.Errorf("stoppedAt %v before stoppingAt %v", task.StoppedAt, task.StoppingAt)
	}
	if len(task.Containers) != 1 || aws.ToString(task.Containers[0].LastStatus) != "STOPPED" {
		t.Errorf("stopped task containers %+v", task.Containers)
	}
	dc, err = e.ECS.DescribeClusters(ctx, &ecs.DescribeClustersInput{Clusters: []string{"sdk"}})
	if err != nil || len(dc.Clusters) != 1 || dc.Clusters[0].RunningTasksCount != 0 || dc.Clusters[0].PendingTasksCount != 0 {
		t.Errorf("DescribeClusters after stop: %v %+v", err, dc)
	}

	// An essential container's exit stops the task with its exit code.
	e.registerTask("sdk-exit3", "256", "512", e.container("main", "sh", "-c", "exit 3"))
	arn3 := aws.ToString(sdkRun(t, e, &ecs.RunTaskInput{Cluster: aws.String("sdk"), TaskDefinition: aws.String("sdk-exit3")})[0].TaskArn)
	sdkWaitStopped(t, e, "sdk", arn3)
	task = e.describe("sdk", arn3)
	if task.StopCode != types.TaskStopCodeEssentialContainerExited || aws.ToString(task.StoppedReason) == "" {
		t.Errorf("exit 3: stopCode %q reason %q", task.StopCode, aws.ToString(task.StoppedReason))
	}
	if len(task.Containers) != 1 || task.Containers[0].ExitCode == nil || *task.Containers[0].ExitCode != 3 {
		t.Errorf("exit 3: containers %+v", task.Containers)
	}

	// The cluster can go once nothing runs in it.
	del, err := e.ECS.DeleteCluster(ctx, &ecs.DeleteClusterInput{Cluster: aws.String("sdk")})
	if err != nil || aws.ToString(del.Cluster.Status) != "INACTIVE" {
		t.Errorf("DeleteCluster: %v %+v", err, del)
	}
}

// TestSDKRunTaskCount runs three tasks in one call: three ARNs, spread over
// the three zones, and ListTasks pages through them one at a time.
func TestSDKRunTaskCount(t *testing.T) {
	e := startDev(t)
	ctx := e.ctx()
	createCluster(t, e, "many")
	e.registerTask("many", "256", "512", e.container("main", "sleep", "300"))
	tasks := sdkRun(t, e, &ecs.RunTaskInput{Cluster: aws.String("many"), TaskDefinition: aws.String("many"), Count: aws.Int32(3)})
	if len(tasks) != 3 {
		t.Fatalf("RunTask count 3 returned %d tasks", len(tasks))
	}
	var arns []string
	seen := map[string]bool{}
	for _, task := range tasks {
		a := aws.ToString(task.TaskArn)
		if a == "" || seen[a] {
			t.Fatalf("RunTask count 3: ARNs not distinct: %v", arns)
		}
		seen[a] = true
		arns = append(arns, a)
	}
	sdkWaitRunning(t, e, "many", arns...)
	out, err := e.ECS.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String("many"), Tasks: arns})
	if err != nil || len(out.Tasks) != 3 {
		t.Fatalf("DescribeTasks: %v %+v", err, out)
	}
	zones := map[string]bool{}
	for _, task := range out.Tasks {
		zones[aws.ToString(task.AvailabilityZone)] = true
	}
	if len(zones) != 3 || !zones["us-east-1a"] || !zones["us-east-1b"] || !zones["us-east-1c"] {
		t.Errorf("three tasks in zones %v, want one in each of us-east-1a/b/c", zones)
	}

	// Paging: one ARN per page, each once, and no token after the last.
	var paged []string
	var token *string
	for page := 0; ; page++ {
		if page > 5 {
			t.Fatalf("ListTasks paging did not end: %v", paged)
		}
		lt, err := e.ECS.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String("many"), MaxResults: aws.Int32(1), NextToken: token})
		if err != nil {
			t.Fatalf("ListTasks page %d: %v", page, err)
		}
		if len(lt.TaskArns) > 1 {
			t.Fatalf("ListTasks maxResults 1 returned %v", lt.TaskArns)
		}
		paged = append(paged, lt.TaskArns...)
		if lt.NextToken == nil {
			break
		}
		token = lt.NextToken
	}
	sort.Strings(paged)
	sorted := append([]string{}, arns...)
	sort.Strings(sorted)
	if strings.Join(paged, " ") != strings.Join(sorted, " ") {
		t.Errorf("paged ListTasks %v, want %v", paged, sorted)
	}
	// The SDK's paginator walks the same pages.
	var viaPaginator []string
	p := ecs.NewListTasksPaginator(e.ECS, &ecs.ListTasksInput{Cluster: aws.String("many"), MaxResults: aws.Int32(2)})
	for p.HasMorePages() {
		pg, err := p.NextPage(ctx)
		if err != nil {
			t.Fatalf("ListTasks paginator: %v", err)
		}
		viaPaginator = append(viaPaginator, pg.TaskArns...)
	}
	sort.Strings(viaPaginator)
	if strings.Join(viaPaginator, " ") != strings.Join(sorted, " ") {
		t.Errorf("paginator ListTasks %v, want %v", viaPaginator, sorted)
	}
	if _, err := e.ECS.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String("many"), NextToken: aws.String("%%not-a-token%%")}); err == nil {
		t.Errorf("ListTasks with a garbage nextToken succeeded")
	}

	// Stop them all; every one ends UserInitiated.
	for _, a := range arns {
		if _, err := e.ECS.StopTask(ctx, &ecs.StopTaskInput{Cluster: aws.String("many"), Task: aws.String(a)}); err != nil {
			t.Fatalf("StopTask %s: %v", a, err)
		}
	}
	sdkWaitStopped(t, e, "many", arns...)
	lt, err := e.ECS.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String("many"), DesiredStatus: types.DesiredStatusStopped})
	if err != nil || len(lt.TaskArns) != 3 {
		t.Errorf("ListTasks STOPPED: %v %v", err, lt)
	}
}

// TestSDKOverrides runs a container with command and environment overrides
// and reads what it printed with `berth logs`.
func TestSDKOverrides(t *testing.T) {
	e := startDev(t)
	createCluster(t, e, "ovr")
	c := e.container("main", "sh", "-c", "echo $GREETING; exit 0")
	c.Environment = []types.KeyValuePair{{Name: aws.String("GREETING"), Value: aws.String("from-the-definition")}}
	e.registerTask("greet", "256", "512", c)

	// Environment override: the value the task prints is the override's.
	tasks := sdkRun(t, e, &ecs.RunTaskInput{Cluster: aws.String("ovr"), TaskDefinition: aws.String("greet"),
		Overrides: &types.TaskOverride{ContainerOverrides: []types.ContainerOverride{{Name: aws.String("main"),
			Environment: []types.KeyValuePair{{Name: aws.String("GREETING"), Value: aws.String("hello-from-override")}}}}}})
	arn := aws.ToString(tasks[0].TaskArn)
	sdkWaitStopped(t, e, "ovr", arn)
	task := e.describe("ovr", arn)
	if len(task.Containers) != 1 || task.Containers[0].ExitCode == nil || *task.Containers[0].ExitCode != 0 {
		t.Fatalf("env override task containers %+v", task.Containers)
	}
	if task.Overrides == nil || len(task.Overrides.ContainerOverrides) != 1 ||
		len(task.Overrides.ContainerOverrides[0].Environment) != 1 {
		t.Errorf("DescribeTasks overrides %+v", task.Overrides)
	}
	logs := e.berth("logs", "--cluster", "ovr", arn)
	if !strings.Contains(logs, "hello-from-override") || strings.Contains(logs, "from-the-definition") {
		t.Errorf("logs of the env override task: %q", logs)
	}

	// Without overrides the definition's value is used.
	plain := aws.ToString(sdkRun(t, e, &ecs.RunTaskInput{Cluster: aws.String("ovr"), TaskDefinition: aws.String("greet")})[0].TaskArn)

	// Command override (the environment of the definition stays).
	cmdArn := aws.ToString(sdkRun(t, e, &ecs.RunTaskInput{Cluster: aws.String("ovr"), TaskDefinition: aws.String("greet"),
		Overrides: &types.TaskOverride{ContainerOverrides: []types.ContainerOverride{{Name: aws.String("main"),
			Command: []string{"sh", "-c", "echo command override sees $GREETING; exit 4"}}}}})[0].TaskArn)
	sdkWaitStopped(t, e, "ovr", plain, cmdArn)
	if logs := e.berth("logs", "--cluster", "ovr", plain); !strings.Contains(logs, "from-the-definition") {
		t.Errorf("logs of the task without overrides: %q", logs)
	}
	task = e.describe("ovr", cmdArn)
	if task.StopCode != types.TaskStopCodeEssentialContainerExited || len(task.Containers) != 1 ||
		task.Containers[0].ExitCode == nil || *task.Containers[0].ExitCode != 4 {
		t.Errorf("command override task: stopCode %q containers %+v", task.StopCode, task.Containers)
	}
	if logs := e.berth("logs", "--cluster", "ovr", cmdArn); !strings.Contains(logs, "command override sees from-the-definition") {
		t.Errorf("logs of the command override task: %q", logs)
	}

	// Task size override: the task runs with the cpu and memory asked for.
	sized := sdkRun(t, e, &ecs.RunTaskInput{Cluster: aws.String("ovr"), TaskDefinition: aws.String("greet"),
		Overrides: &types.TaskOverride{Cpu: aws.String("512"), Memory: aws.String("1024")}})
	if aws.ToString(sized[0].Cpu) != "512" || aws.ToString(sized[0].Memory) != "1024" {
		t.Errorf("RunTask with a size override: cpu %q memory %q, want 512/1024", aws.ToString(sized[0].Cpu), aws.ToString(sized[0].Memory))
	}
	sdkWaitStopped(t, e, "ovr", aws.ToString(sized[0].TaskArn))
	if task := e.describe("ovr", aws.ToString(sized[0].TaskArn)); aws.ToString(task.Cpu) != "512" || aws.ToString(task.Memory) != "1024" ||
		task.Overrides == nil || aws.ToString(task.Overrides.Cpu) != "512" {
		t.Errorf("size override task: cpu %q memory %q overrides %+v", aws.ToString(task.Cpu), aws.ToString(task.Memory), task.Overrides)
	}

	// An override naming a container the definition lacks is refused.
	_, err := e.ECS.RunTask(e.ctx(), &ecs.RunTaskInput{Cluster: aws.String("ovr"), TaskDefinition: aws.String("greet"),
		LaunchType: types.LaunchTypeFargate, NetworkConfiguration: &types.NetworkConfiguration{
			AwsvpcConfiguration: &types.AwsVpcConfiguration{Subnets: e.subnets()}},
		Overrides: &types.TaskOverride{ContainerOverrides: []types.ContainerOverride{{Name: aws.String("nope"), Command: []string{"true"}}}}})
	var ie *types.InvalidParameterException
	var ce *types.ClientException
	if !errors.As(err, &ie) && !errors.As(err, &ce) {
		t.Errorf("override of an unknown container: err %v, want InvalidParameterException or ClientException", err)
	}
}

// TestSDKDescribeMissingAndStopped: unknown task ids come back as MISSING
// failures next to the tasks that exist, and stopped tasks stay describable
// and listable, also after berth restarts.
func TestSDKDescribeMissingAndStopped(t *testing.T) {
	e := startDev(t)
	ctx := e.ctx()
	td := e.registerTask("quick", "256", "512", e.container("main", "sh", "-c", "exit 0"))
	arn := e.runTask("desc", td)
	sdkWaitStopped(t, e, "desc", arn)
	id := arn[strings.LastIndex(arn, "/")+1:]

	unknownID := "0123456789abcdef0123456789abcdef"
	out, err := e.ECS.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String("desc"),
		Tasks: []string{id, unknownID}})
	if err != nil {
		t.Fatalf("DescribeTasks: %v", err)
	}
	if len(out.Tasks) != 1 || aws.ToString(out.Tasks[0].TaskArn) != arn {
		t.Errorf("DescribeTasks by id: tasks %+v, want %s", out.Tasks, arn)
	}
	if len(out.Failures) != 1 || aws.ToString(out.Failures[0].Reason) != "MISSING" ||
		!strings.HasSuffix(aws.ToString(out.Failures[0].Arn), unknownID) {
		t.Errorf("DescribeTasks failures %+v, want one MISSING for %s", out.Failures, unknownID)
	}
	// A well-formed ARN of a task that never existed is MISSING as well.
	missingArn := strings.TrimSuffix(arn, id) + unknownID
	out, err = e.ECS.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String("desc"), Tasks: []string{missingArn}})
	if err != nil || len(out.Tasks) != 0 || len(out.Failures) != 1 ||
		aws.ToString(out.Failures[0].Reason) != "MISSING" || aws.ToString(out.Failures[0].Arn) != missingArn {
		t.Errorf("DescribeTasks of an unknown ARN: %v %+v", err, out)
	}

	// The stopped task stays, also across a restart of berth: describe it,
	// list it, tag it.
	e.kill()
	e.start()
	task := e.describe("desc", arn)
	if aws.ToString(task.LastStatus) != "STOPPED" || task.StopCode != types.TaskStopCodeEssentialContainerExited ||
		len(task.Containers) != 1 || task.Containers[0].ExitCode == nil || *task.Containers[0].ExitCode != 0 {
		t.Errorf("stopped task later: %s %q %+v", aws.ToString(task.LastStatus), task.StopCode, task.Containers)
	}
	lt, err := e.ECS.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String("desc"), DesiredStatus: types.DesiredStatusStopped})
	if err != nil || len(lt.TaskArns) != 1 || lt.TaskArns[0] != arn {
		t.Errorf("ListTasks STOPPED: %v %+v", err, lt)
	}
	if _, err := e.ECS.TagResource(ctx, &ecs.TagResourceInput{ResourceArn: aws.String(arn),
		Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}}); err != nil {
		t.Errorf("TagResource on a stopped task: %v", err)
	}
	out, err = e.ECS.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String("desc"), Tasks: []string{arn},
		Include: []types.TaskField{types.TaskFieldTags}})
	if err != nil || len(out.Tasks) != 1 || len(out.Tasks[0].Tags) != 1 || aws.ToString(out.Tasks[0].Tags[0].Key) != "k" {
		t.Errorf("DescribeTasks include TAGS: %v %+v", err, out)
	}
	// Stopping a stopped task is harmless and changes nothing.
	stop, err := e.ECS.StopTask(ctx, &ecs.StopTaskInput{Cluster: aws.String("desc"), Task: aws.String(arn)})
	if err != nil || stop.Task.StopCode != types.TaskStopCodeEssentialContainerExited {
		t.Errorf("StopTask of a stopped task: %v %+v", err, stop)
	}
}
