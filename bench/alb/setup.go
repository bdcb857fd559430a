package alb

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/berthdev/berth/bench"
)

// Names and ports of what the benchmark makes in its berth dev.
const (
	cluster     = "bench-alb"
	family      = "benchhttp"
	backendPort = 8080
	benchPort   = 80 // listener to the single throughput backend
	rolloutPort = 81 // listener to the rollout service
)

// Health checks of both target groups: a new target serves after two
// checks 5 s apart (see the report).
const (
	hcInterval  = 5
	hcTimeout   = 2
	hcHealthy   = 2
	deregDelayS = 5
)

// stack is the benchmark's resources in one berth dev.
type stack struct {
	dev   *bench.Dev
	lb    *elb.Client
	image string // registry/benchhttp:latest
	vpcID string
	albSG string // admits tcp 80–81 from anywhere (a host client)
	webSG string // admits tcp 8080 from anywhere (the ALB, nginx, the direct client)

	lbArn  string
	lbDNS  string
	lbAddr netip.Addr // the DNS name's address on the host, in 127.0.0.0/8
}

// newStack creates the security groups and the cluster.
func newStack(ctx context.Context, dev *bench.Dev, image string) (*stack, error) {
	cfg := aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(dev.URL),
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")}
	s := &stack{dev: dev, lb: elb.NewFromConfig(cfg), image: image}
	subnets, err := dev.EC2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: dev.Subnets})
	if err != nil || len(subnets.Subnets) == 0 {
		return nil, fmt.Errorf("default subnets: %v %w", subnets, err)
	}
	s.vpcID = aws.ToString(subnets.Subnets[0].VpcId)
	if s.albSG, err = s.group(ctx, "bench-alb", benchPort, rolloutPort); err != nil {
		return nil, err
	}
	if s.webSG, err = s.group(ctx, "bench-web", backendPort, backendPort); err != nil {
		return nil, err
	}
	if _, err := dev.ECS.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String(cluster)}); err != nil {
		return nil, fmt.Errorf("create cluster: %w", err)
	}
	return s, nil
}

// group creates a security group that admits tcp from..to from 0.0.0.0/0.
func (s *stack) group(ctx context.Context, name string, from, to int32) (string, error) {
	out, err := s.dev.EC2.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String(name),
		Description: aws.String(name), VpcId: aws.String(s.vpcID)})
	if err != nil {
		return "", fmt.Errorf("create security group %s: %w", name, err)
	}
	id := aws.ToString(out.GroupId)
	if _, err := s.dev.EC2.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(id),
		IpPermissions: []ec2types.IpPermission{{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(from), ToPort: aws.Int32(to),
			IpRanges: []ec2types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}}}}); err != nil {
		return "", fmt.Errorf("security group %s ingress: %w", name, err)
	}
	return id, nil
}

// taskDef registers a revision of the backend's family: FARGATE, awsvpc,
// cpu units, BODY=body.
func (s *stack) taskDef(ctx context.Context, cpu, memory int, body string) (string, error) {
	out, err := s.dev.ECS.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{
		Family: aws.String(family), NetworkMode: types.NetworkModeAwsvpc,
		Cpu: aws.String(fmt.Sprint(cpu)), Memory: aws.String(fmt.Sprint(memory)),
		RequiresCompatibilities: []types.Compatibility{types.CompatibilityFargate},
		ContainerDefinitions: []types.ContainerDefinition{{
			Name: aws.String("web"), Image: aws.String(s.image), Essential: aws.Bool(true), StopTimeout: aws.Int32(2),
			PortMappings: []types.PortMapping{{ContainerPort: aws.Int32(backendPort)}},
			Environment:  []types.KeyValuePair{{Name: aws.String("BODY"), Value: aws.String(body)}},
		}},
	})
	if err != nil {
		return "", fmt.Errorf("register task definition (BODY=%s): %w", body, err)
	}
	return aws.ToString(out.TaskDefinition.TaskDefinitionArn), nil
}

// network is the awsvpc configuration of the benchmark's tasks.
func (s *stack) network() *types.NetworkConfiguration {
	return &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{
		Subnets: s.dev.Subnets, SecurityGroups: []string{s.webSG}}}
}

// runBackend runs one task of td and returns its ARN and ENI address once
// it is RUNNING.
func (s *stack) runBackend(ctx context.Context, td string) (string, netip.Addr, error) {
	out, err := s.dev.ECS.RunTask(ctx, &ecs.RunTaskInput{Cluster: aws.String(cluster), TaskDefinition: aws.String(td),
		LaunchType: types.LaunchTypeFargate, NetworkConfiguration: s.network()})
	if err != nil {
		return "", netip.Addr{}, fmt.Errorf("RunTask: %w", err)
	}
	if len(out.Tasks) != 1 {
		return "", netip.Addr{}, fmt.Errorf("RunTask: no task, failures %v", out.Failures)
	}
	arn := aws.ToString(out.Tasks[0].TaskArn)
	for deadline := time.Now().Add(2 * time.Minute); ; {
		d, err := s.dev.ECS.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(cluster), Tasks: []string{arn}})
		if err != nil {
			return arn, netip.Addr{}, fmt.Errorf("DescribeTasks: %w", err)
		}
		if len(d.Tasks) == 1 {
			t := d.Tasks[0]
			switch aws.ToString(t.LastStatus) {
			case "RUNNING":
				ip, err := taskIP(t)
				return arn, ip, err
			case "STOPPED":
				return arn, netip.Addr{}, fmt.Errorf("backend task stopped: %s", aws.ToString(t.StoppedReason))
			}
		}
		if time.Now().After(deadline) {
			return arn, netip.Addr{}, fmt.Errorf("backend task %s not RUNNING after 2 min", arn)
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return arn, netip.Addr{}, err
		}
	}
}

// taskIP is a task's ENI address (attachment detail privateIPv4Address).
func taskIP(t types.Task) (netip.Addr, error) {
	for _, a := range t.Attachments {
		for _, d := range a.Details {
			if aws.ToString(d.Name) == "privateIPv4Address" {
				ip, err := netip.ParseAddr(aws.ToString(d.Value))
				if err != nil {
					return netip.Addr{}, fmt.Errorf("task %s address: %w", aws.ToString(t.TaskArn), err)
				}
				return ip, nil
			}
		}
	}
	return netip.Addr{}, fmt.Errorf("task %s has no ENI address", aws.ToString(t.TaskArn))
}

// createLB creates the ALB in the default subnets and resolves its DNS
// name through the host's /etc/hosts, as a user's client would.
func (s *stack) createLB(ctx context.Context) error {
	out, err := s.lb.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{Name: aws.String("bench"), Subnets: s.dev.Subnets,
		SecurityGroups: []string{s.albSG}, Type: elbtypes.LoadBalancerTypeEnumApplication})
	if err != nil {
		return fmt.Errorf("CreateLoadBalancer: %w", err)
	}
	s.lbArn, s.lbDNS = aws.ToString(out.LoadBalancers[0].LoadBalancerArn), aws.ToString(out.LoadBalancers[0].DNSName)
	return nil
}

// resolveLB waits until the ALB's DNS name is in the hosts file (the agent
// writes it once the load balancer runs) and checks it is a loopback
// address: the benchmark sends nothing anywhere else.
func (s *stack) resolveLB(ctx context.Context) error {
	var last error
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); {
		addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip4", s.lbDNS)
		if err == nil && len(addrs) > 0 {
			a := addrs[0].Unmap()
			if !a.IsLoopback() {
				return fmt.Errorf("ALB %s resolves to %s, not a loopback address: refusing to send load there", s.lbDNS, a)
			}
			s.lbAddr = a
			return nil
		}
		last = err
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("ALB %s not in /etc/hosts after 1 min: %v", s.lbDNS, last)
}

// targetGroup creates an HTTP, ip target group on the backend port with the
// benchmark's health checks and deregistration delay, and a listener on
// port that forwards to it.
func (s *stack) targetGroup(ctx context.Context, name string, port int32) (string, error) {
	tg, err := s.lb.CreateTargetGroup(ctx, &elb.CreateTargetGroupInput{Name: aws.String(name), Protocol: elbtypes.ProtocolEnumHttp,
		Port: aws.Int32(backendPort), VpcId: aws.String(s.vpcID), TargetType: elbtypes.TargetTypeEnumIp,
		HealthCheckIntervalSeconds: aws.Int32(hcInterval), HealthCheckTimeoutSeconds: aws.Int32(hcTimeout),
		HealthyThresholdCount: aws.Int32(hcHealthy)})
	if err != nil {
		return "", fmt.Errorf("CreateTargetGroup %s: %w", name, err)
	}
	arn := aws.ToString(tg.TargetGroups[0].TargetGroupArn)
	if _, err := s.lb.ModifyTargetGroupAttributes(ctx, &elb.ModifyTargetGroupAttributesInput{TargetGroupArn: aws.String(arn),
		Attributes: []elbtypes.TargetGroupAttribute{{Key: aws.String("deregistration_delay.timeout_seconds"),
			Value: aws.String(fmt.Sprint(deregDelayS))}}}); err != nil {
		return "", fmt.Errorf("target group %s attributes: %w", name, err)
	}
	if _, err := s.lb.CreateListener(ctx, &elb.CreateListenerInput{LoadBalancerArn: aws.String(s.lbArn), Protocol: elbtypes.ProtocolEnumHttp,
		Port: aws.Int32(port), DefaultActions: []elbtypes.Action{{Type: elbtypes.ActionTypeEnumForward, TargetGroupArn: aws.String(arn)}}}); err != nil {
		return "", fmt.Errorf("CreateListener %d: %w", port, err)
	}
	return arn, nil
}

// waitHealthy waits until the target group has n targets, all healthy.
func (s *stack) waitHealthy(ctx context.Context, tgArn string, n int, timeout time.Duration) error {
	var state []string
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); {
		out, err := s.lb.DescribeTargetHealth(ctx, &elb.DescribeTargetHealthInput{TargetGroupArn: aws.String(tgArn)})
		if err != nil {
			return fmt.Errorf("DescribeTargetHealth: %w", err)
		}
		state = state[:0]
		healthy := 0
		for _, h := range out.TargetHealthDescriptions {
			if h.TargetHealth.State == elbtypes.TargetHealthStateEnumHealthy {
				healthy++
			}
			state = append(state, fmt.Sprintf("%s %s %s", aws.ToString(h.Target.Id), h.TargetHealth.State,
				aws.ToString(h.TargetHealth.Description)))
		}
		if healthy == n && len(out.TargetHealthDescriptions) == n {
			return nil
		}
		if err := sleep(ctx, 250*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("target group not %d healthy targets after %s: %s", n, timeout, strings.Join(state, "; "))
}

// waitServes polls url until it answers 200 (a new listener starts a
// moment after its target turns healthy).
func waitServes(ctx context.Context, url string) error {
	c := &http.Client{Timeout: 2 * time.Second}
	var last string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		resp, err := c.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("%s does not answer 200 after 30 s: %s", url, last)
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
