package cli

import (
	"context"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
)

// The network half of `berth deploy`: security groups, the app's load
// balancer, its target group and listener. Each ensure* finds the thing by
// name and creates it only when it is missing.

// defaultNetwork returns the default subnets (one per zone) and their VPC.
func (d *deployer) defaultNetwork(ctx context.Context) (subnets []string, vpcID string, err error) {
	out, err := d.ec2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: []ec2types.Filter{
		{Name: aws.String("default-for-az"), Values: []string{"true"}}}})
	if err != nil {
		return nil, "", apiError("find the default subnets", err)
	}
	for _, s := range out.Subnets {
		subnets = append(subnets, aws.ToString(s.SubnetId))
		vpcID = aws.ToString(s.VpcId)
	}
	if len(subnets) == 0 {
		return nil, "", fmt.Errorf("no default subnets: the account has no default VPC")
	}
	return subnets, vpcID, nil
}

// ensureGroup returns the id of the security group name in the VPC,
// creating it if needed.
func (d *deployer) ensureGroup(ctx context.Context, vpcID, name, description string) (string, error) {
	out, err := d.ec2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{
		{Name: aws.String("group-name"), Values: []string{name}},
		{Name: aws.String("vpc-id"), Values: []string{vpcID}}}})
	if err != nil {
		return "", apiError("find security group "+name, err)
	}
	if len(out.SecurityGroups) > 0 {
		return aws.ToString(out.SecurityGroups[0].GroupId), nil
	}
	created, err := d.ec2.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String(name),
		Description: aws.String(description), VpcId: aws.String(vpcID)})
	if err != nil {
		return "", apiError("create security group "+name, err)
	}
	id := aws.ToString(created.GroupId)
	d.logf("created security group %s (%s)", name, id)
	return id, nil
}

// ensureIngress admits tcp port into group from cidr or from the members of
// sourceGroup (one of the two), unless the group admits it already.
func (d *deployer) ensureIngress(ctx context.Context, groupID, name string, port int32, cidr, sourceGroup string) error {
	out, err := d.ec2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{groupID}})
	if err != nil {
		return apiError("describe security group "+name, err)
	}
	if len(out.SecurityGroups) == 1 && hasIngress(out.SecurityGroups[0].IpPermissions, port, cidr, sourceGroup) {
		return nil
	}
	perm := ec2types.IpPermission{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(port), ToPort: aws.Int32(port)}
	from := cidr
	if sourceGroup != "" {
		perm.UserIdGroupPairs = []ec2types.UserIdGroupPair{{GroupId: aws.String(sourceGroup)}}
		from = "group " + sourceGroup
	} else {
		perm.IpRanges = []ec2types.IpRange{{CidrIp: aws.String(cidr)}}
	}
	if _, err := d.ec2.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(groupID),
		IpPermissions: []ec2types.IpPermission{perm}}); err != nil {
		return apiError("authorize ingress into "+name, err)
	}
	d.logf("security group %s: admitted tcp %d from %s", name, port, from)
	return nil
}

// hasIngress reports whether perms admit tcp port from cidr (when
// sourceGroup is "") or from sourceGroup.
func hasIngress(perms []ec2types.IpPermission, port int32, cidr, sourceGroup string) bool {
	for _, p := range perms {
		proto := aws.ToString(p.IpProtocol)
		all := proto == "-1" || proto == "all"
		if !all && (proto != "tcp" && proto != "6" || aws.ToInt32(p.FromPort) > port || aws.ToInt32(p.ToPort) < port) {
			continue
		}
		if sourceGroup != "" && slices.ContainsFunc(p.UserIdGroupPairs, func(g ec2types.UserIdGroupPair) bool {
			return aws.ToString(g.GroupId) == sourceGroup
		}) {
			return true
		}
		if sourceGroup == "" && slices.ContainsFunc(p.IpRanges, func(r ec2types.IpRange) bool { return aws.ToString(r.CidrIp) == cidr }) {
			return true
		}
	}
	return false
}

// ensureLoadBalancer returns the app's application load balancer (ARN and
// DNS name), creating it in the subnets with group albSG if needed.
func (d *deployer) ensureLoadBalancer(ctx context.Context, subnets []string, albSG string) (arn, dns string, err error) {
	name := d.o.name
	out, err := d.elb.DescribeLoadBalancers(ctx, &elbv2.DescribeLoadBalancersInput{Names: []string{name}})
	switch {
	case err == nil && len(out.LoadBalancers) == 1:
		lb := out.LoadBalancers[0]
		if lb.Type != elbtypes.LoadBalancerTypeEnumApplication || !slices.Contains(lb.SecurityGroups, albSG) {
			return "", "", fmt.Errorf("load balancer %s exists but is not an application load balancer in security group %s-alb: delete it or deploy under another --name", name, name)
		}
		return aws.ToString(lb.LoadBalancerArn), aws.ToString(lb.DNSName), nil
	case err != nil && !isAPIError(err, "LoadBalancerNotFound"):
		return "", "", apiError("describe load balancer "+name, err)
	}
	created, err := d.elb.CreateLoadBalancer(ctx, &elbv2.CreateLoadBalancerInput{Name: aws.String(name), Subnets: subnets,
		SecurityGroups: []string{albSG}, Type: elbtypes.LoadBalancerTypeEnumApplication,
		Scheme: elbtypes.LoadBalancerSchemeEnumInternetFacing})
	if err != nil {
		return "", "", apiError("create load balancer "+name, err)
	}
	lb := created.LoadBalancers[0]
	d.logf("created load balancer %s (%s)", name, aws.ToString(lb.DNSName))
	return aws.ToString(lb.LoadBalancerArn), aws.ToString(lb.DNSName), nil
}

// Health checks of the app's target group: fast, so that a deploy is quick.
const (
	healthInterval  = 5
	healthTimeout   = 2
	healthyCount    = 2
	deregisterDelay = "5"
)

// ensureTargetGroup returns the app's target group (HTTP to the container
// port, ip targets), creating it or correcting its health check and
// deregistration delay if needed.
func (d *deployer) ensureTargetGroup(ctx context.Context, vpcID string) (string, error) {
	o := &d.o
	var arn string
	out, err := d.elb.DescribeTargetGroups(ctx, &elbv2.DescribeTargetGroupsInput{Names: []string{o.name}})
	switch {
	case err == nil && len(out.TargetGroups) == 1:
		tg := out.TargetGroups[0]
		if aws.ToInt32(tg.Port) != int32(o.port) || aws.ToString(tg.VpcId) != vpcID || tg.TargetType != elbtypes.TargetTypeEnumIp ||
			tg.Protocol != elbtypes.ProtocolEnumHttp {
			return "", fmt.Errorf("target group %s exists with port %d (%s, %s targets, VPC %s), not HTTP port %d to ip targets in %s: delete the service and target group, or deploy under another --name",
				o.name, aws.ToInt32(tg.Port), tg.Protocol, tg.TargetType, aws.ToString(tg.VpcId), o.port, vpcID)
		}
		arn = aws.ToString(tg.TargetGroupArn)
		if aws.ToString(tg.HealthCheckPath) != o.healthPath || aws.ToInt32(tg.HealthCheckIntervalSeconds) != healthInterval ||
			aws.ToInt32(tg.HealthyThresholdCount) != healthyCount {
			if _, err := d.elb.ModifyTargetGroup(ctx, &elbv2.ModifyTargetGroupInput{TargetGroupArn: aws.String(arn),
				HealthCheckPath: aws.String(o.healthPath), HealthCheckIntervalSeconds: aws.Int32(healthInterval),
				HealthCheckTimeoutSeconds: aws.Int32(healthTimeout), HealthyThresholdCount: aws.Int32(healthyCount)}); err != nil {
				return "", apiError("modify target group "+o.name, err)
			}
			d.logf("target group %s: health check path %s", o.name, o.healthPath)
		}
	case err != nil && !isAPIError(err, "TargetGroupNotFound"):
		return "", apiError("describe target group "+o.name, err)
	default:
		created, err := d.elb.CreateTargetGroup(ctx, &elbv2.CreateTargetGroupInput{Name: aws.String(o.name),
			Protocol: elbtypes.ProtocolEnumHttp, Port: aws.Int32(int32(o.port)), VpcId: aws.String(vpcID),
			TargetType: elbtypes.TargetTypeEnumIp, HealthCheckPath: aws.String(o.healthPath),
			HealthCheckIntervalSeconds: aws.Int32(healthInterval), HealthCheckTimeoutSeconds: aws.Int32(healthTimeout),
			HealthyThresholdCount: aws.Int32(healthyCount)})
		if err != nil {
			return "", apiError("create target group "+o.name, err)
		}
		arn = aws.ToString(created.TargetGroups[0].TargetGroupArn)
		d.logf("created target group %s", o.name)
	}
	attrs, err := d.elb.DescribeTargetGroupAttributes(ctx, &elbv2.DescribeTargetGroupAttributesInput{TargetGroupArn: aws.String(arn)})
	if err != nil {
		return "", apiError("describe attributes of target group "+o.name, err)
	}
	if !slices.ContainsFunc(attrs.Attributes, func(a elbtypes.TargetGroupAttribute) bool {
		return aws.ToString(a.Key) == "deregistration_delay.timeout_seconds" && aws.ToString(a.Value) == deregisterDelay
	}) {
		if _, err := d.elb.ModifyTargetGroupAttributes(ctx, &elbv2.ModifyTargetGroupAttributesInput{TargetGroupArn: aws.String(arn),
			Attributes: []elbtypes.TargetGroupAttribute{{Key: aws.String("deregistration_delay.timeout_seconds"),
				Value: aws.String(deregisterDelay)}}}); err != nil {
			return "", apiError("set the deregistration delay of target group "+o.name, err)
		}
	}
	return arn, nil
}

// ensureListener makes the load balancer's port 80 listener forward to the
// target group.
func (d *deployer) ensureListener(ctx context.Context, lbArn, tgArn string) error {
	forward := []elbtypes.Action{{Type: elbtypes.ActionTypeEnumForward, TargetGroupArn: aws.String(tgArn)}}
	out, err := d.elb.DescribeListeners(ctx, &elbv2.DescribeListenersInput{LoadBalancerArn: aws.String(lbArn)})
	if err != nil {
		return apiError("describe listeners of load balancer "+d.o.name, err)
	}
	for _, l := range out.Listeners {
		if aws.ToInt32(l.Port) != 80 {
			continue
		}
		if forwardsTo(l.DefaultActions, tgArn) {
			return nil
		}
		if _, err := d.elb.ModifyListener(ctx, &elbv2.ModifyListenerInput{ListenerArn: l.ListenerArn,
			Protocol: elbtypes.ProtocolEnumHttp, DefaultActions: forward}); err != nil {
			return apiError("modify the port 80 listener of load balancer "+d.o.name, err)
		}
		d.logf("listener on port 80: now forwards to target group %s", d.o.name)
		return nil
	}
	if _, err := d.elb.CreateListener(ctx, &elbv2.CreateListenerInput{LoadBalancerArn: aws.String(lbArn),
		Protocol: elbtypes.ProtocolEnumHttp, Port: aws.Int32(80), DefaultActions: forward}); err != nil {
		return apiError("create the port 80 listener of load balancer "+d.o.name, err)
	}
	d.logf("created listener on port 80 forwarding to target group %s", d.o.name)
	return nil
}

// forwardsTo reports whether actions are a plain forward to tgArn alone.
func forwardsTo(actions []elbtypes.Action, tgArn string) bool {
	if len(actions) != 1 || actions[0].Type != elbtypes.ActionTypeEnumForward {
		return false
	}
	a := actions[0]
	if aws.ToString(a.TargetGroupArn) == tgArn {
		return true
	}
	return a.ForwardConfig != nil && len(a.ForwardConfig.TargetGroups) == 1 &&
		aws.ToString(a.ForwardConfig.TargetGroups[0].TargetGroupArn) == tgArn
}
