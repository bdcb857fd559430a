package cli

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
)

func TestAppName(t *testing.T) {
	for _, c := range []struct{ image, want string }{
		{"busybox:latest", "busybox"},
		{"busybox", "busybox"},
		{"127.0.0.1:4566/busybox:latest", "busybox"},
		{"registry.example.com:5000/team/My_App:v1", "my-app"},
		{"ghcr.io/org/web@sha256:" + strings.Repeat("ab", 32), "web"},
		{"ghcr.io/org/web:v2@sha256:" + strings.Repeat("ab", 32), "web"},
		{"localhost/__weird..name__", "weird-name"},
		{"app/" + strings.Repeat("a", 31) + "-bcd", strings.Repeat("a", 31)}, // cut at 32, then no trailing '-'
		{"___", ""},
	} {
		if got := appName(c.image); got != c.want {
			t.Errorf("appName(%q) = %q, want %q", c.image, got, c.want)
		}
	}
}

func TestSanitizeName(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"Hello World", "hello-world"},
		{"a--b", "a-b"},
		{"-a-", "a"},
		{"web.v2_beta", "web-v2-beta"},
		{"ÄÖÜ-x", "x"},
		{strings.Repeat("x", 40), strings.Repeat("x", 32)},
	} {
		if got := sanitizeName(c.in); got != c.want {
			t.Errorf("sanitizeName(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestCheckAppName(t *testing.T) {
	for _, c := range []struct {
		name string
		ok   bool
	}{
		{"hello", true},
		{"a", true},
		{"web-2", true},
		{strings.Repeat("a", 32), true},
		{strings.Repeat("a", 33), false},
		{"-web", false},
		{"web-", false},
		{"Web", false},
		{"web_app", false},
		{"internal-web", false},
		{"", false},
	} {
		if err := checkAppName(c.name); (err == nil) != c.ok {
			t.Errorf("checkAppName(%q) = %v, want ok %v", c.name, err, c.ok)
		}
	}
}

// registered is the task definition ECS returns for an input: the input's
// fields, ACTIVE, with what ECS adds (a revision, defaults).
func registered(in *deployOptions) *types.TaskDefinition {
	r := in.taskDefinitionInput()
	return &types.TaskDefinition{Family: r.Family, Revision: 3, Status: types.TaskDefinitionStatusActive,
		TaskDefinitionArn: aws.String("arn:aws:ecs:us-east-1:000000000000:task-definition/web:3"),
		NetworkMode:       r.NetworkMode, RequiresCompatibilities: r.RequiresCompatibilities,
		Compatibilities: []types.Compatibility{types.CompatibilityEc2, types.CompatibilityFargate},
		Cpu:             r.Cpu, Memory: r.Memory, ContainerDefinitions: r.ContainerDefinitions}
}

func TestTaskDefinitionDiff(t *testing.T) {
	base := deployOptions{image: "busybox:latest", name: "web", port: 8080, cpu: 256, memory: 512,
		env: []string{"A=1", "B=2"}, command: []string{"sh", "-c", "httpd -f"}}
	for _, c := range []struct {
		name string
		have func() *types.TaskDefinition
		opts func(o *deployOptions)
		want string
	}{
		{name: "same", want: ""},
		{name: "env order does not matter", opts: func(o *deployOptions) { o.env = []string{"B=2", "A=1"} }, want: ""},
		{name: "no family", have: func() *types.TaskDefinition { return nil }, want: "new family"},
		{name: "inactive", have: func() *types.TaskDefinition {
			td := registered(&base)
			td.Status = types.TaskDefinitionStatusInactive
			return td
		}, want: "no active revision"},
		{name: "image", opts: func(o *deployOptions) { o.image = "busybox:1.36" }, want: "image"},
		{name: "port", opts: func(o *deployOptions) { o.port = 9090 }, want: "port"},
		{name: "cpu", opts: func(o *deployOptions) { o.cpu = 512 }, want: "cpu"},
		{name: "memory", opts: func(o *deployOptions) { o.memory = 1024 }, want: "memory"},
		{name: "env value", opts: func(o *deployOptions) { o.env = []string{"A=1", "B=3"} }, want: "environment"},
		{name: "env added", opts: func(o *deployOptions) { o.env = append(o.env, "C=") }, want: "environment"},
		{name: "command", opts: func(o *deployOptions) { o.command = []string{"sh", "-c", "httpd -f -v"} }, want: "command"},
		{name: "no command", opts: func(o *deployOptions) { o.command = nil }, want: "command"},
		{name: "no command either side", have: func() *types.TaskDefinition {
			o := base
			o.command = []string{}
			return registered(&o)
		}, opts: func(o *deployOptions) { o.command = nil }, want: ""},
		{name: "two containers", have: func() *types.TaskDefinition {
			td := registered(&base)
			td.ContainerDefinitions = append(td.ContainerDefinitions, td.ContainerDefinitions[0])
			return td
		}, want: "containers"},
		{name: "container renamed", have: func() *types.TaskDefinition {
			td := registered(&base)
			td.ContainerDefinitions[0].Name = aws.String("main")
			return td
		}, want: "container name"},
		{name: "bridge mode", have: func() *types.TaskDefinition {
			td := registered(&base)
			td.NetworkMode = types.NetworkModeBridge
			return td
		}, want: "network mode or compatibility"},
	} {
		t.Run(c.name, func(t *testing.T) {
			have := registered(&base)
			if c.have != nil {
				have = c.have()
			}
			o := base
			o.env = append([]string(nil), base.env...)
			if c.opts != nil {
				c.opts(&o)
			}
			if got := taskDefinitionDiff(have, o.taskDefinitionInput()); got != c.want {
				t.Errorf("diff = %q, want %q", got, c.want)
			}
		})
	}
}

func TestHasIngress(t *testing.T) {
	tcp := func(from, to int32) ec2types.IpPermission {
		return ec2types.IpPermission{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(from), ToPort: aws.Int32(to)}
	}
	world := tcp(80, 80)
	world.IpRanges = []ec2types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}
	fromALB := tcp(8000, 9000)
	fromALB.UserIdGroupPairs = []ec2types.UserIdGroupPair{{GroupId: aws.String("sg-alb")}}
	all := ec2types.IpPermission{IpProtocol: aws.String("-1"), UserIdGroupPairs: []ec2types.UserIdGroupPair{{GroupId: aws.String("sg-all")}}}
	udp := ec2types.IpPermission{IpProtocol: aws.String("udp"), FromPort: aws.Int32(80), ToPort: aws.Int32(80),
		IpRanges: []ec2types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}}
	perms := []ec2types.IpPermission{world, fromALB, all, udp}
	for _, c := range []struct {
		name        string
		perms       []ec2types.IpPermission
		port        int32
		cidr, group string
		want        bool
	}{
		{"world on 80", perms, 80, "0.0.0.0/0", "", true},
		{"world on 81", perms, 81, "0.0.0.0/0", "", false},
		{"other cidr", perms, 80, "10.0.0.0/8", "", false},
		{"group in range", perms, 8080, "", "sg-alb", true},
		{"group out of range", perms, 9090, "", "sg-alb", false},
		{"other group", perms, 8080, "", "sg-other", false},
		{"all protocols", perms, 1234, "", "sg-all", true},
		{"udp only", []ec2types.IpPermission{udp}, 80, "0.0.0.0/0", "", false},
		{"none", nil, 80, "0.0.0.0/0", "", false},
	} {
		if got := hasIngress(c.perms, c.port, c.cidr, c.group); got != c.want {
			t.Errorf("%s: hasIngress = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestForwardsTo(t *testing.T) {
	fwd := func(arn string) elbtypes.Action {
		return elbtypes.Action{Type: elbtypes.ActionTypeEnumForward, TargetGroupArn: aws.String(arn)}
	}
	cfg := elbtypes.Action{Type: elbtypes.ActionTypeEnumForward, ForwardConfig: &elbtypes.ForwardActionConfig{
		TargetGroups: []elbtypes.TargetGroupTuple{{TargetGroupArn: aws.String("tg")}}}}
	for _, c := range []struct {
		name    string
		actions []elbtypes.Action
		want    bool
	}{
		{"forward", []elbtypes.Action{fwd("tg")}, true},
		{"forward config", []elbtypes.Action{cfg}, true},
		{"other group", []elbtypes.Action{fwd("other")}, false},
		{"two actions", []elbtypes.Action{fwd("tg"), fwd("tg")}, false},
		{"fixed response", []elbtypes.Action{{Type: elbtypes.ActionTypeEnumFixedResponse}}, false},
		{"none", nil, false},
	} {
		if got := forwardsTo(c.actions, "tg"); got != c.want {
			t.Errorf("%s: forwardsTo = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestRolloutDone(t *testing.T) {
	const td1, td2 = "arn:aws:ecs:us-east-1:0:task-definition/web:1", "arn:aws:ecs:us-east-1:0:task-definition/web:2"
	dep := func(id, status, td string, rollout types.DeploymentRolloutState) types.Deployment {
		return types.Deployment{Id: aws.String(id), Status: aws.String(status), TaskDefinition: aws.String(td), RolloutState: rollout,
			RolloutStateReason: aws.String("reason " + id)}
	}
	svc := func(running, pending, desired int32, deps ...types.Deployment) *types.Service {
		return &types.Service{RunningCount: running, PendingCount: pending, DesiredCount: desired, Deployments: deps}
	}
	for _, c := range []struct {
		name    string
		s       *types.Service
		depID   string
		done    bool
		wantErr string
	}{
		{"steady", svc(2, 0, 2, dep("d2", "PRIMARY", td2, "COMPLETED")), "d2", true, ""},
		{"still rolling", svc(3, 0, 2, dep("d2", "PRIMARY", td2, "IN_PROGRESS"), dep("d1", "ACTIVE", td1, "COMPLETED")), "d2", false, ""},
		{"completed but old tasks draining", svc(3, 0, 2, dep("d2", "PRIMARY", td2, "COMPLETED"), dep("d1", "ACTIVE", td1, "COMPLETED")), "d2", false, ""},
		{"pending", svc(2, 1, 3, dep("d2", "PRIMARY", td2, "COMPLETED")), "d2", false, ""},
		{"failed", svc(0, 0, 2, dep("d2", "PRIMARY", td2, "FAILED")), "d2", false, "reason d2"},
		{"rolled back", svc(2, 0, 2, dep("d3", "PRIMARY", td1, "IN_PROGRESS"), dep("d2", "ACTIVE", td2, "FAILED")), "d2", false, "reason d2"},
		{"went back", svc(2, 0, 2, dep("d3", "PRIMARY", td1, "IN_PROGRESS")), "d2", false, "went back to web:1"},
		{"an older failure of the same revision", svc(2, 0, 2, dep("d4", "PRIMARY", td2, "COMPLETED")), "d4", true, ""},
		{"older failure still draining", svc(2, 0, 2, dep("d4", "PRIMARY", td2, "IN_PROGRESS"), dep("d2", "ACTIVE", td2, "FAILED")), "d4", false, ""},
	} {
		done, err := rolloutDone(c.s, td2, c.depID)
		if done != c.done || (err == nil) != (c.wantErr == "") || (err != nil && !strings.Contains(err.Error(), c.wantErr)) {
			t.Errorf("%s: rolloutDone = %v, %v; want %v, %q", c.name, done, err, c.done, c.wantErr)
		}
	}
}

func TestWriteServiceTable(t *testing.T) {
	services := []types.Service{
		{ServiceName: aws.String("hello"), Status: aws.String("ACTIVE"), DesiredCount: 2, RunningCount: 2,
			TaskDefinition: aws.String("arn:aws:ecs:us-east-1:000000000000:task-definition/hello:3"),
			Deployments: []types.Deployment{
				{Status: aws.String("ACTIVE"), RolloutState: types.DeploymentRolloutStateCompleted},
				{Status: aws.String("PRIMARY"), RolloutState: types.DeploymentRolloutStateInProgress}}},
		{ServiceName: aws.String("a-much-longer-name"), Status: aws.String("DRAINING"), PendingCount: 1,
			TaskDefinition: aws.String("arn:aws:ecs:us-east-1:000000000000:task-definition/w:12")},
	}
	var b strings.Builder
	if err := writeServiceTable(&b, services); err != nil {
		t.Fatal(err)
	}
	want := `NAME                STATUS    DESIRED  RUNNING  PENDING  TASK DEFINITION  ROLLOUT
hello               ACTIVE    2        2        0        hello:3          IN_PROGRESS
a-much-longer-name  DRAINING  0        0        1        w:12             
`
	if b.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", b.String(), want)
	}
	b.Reset()
	if err := writeServiceTable(&b, nil); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(b.String()); !strings.HasPrefix(got, "NAME") || strings.Contains(got, "\n") {
		t.Errorf("empty table = %q, want the header alone", got)
	}
}

func TestServiceSteady(t *testing.T) {
	primary := func(r types.DeploymentRolloutState) types.Deployment {
		return types.Deployment{Status: aws.String("PRIMARY"), RolloutState: r}
	}
	for _, c := range []struct {
		name string
		s    types.Service
		want bool
	}{
		{"steady", types.Service{DesiredCount: 3, RunningCount: 3, Deployments: []types.Deployment{primary("COMPLETED")}}, true},
		{"short", types.Service{DesiredCount: 3, RunningCount: 2, Deployments: []types.Deployment{primary("COMPLETED")}}, false},
		{"over", types.Service{DesiredCount: 2, RunningCount: 3, Deployments: []types.Deployment{primary("COMPLETED")}}, false},
		{"in progress", types.Service{DesiredCount: 3, RunningCount: 3, Deployments: []types.Deployment{primary("IN_PROGRESS")}}, false},
		{"two deployments", types.Service{DesiredCount: 3, RunningCount: 3, Deployments: []types.Deployment{primary("COMPLETED"),
			{Status: aws.String("ACTIVE")}}}, false},
		{"no deployment", types.Service{}, false},
	} {
		if got := serviceSteady(&c.s); got != c.want {
			t.Errorf("%s: serviceSteady = %v, want %v", c.name, got, c.want)
		}
	}
}
