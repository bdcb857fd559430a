package e2e

import (
	"encoding/json"
	"strings"
	"testing"
)

// CLI reply shapes of ELBv2 and ECS services, as much as these tests read.
type cliLB struct {
	LoadBalancerArn string `json:"LoadBalancerArn"`
	DNSName         string `json:"DNSName"`
	VpcId           string `json:"VpcId"`
	Type            string `json:"Type"`
}

type cliTG struct {
	TargetGroupArn string `json:"TargetGroupArn"`
	VpcId          string `json:"VpcId"`
	TargetType     string `json:"TargetType"`
}

type cliAction struct {
	Type           string `json:"Type"`
	TargetGroupArn string `json:"TargetGroupArn"`
}

type cliListener struct {
	ListenerArn    string      `json:"ListenerArn"`
	Port           int         `json:"Port"`
	Protocol       string      `json:"Protocol"`
	DefaultActions []cliAction `json:"DefaultActions"`
}

type cliRule struct {
	RuleArn    string      `json:"RuleArn"`
	Priority   string      `json:"Priority"`
	IsDefault  bool        `json:"IsDefault"`
	Actions    []cliAction `json:"Actions"`
	Conditions []struct {
		Field  string   `json:"Field"`
		Values []string `json:"Values"`
	} `json:"Conditions"`
}

// sub is the CLI bound to a subtest, so that one failing case does not
// end the others.
func (a *awsCLI) sub(t *testing.T) *awsCLI {
	c := *a
	c.t = t
	return &c
}

// createLB creates a load balancer in the default subnets.
func (a *awsCLI) createLB(name, typ string, extra ...string) cliLB {
	a.t.Helper()
	var out struct {
		LoadBalancers []cliLB `json:"LoadBalancers"`
	}
	a.call(&out, append([]string{"elbv2", "create-load-balancer", "--name", name, "--type", typ, "--subnets"}, append(a.subnets, extra...)...)...)
	if len(out.LoadBalancers) != 1 || out.LoadBalancers[0].LoadBalancerArn == "" {
		a.t.Fatalf("create-load-balancer %s replied %+v", name, out)
	}
	return out.LoadBalancers[0]
}

func (a *awsCLI) createTG(name, proto, port, vpc string, extra ...string) cliTG {
	a.t.Helper()
	var out struct {
		TargetGroups []cliTG `json:"TargetGroups"`
	}
	a.call(&out, append([]string{"elbv2", "create-target-group", "--name", name, "--protocol", proto, "--port", port,
		"--vpc-id", vpc}, extra...)...)
	if len(out.TargetGroups) != 1 || out.TargetGroups[0].TargetGroupArn == "" {
		a.t.Fatalf("create-target-group %s replied %+v", name, out)
	}
	return out.TargetGroups[0]
}

func (a *awsCLI) listeners(lbArn string) []cliListener {
	a.t.Helper()
	var out struct {
		Listeners []cliListener `json:"Listeners"`
	}
	a.call(&out, "elbv2", "describe-listeners", "--load-balancer-arn", lbArn)
	return out.Listeners
}

func (a *awsCLI) rules(listenerArn string) []cliRule {
	a.t.Helper()
	var out struct {
		Rules []cliRule `json:"Rules"`
	}
	a.call(&out, "elbv2", "describe-rules", "--listener-arn", listenerArn)
	return out.Rules
}

func (a *awsCLI) defaultVPC() string {
	a.t.Helper()
	var out struct {
		Vpcs []struct {
			VpcId string `json:"VpcId"`
		} `json:"Vpcs"`
	}
	a.call(&out, "ec2", "describe-vpcs", "--filters", "Name=is-default,Values=true")
	if len(out.Vpcs) != 1 {
		a.t.Fatalf("default VPC: %+v", out)
	}
	return out.Vpcs[0].VpcId
}

// failWith runs a command that must fail with code and returns the whole
// message (fail's stops at the last colon, and ARNs have colons).
func (a *awsCLI) failWith(code string, args ...string) string {
	a.t.Helper()
	stdout, stderr, err := a.run(args...)
	if err == nil {
		a.t.Fatalf("aws %s succeeded (%s), want %s", strings.Join(args, " "), stdout, code)
	}
	want := "An error occurred (" + code + ") when calling the "
	i := strings.Index(stderr, want)
	if i < 0 {
		a.t.Fatalf("aws %s: stderr %q, want %q", strings.Join(args, " "), stderr, want)
	}
	_, msg, _ := strings.Cut(stderr[i:], " operation: ")
	return strings.TrimSpace(msg)
}

func cliJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func cliPathCondition(patterns ...string) string {
	return cliJSON([]map[string]any{{"Field": "path-pattern", "PathPatternConfig": map[string]any{"Values": patterns}}})
}

func cliForward(tgArn string) string { return "Type=forward,TargetGroupArn=" + tgArn }

// TestLoadBalancerBadInput: with the real AWS CLI, the requests AWS refuses
// around load balancers and services behind them get AWS's error codes,
// and leave nothing half-made behind.
func TestLoadBalancerBadInput(t *testing.T) {
	t.Parallel() // waits on health checks and rollouts: overlaps with the other service tests (own env, own address pools)
	e := startDev(t)
	cli := newAWSCLI(t, e)
	vpc := cli.defaultVPC()
	lb := cli.createLB("bad", "application")
	tg := cli.createTG("web", "HTTP", "8080", vpc, "--target-type", "ip")
	var created struct {
		Listeners []cliListener `json:"Listeners"`
	}
	cli.call(&created, "elbv2", "create-listener", "--load-balancer-arn", lb.LoadBalancerArn, "--protocol", "HTTP", "--port", "80",
		"--default-actions", cliForward(tg.TargetGroupArn))
	if len(created.Listeners) != 1 {
		t.Fatalf("create-listener replied %+v", created)
	}
	listener := created.Listeners[0].ListenerArn
	var rule struct {
		Rules []cliRule `json:"Rules"`
	}
	cli.call(&rule, "elbv2", "create-rule", "--listener-arn", listener, "--priority", "10", "--conditions", cliPathCondition("/a/*"),
		"--actions", cliForward(tg.TargetGroupArn))
	if len(rule.Rules) != 1 || rule.Rules[0].Priority != "10" {
		t.Fatalf("create-rule replied %+v", rule)
	}
	// What the load balancer has; every refused request must leave it so.
	unchanged := func(a *awsCLI) {
		a.t.Helper()
		ls := a.listeners(lb.LoadBalancerArn)
		if len(ls) != 1 || ls[0].Port != 80 || len(ls[0].DefaultActions) != 1 || ls[0].DefaultActions[0].TargetGroupArn != tg.TargetGroupArn {
			a.t.Errorf("listeners after a refused request: %+v", ls)
		}
		rs := a.rules(listener)
		if len(rs) != 2 || rs[0].Priority != "10" || rs[0].Actions[0].TargetGroupArn != tg.TargetGroupArn ||
			len(rs[0].Conditions) != 1 || strings.Join(rs[0].Conditions[0].Values, ",") != "/a/*" || !rs[1].IsDefault {
			a.t.Errorf("rules after a refused request: %+v", rs)
		}
	}
	unchanged(cli)

	t.Run("DuplicateListener", func(t *testing.T) {
		a := cli.sub(t)
		a.fail("DuplicateListener", "elbv2", "create-listener", "--load-balancer-arn", lb.LoadBalancerArn, "--protocol", "HTTP",
			"--port", "80", "--default-actions", "Type=fixed-response,FixedResponseConfig={StatusCode=404}")
		unchanged(a)
	})

	t.Run("PriorityInUse", func(t *testing.T) {
		a := cli.sub(t)
		a.fail("PriorityInUse", "elbv2", "create-rule", "--listener-arn", listener, "--priority", "10",
			"--conditions", cliPathCondition("/b/*"), "--actions", cliForward(tg.TargetGroupArn))
		unchanged(a)
	})

	t.Run("TargetGroupInAnotherVPC", func(t *testing.T) {
		a := cli.sub(t)
		var v struct {
			Vpc struct {
				VpcId string `json:"VpcId"`
			} `json:"Vpc"`
		}
		a.call(&v, "ec2", "create-vpc", "--cidr-block", "10.77.0.0/16")
		other := a.createTG("other", "HTTP", "8080", v.Vpc.VpcId, "--target-type", "ip")
		if other.VpcId != v.Vpc.VpcId || other.VpcId == vpc {
			t.Fatalf("target group in the new VPC: %+v", other)
		}
		msg := a.failWith("InvalidConfigurationRequest", "elbv2", "create-listener", "--load-balancer-arn", lb.LoadBalancerArn,
			"--protocol", "HTTP", "--port", "81", "--default-actions", cliForward(other.TargetGroupArn))
		if !strings.Contains(msg, other.TargetGroupArn) || !strings.Contains(msg, lb.LoadBalancerArn) || !strings.Contains(msg, "VPC") {
			t.Errorf("create-listener: message %q does not name the target group, the load balancer and VPC", msg)
		}
		a.fail("InvalidConfigurationRequest", "elbv2", "create-rule", "--listener-arn", listener, "--priority", "20",
			"--conditions", cliPathCondition("/c/*"), "--actions", cliForward(other.TargetGroupArn))
		a.fail("InvalidConfigurationRequest", "elbv2", "modify-listener", "--listener-arn", listener,
			"--default-actions", cliForward(other.TargetGroupArn))
		unchanged(a)
		// The target group is still free: no listener refers to it.
		var tgs struct {
			TargetGroups []struct {
				LoadBalancerArns []string `json:"LoadBalancerArns"`
			} `json:"TargetGroups"`
		}
		a.call(&tgs, "elbv2", "describe-target-groups", "--target-group-arns", other.TargetGroupArn)
		if len(tgs.TargetGroups) != 1 || len(tgs.TargetGroups[0].LoadBalancerArns) != 0 {
			t.Errorf("target group of the other VPC after refused requests: %+v", tgs)
		}
		a.call(nil, "elbv2", "delete-target-group", "--target-group-arn", other.TargetGroupArn)
	})

	// Services: a cluster, and what describe-services and list-services
	// must still show after each refused create-service (nothing).
	cli.call(nil, "ecs", "create-cluster", "--cluster-name", "bad")
	noService := func(a *awsCLI, name string) {
		a.t.Helper()
		var list struct {
			ServiceArns []string `json:"serviceArns"`
		}
		a.call(&list, "ecs", "list-services", "--cluster", "bad")
		if len(list.ServiceArns) != 0 {
			a.t.Errorf("list-services after a refused create-service: %v", list.ServiceArns)
		}
		var d struct {
			Services []struct {
				Status string `json:"status"`
			} `json:"services"`
			Failures []cliFailure `json:"failures"`
		}
		a.call(&d, "ecs", "describe-services", "--cluster", "bad", "--services", name)
		if len(d.Services) != 0 || len(d.Failures) != 1 || d.Failures[0].Reason != "MISSING" {
			a.t.Errorf("describe-services %s after a refused create-service: %+v", name, d)
		}
		var health struct {
			TargetHealthDescriptions []any `json:"TargetHealthDescriptions"`
		}
		a.call(&health, "elbv2", "describe-target-health", "--target-group-arn", tg.TargetGroupArn)
		if len(health.TargetHealthDescriptions) != 0 {
			a.t.Errorf("targets registered by a refused create-service: %+v", health.TargetHealthDescriptions)
		}
	}
	web := map[string]any{"name": "web", "image": e.Image, "essential": true, "command": []string{"httpd", "-f", "-p", "8080"},
		"portMappings": []map[string]any{{"containerPort": 8080, "protocol": "tcp"}}}
	awsvpcDef := map[string]any{"family": "bad-web", "networkMode": "awsvpc", "requiresCompatibilities": []string{"FARGATE"},
		"cpu": "256", "memory": "512", "containerDefinitions": []map[string]any{web}}
	webTD := cli.register("bad-web", awsvpcDef)
	lbArg := func(tgArn, container, port string) string {
		return "targetGroupArn=" + tgArn + ",containerName=" + container + ",containerPort=" + port
	}

	t.Run("BridgeTaskDefinitionOnFargate", func(t *testing.T) {
		a := cli.sub(t)
		bridge := map[string]any{"family": "bad-bridge", "networkMode": "bridge", "requiresCompatibilities": []string{"EC2"},
			"cpu": "256", "memory": "512", "containerDefinitions": []map[string]any{web}}
		a.register("bad-bridge", bridge)
		a.fail("InvalidParameterException", "ecs", "create-service", "--cluster", "bad", "--service-name", "bridge",
			"--task-definition", "bad-bridge", "--desired-count", "1", "--launch-type", "FARGATE",
			"--load-balancers", lbArg(tg.TargetGroupArn, "web", "8080"))
		noService(a, "bridge")
	})

	t.Run("ContainerNotInTaskDefinition", func(t *testing.T) {
		a := cli.sub(t)
		a.fail("InvalidParameterException", "ecs", "create-service", "--cluster", "bad", "--service-name", "noname",
			"--task-definition", webTD, "--desired-count", "1", "--launch-type", "FARGATE", "--network-configuration", a.network(),
			"--load-balancers", lbArg(tg.TargetGroupArn, "api", "8080"))
		noService(a, "noname")
	})

	t.Run("ContainerPortNotMapped", func(t *testing.T) {
		a := cli.sub(t)
		a.fail("InvalidParameterException", "ecs", "create-service", "--cluster", "bad", "--service-name", "noport",
			"--task-definition", webTD, "--desired-count", "1", "--launch-type", "FARGATE", "--network-configuration", a.network(),
			"--load-balancers", lbArg(tg.TargetGroupArn, "web", "9090"))
		noService(a, "noport")
	})

	t.Run("InstanceTargetGroupWithAwsvpc", func(t *testing.T) {
		// awsvpc tasks register by IP: a target group of instances cannot
		// take them (AWS: "... has target type instance, which is
		// incompatible with the awsvpc network mode specified in the task
		// definition.").
		a := cli.sub(t)
		inst := a.createTG("inst", "HTTP", "8080", vpc, "--target-type", "instance")
		msg := a.failWith("InvalidParameterException", "ecs", "create-service", "--cluster", "bad", "--service-name", "inst",
			"--task-definition", webTD, "--desired-count", "1", "--launch-type", "FARGATE", "--network-configuration", a.network(),
			"--load-balancers", lbArg(inst.TargetGroupArn, "web", "8080"))
		if !strings.Contains(msg, "instance") {
			t.Errorf("message %q does not name the target type", msg)
		}
		noService(a, "inst")
	})

	// The same service with good input is accepted (the refusals above
	// were about their input, not the setup).
	var svc struct {
		Service struct {
			ServiceName   string `json:"serviceName"`
			LoadBalancers []struct {
				TargetGroupArn string `json:"targetGroupArn"`
			} `json:"loadBalancers"`
		} `json:"service"`
	}
	cli.call(&svc, "ecs", "create-service", "--cluster", "bad", "--service-name", "good", "--task-definition", webTD,
		"--desired-count", "0", "--launch-type", "FARGATE", "--network-configuration", cli.network(),
		"--load-balancers", lbArg(tg.TargetGroupArn, "web", "8080"))
	if svc.Service.ServiceName != "good" || len(svc.Service.LoadBalancers) != 1 || svc.Service.LoadBalancers[0].TargetGroupArn != tg.TargetGroupArn {
		t.Errorf("create-service with good input replied %+v", svc.Service)
	}
}
