package ecs_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berthdev/berth/internal/agentapi"
	becs "github.com/berthdev/berth/internal/ecs"
)

// signer signs agent-protocol requests with an access key, as `berth agent
// --cluster` does.
func signer(akid, secret string) agentapi.Signer {
	return func(req *http.Request, body []byte) error {
		sum := sha256.Sum256(body)
		return v4.NewSigner().SignHTTP(req.Context(), aws.Credentials{AccessKeyID: akid, SecretAccessKey: secret},
			req, hex.EncodeToString(sum[:]), "ecs", "us-east-1", time.Now())
	}
}

// join joins a fake host to cluster as a container instance and registers
// it; it returns the host's client (its node token) and instance ARN.
func (e *env) join(t *testing.T, cluster, node, az string, attrs map[string]string) (*agentapi.Client, string) {
	t.Helper()
	c := &agentapi.Client{BaseURL: e.url}
	resp, err := c.Join(ctxT(t), agentapi.JoinRequest{Cluster: cluster, NodeID: node, AvailabilityZone: az,
		CPU: 2048, MemoryMiB: 4096, Attributes: attrs}, signer("test", "test"))
	if err != nil {
		t.Fatal(err)
	}
	c.Token = resp.Token
	if _, err := c.Register(ctxT(t), agentapi.RegisterRequest{NodeID: node, AvailabilityZones: []string{az}, CPU: 2048, MemoryMiB: 4096}); err != nil {
		t.Fatal(err)
	}
	return c, resp.ContainerInstanceArn
}

func (e *env) registerEC2(t *testing.T, family string, memory int32) string {
	t.Helper()
	out, err := e.ecs.RegisterTaskDefinition(ctxT(t), &ecs.RegisterTaskDefinitionInput{
		Family: aws.String(family), NetworkMode: types.NetworkModeBridge,
		RequiresCompatibilities: []types.Compatibility{types.CompatibilityEc2},
		ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("app"), Image: aws.String("busybox"),
			Memory: aws.Int32(memory), Command: []string{"sleep", "60"},
			PortMappings: []types.PortMapping{{ContainerPort: aws.Int32(80), HostPort: aws.Int32(0)}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.TaskDefinition.TaskDefinitionArn)
}

func TestContainerInstances(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	if _, err := e.ecs.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("own")}); err != nil {
		t.Fatal(err)
	}
	td := e.registerEC2(t, "web", 1024)

	// No instance yet: ECS's refusal.
	_, err := e.ecs.RunTask(ctx, &ecs.RunTaskInput{Cluster: aws.String("own"), TaskDefinition: aws.String(td), LaunchType: types.LaunchTypeEc2})
	if apiCode(err) != "InvalidParameterException" {
		t.Fatalf("RunTask without instances: %v", err)
	}

	host, arn := e.join(t, "own", "i-0123456789abcdef0", "us-east-1a", map[string]string{"stack": "prod"})
	d, err := e.ecs.DescribeContainerInstances(ctx, &ecs.DescribeContainerInstancesInput{Cluster: aws.String("own"), ContainerInstances: []string{arn, "nope"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.ContainerInstances) != 1 || len(d.Failures) != 1 || aws.ToString(d.Failures[0].Reason) != "MISSING" {
		t.Fatalf("describe: %+v", d)
	}
	ci := d.ContainerInstances[0]
	if !ci.AgentConnected || aws.ToString(ci.Status) != "ACTIVE" || aws.ToString(ci.Ec2InstanceId) != "i-0123456789abcdef0" {
		t.Fatalf("instance: %+v", ci)
	}
	attrs := map[string]string{}
	for _, a := range ci.Attributes {
		attrs[aws.ToString(a.Name)] = aws.ToString(a.Value)
	}
	if attrs["ecs.availability-zone"] != "us-east-1a" || attrs["stack"] != "prod" || attrs["ecs.os-type"] != "linux" {
		t.Fatalf("attributes: %v", attrs)
	}
	if r := resource(ci.RegisteredResources, "MEMORY"); r != 4096 {
		t.Fatalf("registered memory %d", r)
	}

	// A task goes to the instance; its remaining memory shrinks.
	run, err := e.ecs.RunTask(ctx, &ecs.RunTaskInput{Cluster: aws.String("own"), TaskDefinition: aws.String(td), LaunchType: types.LaunchTypeEc2, Count: aws.Int32(5)})
	if err != nil {
		t.Fatal(err)
	}
	if len(run.Tasks) != 4 || len(run.Failures) != 1 || aws.ToString(run.Failures[0].Reason) != "RESOURCE:MEMORY" {
		t.Fatalf("RunTask 5 × 1 GiB on 4 GiB: %d placed, failures %+v", len(run.Tasks), run.Failures)
	}
	if got := aws.ToString(run.Tasks[0].ContainerInstanceArn); got != arn {
		t.Fatalf("task's container instance %q, want %q", got, arn)
	}
	resp, err := host.Tasks(ctx, "i-0123456789abcdef0", 0, time.Second)
	if err != nil || len(resp.Tasks) != 4 {
		t.Fatalf("host's tasks: %v %d", err, len(resp.Tasks))
	}
	if sp := resp.Tasks[0]; sp.LaunchType != "EC2" || sp.NetworkMode != "bridge" || len(sp.PortMappings) != 1 || sp.PortMappings[0].HostPort != 0 {
		t.Fatalf("spec: %+v", sp)
	}
	d, _ = e.ecs.DescribeContainerInstances(ctx, &ecs.DescribeContainerInstancesInput{Cluster: aws.String("own"), ContainerInstances: []string{arn}})
	if r := resource(d.ContainerInstances[0].RemainingResources, "MEMORY"); r != 0 {
		t.Fatalf("remaining memory %d, want 0", r)
	}
	if n := d.ContainerInstances[0].PendingTasksCount; n != 4 {
		t.Fatalf("pending tasks %d", n)
	}

	// The host's token acts for its own node only.
	if _, err := host.Tasks(ctx, "i-00000000000000000", 0, time.Second); err == nil {
		t.Fatal("a host read another node's tasks")
	}
	// Another account cannot join this cluster (it has none of that name)
	// nor see the instances.
	other := &agentapi.Client{BaseURL: e.url}
	if _, err := other.Join(ctx, agentapi.JoinRequest{Cluster: "own", NodeID: "i-0aaaaaaaaaaaaaaaa", CPU: 1024, MemoryMiB: 1024}, signer("other", "other")); err == nil {
		t.Fatal("another account joined the cluster")
	}
	otherECS := ecs.NewFromConfig(aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(e.url),
		Credentials: credentials.NewStaticCredentialsProvider("other", "other", "")})
	if _, err := otherECS.ListContainerInstances(ctx, &ecs.ListContainerInstancesInput{Cluster: aws.String(arnCluster(arn))}); apiCode(err) != "ClusterNotFoundException" {
		t.Fatalf("another account listed the instances: %v", err)
	}
	if _, err := otherECS.UpdateContainerInstancesState(ctx, &ecs.UpdateContainerInstancesStateInput{Cluster: aws.String(arnCluster(arn)),
		ContainerInstances: []string{arn}, Status: types.ContainerInstanceStatusDraining}); apiCode(err) != "ClusterNotFoundException" {
		t.Fatalf("another account drained the instance: %v", err)
	}
	// A join with a bad signature is refused.
	if _, err := other.Join(ctx, agentapi.JoinRequest{Cluster: "own", NodeID: "i-0aaaaaaaaaaaaaaaa", CPU: 1024, MemoryMiB: 1024}, signer("test", "wrong")); err == nil {
		t.Fatal("a join with a wrong secret was accepted")
	}

	// Attributes.
	if _, err := e.ecs.PutAttributes(ctx, &ecs.PutAttributesInput{Cluster: aws.String("own"),
		Attributes: []types.Attribute{{Name: aws.String("team"), Value: aws.String("blue"), TargetId: aws.String(arn)}}}); err != nil {
		t.Fatal(err)
	}
	la, err := e.ecs.ListAttributes(ctx, &ecs.ListAttributesInput{Cluster: aws.String("own"), TargetType: types.TargetTypeContainerInstance, AttributeName: aws.String("team")})
	if err != nil || len(la.Attributes) != 1 || aws.ToString(la.Attributes[0].Value) != "blue" || aws.ToString(la.Attributes[0].TargetId) != arn {
		t.Fatalf("ListAttributes: %v %+v", err, la)
	}
	for _, bad := range []types.Attribute{
		{Name: aws.String("ecs.instance-type"), Value: aws.String("x"), TargetId: aws.String(arn)},
		{Name: aws.String("bad name!"), TargetId: aws.String(arn)},
		{Name: aws.String("x"), TargetId: aws.String("no-such-instance")},
	} {
		if _, err := e.ecs.PutAttributes(ctx, &ecs.PutAttributesInput{Cluster: aws.String("own"), Attributes: []types.Attribute{bad}}); err == nil {
			t.Fatalf("PutAttributes %s accepted", aws.ToString(bad.Name))
		}
	}
	if _, err := e.ecs.DeleteAttributes(ctx, &ecs.DeleteAttributesInput{Cluster: aws.String("own"),
		Attributes: []types.Attribute{{Name: aws.String("team"), TargetId: aws.String(arn)}}}); err != nil {
		t.Fatal(err)
	}
	la, _ = e.ecs.ListAttributes(ctx, &ecs.ListAttributesInput{Cluster: aws.String("own"), TargetType: types.TargetTypeContainerInstance, AttributeName: aws.String("team")})
	if len(la.Attributes) != 0 {
		t.Fatalf("attribute not deleted: %+v", la.Attributes)
	}

	// Draining: listed by status, takes no new task.
	if _, err := e.ecs.UpdateContainerInstancesState(ctx, &ecs.UpdateContainerInstancesStateInput{Cluster: aws.String("own"),
		ContainerInstances: []string{arn}, Status: types.ContainerInstanceStatusDraining}); err != nil {
		t.Fatal(err)
	}
	l, err := e.ecs.ListContainerInstances(ctx, &ecs.ListContainerInstancesInput{Cluster: aws.String("own"), Status: types.ContainerInstanceStatusDraining})
	if err != nil || len(l.ContainerInstanceArns) != 1 {
		t.Fatalf("list draining: %v %+v", err, l)
	}
	if _, err := e.ecs.StopTask(ctx, &ecs.StopTaskInput{Cluster: aws.String("own"), Task: run.Tasks[0].TaskArn}); err != nil {
		t.Fatal(err)
	}
	if err := host.Report(ctx, agentapi.StateReport{NodeID: "i-0123456789abcdef0", TaskArn: aws.ToString(run.Tasks[0].TaskArn), Seq: 1, Status: agentapi.StatusStopped}); err != nil {
		t.Fatal(err)
	}
	small := e.registerEC2(t, "small", 128)
	run, err = e.ecs.RunTask(ctx, &ecs.RunTaskInput{Cluster: aws.String("own"), TaskDefinition: aws.String(small), LaunchType: types.LaunchTypeEc2})
	if err != nil || len(run.Tasks) != 0 || len(run.Failures) != 1 {
		t.Fatalf("RunTask on a draining instance: %v %+v", err, run)
	}

	// Deregistering with tasks needs force; then the tasks are stopped
	// and the host's token no longer works.
	if _, err := e.ecs.DeregisterContainerInstance(ctx, &ecs.DeregisterContainerInstanceInput{Cluster: aws.String("own"), ContainerInstance: aws.String(arn)}); apiCode(err) != "InvalidParameterException" {
		t.Fatalf("deregister with tasks: %v", err)
	}
	if _, err := e.ecs.DeregisterContainerInstance(ctx, &ecs.DeregisterContainerInstanceInput{Cluster: aws.String("own"), ContainerInstance: aws.String(arn), Force: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	tk := e.describe(t, "own", aws.ToString(run0(t, e, "own")))
	if aws.ToString(tk.LastStatus) != "STOPPED" {
		t.Fatalf("task of a deregistered instance: %s", aws.ToString(tk.LastStatus))
	}
	if _, err := host.Tasks(ctx, "i-0123456789abcdef0", 0, time.Second); err == nil {
		t.Fatal("a deregistered host's token still works")
	}
}

// run0 is any task of the cluster, stopped ones included.
func run0(t *testing.T, e *env, cluster string) *string {
	t.Helper()
	l, err := e.ecs.ListTasks(ctxT(t), &ecs.ListTasksInput{Cluster: aws.String(cluster), DesiredStatus: types.DesiredStatusStopped})
	if err != nil || len(l.TaskArns) == 0 {
		t.Fatalf("list stopped tasks: %v %+v", err, l)
	}
	return aws.String(l.TaskArns[0])
}

func arnCluster(instanceArn string) string {
	// arn:aws:ecs:REGION:ACCOUNT:container-instance/CLUSTER/ID → CLUSTER
	s := instanceArn[len("arn:aws:ecs:us-east-1:000000000000:container-instance/"):]
	for i := range s {
		if s[i] == '/' {
			return s[:i]
		}
	}
	return s
}

func resource(rs []types.Resource, name string) int32 {
	for _, r := range rs {
		if aws.ToString(r.Name) == name {
			return r.IntegerValue
		}
	}
	return -1
}

func TestHostLossStopsTasks(t *testing.T) {
	e := newEnvWith(t, becs.Config{NodeTTL: 2 * time.Second, HostLossGrace: time.Second})
	ctx := ctxT(t)
	if _, err := e.ecs.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("own")}); err != nil {
		t.Fatal(err)
	}
	td := e.registerEC2(t, "web", 256)
	host, arn := e.join(t, "own", "i-0123456789abcdef1", "us-east-1b", nil)
	run, err := e.ecs.RunTask(ctx, &ecs.RunTaskInput{Cluster: aws.String("own"), TaskDefinition: aws.String(td), LaunchType: types.LaunchTypeEc2})
	if err != nil || len(run.Tasks) != 1 {
		t.Fatalf("RunTask: %v %+v", err, run)
	}
	task := aws.ToString(run.Tasks[0].TaskArn)
	if err := host.Report(ctx, agentapi.StateReport{NodeID: "i-0123456789abcdef1", TaskArn: task, Seq: 1, Status: agentapi.StatusRunning}); err != nil {
		t.Fatal(err)
	}
	// The host stops heartbeating: disconnected, then its task is lost.
	deadline := time.Now().Add(15 * time.Second)
	for {
		tk := e.describe(t, "own", task)
		if aws.ToString(tk.LastStatus) == "STOPPED" {
			if aws.ToString(tk.StoppedReason) == "" || string(tk.StopCode) != "TerminationNotice" {
				t.Fatalf("stopped as %s: %s", tk.StopCode, aws.ToString(tk.StoppedReason))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("task of a lost host is %s", aws.ToString(tk.LastStatus))
		}
		time.Sleep(200 * time.Millisecond)
	}
	d, err := e.ecs.DescribeContainerInstances(ctx, &ecs.DescribeContainerInstancesInput{Cluster: aws.String("own"), ContainerInstances: []string{arn}})
	if err != nil || d.ContainerInstances[0].AgentConnected {
		t.Fatalf("a lost host is connected: %v %+v", err, d)
	}
	// The host comes back: the task is no longer its own.
	if _, err := host.Register(ctx, agentapi.RegisterRequest{NodeID: "i-0123456789abcdef1", AvailabilityZones: []string{"us-east-1b"}, CPU: 2048, MemoryMiB: 4096}); err != nil {
		t.Fatal(err)
	}
	resp, err := host.Tasks(ctx, "i-0123456789abcdef1", 0, time.Second)
	if err != nil || len(resp.Tasks) != 0 {
		t.Fatalf("a returning host still has %d tasks (%v)", len(resp.Tasks), err)
	}
}

func TestStartTaskOnNamedInstances(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	if _, err := e.ecs.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("own")}); err != nil {
		t.Fatal(err)
	}
	td := e.registerEC2(t, "web", 3000)
	_, a := e.join(t, "own", "i-0000000000000000a", "us-east-1a", nil)
	_, b := e.join(t, "own", "i-0000000000000000b", "us-east-1b", nil)
	out, err := e.ecs.StartTask(ctx, &ecs.StartTaskInput{Cluster: aws.String("own"), TaskDefinition: aws.String(td),
		ContainerInstances: []string{b, "missing"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Tasks) != 1 || aws.ToString(out.Tasks[0].ContainerInstanceArn) != b || len(out.Failures) != 1 || aws.ToString(out.Failures[0].Reason) != "MISSING" {
		t.Fatalf("StartTask: %+v", out)
	}
	// b has 4096 MiB: a second 3000 MiB task does not fit there, but does on a.
	out, err = e.ecs.StartTask(ctx, &ecs.StartTaskInput{Cluster: aws.String("own"), TaskDefinition: aws.String(td), ContainerInstances: []string{b, a}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Tasks) != 1 || aws.ToString(out.Tasks[0].ContainerInstanceArn) != a || len(out.Failures) != 1 || aws.ToString(out.Failures[0].Reason) != "RESOURCE:MEMORY" {
		t.Fatalf("StartTask onto a full instance: %+v", out)
	}
}

func TestEC2PlacementThroughTheAPI(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	if _, err := e.ecs.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("own")}); err != nil {
		t.Fatal(err)
	}
	td := e.registerEC2(t, "web", 256)
	_, a := e.join(t, "own", "i-0000000000000000a", "us-east-1a", map[string]string{"disk": "ssd"})
	_, b := e.join(t, "own", "i-0000000000000000b", "us-east-1b", nil)
	// Each step runs its own family (task group): spread and
	// distinctInstance count a group's tasks, and StopTask leaves them
	// placed until their (fake) hosts report them stopped.
	step := 0
	runOn := func(count int32, strat []types.PlacementStrategy, cons []types.PlacementConstraint) ([]string, []types.Failure) {
		t.Helper()
		step++
		td := e.registerEC2(t, fmt.Sprintf("step%d", step), 256)
		out, err := e.ecs.RunTask(ctx, &ecs.RunTaskInput{Cluster: aws.String("own"), TaskDefinition: aws.String(td), LaunchType: types.LaunchTypeEc2,
			Count: aws.Int32(count), PlacementStrategy: strat, PlacementConstraints: cons})
		if err != nil {
			t.Fatal(err)
		}
		var on []string
		for _, tk := range out.Tasks {
			on = append(on, aws.ToString(tk.ContainerInstanceArn))
			if _, err := e.ecs.StopTask(ctx, &ecs.StopTaskInput{Cluster: aws.String("own"), Task: tk.TaskArn}); err != nil {
				t.Fatal(err)
			}
		}
		return on, out.Failures
	}
	// binpack on memory: one host first (the tasks stay placed until
	// their hosts report them stopped, so later calls see them).
	on, _ := runOn(3, []types.PlacementStrategy{{Type: types.PlacementStrategyTypeBinpack, Field: aws.String("memory")}}, nil)
	if len(on) != 3 || on[0] != on[1] || on[1] != on[2] {
		t.Fatalf("binpack: %v", on)
	}
	on, _ = runOn(4, []types.PlacementStrategy{{Type: types.PlacementStrategyTypeSpread, Field: aws.String("attribute:ecs.availability-zone")}}, nil)
	if len(on) != 4 || on[0] == on[1] || on[1] == on[2] || on[2] == on[3] {
		t.Fatalf("spread over zones does not alternate: %v", on)
	}
	_, fails := runOn(3, nil, []types.PlacementConstraint{{Type: types.PlacementConstraintTypeDistinctInstance}})
	if len(fails) != 1 || aws.ToString(fails[0].Reason) != "DistinctInstance placement constraint unsatisfied." {
		t.Fatalf("distinctInstance, 3 on 2: %+v", fails)
	}
	on, _ = runOn(2, nil, []types.PlacementConstraint{{Type: types.PlacementConstraintTypeMemberOf, Expression: aws.String("attribute:disk == ssd")}})
	if len(on) != 2 || on[0] != a || on[1] != a {
		t.Fatalf("memberOf disk == ssd: %v (a is %s, b %s)", on, a, b)
	}
	if _, err := e.ecs.RunTask(ctx, &ecs.RunTaskInput{Cluster: aws.String("own"), TaskDefinition: aws.String(td), LaunchType: types.LaunchTypeEc2,
		PlacementConstraints: []types.PlacementConstraint{{Type: types.PlacementConstraintTypeMemberOf, Expression: aws.String("attribute:disk ==")}}}); apiCode(err) != "InvalidParameterException" {
		t.Fatalf("a bad expression: %v", err)
	}
	l, err := e.ecs.ListContainerInstances(ctx, &ecs.ListContainerInstancesInput{Cluster: aws.String("own"), Filter: aws.String("attribute:ecs.availability-zone == us-east-1b")})
	if err != nil || len(l.ContainerInstanceArns) != 1 || l.ContainerInstanceArns[0] != b {
		t.Fatalf("filter by zone: %v %+v", err, l)
	}
}
