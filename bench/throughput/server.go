package throughput

import (
	"context"
	"fmt"
	"regexp"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/berthdev/berth/bench"
	"github.com/berthdev/berth/internal/devenv"
)

// server is a `berth server` process (the control plane alone, on its
// embedded etcd, with its real VPC control plane) that the benchmark's
// simulated hosts join with its join token.
type server struct {
	env        *devenv.Env
	agentToken string
	ecs        *awsecs.Client
	subnets    []string // one per zone, in a VPC of the benchmark's own
}

// printed is what `berth server` prints once it serves: the account's root
// key and the agent join token.
var printed = regexp.MustCompile(`access key id (\S+) secret access key (\S+)\s+agent join token (\S+)`)

// startServer starts `berth server --throttle off` (its default is AWS's
// 20 launches a second) on a free loopback port in a fresh data dir, and
// makes a VPC with a /18 subnet in each of zones: room for 48,000 tasks'
// interfaces. The harness stops it when the benchmark ends.
func startServer(ctx context.Context, h *bench.Harness, zones []string) (*server, error) {
	dir, err := h.NewDataDir()
	if err != nil {
		return nil, err
	}
	addr, err := devenv.FreeAddr()
	if err != nil {
		return nil, err
	}
	env, err := devenv.New(h.Berth, dir, addr)
	if err != nil {
		return nil, err
	}
	env.Role, env.Args = "server", []string{"--throttle", "off"}
	if err := env.Start(); err != nil {
		return nil, err
	}
	h.Cleanup(func() { env.Stop(15 * time.Second) })
	var m []string
	if err := env.WaitFor(ctx, func() bool {
		m = printed.FindStringSubmatch(env.Log())
		return env.Healthy() && m != nil
	}, 20*time.Millisecond, time.Minute); err != nil {
		return nil, fmt.Errorf("berth server: %w", err)
	}
	cfg := aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(env.URL),
		Credentials: credentials.NewStaticCredentialsProvider(m[1], m[2], "")}
	s := &server{env: env, agentToken: m[3], ecs: awsecs.NewFromConfig(cfg)}
	ec := ec2.NewFromConfig(cfg)
	vpc, err := ec.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.0.0.0/16")})
	if err != nil {
		return nil, fmt.Errorf("create the benchmark's VPC: %w", err)
	}
	for i, z := range zones {
		sn, err := ec.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpc.Vpc.VpcId, AvailabilityZone: aws.String(z),
			CidrBlock: aws.String(fmt.Sprintf("10.0.%d.0/18", i*64))})
		if err != nil {
			return nil, fmt.Errorf("create a subnet in %s: %w", z, err)
		}
		s.subnets = append(s.subnets, aws.ToString(sn.Subnet.SubnetId))
	}
	h.Log.Info("berth server ready", "endpoint", env.URL, "data_dir", dir, "subnets", s.subnets)
	return s, nil
}
