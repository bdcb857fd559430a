package protocol

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
)

func sdkCreds(akid, secret, token string) aws.CredentialsProvider {
	if akid == "" {
		return aws.AnonymousCredentials{}
	}
	return credentials.NewStaticCredentialsProvider(akid, secret, token)
}

// TestQuerySDKEC2 drives the fake EC2 with aws-sdk-go-v2's EC2 client (the
// ec2query protocol): replies must decode, errors must come back with our
// codes and statuses.
func TestQuerySDKEC2(t *testing.T) {
	env := newQueryEnv(t)
	ctx := context.Background()
	client := func(akid, secret, token string) *ec2.Client {
		return ec2.New(ec2.Options{
			Region:           "us-east-1",
			BaseEndpoint:     aws.String(env.srv.URL),
			Credentials:      sdkCreds(akid, secret, token),
			RetryMaxAttempts: 1,
		})
	}
	good := client(testKey, testSecret, "")
	describe := func(in *ec2.DescribeVpcsInput, check func(*testing.T, *ec2.DescribeVpcsOutput)) func(*testing.T, *ec2.Client) error {
		return func(t *testing.T, c *ec2.Client) error {
			out, err := c.DescribeVpcs(ctx, in)
			if err == nil && check != nil {
				check(t, out)
			}
			return err
		}
	}
	tests := []struct {
		name       string
		client     *ec2.Client
		call       func(*testing.T, *ec2.Client) error
		wantCode   string
		wantStatus int
		wantMsg    string
	}{
		{name: "describe", client: good, call: describe(&ec2.DescribeVpcsInput{VpcIds: []string{"vpc-1"}}, func(t *testing.T, out *ec2.DescribeVpcsOutput) {
			if len(out.Vpcs) != 1 {
				t.Fatalf("Vpcs = %+v", out.Vpcs)
			}
			v := out.Vpcs[0]
			if aws.ToString(v.VpcId) != "vpc-1" || aws.ToString(v.OwnerId) != testAccount || !aws.ToBool(v.IsDefault) ||
				len(v.Tags) != 1 || aws.ToString(v.Tags[0].Value) != "a&b" {
				t.Errorf("Vpcs[0] = %+v", v)
			}
			if out.NextToken != nil {
				t.Errorf("NextToken = %q, want none", *out.NextToken)
			}
		})},
		{name: "empty list", client: good, call: describe(&ec2.DescribeVpcsInput{}, func(t *testing.T, out *ec2.DescribeVpcsOutput) {
			if out.Vpcs == nil || len(out.Vpcs) != 0 {
				t.Errorf("Vpcs = %#v, want an empty list", out.Vpcs)
			}
		})},
		{name: "filters", client: good, call: describe(&ec2.DescribeVpcsInput{Filters: []ec2types.Filter{
			{Name: aws.String("other"), Values: []string{"x"}},
			{Name: aws.String("cidr-block"), Values: []string{"10.1.0.0/16", "10.2.0.0/16"}},
		}}, func(t *testing.T, out *ec2.DescribeVpcsOutput) {
			if len(out.Vpcs) != 2 || aws.ToString(out.Vpcs[1].CidrBlock) != "10.2.0.0/16" {
				t.Errorf("Vpcs = %+v", out.Vpcs)
			}
		})},
		{name: "delete", client: good, call: func(t *testing.T, c *ec2.Client) error {
			_, err := c.DeleteVpc(ctx, &ec2.DeleteVpcInput{VpcId: aws.String("vpc-1")})
			return err
		}},
		{name: "service error", client: good, call: describe(&ec2.DescribeVpcsInput{VpcIds: []string{"vpc-9"}}, nil),
			wantCode: "InvalidVpcID.NotFound", wantStatus: 400, wantMsg: "The vpc ID 'vpc-9' does not exist"},
		{name: "internal error", client: good, call: describe(&ec2.DescribeVpcsInput{VpcIds: []string{"boom"}}, nil),
			wantCode: "InternalError", wantStatus: 500, wantMsg: msgInternal},
		{name: "wrong secret", client: client(testKey, "wrong", ""), call: describe(&ec2.DescribeVpcsInput{}, nil),
			wantCode: codeEC2AuthFailure, wantStatus: 401, wantMsg: msgEC2AuthFailure},
		{name: "unknown key", client: client("AKIDNOBODY", testSecret, ""), call: describe(&ec2.DescribeVpcsInput{}, nil),
			wantCode: codeEC2AuthFailure, wantStatus: 401, wantMsg: msgEC2AuthFailure},
		{name: "expired session", client: client(testKey, testSecret, "expired"), call: describe(&ec2.DescribeVpcsInput{}, nil),
			wantCode: codeEC2RequestExpired, wantStatus: 400},
		{name: "unsigned", client: client("", "", ""), call: describe(&ec2.DescribeVpcsInput{}, nil),
			wantCode: codeQueryMissingAuthToken, wantStatus: 401, wantMsg: msgEC2MissingAuthToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call(t, tt.client)
			if tt.wantCode == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			checkSDKError(t, err, tt.wantCode, tt.wantStatus, tt.wantMsg)
		})
	}
}

// TestQuerySDKELBv2 drives the fake ELBv2 with aws-sdk-go-v2's client (the
// awsquery protocol).
func TestQuerySDKELBv2(t *testing.T) {
	env := newQueryEnv(t)
	ctx := context.Background()
	client := func(akid, secret, token string) *elb.Client {
		return elb.New(elb.Options{
			Region:           "eu-west-1",
			BaseEndpoint:     aws.String(env.srv.URL),
			Credentials:      sdkCreds(akid, secret, token),
			RetryMaxAttempts: 1,
		})
	}
	good := client(testKey, testSecret, "")
	describe := func(names ...string) func(*testing.T, *elb.Client) error {
		return func(t *testing.T, c *elb.Client) error {
			out, err := c.DescribeLoadBalancers(ctx, &elb.DescribeLoadBalancersInput{Names: names})
			if err != nil {
				return err
			}
			if len(out.LoadBalancers) != 1 {
				t.Fatalf("LoadBalancers = %+v", out.LoadBalancers)
			}
			lb := out.LoadBalancers[0]
			wantArn := "arn:aws:elasticloadbalancing:eu-west-1:" + testAccount + ":loadbalancer/app/lb1/1"
			if aws.ToString(lb.LoadBalancerArn) != wantArn || lb.Type != elbtypes.LoadBalancerTypeEnumApplication ||
				len(lb.AvailabilityZones) != 1 || aws.ToString(lb.AvailabilityZones[0].SubnetId) != "subnet-1" ||
				lb.SecurityGroups == nil {
				t.Errorf("LoadBalancers[0] = %+v", lb)
			}
			return nil
		}
	}
	tests := []struct {
		name       string
		client     *elb.Client
		call       func(*testing.T, *elb.Client) error
		wantCode   string
		wantStatus int
		wantMsg    string
		wantTyped  any
	}{
		{name: "describe", client: good, call: describe()},
		{name: "session", client: client(testKey, testSecret, testToken), call: describe("lb1")},
		{name: "create", client: good, call: func(t *testing.T, c *elb.Client) error {
			out, err := c.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{
				Name:           aws.String("lb2"),
				Subnets:        []string{"subnet-1", "subnet-2"},
				SecurityGroups: []string{"sg-1"},
				Tags:           []elbtypes.Tag{{Key: aws.String("k"), Value: aws.String("v")}},
			})
			if err == nil && (len(out.LoadBalancers) != 1 || aws.ToString(out.LoadBalancers[0].LoadBalancerName) != "lb2+k=v" ||
				len(out.LoadBalancers[0].AvailabilityZones) != 2) {
				t.Errorf("LoadBalancers = %+v", out.LoadBalancers)
			}
			return err
		}},
		{name: "delete", client: good, call: func(t *testing.T, c *elb.Client) error {
			_, err := c.DeleteLoadBalancer(ctx, &elb.DeleteLoadBalancerInput{LoadBalancerArn: aws.String("x")})
			return err
		}},
		{name: "service error", client: good, call: describe("missing"),
			wantCode: "LoadBalancerNotFound", wantStatus: 400, wantMsg: "One or more load balancers not found",
			wantTyped: new(*elbtypes.LoadBalancerNotFoundException)},
		{name: "internal error", client: good, call: describe("boom"),
			wantCode: CodeInternalFailure, wantStatus: 500, wantMsg: msgInternal},
		{name: "wrong secret", client: client(testKey, "wrong", ""), call: describe(),
			wantCode: codeSignatureDoesNotMatch, wantStatus: 403, wantMsg: msgSignatureMismatch},
		{name: "unknown key", client: client("AKIDNOBODY", testSecret, ""), call: describe(),
			wantCode: codeInvalidClientTokenID, wantStatus: 403, wantMsg: msgUnrecognizedClient},
		{name: "expired session", client: client(testKey, testSecret, "expired"), call: describe(),
			wantCode: codeQueryExpiredToken, wantStatus: 403, wantMsg: msgExpiredToken},
		{name: "unsigned", client: client("", "", ""), call: describe(),
			wantCode: codeQueryMissingAuthToken, wantStatus: 403, wantMsg: msgQueryMissingToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call(t, tt.client)
			if tt.wantCode == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			checkSDKError(t, err, tt.wantCode, tt.wantStatus, tt.wantMsg)
			if tt.wantTyped != nil && !errors.As(err, tt.wantTyped) {
				t.Errorf("error %T is not %T", err, tt.wantTyped)
			}
		})
	}
}
