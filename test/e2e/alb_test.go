package e2e

import (
	"fmt"
	"io"
	"net/http"
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

// TestServiceBehindALB: an ALB in the default subnets (its group admits
// the world on port 80), a service of 3 web tasks whose group admits only
// the ALB's group, registered in a target group by the service scheduler;
// the service becomes stable once its targets are healthy, and the ALB's
// DNS name, resolved through /etc/hosts on the host, serves every task.
func TestServiceBehindALB(t *testing.T) {
	e := startDev(t)
	ctx := e.ctx()
	cfg := e.awsConfig()
	lbc := elb.NewFromConfig(cfg)

	subnets, err := e.EC2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: e.subnets()})
	if err != nil {
		t.Fatal(err)
	}
	vpcID := aws.ToString(subnets.Subnets[0].VpcId)
	group := func(name string) string {
		out, err := e.EC2.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String(name),
			Description: aws.String(name), VpcId: aws.String(vpcID)})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.GroupId)
	}
	albSG, webSG := group("alb"), group("web")
	if _, err := e.EC2.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(albSG),
		IpProtocol: aws.String("tcp"), FromPort: aws.Int32(80), ToPort: aws.Int32(80), CidrIp: aws.String("0.0.0.0/0")}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.EC2.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(webSG),
		IpPermissions: []ec2types.IpPermission{{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(8080), ToPort: aws.Int32(8080),
			UserIdGroupPairs: []ec2types.UserIdGroupPair{{GroupId: aws.String(albSG)}}}}}); err != nil {
		t.Fatal(err)
	}

	lb, err := lbc.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{Name: aws.String("web"), Subnets: e.subnets(),
		SecurityGroups: []string{albSG}, Type: elbtypes.LoadBalancerTypeEnumApplication})
	if err != nil {
		t.Fatal(err)
	}
	lbArn, dns := aws.ToString(lb.LoadBalancers[0].LoadBalancerArn), aws.ToString(lb.LoadBalancers[0].DNSName)
	tg, err := lbc.CreateTargetGroup(ctx, &elb.CreateTargetGroupInput{Name: aws.String("web"), Protocol: elbtypes.ProtocolEnumHttp,
		Port: aws.Int32(8080), VpcId: aws.String(vpcID), TargetType: elbtypes.TargetTypeEnumIp,
		HealthCheckIntervalSeconds: aws.Int32(5), HealthCheckTimeoutSeconds: aws.Int32(2), HealthyThresholdCount: aws.Int32(2)})
	if err != nil {
		t.Fatal(err)
	}
	tgArn := aws.ToString(tg.TargetGroups[0].TargetGroupArn)
	if _, err := lbc.CreateListener(ctx, &elb.CreateListenerInput{LoadBalancerArn: aws.String(lbArn), Protocol: elbtypes.ProtocolEnumHttp,
		Port: aws.Int32(80), DefaultActions: []elbtypes.Action{{Type: elbtypes.ActionTypeEnumForward, TargetGroupArn: aws.String(tgArn)}}}); err != nil {
		t.Fatal(err)
	}

	if _, err := e.ECS.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("alb")}); err != nil {
		t.Fatal(err)
	}
	web := e.container("web", "sh", "-c", `mkdir -p /www && ip -4 -o addr show dev eth0 | sed 's/.*inet \([0-9.]*\).*/\1/' > /www/index.html && exec httpd -f -p 8080 -h /www`)
	web.PortMappings = []types.PortMapping{{ContainerPort: aws.Int32(8080)}}
	td := e.registerTask("albweb", "256", "512", web)
	if _, err := e.ECS.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("alb"), ServiceName: aws.String("web"),
		TaskDefinition: aws.String(td), DesiredCount: aws.Int32(3), LaunchType: types.LaunchTypeFargate,
		LoadBalancers: []types.LoadBalancer{{TargetGroupArn: aws.String(tgArn), ContainerName: aws.String("web"), ContainerPort: aws.Int32(8080)}},
		NetworkConfiguration: &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{
			Subnets: e.subnets(), SecurityGroups: []string{webSG}}}}); err != nil {
		t.Fatal(err)
	}
	waiter := ecs.NewServicesStableWaiter(e.ECS, func(o *ecs.ServicesStableWaiterOptions) { o.MinDelay, o.MaxDelay = time.Second, 2*time.Second })
	if err := waiter.Wait(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("alb"), Services: []string{"web"}}, 90*time.Second); err != nil {
		svc, _ := e.ECS.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("alb"), Services: []string{"web"}})
		health, _ := lbc.DescribeTargetHealth(ctx, &elb.DescribeTargetHealthInput{TargetGroupArn: aws.String(tgArn)})
		var b strings.Builder
		if svc != nil && len(svc.Services) == 1 {
			s := svc.Services[0]
			fmt.Fprintf(&b, "running %d pending %d desired %d\n", s.RunningCount, s.PendingCount, s.DesiredCount)
			for _, ev := range s.Events {
				fmt.Fprintf(&b, "event: %s\n", aws.ToString(ev.Message))
			}
		}
		if health != nil {
			for _, h := range health.TargetHealthDescriptions {
				fmt.Fprintf(&b, "target %s:%d %s %s %s\n", aws.ToString(h.Target.Id), aws.ToInt32(h.Target.Port), h.TargetHealth.State,
					h.TargetHealth.Reason, aws.ToString(h.TargetHealth.Description))
			}
		}
		t.Fatalf("services-stable: %v\n%s", err, b.String())
	}
	// services-stable counts RUNNING tasks (as ECS's waiter does); the
	// targets turn healthy after two 5-second health checks.
	ips := map[string]bool{}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Second) {
		health, err := lbc.DescribeTargetHealth(ctx, &elb.DescribeTargetHealthInput{TargetGroupArn: aws.String(tgArn)})
		if err != nil {
			t.Fatal(err)
		}
		clear(ips)
		var notHealthy []string
		for _, h := range health.TargetHealthDescriptions {
			ips[aws.ToString(h.Target.Id)] = true
			if h.TargetHealth.State != elbtypes.TargetHealthStateEnumHealthy {
				notHealthy = append(notHealthy, fmt.Sprintf("%s: %s %s", aws.ToString(h.Target.Id), h.TargetHealth.State,
					aws.ToString(h.TargetHealth.Description)))
			}
		}
		if len(notHealthy) == 0 && len(ips) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("targets %v not healthy: %v", ips, notHealthy)
		}
	}
	if len(ips) != 3 {
		t.Fatalf("targets %v, want the 3 tasks", ips)
	}

	// Through the ALB's DNS name, as a user would curl it.
	client := &http.Client{Timeout: 5 * time.Second}
	seen := map[string]int{}
	for i := 0; i < 30; i++ {
		resp, err := client.Get(fmt.Sprintf("http://%s/", dns))
		if err != nil {
			t.Fatalf("GET http://%s/: %v", dns, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET http://%s/: %s %q", dns, resp.Status, b)
		}
		seen[strings.TrimSpace(string(b))]++
	}
	for ip := range ips {
		if seen[ip] == 0 {
			t.Errorf("no request reached task %s (answers %v)", ip, seen)
		}
	}
}
