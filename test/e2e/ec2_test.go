package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
)

// instance is a `berth agent --cluster` process: a host the user joined to
// their cluster, here one of several on this machine with its own data dir.
type instance struct {
	name, dir, addr string
	cmd             *exec.Cmd
	logPath         string
}

// startInstance joins a container instance to cluster in zone az; its
// bridge tasks publish ports on addr (a loopback address of its own).
func (e *devEnv) startInstance(cluster, name, az, addr string, extra ...string) *instance {
	e.t.Helper()
	in := &instance{name: name, dir: filepath.Join(e.DataDir, "instance-"+name), addr: addr}
	if err := os.MkdirAll(in.dir, 0o755); err != nil {
		e.t.Fatal(err)
	}
	in.logPath = filepath.Join(in.dir, "agent.log")
	logf, err := os.Create(in.logPath)
	if err != nil {
		e.t.Fatal(err)
	}
	defer logf.Close()
	args := append([]string{"agent", "--data-dir", in.dir, "--server", e.URL, "--cluster", cluster,
		"--availability-zone", az, "--host-address", addr, "--region", "us-east-1"}, extra...)
	in.cmd = exec.Command(berthBin, args...)
	in.cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test")
	in.cmd.Stdout, in.cmd.Stderr = logf, logf
	in.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := in.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		if e.t.Failed() {
			b, _ := os.ReadFile(in.logPath)
			e.t.Logf("instance %s log:\n%s", name, b)
		}
		in.stop()
		CleanupDataDir(in.dir)
	})
	return in
}

// stop ends the agent (SIGTERM, then SIGKILL).
func (in *instance) stop() {
	if in.cmd == nil {
		return
	}
	_ = in.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _, _ = in.cmd.Process.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = in.cmd.Process.Kill()
		<-done
	}
	in.cmd = nil
}

// kill is a host dying: SIGKILL of the agent, not restarted.
func (in *instance) kill() {
	_ = in.cmd.Process.Kill()
	_, _ = in.cmd.Process.Wait()
	in.cmd = nil
}

// nodeID is the instance's EC2-shaped id, once it has one.
func (in *instance) nodeID() string {
	b, _ := os.ReadFile(filepath.Join(in.dir, "node-id"))
	return strings.TrimSpace(string(b))
}

// waitInstances waits until the cluster has n connected container
// instances and returns their ARNs by EC2 instance id.
func (e *devEnv) waitInstances(cluster string, n int) map[string]string {
	e.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		out := map[string]string{}
		l, err := e.ECS.ListContainerInstances(e.ctx(), &ecs.ListContainerInstancesInput{Cluster: aws.String(cluster)})
		if err == nil && len(l.ContainerInstanceArns) > 0 {
			d, err := e.ECS.DescribeContainerInstances(e.ctx(), &ecs.DescribeContainerInstancesInput{Cluster: aws.String(cluster), ContainerInstances: l.ContainerInstanceArns})
			if err == nil {
				for _, ci := range d.ContainerInstances {
					if ci.AgentConnected {
						out[aws.ToString(ci.Ec2InstanceId)] = aws.ToString(ci.ContainerInstanceArn)
					}
				}
			}
		}
		if len(out) == n {
			return out
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("cluster %s: %d connected container instances after 60 s, want %d (%v)", cluster, len(out), n, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// ec2TaskDef is a bridge-mode EC2 task definition: busybox httpd on
// container port 8080, published on a dynamic host port.
func ec2TaskDef(family, image string, memory int) map[string]any {
	return map[string]any{
		"family":                  family,
		"networkMode":             "bridge",
		"requiresCompatibilities": []string{"EC2"},
		"containerDefinitions": []map[string]any{{
			"name": "web", "image": image, "essential": true, "memory": memory, "stopTimeout": 2,
			"command":      []string{"sh", "-c", "echo task $HOSTNAME > /tmp/index.html; exec httpd -f -p 8080 -h /tmp"},
			"portMappings": []map[string]any{{"containerPort": 8080, "hostPort": 0, "protocol": "tcp"}},
		}},
	}
}

type cliRun struct {
	Tasks []struct {
		TaskArn              string `json:"taskArn"`
		ContainerInstanceArn string `json:"containerInstanceArn"`
	} `json:"tasks"`
	Failures []cliFailure `json:"failures"`
}

// TestEC2LaunchType: two container instances joined with `berth agent
// --cluster` (separate processes and data dirs, one per zone), driven by the
// real AWS CLI: placement strategies and constraints, bridge networking
// with dynamic host ports, draining, isolation from another account, and
// the loss of a host.
func TestEC2LaunchType(t *testing.T) {
	t.Parallel()
	e := startDev(t)
	cli := newAWSCLI(t, e)
	cli.call(nil, "ecs", "create-cluster", "--cluster-name", "own")
	a := e.startInstance("own", "a", "us-east-1a", fmt.Sprintf("127.104.%d.1", e.pool))
	b := e.startInstance("own", "b", "us-east-1b", fmt.Sprintf("127.104.%d.2", e.pool))
	arns := e.waitInstances("own", 2)
	arnA, arnB := arns[a.nodeID()], arns[b.nodeID()]
	if arnA == "" || arnB == "" {
		t.Fatalf("instances %v, want %s and %s", arns, a.nodeID(), b.nodeID())
	}
	cli.call(nil, "ecs", "put-attributes", "--cluster", "own", "--attributes", "name=disk,value=ssd,targetId="+arnA)
	td := cli.register("web", ec2TaskDef("web", e.Image, 64))

	run := func(args ...string) cliRun {
		t.Helper()
		var out cliRun
		cli.call(&out, append([]string{"ecs", "run-task", "--cluster", "own", "--task-definition", td, "--launch-type", "EC2"}, args...)...)
		return out
	}
	on := func(r cliRun) []string {
		var s []string
		for _, tk := range r.Tasks {
			s = append(s, tk.ContainerInstanceArn)
		}
		return s
	}

	// binpack on memory fills one host first.
	bin := run("--count", "2", "--group", "binpack", "--placement-strategy", "type=binpack,field=memory")
	if got := on(bin); len(got) != 2 || got[0] != got[1] {
		t.Fatalf("binpack on memory: %v (failures %v)", got, bin.Failures)
	}
	// Bridge mode: two copies on one host get different host ports, both
	// serving on the host's address.
	ports := map[int]bool{}
	host := a.addr
	if bin.Tasks[0].ContainerInstanceArn == arnB {
		host = b.addr
	}
	for _, tk := range bin.Tasks {
		task := e.waitStatus("own", tk.TaskArn, "RUNNING", 60*time.Second)
		if aws.ToString(task.LastStatus) != "RUNNING" || len(task.Containers) != 1 || len(task.Containers[0].NetworkBindings) != 1 {
			t.Fatalf("bridge task: %s, containers %+v", aws.ToString(task.LastStatus), task.Containers)
		}
		nb := task.Containers[0].NetworkBindings[0]
		port := int(aws.ToInt32(nb.HostPort))
		if aws.ToInt32(nb.ContainerPort) != 8080 || port < 49153 || aws.ToString(nb.BindIP) != host {
			t.Fatalf("network binding %+v (host %s)", nb, host)
		}
		ports[port] = true
		body := httpGet(t, fmt.Sprintf("http://%s:%d/", host, port))
		if !strings.HasPrefix(body, "task ") {
			t.Fatalf("GET %s:%d: %q", host, port, body)
		}
	}
	if len(ports) != 2 {
		t.Fatalf("two copies on one host share a host port: %v", ports)
	}

	// spread over zones alternates.
	spread := run("--count", "2", "--group", "spread", "--placement-strategy", "type=spread,field=attribute:ecs.availability-zone")
	if got := on(spread); len(got) != 2 || got[0] == got[1] {
		t.Fatalf("spread over zones: %v (failures %v)", got, spread.Failures)
	}
	// distinctInstance: 3 tasks on 2 hosts, one fails as ECS fails it.
	distinct := run("--count", "3", "--group", "distinct", "--placement-constraints", "type=distinctInstance")
	if len(distinct.Tasks) != 2 || len(distinct.Failures) != 1 || distinct.Failures[0].Reason != "DistinctInstance placement constraint unsatisfied." {
		t.Fatalf("distinctInstance, 3 on 2 hosts: %d tasks, failures %+v", len(distinct.Tasks), distinct.Failures)
	}
	// memberOf on a custom attribute: only the matching host.
	member := run("--count", "2", "--group", "member", "--placement-constraints", "type=memberOf,expression=attribute:disk == ssd")
	if got := on(member); len(got) != 2 || got[0] != arnA || got[1] != arnA {
		t.Fatalf("memberOf disk == ssd: %v, want both on %s", got, arnA)
	}
	var filtered struct {
		ContainerInstanceArns []string `json:"containerInstanceArns"`
	}
	cli.call(&filtered, "ecs", "list-container-instances", "--cluster", "own", "--filter", "attribute:disk == ssd")
	if len(filtered.ContainerInstanceArns) != 1 || filtered.ContainerInstanceArns[0] != arnA {
		t.Fatalf("list-container-instances --filter: %v", filtered.ContainerInstanceArns)
	}
	for _, r := range []cliRun{bin, spread, distinct, member} {
		for _, tk := range r.Tasks {
			cli.call(nil, "ecs", "stop-task", "--cluster", "own", "--task", tk.TaskArn)
		}
	}

	// Another account sees none of it and can change none of it.
	other := e.otherAccountCLI(t)
	other.fail("ClusterNotFoundException", "ecs", "list-container-instances", "--cluster", "arn:aws:ecs:us-east-1:000000000000:cluster/own")
	other.fail("ClusterNotFoundException", "ecs", "update-container-instances-state", "--cluster", "arn:aws:ecs:us-east-1:000000000000:cluster/own",
		"--container-instances", arnA, "--status", "DRAINING")
	other.fail("ClusterNotFoundException", "ecs", "start-task", "--cluster", "arn:aws:ecs:us-east-1:000000000000:cluster/own",
		"--container-instances", arnA, "--task-definition", "web")

	// A service over both hosts (spread over zones by default) behind an
	// ALB with an instance target group: the targets are the instances and
	// the tasks' dynamic host ports. Draining a host moves its task to the
	// other with no failed request.
	app := &albApp{e: e, lbc: elb.NewFromConfig(e.awsConfig()), cluster: "own", name: "web"}
	app.instanceALB()
	svc := cli.register("websvc", ec2TaskDef("websvc", e.Image, 64))
	cli.call(nil, "ecs", "create-service", "--cluster", "own", "--service-name", "web", "--task-definition", svc,
		"--desired-count", "2", "--launch-type", "EC2", "--deployment-configuration", "minimumHealthyPercent=100,maximumPercent=200",
		"--load-balancers", "targetGroupArn="+app.tgArn+",containerName=web,containerPort=8080")
	cli.call(nil, "ecs", "wait", "services-stable", "--cluster", "own", "--services", "web")
	if got := e.serviceHosts("own", "web"); got[arnA] != 1 || got[arnB] != 1 {
		t.Fatalf("service tasks by host: %v", got)
	}
	if ids := app.waitInstanceTargets(2); ids[a.nodeID()] != 1 || ids[b.nodeID()] != 1 {
		t.Fatalf("instance targets %v, want %s and %s", ids, a.nodeID(), b.nodeID())
	}
	loop := app.startLoop()
	cli.call(nil, "ecs", "update-container-instances-state", "--cluster", "own", "--container-instances", arnA, "--status", "DRAINING")
	e.waitServiceHosts("own", "web", map[string]int{arnB: 2}, 90*time.Second)
	if ids := app.waitInstanceTargets(2); ids[b.nodeID()] != 2 {
		t.Fatalf("after draining a, targets %v", ids)
	}
	loop.end(t, "draining a container instance behind the ALB")
	cli.call(nil, "ecs", "update-container-instances-state", "--cluster", "own", "--container-instances", arnA, "--status", "ACTIVE")

	// Host loss: b's agent dies for good. Once its lease expires (the
	// server's NodeTTL) its tasks are stopped as lost and the service
	// replaces them on a.
	lost := e.serviceTaskArns("own", "web")
	b.kill()
	killed := time.Now()
	e.waitServiceHosts("own", "web", map[string]int{arnA: 2}, 60*time.Second)
	t.Logf("the service was back on a %.1f s after b's agent was killed (lease 20 s, grace 5 s)", time.Since(killed).Seconds())
	// Its tasks are STOPPED once the lease (20 s) and the grace (5 s) have
	// passed, or sooner: the ALB finds their published ports gone (they
	// were the agent's forwarders) and the service replaces them as
	// unhealthy first.
	for _, arn := range lost {
		tk := e.waitStatus("own", arn, "STOPPED", 40*time.Second)
		reason := aws.ToString(tk.StoppedReason)
		if aws.ToString(tk.LastStatus) != "STOPPED" || !(strings.Contains(reason, "lost") || strings.Contains(reason, "health checks")) {
			t.Fatalf("a task of the lost host: %s %q", aws.ToString(tk.LastStatus), reason)
		}
		t.Logf("task of the lost host: STOPPED %.1f s after the kill: %s", time.Since(killed).Seconds(), reason)
	}
}

// instanceALB makes an internet-facing ALB in the default subnets with an
// instance target group (port 8080 is the default; each target names its
// own host port), 5 s health checks and a 5 s deregistration delay.
func (a *albApp) instanceALB() {
	e, t := a.e, a.e.t
	t.Helper()
	ctx := e.ctx()
	subnets, err := e.EC2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: e.subnets()})
	if err != nil {
		t.Fatal(err)
	}
	a.vpcID = aws.ToString(subnets.Subnets[0].VpcId)
	sg, err := e.EC2.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String(a.name + "-alb"),
		Description: aws.String("alb"), VpcId: aws.String(a.vpcID)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.EC2.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: sg.GroupId,
		IpProtocol: aws.String("tcp"), FromPort: aws.Int32(80), ToPort: aws.Int32(80), CidrIp: aws.String("0.0.0.0/0")}); err != nil {
		t.Fatal(err)
	}
	lb, err := a.lbc.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{Name: aws.String(a.name), Subnets: e.subnets(),
		SecurityGroups: []string{aws.ToString(sg.GroupId)}, Type: elbtypes.LoadBalancerTypeEnumApplication})
	if err != nil {
		t.Fatal(err)
	}
	a.lbArn, a.dns = aws.ToString(lb.LoadBalancers[0].LoadBalancerArn), aws.ToString(lb.LoadBalancers[0].DNSName)
	a.targetGroupAndListener(elbtypes.TargetTypeEnumInstance)
}

// waitInstanceTargets waits (up to a minute) until the target group holds
// exactly n targets, all healthy, and counts them by instance.
func (a *albApp) waitInstanceTargets(n int) map[string]int {
	t := a.e.t
	t.Helper()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(500 * time.Millisecond) {
		health, err := a.lbc.DescribeTargetHealth(a.e.ctx(), &elb.DescribeTargetHealthInput{TargetGroupArn: aws.String(a.tgArn)})
		if err != nil {
			t.Fatal(err)
		}
		ids := map[string]int{}
		all := len(health.TargetHealthDescriptions) == n
		for _, h := range health.TargetHealthDescriptions {
			ids[aws.ToString(h.Target.Id)]++
			all = all && h.TargetHealth.State == elbtypes.TargetHealthStateEnumHealthy
		}
		if all {
			return ids
		}
		if time.Now().After(deadline) {
			t.Fatalf("targets not %d healthy:\n%s", n, a.describe())
		}
	}
}

// serviceTaskArns lists the service's running tasks.
func (e *devEnv) serviceTaskArns(cluster, service string) []string {
	e.t.Helper()
	l, err := e.ECS.ListTasks(e.ctx(), &ecs.ListTasksInput{Cluster: aws.String(cluster), ServiceName: aws.String(service)})
	if err != nil {
		e.t.Fatal(err)
	}
	return l.TaskArns
}

// serviceHosts counts the service's RUNNING tasks by container instance.
func (e *devEnv) serviceHosts(cluster, service string) map[string]int {
	e.t.Helper()
	out := map[string]int{}
	arns := e.serviceTaskArns(cluster, service)
	if len(arns) == 0 {
		return out
	}
	d, err := e.ECS.DescribeTasks(e.ctx(), &ecs.DescribeTasksInput{Cluster: aws.String(cluster), Tasks: arns})
	if err != nil {
		e.t.Fatal(err)
	}
	for _, tk := range d.Tasks {
		if aws.ToString(tk.LastStatus) == "RUNNING" && aws.ToString(tk.DesiredStatus) == "RUNNING" {
			out[aws.ToString(tk.ContainerInstanceArn)]++
		}
	}
	return out
}

func (e *devEnv) waitServiceHosts(cluster, service string, want map[string]int, timeout time.Duration) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := e.serviceHosts(cluster, service)
		same := len(got) == len(want)
		for k, v := range want {
			same = same && got[k] == v
		}
		if same {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("service %s: running tasks by host %v after %s, want %v", service, got, timeout, want)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// otherAccountCLI is the AWS CLI as a second account, made by `berth admin
// create-account`.
func (e *devEnv) otherAccountCLI(t *testing.T) *awsCLI {
	t.Helper()
	out := e.berth("admin", "create-account")
	var akid, secret string
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "export AWS_ACCESS_KEY_ID="); ok {
			akid = v
		}
		if v, ok := strings.CutPrefix(line, "export AWS_SECRET_ACCESS_KEY="); ok {
			secret = v
		}
	}
	if akid == "" || secret == "" {
		t.Fatalf("create-account printed %q", out)
	}
	c := newAWSCLI(t, e)
	for i, kv := range c.env {
		switch {
		case strings.HasPrefix(kv, "AWS_ACCESS_KEY_ID="):
			c.env[i] = "AWS_ACCESS_KEY_ID=" + akid
		case strings.HasPrefix(kv, "AWS_SECRET_ACCESS_KEY="):
			c.env[i] = "AWS_SECRET_ACCESS_KEY=" + secret
		}
	}
	return c
}

// httpGet fetches a URL on a loopback address and returns the body.
func httpGet(t *testing.T, url string) string {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	var last error
	for range 20 {
		resp, err := c.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return string(b)
			}
			last = fmt.Errorf("%s", resp.Status)
		} else {
			last = err
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("GET %s: %v", url, last)
	return ""
}
