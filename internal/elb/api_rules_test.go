package elb

import (
	"strings"
	"testing"
)

func TestRules(t *testing.T) {
	e := newEnv(t)
	lb := e.createALB("lb")
	a := e.createTG("a", "HTTP", "vpc-a")
	b := e.createTG("b", "HTTP", "vpc-a")
	other := e.createTG("other", "HTTP", "vpc-b")
	l := e.createListener(lb.LoadBalancerArn, "HTTP", "80", a.TargetGroupArn)
	fwdB := []string{"Actions.member.1.Type", "forward", "Actions.member.1.TargetGroupArn", b.TargetGroupArn}
	r1 := ok[*rulesResult](e, "CreateRule", append([]string{"ListenerArn", l.ListenerArn, "Priority", "10",
		"Conditions.member.1.Field", "path-pattern", "Conditions.member.1.PathPatternConfig.Values.member.1", "/api/*",
		"Conditions.member.2.Field", "http-request-method", "Conditions.member.2.HttpRequestMethodConfig.Values.member.1", "GET"}, fwdB...)...).Rules[0]
	if !strings.Contains(r1.RuleArn, ":listener-rule/app/lb/") || r1.Priority != "10" || r1.IsDefault || len(r1.Conditions) != 2 ||
		r1.Conditions[0].PathPatternConfig.Values[0] != "/api/*" || r1.Conditions[0].Values[0] != "/api/*" ||
		r1.Conditions[1].HTTPRequestMethodConfig.Values[0] != "GET" || *r1.Actions[0].TargetGroupArn != b.TargetGroupArn {
		t.Errorf("rule %+v", r1)
	}
	r2 := ok[*rulesResult](e, "CreateRule", append([]string{"ListenerArn", l.ListenerArn, "Priority", "5",
		"Conditions.member.1.Field", "host-header", "Conditions.member.1.Values.member.1", "api.example.com",
		"Conditions.member.2.Field", "http-header", "Conditions.member.2.HttpHeaderConfig.HttpHeaderName", "X-Env",
		"Conditions.member.2.HttpHeaderConfig.Values.member.1", "dev",
		"Conditions.member.3.Field", "query-string", "Conditions.member.3.QueryStringConfig.Values.member.1.Key", "v",
		"Conditions.member.3.QueryStringConfig.Values.member.1.Value", "2",
		"Conditions.member.4.Field", "source-ip", "Conditions.member.4.SourceIpConfig.Values.member.1", "10.0.0.0/8"}, fwdB...)...).Rules[0]
	if r2.Conditions[0].HostHeaderConfig.Values[0] != "api.example.com" || r2.Conditions[1].HTTPHeaderConfig.HTTPHeaderName != "X-Env" ||
		*r2.Conditions[2].QueryStringConfig.Values[0].Key != "v" || r2.Conditions[3].SourceIPConfig.Values[0] != "10.0.0.0/8" {
		t.Errorf("rule 2 %+v", r2)
	}
	d := ok[*rulesResult](e, "DescribeRules", "ListenerArn", l.ListenerArn)
	if len(d.Rules) != 3 || d.Rules[0].Priority != "5" || d.Rules[1].Priority != "10" || d.Rules[2].Priority != "default" ||
		!d.Rules[2].IsDefault || *d.Rules[2].Actions[0].TargetGroupArn != a.TargetGroupArn {
		t.Errorf("describe %+v", d)
	}
	def := d.Rules[2].RuleArn
	// Conflicts and bad input change nothing.
	before := e.snapshot()
	base := func(prio string, kv ...string) []string {
		return append(append([]string{"ListenerArn", l.ListenerArn, "Priority", prio}, fwdB...), kv...)
	}
	path := []string{"Conditions.member.1.Field", "path-pattern", "Conditions.member.1.PathPatternConfig.Values.member.1", "/x"}
	cases := []struct {
		name, code, msg string
		kv              []string
	}{
		{"priority in use", codePriorityInUse, "Priority '10' is currently in use", base("10", path...)},
		{"priority range", codeValidation, "between 1 and 50000", base("50001", path...)},
		{"no conditions", codeValidation, "conditions", base("11")},
		{"bad field", codeValidation, "cookie", base("11", "Conditions.member.1.Field", "cookie", "Conditions.member.1.Values.member.1", "x")},
		{"too many values", codeValidation, "'5' condition values", base("11", "Conditions.member.1.Field", "path-pattern",
			"Conditions.member.1.Values.member.1", "/1", "Conditions.member.1.Values.member.2", "/2", "Conditions.member.1.Values.member.3", "/3",
			"Conditions.member.1.Values.member.4", "/4", "Conditions.member.1.Values.member.5", "/5", "Conditions.member.1.Values.member.6", "/6")},
		{"bad source ip", codeValidation, "CIDR", base("11", "Conditions.member.1.Field", "source-ip", "Conditions.member.1.SourceIpConfig.Values.member.1", "nope")},
		{"no listener", codeListenerNotFound, "", append([]string{"ListenerArn", strings.Replace(l.ListenerArn, "/lb/", "/zz/", 1), "Priority", "11"},
			append(fwdB, path...)...)},
		{"other vpc", codeInvalidConfiguration, "Target group '" + other.TargetGroupArn + "' is in a different VPC than load balancer '" +
			lb.LoadBalancerArn + "'", append([]string{"ListenerArn", l.ListenerArn, "Priority", "11",
			"Actions.member.1.Type", "forward", "Actions.member.1.TargetGroupArn", other.TargetGroupArn}, path...)},
	}
	for _, c := range cases {
		msg := e.fails(c.code, "CreateRule", c.kv...)
		if !strings.Contains(msg, c.msg) {
			t.Errorf("%s: message %q, want %q", c.name, msg, c.msg)
		}
	}
	e.fails(codeOperationNotPermitted, "DeleteRule", "RuleArn", def)
	e.fails(codeOperationNotPermitted, "SetRulePriorities", "RulePriorities.member.1.RuleArn", def, "RulePriorities.member.1.Priority", "3")
	e.fails(codePriorityInUse, "SetRulePriorities", "RulePriorities.member.1.RuleArn", r1.RuleArn, "RulePriorities.member.1.Priority", "5")
	e.fails(codeResourceInUse, "DeleteTargetGroup", "TargetGroupArn", b.TargetGroupArn)
	if e.snapshot() != before {
		t.Error("failed calls changed the store")
	}
	// Swapping priorities in one call works.
	sw := ok[*rulesResult](e, "SetRulePriorities", "RulePriorities.member.1.RuleArn", r1.RuleArn, "RulePriorities.member.1.Priority", "5",
		"RulePriorities.member.2.RuleArn", r2.RuleArn, "RulePriorities.member.2.Priority", "10")
	if len(sw.Rules) != 2 || sw.Rules[0].Priority != "5" {
		t.Errorf("swap %+v", sw)
	}
	m := ok[*rulesResult](e, "ModifyRule", "RuleArn", r1.RuleArn, "Conditions.member.1.Field", "path-pattern",
		"Conditions.member.1.PathPatternConfig.Values.member.1", "/v2/*").Rules[0]
	if m.Conditions[0].PathPatternConfig.Values[0] != "/v2/*" || len(m.Conditions) != 1 || *m.Actions[0].TargetGroupArn != b.TargetGroupArn {
		t.Errorf("modified %+v", m)
	}
	md := ok[*rulesResult](e, "ModifyRule", "RuleArn", def, "Actions.member.1.Type", "fixed-response",
		"Actions.member.1.FixedResponseConfig.StatusCode", "404").Rules[0]
	if !md.IsDefault || md.Actions[0].FixedResponseConfig.StatusCode != "404" {
		t.Errorf("modified default %+v", md)
	}
	byARN := ok[*rulesResult](e, "DescribeRules", "RuleArns.member.1", def, "RuleArns.member.2", r2.RuleArn)
	if len(byARN.Rules) != 2 || !byARN.Rules[0].IsDefault || byARN.Rules[1].Priority != "10" {
		t.Errorf("by arn %+v", byARN)
	}
	e.do("DeleteRule", "RuleArn", r1.RuleArn)
	e.fails(codeRuleNotFound, "DeleteRule", "RuleArn", r1.RuleArn)
	e.do("DeleteListener", "ListenerArn", l.ListenerArn)
	e.fails(codeRuleNotFound, "DescribeRules", "RuleArns.member.1", r2.RuleArn)
	e.do("DeleteTargetGroup", "TargetGroupArn", b.TargetGroupArn)
}

func TestTags(t *testing.T) {
	e := newEnv(t)
	lb := e.createALB("lb")
	tg := e.createTG("tg", "HTTP", "vpc-a", "Tags.member.1.Key", "team", "Tags.member.1.Value", "web")
	e.do("AddTags", "ResourceArns.member.1", lb.LoadBalancerArn, "ResourceArns.member.2", tg.TargetGroupArn,
		"Tags.member.1.Key", "env", "Tags.member.1.Value", "dev")
	d := ok[*tagsResult](e, "DescribeTags", "ResourceArns.member.1", lb.LoadBalancerArn, "ResourceArns.member.2", tg.TargetGroupArn)
	if len(d.TagDescriptions) != 2 || len(d.TagDescriptions[0].Tags) != 1 || len(d.TagDescriptions[1].Tags) != 2 ||
		d.TagDescriptions[1].ResourceArn != tg.TargetGroupArn {
		t.Errorf("tags %+v", d)
	}
	e.do("RemoveTags", "ResourceArns.member.1", tg.TargetGroupArn, "TagKeys.member.1", "team")
	d = ok[*tagsResult](e, "DescribeTags", "ResourceArns.member.1", tg.TargetGroupArn)
	if len(d.TagDescriptions[0].Tags) != 1 || d.TagDescriptions[0].Tags[0].Key != "env" {
		t.Errorf("after remove %+v", d)
	}
	l := e.createListener(lb.LoadBalancerArn, "HTTP", "80", tg.TargetGroupArn)
	e.do("AddTags", "ResourceArns.member.1", l.ListenerArn, "Tags.member.1.Key", "k", "Tags.member.1.Value", "v")
	before := e.snapshot()
	e.fails(codeTGNotFound, "AddTags", "ResourceArns.member.1", lb.LoadBalancerArn,
		"ResourceArns.member.2", strings.Replace(tg.TargetGroupArn, "/tg/", "/zz/", 1), "Tags.member.1.Key", "x", "Tags.member.1.Value", "y")
	var kv []string
	for i := 1; i <= 50; i++ {
		kv = append(kv, "Tags.member."+itoa(i)+".Key", "k"+itoa(i), "Tags.member."+itoa(i)+".Value", "v")
	}
	e.fails(codeTooManyTags, "AddTags", append([]string{"ResourceArns.member.1", tg.TargetGroupArn}, kv...)...)
	e.fails(codeValidation, "DescribeTags", "ResourceArns.member.1", "arn:aws:s3:::bucket")
	if e.snapshot() != before {
		t.Error("failed calls changed the store")
	}
	lim := ok[*limitsResult](e, "DescribeAccountLimits")
	if len(lim.Limits) == 0 {
		t.Error("no limits")
	}
}
