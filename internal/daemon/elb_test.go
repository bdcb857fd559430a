package daemon

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"

	"github.com/berthdev/berth/internal/agentapi"
)

// TestServerPlacesLoadBalancers: the wired control plane places an ALB on
// a registered node with real VPC interfaces, hands it to that node's long
// poll, and cleans up when it is deleted.
func TestServerPlacesLoadBalancers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := StartServer(ctx, ServerConfig{DataDir: t.TempDir(), Listen: "127.0.0.1:0", Dev: true,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	awsCfg := aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL),
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")}
	ec2c, elbc := ec2.NewFromConfig(awsCfg), elbv2.NewFromConfig(awsCfg)
	agent := &agentapi.Client{BaseURL: srv.URL, Token: srv.AgentToken}
	if _, err := agent.Register(ctx, agentapi.RegisterRequest{NodeID: "node-1", CPU: 4096, MemoryMiB: 8192, Pool: "fargate"}); err != nil {
		t.Fatal(err)
	}
	sns, err := ec2c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{})
	if err != nil {
		t.Fatal(err)
	}
	var subnets []string
	zones := map[string]bool{}
	for _, sn := range sns.Subnets {
		if !zones[*sn.AvailabilityZone] {
			zones[*sn.AvailabilityZone] = true
			subnets = append(subnets, *sn.SubnetId)
		}
	}
	if len(subnets) < 2 {
		t.Fatalf("default subnets %v", subnets)
	}
	subnets = subnets[:2]
	lb, err := elbc.CreateLoadBalancer(ctx, &elbv2.CreateLoadBalancerInput{Name: aws.String("web"), Subnets: subnets})
	if err != nil {
		t.Fatal(err)
	}
	arn := *lb.LoadBalancers[0].LoadBalancerArn
	var spec agentapi.LoadBalancerSpec
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := agent.Tasks(ctx, "node-1", 0, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.LoadBalancers) == 1 && len(resp.LoadBalancers[0].ENIs) == 2 {
			spec = resp.LoadBalancers[0]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("load balancer not placed: %+v", resp.LoadBalancers)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if spec.ARN != arn || spec.PublicAddress == "" || spec.DNSName != *lb.LoadBalancers[0].DNSName || len(spec.Ingress) == 0 {
		t.Errorf("spec %+v", spec)
	}
	enis, err := ec2c.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{
		Filters: []ec2types.Filter{{Name: aws.String("requester-id"), Values: []string{"amazon-elb"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(enis.NetworkInterfaces) != 2 {
		t.Errorf("elb enis %+v", enis.NetworkInterfaces)
	}
	for _, n := range enis.NetworkInterfaces {
		if want := "ELB app/web/" + arn[len(arn)-16:]; *n.Description != want || n.InterfaceType != "interface" {
			t.Errorf("eni description %q, type %s; want %q", *n.Description, n.InterfaceType, want)
		}
	}
	deadline = time.Now().Add(5 * time.Second)
	for {
		d, err := elbc.DescribeLoadBalancers(ctx, &elbv2.DescribeLoadBalancersInput{})
		if err != nil {
			t.Fatal(err)
		}
		if d.LoadBalancers[0].State.Code == "active" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("state %s", d.LoadBalancers[0].State.Code)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := elbc.DeleteLoadBalancer(ctx, &elbv2.DeleteLoadBalancerInput{LoadBalancerArn: aws.String(arn)}); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(5 * time.Second)
	for {
		resp, err := agent.Tasks(ctx, "node-1", 0, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		enis, err := ec2c.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.LoadBalancers) == 0 && len(enis.NetworkInterfaces) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not cleaned up: %d specs, %d enis", len(resp.LoadBalancers), len(enis.NetworkInterfaces))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
