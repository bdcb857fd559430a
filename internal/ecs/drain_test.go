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

// fakeNetworks gives every task an address 10.0.0.N in subnet-1 (us-east-1a).
type fakeNetworks struct {
	mu   sync.Mutex
	next int
	ips  map[string]string // attachment → address
}

func (f *fakeNetworks) ResolveAwsvpc(_ context.Context, _, _ string, subnets, groups []string) (string, map[string]string, []string, error) {
	azs := map[string]string{}
	for _, s := range subnets {
		azs[s] = "us-east-1a"
	}
	return "vpc-1", azs, append([]string{"sg-1"}, groups...), nil
}

func (f *fakeNetworks) AttachENI(_ context.Context, _, _, attachment, _ string, subnets, _ []string, _ bool) (agentapi.ENI, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ips[attachment] == "" {
		f.next++
		f.ips[attachment] = fmt.Sprintf("10.0.0.%d", f.next)
	}
	return agentapi.ENI{AttachmentID: attachment, ID: "eni-" + attachment[:8], VpcID: "vpc-1", SubnetID: subnets[0],
		VpcCIDR: "10.0.0.0/16", SubnetCIDR: "10.0.0.0/24", Gateway: "10.0.0.1", PrivateIP: f.ips[attachment]}, nil
}

func (f *fakeNetworks) ReleaseENI(context.Context, string, string, string) error { return nil }
func (f *fakeNetworks) AddressSets(context.Context, []string, int64, int64) ([]agentapi.AddressSet, error) {
	return nil, nil
}
func (f *fakeNetworks) AddressSetRevisions(_ context.Context, names []string, _ int64) ([]int64, error) {
	return make([]int64, len(names)), nil
}

// fakeLBs are target groups whose registered targets are healthy at once
// and whose deregistered targets drain until the test lets them go.
type fakeLBs struct {
	mu       sync.Mutex
	healthy  map[string]map[becs.LBTarget]bool // by target group
	draining map[string]map[becs.LBTarget]bool
	types    map[string]string // target type by group; "ip" when absent
}

func newFakeLBs() *fakeLBs {
	return &fakeLBs{healthy: map[string]map[becs.LBTarget]bool{}, draining: map[string]map[becs.LBTarget]bool{}, types: map[string]string{}}
}

func (f *fakeLBs) group(m map[string]map[becs.LBTarget]bool, tg string) map[becs.LBTarget]bool {
	if m[tg] == nil {
		m[tg] = map[becs.LBTarget]bool{}
	}
	return m[tg]
}

func (f *fakeLBs) RegisterTargets(_ context.Context, _, _, tg string, ts []becs.LBTarget) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, t := range ts {
		if !f.group(f.draining, tg)[t] {
			f.group(f.healthy, tg)[t] = true
		}
	}
	return nil
}

func (f *fakeLBs) DeregisterTargets(_ context.Context, _, _, tg string, ts []becs.LBTarget) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, t := range ts {
		if f.group(f.healthy, tg)[t] {
			delete(f.healthy[tg], t)
			f.group(f.draining, tg)[t] = true
		}
	}
	return nil
}

func (f *fakeLBs) TargetHealth(_ context.Context, _, _, tg string, ts []becs.LBTarget) (map[becs.LBTarget]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[becs.LBTarget]string{}
	for _, t := range ts {
		switch {
		case f.group(f.healthy, tg)[t]:
			out[t] = "healthy"
		case f.group(f.draining, tg)[t]:
			out[t] = "draining"
		}
	}
	return out, nil
}

func (f *fakeLBs) TargetGroupType(_ context.Context, _, _, tg string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if t, ok := f.types[tg]; ok {
		return t, nil
	}
	return "ip", nil
}

// drained ends every drain and returns how many targets were draining.
func (f *fakeLBs) drained() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, m := range f.draining {
		n += len(m)
		clear(m)
	}
	return n
}

// registered is how many targets group tg has (draining ones included).
func (f *fakeLBs) registered(tg string) (healthy, draining int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.healthy[tg]), len(f.draining[tg])
}

// TestDeploymentDrainsBeforeStopping: a rolling deployment behind a load
// balancer deregisters each old task and keeps it running, DEACTIVATING,
// until its target has drained; only then is its host told to stop it.
func TestDeploymentDrainsBeforeStopping(t *testing.T) {
	lbs := newFakeLBs()
	e := newEnvWith(t, becs.Config{Networks: &fakeNetworks{ips: map[string]string{}}, LoadBalancers: lbs})
	ctx := ctxT(t)
	if _, err := e.ecs.CreateCluster(ctx, &ecs.CreateClusterInput{}); err != nil {
		t.Fatal(err)
	}
	a := e.startAgent(t, "n1")
	v1, v2 := e.registerImage(t, "web", "app:1"), e.registerImage(t, "web", "app:2")
	e.createService(t, &ecs.CreateServiceInput{ServiceName: aws.String("web"), TaskDefinition: aws.String(v1), DesiredCount: aws.Int32(2),
		LoadBalancers: []types.LoadBalancer{{TargetGroupArn: aws.String("arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/web/1"),
			ContainerName: aws.String("app"), ContainerPort: aws.Int32(80)}}})
	e.waitStable(t, "web")
	old := e.serviceTasks(t, "web")

	if _, err := e.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{Service: aws.String("web"), TaskDefinition: aws.String(v2)}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "old tasks deactivating", func() bool {
		out, err := e.ecs.DescribeTasks(ctx, &ecs.DescribeTasksInput{Tasks: old})
		if err != nil {
			t.Fatal(err)
		}
		for _, tk := range out.Tasks {
			if aws.ToString(tk.LastStatus) != "DEACTIVATING" || aws.ToString(tk.DesiredStatus) != "STOPPED" || tk.StoppingAt == nil {
				return false
			}
		}
		return len(out.Tasks) == 2
	})
	// While their targets drain, the host is not told to stop them.
	time.Sleep(1500 * time.Millisecond)
	a.mu.Lock()
	for _, arn := range old {
		if a.last[arn] != "RUNNING" {
			t.Errorf("old task %s reported %s while draining", arn, a.last[arn])
		}
	}
	a.mu.Unlock()
	if s := e.service(t, "web"); len(s.Deployments) != 2 {
		t.Errorf("deployments while draining: %d, want the old one still ACTIVE", len(s.Deployments))
	}
	if n := lbs.drained(); n != 2 {
		t.Fatalf("%d targets draining, want 2", n)
	}
	s := e.waitStable(t, "web")
	if aws.ToString(s.TaskDefinition) != v2 || s.RunningCount != 2 {
		t.Fatalf("after the rollout: %+v", s)
	}
	out, err := e.ecs.DescribeTasks(ctx, &ecs.DescribeTasksInput{Tasks: old})
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range out.Tasks {
		if aws.ToString(tk.LastStatus) != "STOPPED" || tk.StopCode != types.TaskStopCodeServiceSchedulerInitiated {
			t.Errorf("old task %s: %s %s", aws.ToString(tk.TaskArn), aws.ToString(tk.LastStatus), tk.StopCode)
		}
	}
}

// TestUpdateServiceLoadBalancers: changing a service's load balancers
// starts a deployment whose tasks register in the new group, while the old
// tasks drain out of the old one and stop.
func TestUpdateServiceLoadBalancers(t *testing.T) {
	lbs := newFakeLBs()
	e := newEnvWith(t, becs.Config{Networks: &fakeNetworks{ips: map[string]string{}}, LoadBalancers: lbs})
	ctx := ctxT(t)
	if _, err := e.ecs.CreateCluster(ctx, &ecs.CreateClusterInput{}); err != nil {
		t.Fatal(err)
	}
	e.startAgent(t, "n1")
	td := e.registerImage(t, "web", "app:1")
	tg1, tg2 := "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/one/1", "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/two/2"
	lb := func(tg string) []types.LoadBalancer {
		return []types.LoadBalancer{{TargetGroupArn: aws.String(tg), ContainerName: aws.String("app"), ContainerPort: aws.Int32(80)}}
	}
	e.createService(t, &ecs.CreateServiceInput{ServiceName: aws.String("web"), TaskDefinition: aws.String(td), DesiredCount: aws.Int32(2), LoadBalancers: lb(tg1)})
	e.waitStable(t, "web")
	if h, _ := lbs.registered(tg1); h != 2 {
		t.Fatalf("group one has %d healthy targets, want 2", h)
	}
	if _, err := e.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{Service: aws.String("web"), LoadBalancers: lb(tg2)}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the old tasks draining out of group one", func() bool {
		h1, d1 := lbs.registered(tg1)
		h2, _ := lbs.registered(tg2)
		return h1 == 0 && d1 == 2 && h2 == 2
	})
	lbs.drained()
	s := e.waitStable(t, "web")
	if len(s.LoadBalancers) != 1 || aws.ToString(s.LoadBalancers[0].TargetGroupArn) != tg2 || s.RunningCount != 2 {
		t.Fatalf("service after the update: %+v", s)
	}
	if h, d := lbs.registered(tg1); h != 0 || d != 0 {
		t.Errorf("group one still has %d healthy and %d draining targets", h, d)
	}
	// A group of target type instance (or one that does not exist) does
	// not suit an awsvpc service: ECS's InvalidParameterException.
	lbs.types[tg1], lbs.types["arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/gone/3"] = "instance", ""
	for tg, msg := range map[string]string{tg1: "has target type instance, which is incompatible with the awsvpc network mode",
		"arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/gone/3": "Unable to find target group"} {
		_, err := e.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{Service: aws.String("web"), LoadBalancers: lb(tg)})
		if apiCode(err) != "InvalidParameterException" || !strings.Contains(err.Error(), msg) {
			t.Errorf("update to %s: %v, want InvalidParameterException %q", tg, err, msg)
		}
	}
	// The same load balancers again: no new deployment.
	if _, err := e.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{Service: aws.String("web"), LoadBalancers: lb(tg2)}); err != nil {
		t.Fatal(err)
	}
	if s := e.service(t, "web"); len(s.Deployments) != 1 {
		t.Errorf("an unchanged loadBalancers started a deployment: %d deployments", len(s.Deployments))
	}
}

// TestStopTaskDrainsServiceTask: StopTask of a service task behind a load
// balancer deactivates it like the scheduler's own stops (deregistered,
// kept running until drained); a second StopTask stops it at once.
func TestStopTaskDrainsServiceTask(t *testing.T) {
	lbs := newFakeLBs()
	e := newEnvWith(t, becs.Config{Networks: &fakeNetworks{ips: map[string]string{}}, LoadBalancers: lbs})
	ctx := ctxT(t)
	if _, err := e.ecs.CreateCluster(ctx, &ecs.CreateClusterInput{}); err != nil {
		t.Fatal(err)
	}
	a := e.startAgent(t, "n1")
	td := e.registerImage(t, "web", "app:1")
	tg := "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/web/1"
	e.createService(t, &ecs.CreateServiceInput{ServiceName: aws.String("web"), TaskDefinition: aws.String(td), DesiredCount: aws.Int32(2),
		LoadBalancers: []types.LoadBalancer{{TargetGroupArn: aws.String(tg), ContainerName: aws.String("app"), ContainerPort: aws.Int32(80)}}})
	e.waitStable(t, "web")
	tasks := e.serviceTasks(t, "web")
	out, err := e.ecs.StopTask(ctx, &ecs.StopTaskInput{Task: aws.String(tasks[0]), Reason: aws.String("going")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.Task.LastStatus) != "DEACTIVATING" || aws.ToString(out.Task.DesiredStatus) != "STOPPED" || out.Task.StopCode != types.TaskStopCodeUserInitiated {
		t.Fatalf("StopTask answered %s/%s %s", aws.ToString(out.Task.LastStatus), aws.ToString(out.Task.DesiredStatus), out.Task.StopCode)
	}
	eventually(t, "its target draining", func() bool { _, d := lbs.registered(tg); return d == 1 })
	time.Sleep(1200 * time.Millisecond)
	a.mu.Lock()
	last := a.last[tasks[0]]
	a.mu.Unlock()
	if last != "RUNNING" {
		t.Errorf("host told to stop the task while it drains: %s", last)
	}
	lbs.drained()
	eventually(t, "the stopped task STOPPED and replaced", func() bool {
		d, err := e.ecs.DescribeTasks(ctx, &ecs.DescribeTasksInput{Tasks: tasks[:1]})
		return err == nil && aws.ToString(d.Tasks[0].LastStatus) == "STOPPED" && e.service(t, "web").RunningCount == 2
	})

	// A second StopTask cuts a drain short.
	tasks = e.serviceTasks(t, "web")
	if _, err := e.ecs.StopTask(ctx, &ecs.StopTaskInput{Task: aws.String(tasks[0])}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ecs.StopTask(ctx, &ecs.StopTaskInput{Task: aws.String(tasks[0])}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the twice-stopped task STOPPED while its target still drains", func() bool {
		d, err := e.ecs.DescribeTasks(ctx, &ecs.DescribeTasksInput{Tasks: tasks[:1]})
		return err == nil && aws.ToString(d.Tasks[0].LastStatus) == "STOPPED"
	})
}
