package elb

import (
	"testing"
	"time"
)

func attrMap(r *attributesResult) map[string]string {
	m := map[string]string{}
	for _, a := range r.Attributes {
		m[a.Key] = a.Value
	}
	return m
}

func TestLoadBalancerAttributes(t *testing.T) {
	e := newEnv(t)
	lb := e.createALB("web")
	arn := lb.LoadBalancerArn
	got := attrMap(ok[*attributesResult](e, "DescribeLoadBalancerAttributes", "LoadBalancerArn", arn))
	if got["idle_timeout.timeout_seconds"] != "60" || got["deletion_protection.enabled"] != "false" || got["routing.http2.enabled"] != "true" {
		t.Errorf("ALB defaults %v", got)
	}
	nlb := ok[*loadBalancersResult](e, "CreateLoadBalancer", "Name", "tcp", "Type", "network", "Subnets.member.1", "subnet-a1").LoadBalancers[0]
	if got := attrMap(ok[*attributesResult](e, "DescribeLoadBalancerAttributes", "LoadBalancerArn", nlb.LoadBalancerArn)); got["load_balancing.cross_zone.enabled"] != "false" || got["idle_timeout.timeout_seconds"] != "" {
		t.Errorf("NLB defaults %v", got)
	}

	// Bad keys and values change nothing.
	before := e.snapshot()
	for _, kv := range [][2]string{
		{"idle_timeout.timeout_seconds", "0"},
		{"idle_timeout.timeout_seconds", "4001"},
		{"routing.http2.enabled", "yes"},
		{"no.such.attribute", "1"},
	} {
		e.fails(codeValidation, "ModifyLoadBalancerAttributes", "LoadBalancerArn", arn,
			"Attributes.member.1.Key", "deletion_protection.enabled", "Attributes.member.1.Value", "true",
			"Attributes.member.2.Key", kv[0], "Attributes.member.2.Value", kv[1])
	}
	e.fails(codeValidation, "ModifyLoadBalancerAttributes", "LoadBalancerArn", nlb.LoadBalancerArn,
		"Attributes.member.1.Key", "idle_timeout.timeout_seconds", "Attributes.member.1.Value", "30")
	if e.snapshot() != before {
		t.Fatal("a failed ModifyLoadBalancerAttributes changed the store")
	}

	mod := attrMap(ok[*attributesResult](e, "ModifyLoadBalancerAttributes", "LoadBalancerArn", arn,
		"Attributes.member.1.Key", "idle_timeout.timeout_seconds", "Attributes.member.1.Value", "5",
		"Attributes.member.2.Key", "deletion_protection.enabled", "Attributes.member.2.Value", "true"))
	if mod["idle_timeout.timeout_seconds"] != "5" || mod["deletion_protection.enabled"] != "true" || mod["routing.http2.enabled"] != "true" {
		t.Errorf("modify answered %v", mod)
	}
	// The idle timeout reaches the data plane's configuration.
	st, err := e.s.load(e.ctx, newScope(e.acct, "us-east-1"))
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := st.lbByARN(arn)
	c, err := e.s.lbConfig(e.ctx, st, rec)
	if err != nil {
		t.Fatal(err)
	}
	if p := proxyConfig(c); p.IdleTimeout != 5*time.Second {
		t.Errorf("proxy idle timeout %v, want 5s", p.IdleTimeout)
	}
	// Deletion protection refuses DeleteLoadBalancer until turned off.
	msg := e.fails(codeOperationNotPermitted, "DeleteLoadBalancer", "LoadBalancerArn", arn)
	if msg != "Load balancer 'web' cannot be deleted because deletion protection is enabled" {
		t.Errorf("message %q", msg)
	}
	e.do("ModifyLoadBalancerAttributes", "LoadBalancerArn", arn,
		"Attributes.member.1.Key", "deletion_protection.enabled", "Attributes.member.1.Value", "false")
	e.do("DeleteLoadBalancer", "LoadBalancerArn", arn)
}

func TestSetSecurityGroups(t *testing.T) {
	e := newEnv(t)
	lb := e.createALB("web")
	res := ok[*securityGroupsResult](e, "SetSecurityGroups", "LoadBalancerArn", lb.LoadBalancerArn,
		"SecurityGroups.member.1", "sg-aweb", "SecurityGroups.member.2", "sg-adefault")
	if len(res.SecurityGroupIds) != 2 {
		t.Errorf("answer %+v", res)
	}
	d := ok[*loadBalancersResult](e, "DescribeLoadBalancers", "LoadBalancerArns.member.1", lb.LoadBalancerArn).LoadBalancers[0]
	if len(d.SecurityGroups) != 2 {
		t.Errorf("described groups %v", d.SecurityGroups)
	}
	before := e.snapshot()
	e.fails(codeInvalidSecurityGroup, "SetSecurityGroups", "LoadBalancerArn", lb.LoadBalancerArn, "SecurityGroups.member.1", "sg-bdefault")
	e.fails(codeValidation, "SetSecurityGroups", "LoadBalancerArn", lb.LoadBalancerArn)
	if e.snapshot() != before {
		t.Fatal("a failed SetSecurityGroups changed the store")
	}
}

// TestAWSCLILoadBalancerAttributes: the real AWS CLI's
// modify-load-balancer-attributes, describe-load-balancer-attributes and
// set-security-groups.
func TestAWSCLILoadBalancerAttributes(t *testing.T) {
	c := newCLIEnv(t)
	lb := c.createALB("web")
	var attrs struct{ Attributes []struct{ Key, Value string } }
	c.ok(&attrs, "elbv2", "modify-load-balancer-attributes", "--load-balancer-arn", lb.LoadBalancerArn,
		"--attributes", "Key=idle_timeout.timeout_seconds,Value=120")
	c.ok(&attrs, "elbv2", "describe-load-balancer-attributes", "--load-balancer-arn", lb.LoadBalancerArn)
	found := false
	for _, a := range attrs.Attributes {
		found = found || a.Key == "idle_timeout.timeout_seconds" && a.Value == "120"
	}
	if !found || len(attrs.Attributes) < 10 {
		t.Errorf("describe-load-balancer-attributes: %+v", attrs)
	}
	c.fails("a", codeValidation, "elbv2", "modify-load-balancer-attributes", "--load-balancer-arn", lb.LoadBalancerArn,
		"--attributes", "Key=idle_timeout.timeout_seconds,Value=0")
	var sgs struct{ SecurityGroupIds []string }
	c.ok(&sgs, "elbv2", "set-security-groups", "--load-balancer-arn", lb.LoadBalancerArn, "--security-groups", "sg-aweb")
	if len(sgs.SecurityGroupIds) != 1 || sgs.SecurityGroupIds[0] != "sg-aweb" {
		t.Errorf("set-security-groups: %+v", sgs)
	}
}
