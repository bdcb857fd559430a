package elb

import (
	"strings"
	"testing"
)

func TestListeners(t *testing.T) {
	e := newEnv(t)
	lb := e.createALB("lb")
	a := e.createTG("a", "HTTP", "vpc-a")
	b := e.createTG("b", "HTTP", "vpc-a")
	l := e.createListener(lb.LoadBalancerArn, "HTTP", "80", a.TargetGroupArn)
	wantPrefix := "arn:aws:elasticloadbalancing:us-east-1:" + e.acct + ":listener/app/lb/" + lb.LoadBalancerArn[len(lb.LoadBalancerArn)-16:] + "/"
	if !strings.HasPrefix(l.ListenerArn, wantPrefix) || l.Port != 80 || l.Protocol != "HTTP" || l.LoadBalancerArn != lb.LoadBalancerArn ||
		len(l.DefaultActions) != 1 || *l.DefaultActions[0].TargetGroupArn != a.TargetGroupArn ||
		l.DefaultActions[0].ForwardConfig.TargetGroups[0].Weight != 1 {
		t.Errorf("listener %+v", l)
	}
	// Weighted forward and fixed response.
	w := ok[*listenersResult](e, "CreateListener", "LoadBalancerArn", lb.LoadBalancerArn, "Protocol", "HTTP", "Port", "8080",
		"DefaultActions.member.1.Type", "forward",
		"DefaultActions.member.1.ForwardConfig.TargetGroups.member.1.TargetGroupArn", a.TargetGroupArn,
		"DefaultActions.member.1.ForwardConfig.TargetGroups.member.1.Weight", "80",
		"DefaultActions.member.1.ForwardConfig.TargetGroups.member.2.TargetGroupArn", b.TargetGroupArn,
		"DefaultActions.member.1.ForwardConfig.TargetGroups.member.2.Weight", "20").Listeners[0]
	fc := w.DefaultActions[0].ForwardConfig
	if w.DefaultActions[0].TargetGroupArn != nil || len(fc.TargetGroups) != 2 || fc.TargetGroups[1].Weight != 20 {
		t.Errorf("weighted %+v", w.DefaultActions[0])
	}
	f := ok[*listenersResult](e, "CreateListener", "LoadBalancerArn", lb.LoadBalancerArn, "Protocol", "HTTP", "Port", "81",
		"DefaultActions.member.1.Type", "fixed-response", "DefaultActions.member.1.FixedResponseConfig.StatusCode", "503",
		"DefaultActions.member.1.FixedResponseConfig.ContentType", "text/plain",
		"DefaultActions.member.1.FixedResponseConfig.MessageBody", "down").Listeners[0]
	if fr := f.DefaultActions[0].FixedResponseConfig; fr == nil || fr.StatusCode != "503" || *fr.MessageBody != "down" {
		t.Errorf("fixed %+v", f.DefaultActions[0])
	}
	r := ok[*listenersResult](e, "CreateListener", "LoadBalancerArn", lb.LoadBalancerArn, "Protocol", "HTTP", "Port", "82",
		"DefaultActions.member.1.Type", "redirect", "DefaultActions.member.1.RedirectConfig.StatusCode", "HTTP_301",
		"DefaultActions.member.1.RedirectConfig.Protocol", "HTTPS").Listeners[0]
	if rc := r.DefaultActions[0].RedirectConfig; rc == nil || rc.Protocol != "HTTPS" || rc.Port != "#{port}" || rc.Path != "/#{path}" {
		t.Errorf("redirect %+v", r.DefaultActions[0])
	}
	d := ok[*listenersResult](e, "DescribeListeners", "LoadBalancerArn", lb.LoadBalancerArn)
	if len(d.Listeners) != 4 || d.Listeners[0].Port != 80 || d.Listeners[3].Port != 8080 {
		t.Errorf("describe %+v", d)
	}
	tgs := ok[*targetGroupsResult](e, "DescribeTargetGroups", "TargetGroupArns.member.1", b.TargetGroupArn)
	if len(tgs.TargetGroups[0].LoadBalancerArns) != 1 {
		t.Errorf("b is used by %v", tgs.TargetGroups[0].LoadBalancerArns)
	}
	e.fails(codeResourceInUse, "DeleteTargetGroup", "TargetGroupArn", b.TargetGroupArn)

	m := ok[*listenersResult](e, "ModifyListener", "ListenerArn", w.ListenerArn, "Port", "8081",
		"DefaultActions.member.1.Type", "forward", "DefaultActions.member.1.TargetGroupArn", a.TargetGroupArn).Listeners[0]
	if m.Port != 8081 || *m.DefaultActions[0].TargetGroupArn != a.TargetGroupArn {
		t.Errorf("modified %+v", m)
	}
	e.do("DeleteTargetGroup", "TargetGroupArn", b.TargetGroupArn) // no longer used
	e.fails(codeDuplicateListener, "ModifyListener", "ListenerArn", w.ListenerArn, "Port", "80")
	e.do("DeleteListener", "ListenerArn", f.ListenerArn)
	e.fails(codeListenerNotFound, "DeleteListener", "ListenerArn", f.ListenerArn)
	e.fails(codeListenerNotFound, "DescribeListeners", "ListenerArns.member.1", f.ListenerArn)
}

func TestListenerErrors(t *testing.T) {
	e := newEnv(t)
	lb := e.createALB("lb")
	nlb := ok[*loadBalancersResult](e, "CreateLoadBalancer", "Name", "nlb", "Type", "network", "Subnets.member.1", "subnet-a1").LoadBalancers[0]
	a := e.createTG("a", "HTTP", "vpc-a")
	other := e.createTG("other", "HTTP", "vpc-b")
	tcp := e.createTG("tcp", "TCP", "vpc-a")
	e.createListener(lb.LoadBalancerArn, "HTTP", "80", a.TargetGroupArn)
	lb2 := e.createALB("lb2")
	before := e.snapshot()
	fwd := func(lbARN, proto, port, tg string) []string {
		return []string{"LoadBalancerArn", lbARN, "Protocol", proto, "Port", port,
			"DefaultActions.member.1.Type", "forward", "DefaultActions.member.1.TargetGroupArn", tg}
	}
	cases := []struct {
		name, code, msg string
		kv              []string
	}{
		{"port taken", codeDuplicateListener, "already exists on this port", fwd(lb.LoadBalancerArn, "HTTP", "80", a.TargetGroupArn)},
		{"other vpc", codeInvalidConfiguration, "Target group '" + other.TargetGroupArn + "' is in a different VPC than load balancer '" +
			lb.LoadBalancerArn + "'", fwd(lb.LoadBalancerArn, "HTTP", "81", other.TargetGroupArn)},
		{"alb tcp", codeUnsupportedProtocol, "TCP", fwd(lb.LoadBalancerArn, "TCP", "81", tcp.TargetGroupArn)},
		{"nlb http", codeUnsupportedProtocol, "HTTP", fwd(nlb.LoadBalancerArn, "HTTP", "81", a.TargetGroupArn)},
		{"incompatible", codeIncompatibleProtocols, "'HTTP'", fwd(lb.LoadBalancerArn, "HTTP", "81", tcp.TargetGroupArn)},
		{"second lb", codeTGAssociationLimit, a.TargetGroupArn, fwd(lb2.LoadBalancerArn, "HTTP", "80", a.TargetGroupArn)},
		{"no lb", codeLBNotFound, "", fwd(strings.Replace(lb.LoadBalancerArn, "/lb/", "/zz/", 1), "HTTP", "81", a.TargetGroupArn)},
		{"no tg", codeTGNotFound, "", fwd(lb.LoadBalancerArn, "HTTP", "81", strings.Replace(a.TargetGroupArn, "/a/", "/zz/", 1))},
		{"bad port", codeValidation, "Port", fwd(lb.LoadBalancerArn, "HTTP", "0", a.TargetGroupArn)},
		{"https no cert", codeCertificateNotFound, "certificate", fwd(lb.LoadBalancerArn, "HTTPS", "443", a.TargetGroupArn)},
		{"no actions", codeValidation, "defaultActions", []string{"LoadBalancerArn", lb.LoadBalancerArn, "Protocol", "HTTP", "Port", "81"}},
		{"bad fixed", codeValidation, "2XX", []string{"LoadBalancerArn", lb.LoadBalancerArn, "Protocol", "HTTP", "Port", "81",
			"DefaultActions.member.1.Type", "fixed-response", "DefaultActions.member.1.FixedResponseConfig.StatusCode", "302"}},
		{"nlb fixed", codeInvalidLBAction, "Network", []string{"LoadBalancerArn", nlb.LoadBalancerArn, "Protocol", "TCP", "Port", "81",
			"DefaultActions.member.1.Type", "fixed-response", "DefaultActions.member.1.FixedResponseConfig.StatusCode", "200"}},
		{"weight", codeValidation, "weight", []string{"LoadBalancerArn", lb.LoadBalancerArn, "Protocol", "HTTP", "Port", "81",
			"DefaultActions.member.1.Type", "forward", "DefaultActions.member.1.ForwardConfig.TargetGroups.member.1.TargetGroupArn", a.TargetGroupArn,
			"DefaultActions.member.1.ForwardConfig.TargetGroups.member.1.Weight", "1000"}},
	}
	for _, c := range cases {
		msg := e.fails(c.code, "CreateListener", c.kv...)
		if !strings.Contains(msg, c.msg) {
			t.Errorf("%s: message %q, want %q", c.name, msg, c.msg)
		}
	}
	// ModifyListener to another VPC's group: the same refusal.
	l80 := ok[*listenersResult](e, "DescribeListeners", "LoadBalancerArn", lb.LoadBalancerArn).Listeners[0]
	e.fails(codeInvalidConfiguration, "ModifyListener", "ListenerArn", l80.ListenerArn,
		"DefaultActions.member.1.Type", "forward", "DefaultActions.member.1.TargetGroupArn", other.TargetGroupArn)
	if e.snapshot() != before {
		t.Error("failed calls changed the store")
	}
	// An NLB listener forwards to a TCP group.
	e.createListener(nlb.LoadBalancerArn, "TCP", "9000", tcp.TargetGroupArn)
}

// Concurrent creations of a listener on one port: exactly one wins.
func TestConcurrentListeners(t *testing.T) {
	e := newEnv(t)
	lb := e.createALB("lb")
	tg := e.createTG("tg", "HTTP", "vpc-a")
	const n = 8
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			_, err := e.callAs(e.ctx, "CreateListener", "LoadBalancerArn", lb.LoadBalancerArn, "Protocol", "HTTP", "Port", "80",
				"DefaultActions.member.1.Type", "forward", "DefaultActions.member.1.TargetGroupArn", tg.TargetGroupArn)
			errs <- err
		}()
	}
	wins := 0
	for i := 0; i < n; i++ {
		switch err := <-errs; code(err) {
		case "":
			wins++
		case codeDuplicateListener:
		default:
			t.Errorf("unexpected error %v", err)
		}
	}
	if wins != 1 {
		t.Errorf("%d listeners created on one port", wins)
	}
}
