package protocol

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestQueryAWSCLI runs the real AWS CLI against fake EC2 (StyleEC2) and
// ELBv2 (StyleStandard) services: its query requests must verify and decode,
// and it must read our XML replies and errors as AWS's.
func TestQueryAWSCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("runs an external binary")
	}
	if _, err := os.Stat(awsCLI); err != nil {
		t.Skipf("%s not installed", awsCLI)
	}
	env := newQueryEnv(t)

	type vpcs struct {
		Vpcs []struct {
			VpcId, OwnerId, CidrBlock string
			IsDefault                 bool
			Tags                      []struct{ Key, Value string }
		}
	}
	type lbs struct {
		LoadBalancers []struct {
			LoadBalancerArn, LoadBalancerName, DNSName, Type string
			AvailabilityZones                                []struct{ ZoneName, SubnetId string }
			SecurityGroups                                   []string
		}
	}
	decode := func(t *testing.T, out string, v any) {
		t.Helper()
		if err := json.Unmarshal([]byte(out), v); err != nil {
			t.Fatalf("output is not JSON (%v): %q", err, out)
		}
	}
	tests := []struct {
		name       string
		args       []string
		secret     string
		wantExit0  bool
		wantStdout func(*testing.T, string)
		wantStderr string
	}{
		{
			name: "ec2 describe-vpcs", args: []string{"ec2", "describe-vpcs", "--vpc-ids", "vpc-1"}, wantExit0: true,
			wantStdout: func(t *testing.T, out string) {
				var doc vpcs
				decode(t, out, &doc)
				if len(doc.Vpcs) != 1 {
					t.Fatalf("Vpcs: %s", out)
				}
				v := doc.Vpcs[0]
				if v.VpcId != "vpc-1" || v.OwnerId != testAccount || v.CidrBlock != "10.0.0.0/16" || !v.IsDefault ||
					len(v.Tags) != 1 || v.Tags[0].Key != "Name" || v.Tags[0].Value != "a&b" {
					t.Errorf("Vpcs[0] = %+v", v)
				}
			},
		},
		{
			name: "ec2 empty list is []", args: []string{"ec2", "describe-vpcs"}, wantExit0: true,
			wantStdout: func(t *testing.T, out string) {
				var doc map[string]json.RawMessage
				decode(t, out, &doc)
				if string(doc["Vpcs"]) != "[]" {
					t.Errorf("Vpcs = %s, want []; output %s", doc["Vpcs"], out)
				}
			},
		},
		{
			name: "ec2 filters", args: []string{"ec2", "describe-vpcs", "--filters", "Name=cidr-block,Values=10.1.0.0/16,10.2.0.0/16"},
			wantExit0: true,
			wantStdout: func(t *testing.T, out string) {
				var doc vpcs
				decode(t, out, &doc)
				if len(doc.Vpcs) != 2 || doc.Vpcs[0].CidrBlock != "10.1.0.0/16" || doc.Vpcs[1].CidrBlock != "10.2.0.0/16" {
					t.Errorf("output: %s", out)
				}
			},
		},
		{name: "ec2 action without output", args: []string{"ec2", "delete-vpc", "--vpc-id", "vpc-1"}, wantExit0: true},
		{
			name: "ec2 error", args: []string{"ec2", "describe-vpcs", "--vpc-ids", "vpc-9"},
			wantStderr: "An error occurred (InvalidVpcID.NotFound) when calling the DescribeVpcs operation: The vpc ID 'vpc-9' does not exist",
		},
		{
			name: "ec2 wrong secret", args: []string{"ec2", "describe-vpcs"}, secret: "wrong",
			wantStderr: "An error occurred (AuthFailure) when calling the DescribeVpcs operation: " + msgEC2AuthFailure,
		},
		{
			name: "elbv2 describe-load-balancers", args: []string{"elbv2", "describe-load-balancers"}, wantExit0: true,
			wantStdout: func(t *testing.T, out string) {
				var doc lbs
				decode(t, out, &doc)
				if len(doc.LoadBalancers) != 1 {
					t.Fatalf("LoadBalancers: %s", out)
				}
				lb := doc.LoadBalancers[0]
				wantArn := "arn:aws:elasticloadbalancing:us-east-1:" + testAccount + ":loadbalancer/app/lb1/1"
				if lb.LoadBalancerName != "lb1" || lb.LoadBalancerArn != wantArn || lb.Type != "application" ||
					len(lb.AvailabilityZones) != 1 || lb.AvailabilityZones[0].SubnetId != "subnet-1" ||
					lb.SecurityGroups == nil || len(lb.SecurityGroups) != 0 {
					t.Errorf("LoadBalancers[0] = %+v", lb)
				}
			},
		},
		{
			name: "elbv2 create-load-balancer",
			args: []string{"elbv2", "create-load-balancer", "--name", "lb2", "--subnets", "subnet-1", "subnet-2",
				"--security-groups", "sg-1", "--tags", "Key=k,Value=v"},
			wantExit0: true,
			wantStdout: func(t *testing.T, out string) {
				var doc lbs
				decode(t, out, &doc)
				if len(doc.LoadBalancers) != 1 {
					t.Fatalf("LoadBalancers: %s", out)
				}
				lb := doc.LoadBalancers[0]
				if lb.LoadBalancerName != "lb2+k=v" || len(lb.AvailabilityZones) != 2 ||
					lb.AvailabilityZones[1].SubnetId != "subnet-2" || len(lb.SecurityGroups) != 1 || lb.SecurityGroups[0] != "sg-1" {
					t.Errorf("LoadBalancers[0] = %+v", lb)
				}
			},
		},
		{name: "elbv2 action without output", args: []string{"elbv2", "delete-load-balancer", "--load-balancer-arn", "x"}, wantExit0: true},
		{
			name: "elbv2 error", args: []string{"elbv2", "describe-load-balancers", "--names", "missing"},
			wantStderr: "An error occurred (LoadBalancerNotFound) when calling the DescribeLoadBalancers operation: One or more load balancers not found",
		},
		{
			name: "elbv2 wrong secret", args: []string{"elbv2", "describe-load-balancers"}, secret: "wrong",
			wantStderr: "An error occurred (SignatureDoesNotMatch) when calling the DescribeLoadBalancers operation: " + msgSignatureMismatch,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel() // the CLI takes seconds to start
			secret := tt.secret
			if secret == "" {
				secret = testSecret
			}
			stdout, stderr, err := runAWSCLI(t, env.srv.URL, secret, "", tt.args...)
			if tt.wantExit0 {
				if err != nil {
					t.Fatalf("aws %v: %v\nstderr: %s", tt.args, err, stderr)
				}
			} else {
				var exitErr *exec.ExitError
				if !errors.As(err, &exitErr) {
					t.Fatalf("aws %v: want a non-zero exit, got %v\nstdout: %s", tt.args, err, stdout)
				}
			}
			if tt.wantStdout != nil {
				tt.wantStdout(t, stdout)
			}
			if !strings.Contains(stderr, tt.wantStderr) {
				t.Errorf("stderr = %q, want it to contain %q", stderr, tt.wantStderr)
			}
		})
	}
}
