package elb

import (
	"strings"
	"testing"
)

func TestTargetGroupDefaults(t *testing.T) {
	e := newEnv(t)
	h := e.createTG("web", "HTTP", "vpc-a")
	if h.HealthCheckProtocol != "HTTP" || h.HealthCheckPort != "traffic-port" || !h.HealthCheckEnabled ||
		h.HealthCheckIntervalSeconds != 30 || h.HealthCheckTimeoutSeconds != 5 || h.HealthyThresholdCount != 5 ||
		h.UnhealthyThresholdCount != 2 || h.HealthCheckPath == nil || *h.HealthCheckPath != "/" || h.Matcher == nil ||
		h.Matcher.HTTPCode != "200" || h.TargetType != "ip" || h.VpcID != "vpc-a" || h.Port != 80 || len(h.LoadBalancerArns) != 0 ||
		!strings.HasPrefix(h.TargetGroupArn, "arn:aws:elasticloadbalancing:us-east-1:"+e.acct+":targetgroup/web/") {
		t.Errorf("HTTP group %+v", h)
	}
	tcp := e.createTG("tcp", "TCP", "vpc-a")
	if tcp.HealthCheckProtocol != "TCP" || tcp.HealthCheckTimeoutSeconds != 10 || tcp.HealthCheckPath != nil || tcp.Matcher != nil ||
		tcp.HealthyThresholdCount != 5 || tcp.UnhealthyThresholdCount != 2 {
		t.Errorf("TCP group %+v", tcp)
	}
	inst := ok[*targetGroupsResult](e, "CreateTargetGroup", "Name", "inst", "Protocol", "HTTP", "Port", "8080", "VpcId", "vpc-b",
		"HealthCheckPath", "/health", "HealthCheckIntervalSeconds", "10", "HealthCheckTimeoutSeconds", "3", "Matcher.HttpCode", "200-299",
		"HealthyThresholdCount", "3").TargetGroups[0]
	if inst.TargetType != "instance" || *inst.HealthCheckPath != "/health" || inst.HealthCheckIntervalSeconds != 10 ||
		inst.HealthCheckTimeoutSeconds != 3 || inst.Matcher.HTTPCode != "200-299" || inst.HealthyThresholdCount != 3 {
		t.Errorf("custom group %+v", inst)
	}

	attrs := ok[*attributesResult](e, "DescribeTargetGroupAttributes", "TargetGroupArn", h.TargetGroupArn)
	got := map[string]string{}
	for _, a := range attrs.Attributes {
		got[a.Key] = a.Value
	}
	for k, v := range map[string]string{"deregistration_delay.timeout_seconds": "300", "slow_start.duration_seconds": "0",
		"load_balancing.algorithm.type": "round_robin", "stickiness.enabled": "false"} {
		if got[k] != v {
			t.Errorf("attribute %s = %q, want %q", k, got[k], v)
		}
	}
	mod := ok[*attributesResult](e, "ModifyTargetGroupAttributes", "TargetGroupArn", h.TargetGroupArn,
		"Attributes.member.1.Key", "deregistration_delay.timeout_seconds", "Attributes.member.1.Value", "5",
		"Attributes.member.2.Key", "load_balancing.algorithm.type", "Attributes.member.2.Value", "least_outstanding_requests",
		"Attributes.member.3.Key", "slow_start.duration_seconds", "Attributes.member.3.Value", "30")
	if len(mod.Attributes) != 3 {
		t.Errorf("modified %+v", mod)
	}
	before := e.snapshot()
	for _, c := range []struct{ k, v string }{
		{"deregistration_delay.timeout_seconds", "3601"}, {"slow_start.duration_seconds", "10"},
		{"load_balancing.algorithm.type", "random"}, {"stickiness.enabled", "yes"}, {"no.such.key", "1"},
	} {
		e.fails(codeValidation, "ModifyTargetGroupAttributes", "TargetGroupArn", h.TargetGroupArn,
			"Attributes.member.1.Key", "stickiness.enabled", "Attributes.member.1.Value", "true",
			"Attributes.member.2.Key", c.k, "Attributes.member.2.Value", c.v)
	}
	if e.snapshot() != before {
		t.Error("a failed ModifyTargetGroupAttributes changed the store")
	}

	m := ok[*targetGroupsResult](e, "ModifyTargetGroup", "TargetGroupArn", h.TargetGroupArn, "HealthCheckPath", "/ping",
		"HealthCheckIntervalSeconds", "15").TargetGroups[0]
	if *m.HealthCheckPath != "/ping" || m.HealthCheckIntervalSeconds != 15 || m.HealthCheckTimeoutSeconds != 5 {
		t.Errorf("modified group %+v", m)
	}
	e.fails(codeValidation, "ModifyTargetGroup", "TargetGroupArn", h.TargetGroupArn, "HealthCheckTimeoutSeconds", "20")

	d := ok[*targetGroupsResult](e, "DescribeTargetGroups")
	if len(d.TargetGroups) != 3 || d.TargetGroups[0].TargetGroupName != "inst" {
		t.Errorf("describe all %+v", d)
	}
	d = ok[*targetGroupsResult](e, "DescribeTargetGroups", "Names.member.1", "tcp")
	if len(d.TargetGroups) != 1 || d.TargetGroups[0].TargetGroupArn != tcp.TargetGroupArn {
		t.Errorf("describe by name %+v", d)
	}
	e.fails(codeTGNotFound, "DescribeTargetGroups", "Names.member.1", "nope")
	e.fails(codeTGNotFound, "DescribeTargetGroups", "TargetGroupArns.member.1", strings.Replace(tcp.TargetGroupArn, "/tcp/", "/xyz/", 1))
	e.failsAs(callerCtx(newAccount(), "us-east-1"), codeTGNotFound, "DescribeTargetGroups", "TargetGroupArns.member.1", tcp.TargetGroupArn)

	e.do("DeleteTargetGroup", "TargetGroupArn", tcp.TargetGroupArn)
	e.do("DeleteTargetGroup", "TargetGroupArn", tcp.TargetGroupArn)
	e.fails(codeTGNotFound, "DescribeTargetGroups", "TargetGroupArns.member.1", tcp.TargetGroupArn)
}

func TestCreateTargetGroupErrors(t *testing.T) {
	e := newEnv(t)
	e.createTG("taken", "HTTP", "vpc-a")
	before := e.snapshot()
	base := func(kv ...string) []string {
		return append([]string{"Name", "x", "Protocol", "HTTP", "Port", "80", "VpcId", "vpc-a", "TargetType", "ip"}, kv...)
	}
	cases := []struct {
		name, code, msg string
		kv              []string
	}{
		{"dup", codeDuplicateTGName, "same name", []string{"Name", "taken", "Protocol", "HTTP", "Port", "80", "VpcId", "vpc-a"}},
		{"protocol", codeValidation, "Protocol 'SCTP'", []string{"Name", "x", "Protocol", "SCTP", "Port", "80", "VpcId", "vpc-a"}},
		{"port", codeValidation, "Port must be between 1 and 65535", []string{"Name", "x", "Protocol", "HTTP", "Port", "0", "VpcId", "vpc-a"}},
		{"vpc", codeValidation, "vpc-zz", []string{"Name", "x", "Protocol", "HTTP", "Port", "80", "VpcId", "vpc-zz"}},
		{"interval", codeValidation, "between 5 and 300", base("HealthCheckIntervalSeconds", "4")},
		{"timeout", codeValidation, "between 2 and 120", base("HealthCheckTimeoutSeconds", "121")},
		{"timeout>=interval", codeValidation, "must be smaller than the interval", base("HealthCheckTimeoutSeconds", "30")},
		{"healthy", codeValidation, "between 2 and 10", base("HealthyThresholdCount", "11")},
		{"unhealthy", codeValidation, "between 2 and 10", base("UnhealthyThresholdCount", "1")},
		{"path", codeValidation, "must begin with a '/'", base("HealthCheckPath", "health")},
		{"matcher", codeValidation, "200 to 499", base("Matcher.HttpCode", "600")},
		{"tcp path", codeValidation, "cannot be set", []string{"Name", "x", "Protocol", "TCP", "Port", "80", "VpcId", "vpc-a", "HealthCheckPath", "/"}},
		{"target type", codeValidation, "lambda", []string{"Name", "x", "Protocol", "HTTP", "Port", "80", "VpcId", "vpc-a", "TargetType", "lambda"}},
		{"hc port", codeValidation, "traffic-port", base("HealthCheckPort", "70000")},
	}
	for _, c := range cases {
		msg := e.fails(c.code, "CreateTargetGroup", c.kv...)
		if !strings.Contains(msg, c.msg) {
			t.Errorf("%s: message %q, want %q", c.name, msg, c.msg)
		}
	}
	if after := e.snapshot(); after != before {
		t.Errorf("failed calls changed the store")
	}
}
