package elb

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/protocol"
)

// The real AWS CLI against the ELBv2 API through berth's protocol router: it
// must send what the handlers read and parse what they reply.

const awsCLI = "/usr/bin/aws"

type cliKeys map[string]string

func (k cliKeys) Lookup(_ context.Context, akid string) (string, string, error) {
	if acct, ok := k[akid]; ok {
		return "secret", acct, nil
	}
	return "", "", protocol.ErrUnknownKey
}

type cliEnv struct {
	*env
	endpoint, home string
}

func newCLIEnv(t *testing.T) *cliEnv {
	if testing.Short() {
		t.Skip("runs the AWS CLI")
	}
	if _, err := os.Stat(awsCLI); err != nil {
		t.Skipf("AWS CLI not installed at %s", awsCLI)
	}
	e := newEnv(t)
	router := protocol.NewRouter(cliKeys{"a": e.acct, "b": newAccount()}, slog.New(slog.DiscardHandler), protocol.WithRegisterer(nil))
	router.AddQueryService(e.s.QueryService())
	srv := httptest.NewServer(router)
	t.Cleanup(srv.Close)
	home := t.TempDir()
	if err := os.WriteFile(filepath.Join(home, "config"), []byte("[default]\nregion = us-east-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return &cliEnv{env: e, endpoint: srv.URL, home: home}
}

func (c *cliEnv) aws(key string, args ...string) (string, string, bool) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, awsCLI, append(args, "--endpoint-url", c.endpoint, "--output", "json")...)
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + c.home,
		"AWS_CONFIG_FILE=" + filepath.Join(c.home, "config"),
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(c.home, "credentials"),
		"AWS_ACCESS_KEY_ID=" + key, "AWS_SECRET_ACCESS_KEY=secret",
		"AWS_DEFAULT_REGION=us-east-1", "AWS_EC2_METADATA_DISABLED=true", "AWS_PAGER=",
	}
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err == nil
}

func (c *cliEnv) ok(v any, args ...string) {
	c.t.Helper()
	out, errOut, ok := c.aws("a", args...)
	if !ok {
		c.t.Fatalf("aws %s: %s", strings.Join(args, " "), errOut)
	}
	if v != nil {
		if err := json.Unmarshal([]byte(out), v); err != nil {
			c.t.Fatalf("aws %s: output %q: %v", strings.Join(args, " "), out, err)
		}
	}
}

func (c *cliEnv) fails(key, code string, args ...string) string {
	c.t.Helper()
	_, errOut, ok := c.aws(key, args...)
	if ok || !strings.Contains(errOut, "("+code+")") {
		c.t.Fatalf("aws %s: want error %s, got ok=%v %s", strings.Join(args, " "), code, ok, errOut)
	}
	return errOut
}

type cliAction struct {
	Type, TargetGroupArn string
	ForwardConfig        struct {
		TargetGroups []struct {
			TargetGroupArn string
			Weight         int
		}
	}
}

func TestAWSCLI(t *testing.T) {
	c := newCLIEnv(t)
	var lbs struct {
		LoadBalancers []struct {
			LoadBalancerArn, DNSName, LoadBalancerName, Scheme, VpcId, Type, IpAddressType, CanonicalHostedZoneId, CreatedTime string
			State                                                                                                              struct{ Code string }
			AvailabilityZones                                                                                                  []struct{ ZoneName, SubnetId string }
			SecurityGroups                                                                                                     []string
		}
	}
	c.ok(&lbs, "elbv2", "create-load-balancer", "--name", "web", "--subnets", "subnet-a1", "subnet-a2", "--tags", "Key=env,Value=dev")
	if len(lbs.LoadBalancers) != 1 {
		t.Fatalf("create-load-balancer: %+v", lbs)
	}
	lb := lbs.LoadBalancers[0]
	if lb.Type != "application" || lb.State.Code != "provisioning" || lb.VpcId != "vpc-a" || len(lb.AvailabilityZones) != 2 ||
		lb.SecurityGroups[0] != "sg-adefault" || !strings.HasSuffix(lb.DNSName, ".us-east-1.elb.localhost") || lb.CreatedTime == "" ||
		lb.Scheme != "internet-facing" || lb.IpAddressType != "ipv4" {
		t.Errorf("create-load-balancer: %+v", lb)
	}
	c.clock.advance(2 * time.Second)
	c.ok(&lbs, "elbv2", "describe-load-balancers", "--names", "web")
	if len(lbs.LoadBalancers) != 1 || lbs.LoadBalancers[0].State.Code != "active" {
		t.Errorf("describe-load-balancers: %+v", lbs)
	}

	var tgs struct {
		TargetGroups []struct {
			TargetGroupArn, TargetGroupName, Protocol, VpcId, HealthCheckPath, TargetType string
			Port, HealthCheckIntervalSeconds, HealthyThresholdCount                       int
			Matcher                                                                       struct{ HttpCode string }
			LoadBalancerArns                                                              []string
		}
	}
	c.ok(&tgs, "elbv2", "create-target-group", "--name", "api", "--protocol", "HTTP", "--port", "8080", "--vpc-id", "vpc-a",
		"--target-type", "ip", "--health-check-path", "/health")
	api := tgs.TargetGroups[0]
	if api.Port != 8080 || api.HealthCheckPath != "/health" || api.HealthCheckIntervalSeconds != 30 || api.HealthyThresholdCount != 5 ||
		api.Matcher.HttpCode != "200" || api.TargetType != "ip" {
		t.Errorf("create-target-group: %+v", api)
	}
	c.ok(&tgs, "elbv2", "create-target-group", "--name", "site", "--protocol", "HTTP", "--port", "80", "--vpc-id", "vpc-a", "--target-type", "ip")
	site := tgs.TargetGroups[0]

	var listeners struct {
		Listeners []struct {
			ListenerArn, Protocol string
			Port                  int
			DefaultActions        []cliAction
		}
	}
	c.ok(&listeners, "elbv2", "create-listener", "--load-balancer-arn", lb.LoadBalancerArn, "--protocol", "HTTP", "--port", "80",
		"--default-actions", "Type=forward,TargetGroupArn="+site.TargetGroupArn)
	l := listeners.Listeners[0]
	if l.Port != 80 || l.Protocol != "HTTP" || len(l.DefaultActions) != 1 || l.DefaultActions[0].TargetGroupArn != site.TargetGroupArn ||
		l.DefaultActions[0].ForwardConfig.TargetGroups[0].Weight != 1 {
		t.Errorf("create-listener: %+v", l)
	}

	var rules struct {
		Rules []struct {
			RuleArn, Priority string
			IsDefault         bool
			Conditions        []struct {
				Field             string
				Values            []string
				PathPatternConfig struct{ Values []string }
			}
			Actions []cliAction
		}
	}
	c.ok(&rules, "elbv2", "create-rule", "--listener-arn", l.ListenerArn, "--priority", "10",
		"--conditions", "Field=path-pattern,PathPatternConfig={Values=[/api/*]}",
		"--actions", "Type=forward,TargetGroupArn="+api.TargetGroupArn)
	if len(rules.Rules) != 1 || rules.Rules[0].Priority != "10" || rules.Rules[0].Conditions[0].PathPatternConfig.Values[0] != "/api/*" ||
		rules.Rules[0].Actions[0].TargetGroupArn != api.TargetGroupArn {
		t.Errorf("create-rule: %+v", rules)
	}
	c.ok(&rules, "elbv2", "describe-rules", "--listener-arn", l.ListenerArn)
	if len(rules.Rules) != 2 || !rules.Rules[1].IsDefault || rules.Rules[1].Priority != "default" {
		t.Errorf("describe-rules: %+v", rules)
	}

	c.ok(nil, "elbv2", "register-targets", "--target-group-arn", api.TargetGroupArn, "--targets", "Id=10.0.1.5", "Id=10.0.2.6,Port=9090")
	var health struct {
		TargetHealthDescriptions []struct {
			Target struct {
				Id   string
				Port int
			}
			HealthCheckPort string
			TargetHealth    struct{ State, Reason, Description string }
		}
	}
	c.ok(&health, "elbv2", "describe-target-health", "--target-group-arn", api.TargetGroupArn)
	if len(health.TargetHealthDescriptions) != 2 {
		t.Fatalf("describe-target-health: %+v", health)
	}
	for _, h := range health.TargetHealthDescriptions {
		if h.TargetHealth.State != "initial" || h.TargetHealth.Reason != "Elb.RegistrationInProgress" || h.TargetHealth.Description == "" {
			t.Errorf("target health: %+v", h)
		}
	}
	if err := c.s.SetTargetHealth(context.Background(), api.TargetGroupArn, "10.0.1.5", 8080, StateHealthy, "", ""); err != nil {
		t.Fatal(err)
	}
	c.ok(&health, "elbv2", "describe-target-health", "--target-group-arn", api.TargetGroupArn, "--targets", "Id=10.0.1.5")
	if len(health.TargetHealthDescriptions) != 1 || health.TargetHealthDescriptions[0].TargetHealth.State != "healthy" ||
		health.TargetHealthDescriptions[0].Target.Port != 8080 || health.TargetHealthDescriptions[0].HealthCheckPort != "8080" {
		t.Errorf("describe-target-health --targets: %+v", health)
	}
	c.ok(&tgs, "elbv2", "describe-target-groups", "--load-balancer-arn", lb.LoadBalancerArn)
	if len(tgs.TargetGroups) != 2 || len(tgs.TargetGroups[0].LoadBalancerArns) != 1 {
		t.Errorf("describe-target-groups: %+v", tgs)
	}
	var attrs struct{ Attributes []struct{ Key, Value string } }
	c.ok(&attrs, "elbv2", "modify-target-group-attributes", "--target-group-arn", api.TargetGroupArn,
		"--attributes", "Key=deregistration_delay.timeout_seconds,Value=30")
	c.ok(&attrs, "elbv2", "describe-target-group-attributes", "--target-group-arn", api.TargetGroupArn)
	found := false
	for _, a := range attrs.Attributes {
		found = found || a.Key == "deregistration_delay.timeout_seconds" && a.Value == "30"
	}
	if !found {
		t.Errorf("attributes: %+v", attrs)
	}
	var tags struct {
		TagDescriptions []struct {
			ResourceArn string
			Tags        []struct{ Key, Value string }
		}
	}
	c.ok(&tags, "elbv2", "describe-tags", "--resource-arns", lb.LoadBalancerArn)
	if len(tags.TagDescriptions) != 1 || len(tags.TagDescriptions[0].Tags) != 1 || tags.TagDescriptions[0].Tags[0].Key != "env" {
		t.Errorf("describe-tags: %+v", tags)
	}

	// Errors.
	errOut := c.fails("a", "PriorityInUse", "elbv2", "create-rule", "--listener-arn", l.ListenerArn, "--priority", "10",
		"--conditions", "Field=path-pattern,Values=/x", "--actions", "Type=forward,TargetGroupArn="+api.TargetGroupArn)
	if !strings.Contains(errOut, "when calling the CreateRule operation: Priority '10' is currently in use") {
		t.Errorf("stderr %q", errOut)
	}
	c.fails("a", "DuplicateListener", "elbv2", "create-listener", "--load-balancer-arn", lb.LoadBalancerArn, "--protocol", "HTTP",
		"--port", "80", "--default-actions", "Type=forward,TargetGroupArn="+site.TargetGroupArn)
	errOut = c.fails("a", "ValidationError", "elbv2", "create-load-balancer", "--name", "one", "--subnets", "subnet-a1")
	if !strings.Contains(errOut, "At least two subnets in two different Availability Zones must be specified") {
		t.Errorf("stderr %q", errOut)
	}
	c.fails("a", "ResourceInUse", "elbv2", "delete-target-group", "--target-group-arn", api.TargetGroupArn)
	c.fails("b", "LoadBalancerNotFound", "elbv2", "describe-load-balancers", "--load-balancer-arns", lb.LoadBalancerArn)

	c.ok(nil, "elbv2", "delete-load-balancer", "--load-balancer-arn", lb.LoadBalancerArn)
	c.ok(nil, "elbv2", "delete-target-group", "--target-group-arn", api.TargetGroupArn)
	c.ok(&lbs, "elbv2", "describe-load-balancers")
	if len(lbs.LoadBalancers) != 0 {
		t.Errorf("after delete: %+v", lbs)
	}
}
