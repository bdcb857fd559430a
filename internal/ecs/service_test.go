package ecs_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berthdev/berth/internal/agentapi"
	becs "github.com/berthdev/berth/internal/ecs"
	"github.com/berthdev/berth/internal/store"
)

// fakeAgent runs tasks on paper: it long-polls its node's tasks through the
// agent protocol, reports each new task PENDING and, a moment later, RUNNING
// (or, for an image named "bad", STOPPED with TaskFailedToStart), and reports
// STOPPED once a task's desired status is STOPPED.
type fakeAgent struct {
	e    *env
	node string
	mu   sync.Mutex
	seen map[string]time.Time // task → first seen
	last map[string]string    // task → last status reported
	seq  int64
}

func (e *env) startAgent(t *testing.T, node string) *fakeAgent {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req := agentapi.RegisterRequest{NodeID: node, AvailabilityZones: []string{"us-east-1a", "us-east-1b", "us-east-1c"}, CPU: 64 * 1024, MemoryMiB: 256 * 1024}
	if _, err := e.agent.Register(ctx, req); err != nil {
		t.Fatal(err)
	}
	a := &fakeAgent{e: e, node: node, seen: map[string]time.Time{}, last: map[string]string{}}
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		var since int64
		beat := time.Now()
		for ctx.Err() == nil {
			if time.Since(beat) > 3*time.Second {
				_ = e.agent.Heartbeat(ctx, req)
				beat = time.Now()
			}
			resp, err := e.agent.Tasks(ctx, node, since, 50*time.Millisecond)
			if err != nil {
				time.Sleep(20 * time.Millisecond)
				continue
			}
			since = resp.Revision
			for _, spec := range resp.Tasks {
				a.step(ctx, spec)
			}
		}
	}()
	return a
}

func (a *fakeAgent) report(ctx context.Context, arn, status string, mod func(*agentapi.StateReport)) {
	a.mu.Lock()
	a.seq++
	rep := agentapi.StateReport{NodeID: a.node, TaskArn: arn, Seq: time.Now().UnixNano() + a.seq, Status: status}
	a.last[arn] = status
	a.mu.Unlock()
	if mod != nil {
		mod(&rep)
	}
	_ = a.e.agent.Report(ctx, rep)
}

func (a *fakeAgent) step(ctx context.Context, spec agentapi.TaskSpec) {
	a.mu.Lock()
	first, ok := a.seen[spec.TaskArn]
	if !ok {
		first = time.Now()
		a.seen[spec.TaskArn] = first
	}
	last := a.last[spec.TaskArn]
	a.mu.Unlock()
	now := time.Now()
	switch {
	case last == "STOPPED":
	case spec.DesiredStatus == "STOPPED":
		a.report(ctx, spec.TaskArn, "STOPPED", func(r *agentapi.StateReport) { r.StopCode = spec.StopCode })
	case spec.Containers[0].Image == "bad":
		a.report(ctx, spec.TaskArn, "STOPPED", func(r *agentapi.StateReport) {
			r.StopCode, r.StoppedReason = agentapi.StopTaskFailedToStart, "CannotPullContainerError: pull access denied"
		})
	case last == "":
		a.report(ctx, spec.TaskArn, "PENDING", nil)
	case last == "PENDING" && now.Sub(first) > 100*time.Millisecond:
		a.report(ctx, spec.TaskArn, "RUNNING", func(r *agentapi.StateReport) { r.StartedAt = &now })
	}
}

// kill reports a running task's essential container as exited.
func (a *fakeAgent) kill(ctx context.Context, arn string) {
	a.report(ctx, arn, "STOPPED", func(r *agentapi.StateReport) {
		r.StopCode, r.StoppedReason = agentapi.StopEssentialContainerExited, "Essential container in task exited"
	})
}

var subnets = &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{Subnets: []string{"subnet-1"}}}

func (e *env) registerImage(t *testing.T, family, image string) string {
	t.Helper()
	out, err := e.ecs.RegisterTaskDefinition(ctxT(t), &ecs.RegisterTaskDefinitionInput{
		Family: aws.String(family), NetworkMode: types.NetworkModeAwsvpc, Cpu: aws.String("256"), Memory: aws.String("512"),
		RequiresCompatibilities: []types.Compatibility{types.CompatibilityFargate},
		ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("app"), Image: aws.String(image),
			PortMappings: []types.PortMapping{{ContainerPort: aws.Int32(80)}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.TaskDefinition.TaskDefinitionArn)
}

func (e *env) service(t *testing.T, name string) types.Service {
	t.Helper()
	out, err := e.ecs.DescribeServices(ctxT(t), &ecs.DescribeServicesInput{Services: []string{name}})
	if err != nil || len(out.Services) != 1 {
		t.Fatalf("describe service %s: %v %+v", name, err, out)
	}
	return out.Services[0]
}

func (e *env) waitStable(t *testing.T, name string) types.Service {
	t.Helper()
	w := ecs.NewServicesStableWaiter(e.ecs, func(o *ecs.ServicesStableWaiterOptions) {
		o.MinDelay, o.MaxDelay = 100*time.Millisecond, 300*time.Millisecond
	})
	if err := w.Wait(context.Background(), &ecs.DescribeServicesInput{Services: []string{name}}, 30*time.Second); err != nil {
		t.Fatalf("services-stable %s: %v; service %+v", name, err, e.service(t, name))
	}
	return e.service(t, name)
}

func hasEvent(s types.Service, substr string) bool {
	return slices.ContainsFunc(s.Events, func(ev types.ServiceEvent) bool { return strings.Contains(aws.ToString(ev.Message), substr) })
}

// liveTasks reads the cluster's tasks from the store: those not STOPPED,
// and those RUNNING with desired status RUNNING.
func (e *env) liveTasks(t *testing.T, cluster string) (total, healthy int, created int) {
	t.Helper()
	err := e.st.List(context.Background(), store.ScopedPrefix("000000000000", "us-east-1", "tasks", cluster), func(_ string, val []byte) error {
		var r struct {
			Task becs.Task `json:"task"`
		}
		if err := becs.DecodeTaskRecord(val, &r); err != nil {
			return err
		}
		created++
		if r.Task.LastStatus != "STOPPED" {
			total++
		}
		if r.Task.LastStatus == "RUNNING" && r.Task.DesiredStatus == "RUNNING" {
			healthy++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return total, healthy, created
}

func (e *env) serviceTasks(t *testing.T, name string) []string {
	t.Helper()
	out, err := e.ecs.ListTasks(ctxT(t), &ecs.ListTasksInput{ServiceName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	return out.TaskArns
}

func (e *env) createService(t *testing.T, in *ecs.CreateServiceInput) {
	t.Helper()
	if in.NetworkConfiguration == nil {
		in.NetworkConfiguration = subnets
	}
	if _, err := e.ecs.CreateService(ctxT(t), in); err != nil {
		t.Fatal(err)
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestServiceKeepsDesiredCount(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	if _, err := e.ecs.CreateCluster(ctx, &ecs.CreateClusterInput{}); err != nil {
		t.Fatal(err)
	}
	a := e.startAgent(t, "n1")
	td := e.registerImage(t, "web", "nginx")
	e.createService(t, &ecs.CreateServiceInput{ServiceName: aws.String("web"), TaskDefinition: aws.String(td), DesiredCount: aws.Int32(3)})
	s := e.waitStable(t, "web")
	if s.RunningCount != 3 || len(s.Deployments) != 1 || s.Deployments[0].RolloutState != types.DeploymentRolloutStateCompleted ||
		!strings.HasPrefix(aws.ToString(s.Deployments[0].Id), "ecs-svc/") {
		t.Fatalf("stable service %+v", s)
	}
	if !hasEvent(s, "(service web) has started 3 tasks: (task ") || aws.ToString(s.Events[0].Message) != "(service web) has reached a steady state." ||
		!hasEvent(s, ") deployment completed.") {
		t.Fatalf("events %+v", s.Events)
	}
	arns := e.serviceTasks(t, "web")
	if len(arns) != 3 {
		t.Fatalf("ListTasks serviceName: %v", arns)
	}
	tk := e.describe(t, "default", arns[0])
	if aws.ToString(tk.Group) != "service:web" || aws.ToString(tk.StartedBy) != aws.ToString(s.Deployments[0].Id) {
		t.Fatalf("service task %+v", tk)
	}
	cl, err := e.ecs.DescribeClusters(ctx, &ecs.DescribeClustersInput{})
	if err != nil || cl.Clusters[0].ActiveServicesCount != 1 {
		t.Fatalf("activeServicesCount: %v %+v", err, cl)
	}
	// A task that dies is replaced.
	a.kill(ctx, arns[0])
	eventually(t, "a replacement", func() bool {
		now := e.serviceTasks(t, "web")
		return len(now) == 3 && !slices.Contains(now, arns[0]) && e.service(t, "web").RunningCount == 3
	})
	// Scale up and down.
	for _, n := range []int32{5, 2} {
		if _, err := e.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{Service: aws.String("web"), DesiredCount: aws.Int32(n)}); err != nil {
			t.Fatal(err)
		}
		s = e.waitStable(t, "web")
		if s.RunningCount != n || len(e.serviceTasks(t, "web")) != int(n) {
			t.Fatalf("scaled to %d: %+v", n, s)
		}
	}
	if !hasEvent(s, "(service web) has stopped 3 running tasks: (task ") {
		t.Fatalf("no stop event: %+v", s.Events)
	}
	ls, err := e.ecs.ListServices(ctx, &ecs.ListServicesInput{LaunchType: types.LaunchTypeFargate})
	if err != nil || len(ls.ServiceArns) != 1 || !strings.HasSuffix(ls.ServiceArns[0], ":service/default/web") {
		t.Fatalf("ListServices %v %+v", err, ls)
	}
}

func TestServiceRollingUpdateBounds(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	if _, err := e.ecs.CreateCluster(ctx, &ecs.CreateClusterInput{}); err != nil {
		t.Fatal(err)
	}
	e.startAgent(t, "n1")
	td1 := e.registerImage(t, "roll", "app:1")
	e.createService(t, &ecs.CreateServiceInput{ServiceName: aws.String("roll"), TaskDefinition: aws.String(td1), DesiredCount: aws.Int32(4),
		DeploymentConfiguration: &types.DeploymentConfiguration{MinimumHealthyPercent: aws.Int32(50), MaximumPercent: aws.Int32(150)}})
	e.waitStable(t, "roll")
	td2 := e.registerImage(t, "roll", "app:2")
	// Sample the task counts while the deployment rolls.
	stop := make(chan struct{})
	var minHealthy, maxTotal = 1 << 30, 0
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-stop:
				return
			default:
			}
			total, healthy, _ := e.liveTasks(t, "default")
			minHealthy, maxTotal = min(minHealthy, healthy), max(maxTotal, total)
			time.Sleep(5 * time.Millisecond)
		}
	}()
	up, err := e.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{Service: aws.String("roll"), TaskDefinition: aws.String(td2)})
	if err != nil || len(up.Service.Deployments) != 2 || up.Service.Deployments[0].Status == nil || *up.Service.Deployments[0].Status != "PRIMARY" ||
		aws.ToString(up.Service.Deployments[1].Status) != "ACTIVE" {
		t.Fatalf("UpdateService %v %+v", err, up)
	}
	time.Sleep(300 * time.Millisecond) // the waiter must not pass before the rollout starts
	s := e.waitStable(t, "roll")
	close(stop)
	<-sampled
	if minHealthy < 2 || maxTotal > 6 {
		t.Fatalf("rollout left the bounds: healthy went down to %d (min 2), tasks up to %d (max 6)", minHealthy, maxTotal)
	}
	if aws.ToString(s.TaskDefinition) != td2 || aws.ToString(s.Deployments[0].TaskDefinition) != td2 || s.Deployments[0].RolloutState != types.DeploymentRolloutStateCompleted {
		t.Fatalf("after rollout %+v", s)
	}
	for _, arn := range e.serviceTasks(t, "roll") {
		if got := aws.ToString(e.describe(t, "default", arn).TaskDefinitionArn); got != td2 {
			t.Fatalf("task %s of %s after the rollout", arn, got)
		}
	}
	t.Logf("rollout bounds seen: min healthy %d, max tasks %d", minHealthy, maxTotal)
}

func TestServiceCircuitBreakerRollsBack(t *testing.T) {
	e := newEnvWith(t, becs.Config{ServiceBackoff: 20 * time.Millisecond})
	ctx := ctxT(t)
	if _, err := e.ecs.CreateCluster(ctx, &ecs.CreateClusterInput{}); err != nil {
		t.Fatal(err)
	}
	e.startAgent(t, "n1")
	good := e.registerImage(t, "cb", "good")
	e.createService(t, &ecs.CreateServiceInput{ServiceName: aws.String("cb"), TaskDefinition: aws.String(good), DesiredCount: aws.Int32(2),
		DeploymentConfiguration: &types.DeploymentConfiguration{DeploymentCircuitBreaker: &types.DeploymentCircuitBreaker{Enable: true, Rollback: true}}})
	e.waitStable(t, "cb")
	bad := e.registerImage(t, "cb", "bad")
	if _, err := e.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{Service: aws.String("cb"), TaskDefinition: aws.String(bad)}); err != nil {
		t.Fatal(err)
	}
	var failed *types.Deployment
	eventually(t, "a FAILED deployment", func() bool {
		for _, d := range e.service(t, "cb").Deployments {
			if d.RolloutState == types.DeploymentRolloutStateFailed {
				failed = &d
				return true
			}
		}
		return false
	})
	if aws.ToString(failed.TaskDefinition) != bad || failed.FailedTasks < 3 || !strings.Contains(aws.ToString(failed.RolloutStateReason), "circuit breaker") {
		t.Fatalf("failed deployment %+v", failed)
	}
	time.Sleep(200 * time.Millisecond)
	s := e.waitStable(t, "cb")
	if aws.ToString(s.TaskDefinition) != good || aws.ToString(s.Deployments[0].TaskDefinition) != good {
		t.Fatalf("not rolled back: %+v", s)
	}
	msg := "(service cb) deployment " + aws.ToString(failed.Id) + " deployment failed: tasks failed to start."
	if !hasEvent(s, msg) || !hasEvent(s, "rolling back to deployment") {
		t.Fatalf("events %+v", s.Events)
	}
}

func TestServiceCircuitBreakerWithoutRollbackStopsLaunching(t *testing.T) {
	e := newEnvWith(t, becs.Config{ServiceBackoff: 20 * time.Millisecond})
	ctx := ctxT(t)
	if _, err := e.ecs.CreateCluster(ctx, &ecs.CreateClusterInput{}); err != nil {
		t.Fatal(err)
	}
	e.startAgent(t, "n1")
	e.createService(t, &ecs.CreateServiceInput{ServiceName: aws.String("nb"), TaskDefinition: aws.String(e.registerImage(t, "nb", "bad")), DesiredCount: aws.Int32(1),
		DeploymentConfiguration: &types.DeploymentConfiguration{DeploymentCircuitBreaker: &types.DeploymentCircuitBreaker{Enable: true}}})
	eventually(t, "FAILED", func() bool {
		return e.service(t, "nb").Deployments[0].RolloutState == types.DeploymentRolloutStateFailed
	})
	_, _, created := e.liveTasks(t, "default")
	time.Sleep(500 * time.Millisecond)
	if _, _, again := e.liveTasks(t, "default"); again != created || created != 3 {
		t.Fatalf("launched %d then %d tasks; want 3 and no more after the breaker", created, again)
	}
}

func TestDeleteService(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	if _, err := e.ecs.CreateCluster(ctx, &ecs.CreateClusterInput{}); err != nil {
		t.Fatal(err)
	}
	e.startAgent(t, "n1")
	td := e.registerImage(t, "del", "app")
	e.createService(t, &ecs.CreateServiceInput{ServiceName: aws.String("del"), TaskDefinition: aws.String(td), DesiredCount: aws.Int32(2)})
	e.waitStable(t, "del")
	_, err := e.ecs.DeleteService(ctx, &ecs.DeleteServiceInput{Service: aws.String("del")})
	if apiCode(err) != "InvalidParameterException" || !strings.Contains(err.Error(), "The service cannot be stopped while it is scaled above 0.") {
		t.Fatalf("delete without force: %v", err)
	}
	out, err := e.ecs.DeleteService(ctx, &ecs.DeleteServiceInput{Service: aws.String("del"), Force: aws.Bool(true)})
	if err != nil || aws.ToString(out.Service.Status) != "DRAINING" {
		t.Fatalf("delete with force: %v %+v", err, out)
	}
	eventually(t, "INACTIVE", func() bool { return aws.ToString(e.service(t, "del").Status) == "INACTIVE" })
	if n := len(e.serviceTasks(t, "del")); n != 0 {
		t.Fatalf("%d tasks left", n)
	}
	if _, err := e.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{Service: aws.String("del"), DesiredCount: aws.Int32(1)}); apiCode(err) != "ServiceNotActiveException" {
		t.Fatalf("update of an inactive service: %v", err)
	}
	// Scaled to 0 first, it deletes without force; its name can be used again once inactive.
	e.createService(t, &ecs.CreateServiceInput{ServiceName: aws.String("del"), TaskDefinition: aws.String(td), DesiredCount: aws.Int32(0)})
	if _, err := e.ecs.DeleteService(ctx, &ecs.DeleteServiceInput{Service: aws.String("del")}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "INACTIVE again", func() bool { return aws.ToString(e.service(t, "del").Status) == "INACTIVE" })
}

func TestServiceErrors(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	if _, err := e.ecs.CreateCluster(ctx, &ecs.CreateClusterInput{}); err != nil {
		t.Fatal(err)
	}
	td := e.registerImage(t, "err", "app")
	bridge, err := e.ecs.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{Family: aws.String("br"), NetworkMode: types.NetworkModeBridge,
		ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("app"), Image: aws.String("x"), Memory: aws.Int32(128)}}})
	if err != nil {
		t.Fatal(err)
	}
	create := func(in ecs.CreateServiceInput) error {
		if in.ServiceName == nil {
			in.ServiceName = aws.String("s")
		}
		_, err := e.ecs.CreateService(ctx, &in)
		return err
	}
	tests := []struct {
		name, code, msg string
		err             error
	}{
		{"no network", "InvalidParameterException", "Network Configuration must be provided when networkMode 'awsvpc' is specified.",
			create(ecs.CreateServiceInput{TaskDefinition: aws.String(td), DesiredCount: aws.Int32(1)})},
		{"not awsvpc", "InvalidParameterException", "does not support launch_type FARGATE",
			create(ecs.CreateServiceInput{TaskDefinition: bridge.TaskDefinition.TaskDefinitionArn, DesiredCount: aws.Int32(1)})},
		{"load balancers", "InvalidParameterException", "load balancers are not available",
			create(ecs.CreateServiceInput{TaskDefinition: aws.String(td), NetworkConfiguration: subnets, LoadBalancers: []types.LoadBalancer{{
				TargetGroupArn: aws.String("arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/tg/1"), ContainerName: aws.String("app"), ContainerPort: aws.Int32(80)}}})},
		{"bad percent", "InvalidParameterException", "minimumHealthyPercent",
			create(ecs.CreateServiceInput{TaskDefinition: aws.String(td), NetworkConfiguration: subnets,
				DeploymentConfiguration: &types.DeploymentConfiguration{MinimumHealthyPercent: aws.Int32(150)}})},
		{"unknown cluster", "ClusterNotFoundException", "",
			create(ecs.CreateServiceInput{Cluster: aws.String("nope"), TaskDefinition: aws.String(td), NetworkConfiguration: subnets})},
		{"update unknown", "ServiceNotFoundException", "", func() error {
			_, err := e.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{Service: aws.String("nope"), DesiredCount: aws.Int32(1)})
			return err
		}()},
		{"delete unknown", "ServiceNotFoundException", "", func() error {
			_, err := e.ecs.DeleteService(ctx, &ecs.DeleteServiceInput{Service: aws.String("nope")})
			return err
		}()},
	}
	for _, tc := range tests {
		if got := apiCode(tc.err); got != tc.code || !strings.Contains(tc.err.Error(), tc.msg) {
			t.Errorf("%s: %v, want %s %q", tc.name, tc.err, tc.code, tc.msg)
		}
	}
	e.createService(t, &ecs.CreateServiceInput{ServiceName: aws.String("dup"), TaskDefinition: aws.String(td)})
	if err := create(ecs.CreateServiceInput{ServiceName: aws.String("dup"), TaskDefinition: aws.String(td), NetworkConfiguration: subnets}); apiCode(err) != "InvalidParameterException" {
		t.Errorf("duplicate: %v", err)
	}
	out, err := e.ecs.DescribeServices(ctx, &ecs.DescribeServicesInput{Services: []string{"dup", "missing"}})
	if err != nil || len(out.Services) != 1 || len(out.Failures) != 1 || aws.ToString(out.Failures[0].Reason) != "MISSING" {
		t.Fatalf("describe with a missing one: %v %+v", err, out)
	}
	dc := out.Services[0].DeploymentConfiguration
	if aws.ToInt32(dc.MaximumPercent) != 200 || aws.ToInt32(dc.MinimumHealthyPercent) != 100 || out.Services[0].LaunchType != types.LaunchTypeFargate {
		t.Fatalf("defaults %+v", out.Services[0])
	}
}

// TestTwoSchedulersDoNotOverLaunch runs a second ECS service (a second server
// replica) on the same store: the service still gets exactly its tasks.
func TestTwoSchedulersDoNotOverLaunch(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = becs.New(becs.Config{Store: e.st}).Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	if _, err := e.ecs.CreateCluster(ctx, &ecs.CreateClusterInput{}); err != nil {
		t.Fatal(err)
	}
	a := e.startAgent(t, "n1")
	td := e.registerImage(t, "two", "app")
	e.createService(t, &ecs.CreateServiceInput{ServiceName: aws.String("two"), TaskDefinition: aws.String(td), DesiredCount: aws.Int32(6)})
	e.waitStable(t, "two")
	if _, _, created := e.liveTasks(t, "default"); created != 6 {
		t.Fatalf("%d tasks created for 6", created)
	}
	arns := e.serviceTasks(t, "two")
	a.kill(ctx, arns[0])
	a.kill(ctx, arns[1])
	eventually(t, "replacements", func() bool { return len(e.serviceTasks(t, "two")) == 6 && e.service(t, "two").RunningCount == 6 })
	time.Sleep(time.Second)
	if total, _, created := e.liveTasks(t, "default"); created != 8 || total != 6 {
		t.Fatalf("%d tasks created, %d live; want 8 and 6", created, total)
	}
}
