package elb

import (
	"strings"
	"testing"
	"time"
)

func TestCreateDescribeDeleteLoadBalancer(t *testing.T) {
	e := newEnv(t)
	lb := ok[*loadBalancersResult](e, "CreateLoadBalancer", "Name", "web", "Subnets.member.1", "subnet-a2",
		"Subnets.member.2", "subnet-a1", "Scheme", "internal", "Tags.member.1.Key", "env", "Tags.member.1.Value", "dev").LoadBalancers[0]
	wantPrefix := "arn:aws:elasticloadbalancing:us-east-1:" + e.acct + ":loadbalancer/app/web/"
	if !strings.HasPrefix(lb.LoadBalancerArn, wantPrefix) || !isHexID(strings.TrimPrefix(lb.LoadBalancerArn, wantPrefix)) {
		t.Errorf("arn %s", lb.LoadBalancerArn)
	}
	if lb.State.Code != "provisioning" || lb.Type != "application" || lb.Scheme != "internal" || lb.VpcID != "vpc-a" ||
		lb.IPAddressType != "ipv4" || lb.CanonicalHostedZoneID != hostedZoneALB || len(lb.SecurityGroups) != 1 ||
		lb.SecurityGroups[0] != "sg-adefault" || len(lb.AvailabilityZones) != 2 || lb.AvailabilityZones[0].ZoneName != "us-east-1a" ||
		lb.AvailabilityZones[0].SubnetID != "subnet-a1" || lb.CreatedTime != "2026-01-02T03:04:05.000Z" ||
		!strings.HasPrefix(lb.DNSName, "internal-web-") || !strings.HasSuffix(lb.DNSName, ".us-east-1.elb.localhost") {
		t.Errorf("created %+v", lb)
	}
	e.clock.advance(time.Second)
	d := ok[*loadBalancersResult](e, "DescribeLoadBalancers", "Names.member.1", "web")
	if len(d.LoadBalancers) != 1 || d.LoadBalancers[0].State.Code != "active" || d.LoadBalancers[0].DNSName != lb.DNSName {
		t.Errorf("describe %+v", d)
	}
	nlb := ok[*loadBalancersResult](e, "CreateLoadBalancer", "Name", "tcp", "Type", "network", "Subnets.member.1", "subnet-b1").LoadBalancers[0]
	if !strings.Contains(nlb.LoadBalancerArn, ":loadbalancer/net/tcp/") || len(nlb.SecurityGroups) != 0 || nlb.CanonicalHostedZoneID != hostedZoneNLB {
		t.Errorf("nlb %+v", nlb)
	}
	// Paging.
	p1 := ok[*loadBalancersResult](e, "DescribeLoadBalancers", "PageSize", "1")
	if len(p1.LoadBalancers) != 1 || p1.NextMarker == nil || p1.LoadBalancers[0].LoadBalancerName != "tcp" {
		t.Fatalf("page 1 %+v", p1)
	}
	p2 := ok[*loadBalancersResult](e, "DescribeLoadBalancers", "PageSize", "1", "Marker", *p1.NextMarker)
	if len(p2.LoadBalancers) != 1 || p2.NextMarker != nil || p2.LoadBalancers[0].LoadBalancerName != "web" {
		t.Errorf("page 2 %+v", p2)
	}
	byARN := ok[*loadBalancersResult](e, "DescribeLoadBalancers", "LoadBalancerArns.member.1", nlb.LoadBalancerArn)
	if len(byARN.LoadBalancers) != 1 || byARN.LoadBalancers[0].LoadBalancerName != "tcp" {
		t.Errorf("by arn %+v", byARN)
	}
	// Another account sees nothing.
	other := callerCtx(newAccount(), "us-east-1")
	e.failsAs(other, codeLBNotFound, "DescribeLoadBalancers", "LoadBalancerArns.member.1", lb.LoadBalancerArn)

	// Delete removes its listeners; deleting again succeeds.
	tg := e.createTG("tg", "HTTP", "vpc-a")
	l := e.createListener(lb.LoadBalancerArn, "HTTP", "80", tg.TargetGroupArn)
	e.do("DeleteLoadBalancer", "LoadBalancerArn", lb.LoadBalancerArn)
	e.do("DeleteLoadBalancer", "LoadBalancerArn", lb.LoadBalancerArn)
	e.fails(codeListenerNotFound, "DescribeListeners", "ListenerArns.member.1", l.ListenerArn)
	e.fails(codeLBNotFound, "DescribeLoadBalancers", "LoadBalancerArns.member.1", lb.LoadBalancerArn)
	e.do("DeleteTargetGroup", "TargetGroupArn", tg.TargetGroupArn) // no longer in use
}

func TestCreateLoadBalancerErrors(t *testing.T) {
	e := newEnv(t)
	e.createALB("taken")
	before := e.snapshot()
	cases := []struct {
		name, code, msg string
		kv              []string
	}{
		{"one zone", codeInvalidConfiguration, "multiple subnets in the same Availability Zone",
			[]string{"Name", "x", "Subnets.member.1", "subnet-a1", "Subnets.member.2", "subnet-a3"}},
		{"one subnet", codeValidation, "At least two subnets", []string{"Name", "x", "Subnets.member.1", "subnet-a1"}},
		{"no subnets", codeValidation, "At least two subnets", []string{"Name", "x"}},
		{"unknown subnet", codeSubnetNotFound, "subnet-zz", []string{"Name", "x", "Subnets.member.1", "subnet-a1", "Subnets.member.2", "subnet-zz"}},
		{"two vpcs", codeInvalidSubnet, "different VPCs", []string{"Name", "x", "Subnets.member.1", "subnet-a1", "Subnets.member.2", "subnet-b2"}},
		{"bad group", codeInvalidSecurityGroup, "sg-bdefault", []string{"Name", "x", "Subnets.member.1", "subnet-a1", "Subnets.member.2", "subnet-a2", "SecurityGroups.member.1", "sg-bdefault"}},
		{"duplicate", codeDuplicateLBName, "same name", []string{"Name", "taken", "Subnets.member.1", "subnet-a1", "Subnets.member.2", "subnet-a2"}},
		{"long name", codeValidation, "cannot be longer than '32'", []string{"Name", strings.Repeat("a", 33), "Subnets.member.1", "subnet-a1"}},
		{"hyphen", codeValidation, "cannot begin or end with '-'", []string{"Name", "-x", "Subnets.member.1", "subnet-a1"}},
		{"bad type", codeValidation, "gateway", []string{"Name", "x", "Type", "gateway", "Subnets.member.1", "subnet-a1"}},
		{"bad scheme", codeValidation, "Scheme", []string{"Name", "x", "Scheme", "public", "Subnets.member.1", "subnet-a1"}},
		{"nlb no subnet", codeValidation, "At least one subnet", []string{"Name", "x", "Type", "network"}},
		{"dup tag", codeDuplicateTagKeys, "k", []string{"Name", "x", "Subnets.member.1", "subnet-a1", "Subnets.member.2", "subnet-a2",
			"Tags.member.1.Key", "k", "Tags.member.2.Key", "k"}},
	}
	for _, c := range cases {
		msg := e.fails(c.code, "CreateLoadBalancer", c.kv...)
		if !strings.Contains(msg, c.msg) {
			t.Errorf("%s: message %q, want %q", c.name, msg, c.msg)
		}
	}
	if after := e.snapshot(); after != before {
		t.Errorf("failed calls changed the store:\n%s\n%s", before, after)
	}
	e.fails(codeValidation, "DescribeLoadBalancers", "LoadBalancerArns.member.1", "arn:bogus")
	e.fails(codeLBNotFound, "DescribeLoadBalancers", "Names.member.1", "nope")
	e.fails(codeValidation, "DescribeLoadBalancers", "PageSize", "401")
}
