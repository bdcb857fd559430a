package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestALBPathRulesWithCLI sets up, with nothing but the real AWS CLI, an
// ALB whose listener answers 404 by default and routes /api/* and /web/*
// to two target groups, each fed by a service of 3 tasks over the 3
// default subnets. `aws ecs wait services-stable` returns, the targets turn
// healthy, and requests to the ALB's DNS name reach the right service
// (every task of it), or the fixed 404.
func TestALBPathRulesWithCLI(t *testing.T) {
	t.Parallel() // waits on health checks and rollouts: overlaps with the other service tests (own env, own address pools)
	e := startDev(t)
	cli := newAWSCLI(t, e)
	vpc := cli.defaultVPC()

	group := func(name string) string {
		var out struct {
			GroupId string `json:"GroupId"`
		}
		cli.call(&out, "ec2", "create-security-group", "--group-name", name, "--description", name, "--vpc-id", vpc)
		if out.GroupId == "" {
			t.Fatalf("create-security-group %s replied %+v", name, out)
		}
		return out.GroupId
	}
	albSG, appSG := group("paths-alb"), group("paths-app")
	cli.call(nil, "ec2", "authorize-security-group-ingress", "--group-id", albSG, "--protocol", "tcp", "--port", "80", "--cidr", "0.0.0.0/0")
	cli.call(nil, "ec2", "authorize-security-group-ingress", "--group-id", appSG, "--protocol", "tcp", "--port", "8080", "--source-group", albSG)

	lb := cli.createLB("paths", "application", "--security-groups", albSG)
	tgs := map[string]cliTG{}
	for _, name := range []string{"api", "web"} {
		tgs[name] = cli.createTG(name, "HTTP", "8080", vpc, "--target-type", "ip", "--health-check-path", "/",
			"--health-check-interval-seconds", "5", "--health-check-timeout-seconds", "2", "--healthy-threshold-count", "2")
		cli.call(nil, "elbv2", "modify-target-group-attributes", "--target-group-arn", tgs[name].TargetGroupArn,
			"--attributes", "Key=deregistration_delay.timeout_seconds,Value=5")
	}
	var created struct {
		Listeners []cliListener `json:"Listeners"`
	}
	cli.call(&created, "elbv2", "create-listener", "--load-balancer-arn", lb.LoadBalancerArn, "--protocol", "HTTP", "--port", "80",
		"--default-actions", cliJSON([]map[string]any{{"Type": "fixed-response", "FixedResponseConfig": map[string]any{
			"StatusCode": "404", "ContentType": "text/plain", "MessageBody": "no route"}}}))
	if len(created.Listeners) != 1 {
		t.Fatalf("create-listener replied %+v", created)
	}
	listener := created.Listeners[0].ListenerArn
	var apiRule, webRule struct {
		Rules []cliRule `json:"Rules"`
	}
	cli.call(&apiRule, "elbv2", "create-rule", "--listener-arn", listener, "--priority", "10", "--conditions", cliPathCondition("/api/*"),
		"--actions", cliForward(tgs["api"].TargetGroupArn))
	cli.call(&webRule, "elbv2", "create-rule", "--listener-arn", listener, "--priority", "20", "--conditions", cliPathCondition("/web/*"),
		"--actions", cliForward(tgs["web"].TargetGroupArn))
	if len(apiRule.Rules) != 1 || len(webRule.Rules) != 1 {
		t.Fatalf("create-rule replied %+v and %+v", apiRule, webRule)
	}
	if rs := cli.rules(listener); len(rs) != 3 || rs[0].Priority != "10" || rs[1].Priority != "20" || !rs[2].IsDefault {
		t.Fatalf("describe-rules: %+v", rs)
	}

	cli.call(nil, "ecs", "create-cluster", "--cluster-name", "paths")
	network := "awsvpcConfiguration={subnets=[" + strings.Join(cli.subnets, ",") + "],securityGroups=[" + appSG + "],assignPublicIp=DISABLED}"
	for _, name := range []string{"api", "web"} {
		// Every path the test asks for answers "<service> <task address>".
		script := `ip=$(ip -4 -o addr show dev eth0 | sed 's/.*inet \([0-9.]*\).*/\1/') && mkdir -p /www/api /www/web && ` +
			`for f in /www/index.html /www/api/x /www/web/x; do echo "` + name + ` $ip" > $f; done && exec httpd -f -p 8080 -h /www`
		td := cli.register("paths-"+name, map[string]any{
			"family": "paths-" + name, "networkMode": "awsvpc", "requiresCompatibilities": []string{"FARGATE"},
			"cpu": "256", "memory": "512",
			"containerDefinitions": []map[string]any{{"name": "app", "image": e.Image, "essential": true, "stopTimeout": 2,
				"command": []string{"sh", "-c", script}, "portMappings": []map[string]any{{"containerPort": 8080, "protocol": "tcp"}}}},
		})
		cli.call(nil, "ecs", "create-service", "--cluster", "paths", "--service-name", name, "--task-definition", td,
			"--desired-count", "3", "--launch-type", "FARGATE", "--network-configuration", network,
			"--load-balancers", "targetGroupArn="+tgs[name].TargetGroupArn+",containerName=app,containerPort=8080")
	}
	start := time.Now()
	if stdout, stderr, err := cli.run("ecs", "wait", "services-stable", "--cluster", "paths", "--services", "api", "web"); err != nil {
		var b strings.Builder
		for _, name := range []string{"api", "web"} {
			b.WriteString(cliServiceDiag(cli, "paths", name, tgs[name].TargetGroupArn))
		}
		t.Fatalf("aws ecs wait services-stable: %v\n%s%s\n%s", err, stdout, stderr, b.String())
	}
	t.Logf("services-stable after %s", time.Since(start).Round(100*time.Millisecond))

	// The targets: the services' tasks, healthy after two checks.
	targets := map[string]map[string]bool{}
	for _, name := range []string{"api", "web"} {
		targets[name] = cliWaitHealthy(cli, "paths", name, tgs[name].TargetGroupArn, 3)
	}

	client := &http.Client{Timeout: 5 * time.Second}
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := client.Get("http://" + lb.DNSName + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	for _, name := range []string{"api", "web"} {
		seen := map[string]int{}
		for range 15 {
			code, body := get("/" + name + "/x")
			svc, ip, _ := strings.Cut(body, " ")
			if code != http.StatusOK || svc != name || !targets[name][ip] {
				t.Fatalf("GET /%s/x: %d %q, want 200 from one of the %s tasks %v", name, code, body, name, targets[name])
			}
			seen[ip]++
		}
		if len(seen) != 3 {
			t.Errorf("GET /%s/x reached %v, want all 3 tasks", name, seen)
		}
	}
	for _, path := range []string{"/", "/apix", "/other/api/x"} {
		if code, body := get(path); code != http.StatusNotFound || body != "no route" {
			t.Errorf("GET %s: %d %q, want the listener's fixed 404", path, code, body)
		}
	}

	// Changes to the rules and the default action reach the data plane.
	eventually := func(what, path string, want func(code int, body string) bool) {
		t.Helper()
		var code int
		var body string
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			if code, body = get(path); want(code, body) {
				return
			}
		}
		t.Errorf("%s: GET %s still answers %d %q after 10 s", what, path, code, body)
	}
	from := func(svc string) func(int, string) bool {
		return func(code int, body string) bool {
			s, ip, _ := strings.Cut(body, " ")
			return code == http.StatusOK && s == svc && targets[svc][ip]
		}
	}
	noRoute := func(code int, body string) bool { return code == http.StatusNotFound && body == "no route" }
	cli.call(nil, "elbv2", "modify-rule", "--rule-arn", apiRule.Rules[0].RuleArn, "--actions", cliForward(tgs["web"].TargetGroupArn))
	eventually("modify-rule /api/* to web", "/api/x", from("web"))
	cli.call(nil, "elbv2", "delete-rule", "--rule-arn", webRule.Rules[0].RuleArn)
	eventually("delete-rule /web/*", "/web/x", noRoute)
	cli.call(nil, "elbv2", "modify-listener", "--listener-arn", listener, "--default-actions", cliForward(tgs["api"].TargetGroupArn))
	eventually("modify-listener default to api", "/web/x", from("api"))
	eventually("modify-listener default to api", "/", from("api"))
	if code, body := get("/api/x"); !from("web")(code, body) {
		t.Errorf("GET /api/x after the default action changed: %d %q, want the web service (rule 10)", code, body)
	}

	// One task of each service per zone.
	for _, name := range []string{"api", "web"} {
		var list struct {
			TaskArns []string `json:"taskArns"`
		}
		cli.call(&list, "ecs", "list-tasks", "--cluster", "paths", "--service-name", name)
		var d struct {
			Tasks []cliTask `json:"tasks"`
		}
		cli.call(&d, append([]string{"ecs", "describe-tasks", "--cluster", "paths", "--tasks"}, list.TaskArns...)...)
		zones := map[string]int{}
		for _, task := range d.Tasks {
			if task.LastStatus != "RUNNING" {
				t.Errorf("%s task %s is %s", name, task.TaskArn, task.LastStatus)
			}
			zones[task.AvailabilityZone]++
		}
		if len(d.Tasks) != 3 || len(zones) != 3 {
			t.Errorf("%s: %d tasks in zones %v, want one in each of 3 zones", name, len(d.Tasks), zones)
		}
	}
}

type cliTargetHealth struct {
	Target struct {
		Id   string `json:"Id"`
		Port int    `json:"Port"`
	} `json:"Target"`
	TargetHealth struct {
		State       string `json:"State"`
		Reason      string `json:"Reason"`
		Description string `json:"Description"`
	} `json:"TargetHealth"`
}

func (a *awsCLI) targetHealth(tgArn string) []cliTargetHealth {
	a.t.Helper()
	var out struct {
		TargetHealthDescriptions []cliTargetHealth `json:"TargetHealthDescriptions"`
	}
	a.call(&out, "elbv2", "describe-target-health", "--target-group-arn", tgArn)
	return out.TargetHealthDescriptions
}

// cliWaitHealthy waits (a minute at most) for n healthy targets and
// returns their addresses.
func cliWaitHealthy(a *awsCLI, cluster, service, tgArn string, n int) map[string]bool {
	a.t.Helper()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Second) {
		ips := map[string]bool{}
		healthy := 0
		hs := a.targetHealth(tgArn)
		for _, h := range hs {
			ips[h.Target.Id] = true
			if h.TargetHealth.State == "healthy" {
				healthy++
			}
		}
		if healthy == n && len(hs) == n {
			return ips
		}
		if time.Now().After(deadline) {
			a.t.Fatalf("%s: targets not %d healthy:\n%s", service, n, cliServiceDiag(a, cluster, service, tgArn))
		}
	}
}

// cliServiceDiag describes a service and its targets, for failures.
func cliServiceDiag(a *awsCLI, cluster, service, tgArn string) string {
	var b strings.Builder
	stdout, _, _ := a.run("ecs", "describe-services", "--cluster", cluster, "--services", service,
		"--query", "services[0].{running:runningCount,pending:pendingCount,desired:desiredCount,deployments:deployments[].[status,rolloutState,runningCount],events:events[:10].message}")
	fmt.Fprintf(&b, "service %s: %s\n", service, stdout)
	stdout, _, _ = a.run("elbv2", "describe-target-health", "--target-group-arn", tgArn)
	fmt.Fprintf(&b, "targets: %s\n", stdout)
	return b.String()
}
