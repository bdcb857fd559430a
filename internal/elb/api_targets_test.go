package elb

import (
	"context"
	"strings"
	"testing"
	"time"
)

func healthOf(e *env, tgARN string) map[string]string {
	e.t.Helper()
	r := ok[*targetHealthResult](e, "DescribeTargetHealth", "TargetGroupArn", tgARN)
	out := map[string]string{}
	for _, d := range r.TargetHealthDescriptions {
		s := d.TargetHealth.State
		if d.TargetHealth.Reason != nil {
			s += "/" + *d.TargetHealth.Reason
		}
		out[targetID(d.Target.ID, d.Target.Port)] = s
	}
	return out
}

func TestTargetsAndHealth(t *testing.T) {
	e := newEnv(t)
	tg := e.createTG("web", "HTTP", "vpc-a")
	arn := tg.TargetGroupArn
	e.do("RegisterTargets", "TargetGroupArn", arn, "Targets.member.1.Id", "10.0.1.5", "Targets.member.2.Id", "10.0.2.6",
		"Targets.member.2.Port", "8080")
	h := healthOf(e, arn)
	if len(h) != 2 || h["10.0.1.5:80"] != "unused/Target.NotInUse" || h["10.0.2.6:8080"] != "unused/Target.NotInUse" {
		t.Errorf("unused group: %v", h)
	}
	lb := e.createALB("lb")
	e.createListener(lb.LoadBalancerArn, "HTTP", "80", arn)
	if h := healthOf(e, arn); h["10.0.1.5:80"] != "initial/Elb.RegistrationInProgress" {
		t.Errorf("in use: %v", h)
	}
	d := ok[*targetGroupsResult](e, "DescribeTargetGroups", "LoadBalancerArn", lb.LoadBalancerArn)
	if len(d.TargetGroups) != 1 || len(d.TargetGroups[0].LoadBalancerArns) != 1 || d.TargetGroups[0].LoadBalancerArns[0] != lb.LoadBalancerArn {
		t.Errorf("groups of lb: %+v", d)
	}
	// The data plane reports health.
	if err := e.s.SetTargetHealth(context.Background(), arn, "10.0.1.5", 80, StateHealthy, "", ""); err != nil {
		t.Fatal(err)
	}
	if err := e.s.SetTargetHealth(context.Background(), arn, "10.0.2.6", 8080, StateUnhealthy, ReasonFailedHealthChecks, "Health checks failed"); err != nil {
		t.Fatal(err)
	}
	if err := e.s.SetTargetHealth(context.Background(), arn, "10.0.9.9", 80, StateHealthy, "", ""); err != nil {
		t.Errorf("unregistered target: %v", err)
	}
	if err := e.s.SetTargetHealth(context.Background(), arn, "10.0.1.5", 80, "great", "", ""); err == nil {
		t.Error("unknown state accepted")
	}
	h = healthOf(e, arn)
	if h["10.0.1.5:80"] != "healthy" || h["10.0.2.6:8080"] != "unhealthy/Target.FailedHealthChecks" || len(h) != 2 {
		t.Errorf("reported: %v", h)
	}
	// Named targets, one not registered.
	r := ok[*targetHealthResult](e, "DescribeTargetHealth", "TargetGroupArn", arn, "Targets.member.1.Id", "10.0.3.3")
	if len(r.TargetHealthDescriptions) != 1 || *r.TargetHealthDescriptions[0].TargetHealth.Reason != ReasonNotRegistered ||
		r.TargetHealthDescriptions[0].HealthCheckPort != "80" {
		t.Errorf("unregistered: %+v", r)
	}
	// Deregistration drains for the delay, then the target is gone.
	e.do("ModifyTargetGroupAttributes", "TargetGroupArn", arn, "Attributes.member.1.Key", "deregistration_delay.timeout_seconds",
		"Attributes.member.1.Value", "10")
	e.do("DeregisterTargets", "TargetGroupArn", arn, "Targets.member.1.Id", "10.0.1.5")
	if h := healthOf(e, arn); h["10.0.1.5:80"] != "draining/Target.DeregistrationInProgress" {
		t.Errorf("draining: %v", h)
	}
	infos, err := e.s.TargetHealth(context.Background(), e.acct, "us-east-1", arn)
	if err != nil || len(infos) != 2 {
		t.Errorf("TargetHealth = %+v %v", infos, err)
	}
	e.clock.advance(10 * time.Second)
	if h := healthOf(e, arn); len(h) != 1 {
		t.Errorf("after the delay: %v", h)
	}
	if err := e.s.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	have, _ := e.s.targets(context.Background(), scope{e.acct, "us-east-1"}, tg.TargetGroupArn[len(tg.TargetGroupArn)-16:])
	if len(have) != 1 {
		t.Errorf("reconciler left %d targets, want 1", len(have))
	}
	// Re-registering a draining target brings it back.
	e.do("DeregisterTargets", "TargetGroupArn", arn, "Targets.member.1.Id", "10.0.2.6", "Targets.member.1.Port", "8080")
	e.do("RegisterTargets", "TargetGroupArn", arn, "Targets.member.1.Id", "10.0.2.6", "Targets.member.1.Port", "8080")
	if h := healthOf(e, arn); h["10.0.2.6:8080"] != "initial/Elb.RegistrationInProgress" {
		t.Errorf("re-registered: %v", h)
	}

	before := e.snapshot()
	for _, c := range []struct {
		code, msg string
		kv        []string
	}{
		{codeInvalidTarget, "not within the CIDR block", []string{"Targets.member.1.Id", "10.1.0.5"}},
		{codeInvalidTarget, "not a valid IPv4", []string{"Targets.member.1.Id", "i-0123"}},
		{codeValidation, "Port must be between", []string{"Targets.member.1.Id", "10.0.0.9", "Targets.member.1.Port", "0"}},
		{codeValidation, "targets", nil},
	} {
		msg := e.fails(c.code, "RegisterTargets", append([]string{"TargetGroupArn", arn, "Targets.member.9.Id", "10.0.0.7"}[:2], c.kv...)...)
		if !strings.Contains(msg, c.msg) {
			t.Errorf("message %q, want %q", msg, c.msg)
		}
	}
	e.fails(codeInvalidTarget, "DeregisterTargets", "TargetGroupArn", arn, "Targets.member.1.Id", "10.0.0.99")
	e.fails(codeTGNotFound, "RegisterTargets", "TargetGroupArn", strings.Replace(arn, "/web/", "/nope/", 1), "Targets.member.1.Id", "10.0.0.1")
	if e.snapshot() != before {
		t.Error("failed calls changed the store")
	}
	// Instance groups: berth has no instances.
	inst := ok[*targetGroupsResult](e, "CreateTargetGroup", "Name", "inst", "Protocol", "HTTP", "Port", "80", "VpcId", "vpc-a").TargetGroups[0]
	e.fails(codeInvalidTarget, "RegisterTargets", "TargetGroupArn", inst.TargetGroupArn, "Targets.member.1.Id", "i-0123456789abcdef0")
}

func TestTooManyTargets(t *testing.T) {
	e := newEnv(t)
	tg := e.createTG("big", "TCP", "vpc-a")
	var targets []Target
	for i := 0; i < maxTargets; i++ {
		targets = append(targets, Target{ID: "10.0." + itoa(i/250) + "." + itoa(i%250+1), Port: 80})
	}
	if err := e.s.RegisterTargets(context.Background(), e.acct, "us-east-1", tg.TargetGroupArn, targets[:maxTargetsPerCall+1]); code(err) != codeValidation {
		t.Errorf("%d targets in one call: %v", maxTargetsPerCall+1, err)
	}
	for i := 0; i < len(targets); i += maxTargetsPerCall {
		if err := e.s.RegisterTargets(context.Background(), e.acct, "us-east-1", tg.TargetGroupArn, targets[i:i+maxTargetsPerCall]); err != nil {
			t.Fatal(err)
		}
	}
	e.fails(codeTooManyTargets, "RegisterTargets", "TargetGroupArn", tg.TargetGroupArn, "Targets.member.1.Id", "10.0.9.9")
}

func TestGoAPI(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	tg := e.createTG("svc", "HTTP", "vpc-a")
	lb := e.createALB("lb")
	l := e.createListener(lb.LoadBalancerArn, "HTTP", "80", tg.TargetGroupArn)
	info, err := e.s.TargetGroup(ctx, e.acct, "us-east-1", tg.TargetGroupArn)
	vpcID, proto, port, lbs := info.VpcID, info.Protocol, info.Port, info.LoadBalancerARNs
	if err != nil || vpcID != "vpc-a" || proto != "HTTP" || port != 80 || len(lbs) != 1 || lbs[0] != lb.LoadBalancerArn {
		t.Errorf("TargetGroup = %s %s %d %v %v", vpcID, proto, port, lbs, err)
	}
	if _, err := e.s.TargetGroup(ctx, newAccount(), "us-east-1", tg.TargetGroupArn); code(err) != codeTGNotFound {
		t.Errorf("another account: %v", err)
	}
	if err := e.s.RegisterTargets(ctx, e.acct, "us-east-1", tg.TargetGroupArn, []Target{{"10.0.1.10", 8080}}); err != nil {
		t.Fatal(err)
	}
	hs, err := e.s.TargetHealth(ctx, e.acct, "us-east-1", tg.TargetGroupArn)
	if err != nil || len(hs) != 1 || hs[0] != (TargetHealthInfo{"10.0.1.10", 8080, StateInitial, ReasonRegistrationInProgress}) {
		t.Errorf("TargetHealth = %+v %v", hs, err)
	}
	ok[*rulesResult](e, "CreateRule", "ListenerArn", l.ListenerArn, "Priority", "5",
		"Conditions.member.1.Field", "path-pattern", "Conditions.member.1.PathPatternConfig.Values.member.1", "/api/*",
		"Actions.member.1.Type", "fixed-response", "Actions.member.1.FixedResponseConfig.StatusCode", "404")

	all, err := e.s.LoadBalancers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var mine *LoadBalancerConfig
	for i := range all {
		if all[i].Account == e.acct {
			mine = &all[i]
		}
	}
	if mine == nil || mine.ARN != lb.LoadBalancerArn || len(mine.Listeners) != 1 || len(mine.Listeners[0].Rules) != 2 ||
		mine.Listeners[0].Rules[0].Priority != 5 || mine.Listeners[0].Rules[0].Action.FixedStatusCode != "404" ||
		mine.Listeners[0].Rules[1].Action.Forward[0].ARN != tg.TargetGroupArn || len(mine.TargetGroups) != 1 ||
		len(mine.TargetGroups[tg.TargetGroupArn].Targets) != 1 || mine.TargetGroups[tg.TargetGroupArn].HealthCheck.Interval != 30*time.Second ||
		mine.TargetGroups[tg.TargetGroupArn].Attributes["deregistration_delay.timeout_seconds"] != "300" {
		t.Errorf("LoadBalancers: %+v", mine)
	}
	if err := e.s.DeregisterTargets(ctx, e.acct, "us-east-1", tg.TargetGroupArn, []Target{{"10.0.1.10", 8080}}); err != nil {
		t.Fatal(err)
	}
	hs, _ = e.s.TargetHealth(ctx, e.acct, "us-east-1", tg.TargetGroupArn)
	if len(hs) != 1 || hs[0].State != StateDraining {
		t.Errorf("after deregister: %+v", hs)
	}
}

func TestRun(t *testing.T) {
	e := newEnv(t)
	e.s.cfg.ReconcileInterval = 10 * time.Millisecond
	tg := e.createTG("svc", "HTTP", "vpc-a")
	ctx := context.Background()
	if err := e.s.RegisterTargets(ctx, e.acct, "us-east-1", tg.TargetGroupArn, []Target{{"10.0.1.10", 80}}); err != nil {
		t.Fatal(err)
	}
	if err := e.s.DeregisterTargets(ctx, e.acct, "us-east-1", tg.TargetGroupArn, []Target{{"10.0.1.10", 80}}); err != nil {
		t.Fatal(err)
	}
	e.clock.advance(301 * time.Second)
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = e.s.Run(rctx) }()
	defer func() { cancel(); <-done }()
	id := tg.TargetGroupArn[len(tg.TargetGroupArn)-16:]
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if have, _ := e.s.targets(ctx, scope{e.acct, "us-east-1"}, id); len(have) == 0 {
			return
		}
	}
	t.Error("Run did not delete the drained target")
}
