package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
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

// albApp is a web service behind an ALB in the default subnets: the ALB's
// group admits the world on port 80, the tasks' group admits only the
// ALB's group on 8080, and each task serves "<version> <its address>".
type albApp struct {
	e                 *devEnv
	lbc               *elb.Client
	cluster, name     string
	lbArn, dns, tgArn string
	vpcID, webSG, td  string
}

// newALBApp creates the ALB, its target group (5 s health checks, healthy
// after 2, a 5 s deregistration delay) and listener, and a service of
// desired tasks serving version.
func newALBApp(e *devEnv, cluster, name string, desired int, version string) *albApp {
	t := e.t
	t.Helper()
	ctx := e.ctx()
	a := &albApp{e: e, lbc: elb.NewFromConfig(e.awsConfig()), cluster: cluster, name: name}
	subnets, err := e.EC2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: e.subnets()})
	if err != nil {
		t.Fatal(err)
	}
	a.vpcID = aws.ToString(subnets.Subnets[0].VpcId)
	group := func(name string) string {
		out, err := e.EC2.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String(name),
			Description: aws.String(name), VpcId: aws.String(a.vpcID)})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.GroupId)
	}
	albSG := group(name + "-alb")
	a.webSG = group(name + "-web")
	if _, err := e.EC2.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(albSG),
		IpProtocol: aws.String("tcp"), FromPort: aws.Int32(80), ToPort: aws.Int32(80), CidrIp: aws.String("0.0.0.0/0")}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.EC2.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(a.webSG),
		IpPermissions: []ec2types.IpPermission{{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(8080), ToPort: aws.Int32(8080),
			UserIdGroupPairs: []ec2types.UserIdGroupPair{{GroupId: aws.String(albSG)}}}}}); err != nil {
		t.Fatal(err)
	}
	lb, err := a.lbc.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{Name: aws.String(name), Subnets: e.subnets(),
		SecurityGroups: []string{albSG}, Type: elbtypes.LoadBalancerTypeEnumApplication})
	if err != nil {
		t.Fatal(err)
	}
	a.lbArn, a.dns = aws.ToString(lb.LoadBalancers[0].LoadBalancerArn), aws.ToString(lb.LoadBalancers[0].DNSName)
	a.targetGroupAndListener(elbtypes.TargetTypeEnumIp)
	if _, err := e.ECS.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String(cluster)}); err != nil {
		t.Fatal(err)
	}
	a.td = a.register(version)
	if _, err := e.ECS.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String(cluster), ServiceName: aws.String(name),
		TaskDefinition: aws.String(a.td), DesiredCount: aws.Int32(int32(desired)), LaunchType: types.LaunchTypeFargate,
		DeploymentConfiguration: &types.DeploymentConfiguration{MinimumHealthyPercent: aws.Int32(100), MaximumPercent: aws.Int32(200)},
		LoadBalancers:           []types.LoadBalancer{{TargetGroupArn: aws.String(a.tgArn), ContainerName: aws.String("web"), ContainerPort: aws.Int32(8080)}},
		NetworkConfiguration: &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{
			Subnets: e.subnets(), SecurityGroups: []string{a.webSG}}}}); err != nil {
		t.Fatal(err)
	}
	return a
}

// targetGroupAndListener makes the app's target group of type tt (HTTP
// 8080, 5 s health checks, healthy after 2, a 5 s deregistration delay) and
// the ALB's listener on port 80 forwarding to it.
func (a *albApp) targetGroupAndListener(tt elbtypes.TargetTypeEnum) {
	t := a.e.t
	t.Helper()
	ctx := a.e.ctx()
	tg, err := a.lbc.CreateTargetGroup(ctx, &elb.CreateTargetGroupInput{Name: aws.String(a.name), Protocol: elbtypes.ProtocolEnumHttp,
		Port: aws.Int32(8080), VpcId: aws.String(a.vpcID), TargetType: tt,
		HealthCheckIntervalSeconds: aws.Int32(5), HealthCheckTimeoutSeconds: aws.Int32(2), HealthyThresholdCount: aws.Int32(2)})
	if err != nil {
		t.Fatal(err)
	}
	a.tgArn = aws.ToString(tg.TargetGroups[0].TargetGroupArn)
	if _, err := a.lbc.ModifyTargetGroupAttributes(ctx, &elb.ModifyTargetGroupAttributesInput{TargetGroupArn: aws.String(a.tgArn),
		Attributes: []elbtypes.TargetGroupAttribute{{Key: aws.String("deregistration_delay.timeout_seconds"), Value: aws.String("5")}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.lbc.CreateListener(ctx, &elb.CreateListenerInput{LoadBalancerArn: aws.String(a.lbArn), Protocol: elbtypes.ProtocolEnumHttp,
		Port: aws.Int32(80), DefaultActions: []elbtypes.Action{{Type: elbtypes.ActionTypeEnumForward, TargetGroupArn: aws.String(a.tgArn)}}}); err != nil {
		t.Fatal(err)
	}
}

// register registers a revision of the app's task definition serving version.
func (a *albApp) register(version string) string {
	web := a.e.container("web", "sh", "-c", `mkdir -p /www && echo "`+version+` $(ip -4 -o addr show dev eth0 | sed 's/.*inet \([0-9.]*\).*/\1/')" > /www/index.html && exec httpd -f -p 8080 -h /www`)
	web.PortMappings = []types.PortMapping{{ContainerPort: aws.Int32(8080)}}
	return a.e.registerTask(a.name, "256", "512", web)
}

// waitStable waits (up to 2 minutes) for `aws ecs wait services-stable`.
func (a *albApp) waitStable() {
	t := a.e.t
	t.Helper()
	ctx := a.e.ctx()
	waiter := ecs.NewServicesStableWaiter(a.e.ECS, func(o *ecs.ServicesStableWaiterOptions) { o.MinDelay, o.MaxDelay = time.Second, 2*time.Second })
	if err := waiter.Wait(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(a.cluster), Services: []string{a.name}}, 2*time.Minute); err != nil {
		t.Fatalf("services-stable: %v\n%s", err, a.describe())
	}
}

// describe is the service's counts and events and the targets' health, for failures.
func (a *albApp) describe() string {
	ctx := a.e.ctx()
	var b strings.Builder
	svc, _ := a.e.ECS.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(a.cluster), Services: []string{a.name}})
	if svc != nil && len(svc.Services) == 1 {
		s := svc.Services[0]
		fmt.Fprintf(&b, "running %d pending %d desired %d deployments %d\n", s.RunningCount, s.PendingCount, s.DesiredCount, len(s.Deployments))
		for _, ev := range s.Events {
			fmt.Fprintf(&b, "event: %s\n", aws.ToString(ev.Message))
		}
	}
	health, _ := a.lbc.DescribeTargetHealth(ctx, &elb.DescribeTargetHealthInput{TargetGroupArn: aws.String(a.tgArn)})
	if health != nil {
		for _, h := range health.TargetHealthDescriptions {
			fmt.Fprintf(&b, "target %s:%d %s %s %s\n", aws.ToString(h.Target.Id), aws.ToInt32(h.Target.Port), h.TargetHealth.State,
				h.TargetHealth.Reason, aws.ToString(h.TargetHealth.Description))
		}
	}
	return b.String()
}

// waitHealthy waits (up to a minute) until the target group holds exactly
// n targets, all healthy, and returns their addresses.
func (a *albApp) waitHealthy(n int) map[string]bool {
	t := a.e.t
	t.Helper()
	ctx := a.e.ctx()
	ips := map[string]bool{}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(500 * time.Millisecond) {
		health, err := a.lbc.DescribeTargetHealth(ctx, &elb.DescribeTargetHealthInput{TargetGroupArn: aws.String(a.tgArn)})
		if err != nil {
			t.Fatal(err)
		}
		clear(ips)
		all := true
		for _, h := range health.TargetHealthDescriptions {
			ips[aws.ToString(h.Target.Id)] = true
			all = all && h.TargetHealth.State == elbtypes.TargetHealthStateEnumHealthy
		}
		if all && len(ips) == n {
			return ips
		}
		if time.Now().After(deadline) {
			t.Fatalf("targets not %d healthy:\n%s", n, a.describe())
		}
	}
}

// get fetches the ALB's root page through its DNS name, as a user would.
func (a *albApp) get(c *http.Client) (int, string, error) {
	resp, err := c.Get("http://" + a.dns + "/")
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b)), err
}

// requestLoop sends requests through the ALB one after another, 10 ms
// apart, until stopped (or for 4 minutes at most), recording every answer.
type requestLoop struct {
	stop     chan struct{}
	done     chan struct{}
	mu       sync.Mutex
	n        int
	failures []string
	versions map[string]int // answers by their first word
	last     []string       // the most recent versions, newest last
}

func (a *albApp) startLoop() *requestLoop {
	l := &requestLoop{stop: make(chan struct{}), done: make(chan struct{}), versions: map[string]int{}}
	client := &http.Client{Timeout: 5 * time.Second}
	go func() {
		defer close(l.done)
		deadline := time.Now().Add(4 * time.Minute)
		for time.Now().Before(deadline) {
			select {
			case <-l.stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			code, body, err := a.get(client)
			l.mu.Lock()
			l.n++
			switch {
			case err != nil:
				l.failures = append(l.failures, fmt.Sprintf("%s: %v", time.Now().Format("15:04:05.000"), err))
			case code != http.StatusOK:
				l.failures = append(l.failures, fmt.Sprintf("%s: %d %q", time.Now().Format("15:04:05.000"), code, body))
			default:
				v, _, _ := strings.Cut(body, " ")
				l.versions[v]++
				l.last = append(l.last, v)
				if len(l.last) > 50 {
					l.last = l.last[1:]
				}
			}
			l.mu.Unlock()
		}
	}()
	return l
}

// onlyServing reports whether the last n answers were all version v.
func (l *requestLoop) onlyServing(v string, n int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.last) < n {
		return false
	}
	for _, x := range l.last[len(l.last)-n:] {
		if x != v {
			return false
		}
	}
	return true
}

// end stops the loop and fails the test for every failed request.
func (l *requestLoop) end(t *testing.T, what string) {
	t.Helper()
	close(l.stop)
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	t.Logf("%s: %d requests, answers by version %v, %d failed", what, l.n, l.versions, len(l.failures))
	if len(l.failures) > 0 {
		t.Errorf("%s: %d of %d requests failed: %v", what, len(l.failures), l.n, l.failures)
	}
	if l.n < 20 {
		t.Errorf("%s: only %d requests were made", what, l.n)
	}
}

func waitUntil(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
