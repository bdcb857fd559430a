package e2e

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
)

// TestNLBEcho: a Network Load Balancer without security groups in the
// default subnets, a TCP listener on 7000 forwarding to an ip target group
// of a service of 3 TCP echo tasks (busybox nc; each connection first gets
// the task's address, then its own bytes back). The tasks' group admits
// port 7000 from the VPC, where the NLB's interfaces are (as on AWS, ip
// targets see the NLB's private address). Once the service is stable and
// its targets healthy, every one of 30 connections from the host to the
// NLB's DNS name is echoed, and the flow hash spreads them over the tasks.
func TestNLBEcho(t *testing.T) {
	t.Parallel() // waits on health checks and rollouts: overlaps with the other service tests (own env, own address pools)
	e := startDev(t)
	ctx := e.ctx()
	lbc := elb.NewFromConfig(e.awsConfig())

	subnets, err := e.EC2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: e.subnets()})
	if err != nil {
		t.Fatal(err)
	}
	vpcID := aws.ToString(subnets.Subnets[0].VpcId)
	vpcs, err := e.EC2.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{VpcIds: []string{vpcID}})
	if err != nil || len(vpcs.Vpcs) != 1 {
		t.Fatalf("describe vpc %s: %v %v", vpcID, err, vpcs)
	}
	vpcCIDR := aws.ToString(vpcs.Vpcs[0].CidrBlock)
	sg, err := e.EC2.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String("echo"),
		Description: aws.String("echo"), VpcId: aws.String(vpcID)})
	if err != nil {
		t.Fatal(err)
	}
	echoSG := aws.ToString(sg.GroupId)
	if _, err := e.EC2.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(echoSG),
		IpPermissions: []ec2types.IpPermission{{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(7000), ToPort: aws.Int32(7000),
			IpRanges: []ec2types.IpRange{{CidrIp: aws.String(vpcCIDR)}}}}}); err != nil {
		t.Fatal(err)
	}

	lb, err := lbc.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{Name: aws.String("echo"), Subnets: e.subnets(),
		Type: elbtypes.LoadBalancerTypeEnumNetwork})
	if err != nil {
		t.Fatal(err)
	}
	lbArn, dns := aws.ToString(lb.LoadBalancers[0].LoadBalancerArn), aws.ToString(lb.LoadBalancers[0].DNSName)
	if lb.LoadBalancers[0].Type != elbtypes.LoadBalancerTypeEnumNetwork || len(lb.LoadBalancers[0].AvailabilityZones) != 3 {
		t.Fatalf("create-load-balancer replied type %s zones %v", lb.LoadBalancers[0].Type, lb.LoadBalancers[0].AvailabilityZones)
	}
	tg, err := lbc.CreateTargetGroup(ctx, &elb.CreateTargetGroupInput{Name: aws.String("echo"), Protocol: elbtypes.ProtocolEnumTcp,
		Port: aws.Int32(7000), VpcId: aws.String(vpcID), TargetType: elbtypes.TargetTypeEnumIp,
		HealthCheckIntervalSeconds: aws.Int32(5), HealthCheckTimeoutSeconds: aws.Int32(2), HealthyThresholdCount: aws.Int32(2)})
	if err != nil {
		t.Fatal(err)
	}
	tgArn := aws.ToString(tg.TargetGroups[0].TargetGroupArn)
	if _, err := lbc.ModifyTargetGroupAttributes(ctx, &elb.ModifyTargetGroupAttributesInput{TargetGroupArn: aws.String(tgArn),
		Attributes: []elbtypes.TargetGroupAttribute{{Key: aws.String("deregistration_delay.timeout_seconds"), Value: aws.String("5")}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := lbc.CreateListener(ctx, &elb.CreateListenerInput{LoadBalancerArn: aws.String(lbArn), Protocol: elbtypes.ProtocolEnumTcp,
		Port: aws.Int32(7000), DefaultActions: []elbtypes.Action{{Type: elbtypes.ActionTypeEnumForward, TargetGroupArn: aws.String(tgArn)}}}); err != nil {
		t.Fatal(err)
	}

	if _, err := e.ECS.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("nlb")}); err != nil {
		t.Fatal(err)
	}
	// Each connection runs /echo: the task's address on a line, then cat.
	echo := e.container("echo", "sh", "-c", `ip=$(ip -4 -o addr show dev eth0 | sed 's/.*inet \([0-9.]*\).*/\1/') && `+
		`printf '#!/bin/sh\necho ip=%s\nexec cat\n' "$ip" > /echo && chmod +x /echo && exec nc -ll -p 7000 -e /echo`)
	echo.PortMappings = []types.PortMapping{{ContainerPort: aws.Int32(7000), Protocol: types.TransportProtocolTcp}}
	td := e.registerTask("nlbecho", "256", "512", echo)
	if _, err := e.ECS.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("nlb"), ServiceName: aws.String("echo"),
		TaskDefinition: aws.String(td), DesiredCount: aws.Int32(3), LaunchType: types.LaunchTypeFargate,
		LoadBalancers: []types.LoadBalancer{{TargetGroupArn: aws.String(tgArn), ContainerName: aws.String("echo"), ContainerPort: aws.Int32(7000)}},
		NetworkConfiguration: &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{
			Subnets: e.subnets(), SecurityGroups: []string{echoSG}}}}); err != nil {
		t.Fatal(err)
	}
	waiter := ecs.NewServicesStableWaiter(e.ECS, func(o *ecs.ServicesStableWaiterOptions) { o.MinDelay, o.MaxDelay = time.Second, 2*time.Second })
	if err := waiter.Wait(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("nlb"), Services: []string{"echo"}}, 90*time.Second); err != nil {
		t.Fatalf("services-stable: %v\n%s", err, lbDiag(e, lbc, "nlb", "echo", tgArn))
	}
	ips := waitTargetsHealthy(t, e, lbc, "nlb", "echo", tgArn, 3)

	// The service's tasks are the targets, at their eni addresses.
	list, err := e.ECS.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String("nlb"), ServiceName: aws.String("echo")})
	if err != nil {
		t.Fatal(err)
	}
	taskIPs := map[string]bool{}
	for _, arn := range list.TaskArns {
		for _, a := range e.describe("nlb", arn).Attachments {
			for _, d := range a.Details {
				if aws.ToString(d.Name) == "privateIPv4Address" {
					taskIPs[aws.ToString(d.Value)] = true
				}
			}
		}
	}
	if len(taskIPs) != 3 || fmt.Sprint(taskIPs) != fmt.Sprint(ips) {
		t.Fatalf("targets %v, tasks at %v", ips, taskIPs)
	}

	addrs, err := net.LookupHost(dns)
	if err != nil || len(addrs) == 0 {
		t.Fatalf("resolve %s: %v %v", dns, addrs, err)
	}
	if !strings.HasPrefix(addrs[0], "127.") {
		t.Fatalf("%s resolves to %v, want a loopback address", dns, addrs)
	}
	seen := map[string]int{}
	for i := range 30 {
		ip, err := echoOnce(net.JoinHostPort(dns, "7000"), fmt.Sprintf("hello %d", i))
		if err != nil {
			t.Fatalf("connection %d to %s:7000: %v", i, dns, err)
		}
		if !ips[ip] {
			t.Fatalf("connection %d answered by %q, not a target of %v", i, ip, ips)
		}
		seen[ip]++
	}
	if len(seen) < 2 {
		t.Errorf("30 connections all went to %v; the flow hash should spread them", seen)
	}
	t.Logf("connections per target: %v", seen)

	// Scale-in: the task the scheduler stops leaves the target group and
	// drains before it is stopped, so no new connection fails meanwhile.
	if _, err := e.ECS.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("nlb"), Service: aws.String("echo"),
		DesiredCount: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	failures, n := 0, 0
	after := map[string]int{}
	var timeline []string // for a failure: who answered when
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		at := time.Now().UTC().Format("15:04:05.000")
		ip, err := echoOnce(net.JoinHostPort(dns, "7000"), "still there")
		n++
		if err != nil {
			failures++
			timeline = append(timeline, at+" "+err.Error())
			continue
		}
		after[ip]++
		timeline = append(timeline, at+" "+ip)
	}
	t.Logf("during the scale-in: %d connections, %d failed, answered by %v", n, failures, after)
	if failures > 0 {
		t.Errorf("%d of %d connections failed during a scale-in:\n%s", failures, n, strings.Join(timeline, "\n"))
	}
	now := waitTargetsHealthy(t, e, lbc, "nlb", "echo", tgArn, 2)
	list, err = e.ECS.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String("nlb"), ServiceName: aws.String("echo")})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.TaskArns) != 2 {
		t.Errorf("tasks after the scale-in: %v", list.TaskArns)
	}
	for ip := range now {
		if !ips[ip] {
			t.Errorf("target %s after the scale-in was not one of the tasks %v", ip, ips)
		}
	}
}

// echoOnce opens one connection, sends line, and returns the address the
// echo server announced after checking that line comes back.
func echoOnce(addr, line string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(c, "%s\n", line); err != nil {
		return "", err
	}
	r := bufio.NewReader(c)
	first, err := r.ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("read greeting: %w (got %q)", err, first)
	}
	ip, ok := strings.CutPrefix(strings.TrimSpace(first), "ip=")
	if !ok {
		return "", fmt.Errorf("greeting %q", first)
	}
	back, err := r.ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("read echo: %w (got %q)", err, back)
	}
	if strings.TrimSpace(back) != line {
		return "", fmt.Errorf("echo %q, want %q", back, line)
	}
	return ip, nil
}

// waitTargetsHealthy waits (a minute at most) until the target group has n
// targets, all healthy, and returns their addresses.
func waitTargetsHealthy(t *testing.T, e *devEnv, lbc *elb.Client, cluster, service, tgArn string, n int) map[string]bool {
	t.Helper()
	ctx := e.ctx()
	ips := map[string]bool{}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Second) {
		health, err := lbc.DescribeTargetHealth(ctx, &elb.DescribeTargetHealthInput{TargetGroupArn: aws.String(tgArn)})
		if err != nil {
			t.Fatal(err)
		}
		clear(ips)
		healthy := 0
		for _, h := range health.TargetHealthDescriptions {
			ips[aws.ToString(h.Target.Id)] = true
			if h.TargetHealth.State == elbtypes.TargetHealthStateEnumHealthy {
				healthy++
			}
		}
		if healthy == n && len(health.TargetHealthDescriptions) == n {
			return ips
		}
		if time.Now().After(deadline) {
			t.Fatalf("targets of %s not %d healthy:\n%s", tgArn, n, lbDiag(e, lbc, cluster, service, tgArn))
		}
	}
}

// lbDiag describes a service and its target group's health, for failures.
func lbDiag(e *devEnv, lbc *elb.Client, cluster, service, tgArn string) string {
	ctx := e.ctx()
	var b strings.Builder
	svc, _ := e.ECS.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(cluster), Services: []string{service}})
	if svc != nil && len(svc.Services) == 1 {
		s := svc.Services[0]
		fmt.Fprintf(&b, "running %d pending %d desired %d\n", s.RunningCount, s.PendingCount, s.DesiredCount)
		for _, d := range s.Deployments {
			fmt.Fprintf(&b, "deployment %s %s %s running %d failed %d: %s\n", aws.ToString(d.Id), aws.ToString(d.Status),
				d.RolloutState, d.RunningCount, d.FailedTasks, aws.ToString(d.RolloutStateReason))
		}
		for _, ev := range s.Events {
			fmt.Fprintf(&b, "event: %s\n", aws.ToString(ev.Message))
		}
	}
	if tgArn != "" {
		health, _ := lbc.DescribeTargetHealth(ctx, &elb.DescribeTargetHealthInput{TargetGroupArn: aws.String(tgArn)})
		if health != nil {
			for _, h := range health.TargetHealthDescriptions {
				fmt.Fprintf(&b, "target %s:%d %s %s %s\n", aws.ToString(h.Target.Id), aws.ToInt32(h.Target.Port), h.TargetHealth.State,
					h.TargetHealth.Reason, aws.ToString(h.TargetHealth.Description))
			}
		}
	}
	return b.String()
}
