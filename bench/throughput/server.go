package throughput

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/berthdev/berth/bench"
)

// startServer starts `berth server --throttle off` (its default is AWS's
// 20 launches a second) and makes a VPC with a /18 subnet in each of zones:
// room for 48,000 tasks' interfaces. It returns the server and the subnets.
func startServer(ctx context.Context, h *bench.Harness, zones []string) (*bench.Server, []string, error) {
	srv, err := h.StartServer(ctx, "--throttle", "off")
	if err != nil {
		return nil, nil, err
	}
	vpc, err := srv.EC2.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.0.0.0/16")})
	if err != nil {
		return nil, nil, fmt.Errorf("create the benchmark's VPC: %w", err)
	}
	var subnets []string
	for i, z := range zones {
		sn, err := srv.EC2.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpc.Vpc.VpcId, AvailabilityZone: aws.String(z),
			CidrBlock: aws.String(fmt.Sprintf("10.0.%d.0/18", i*64))})
		if err != nil {
			return nil, nil, fmt.Errorf("create a subnet in %s: %w", z, err)
		}
		subnets = append(subnets, aws.ToString(sn.Subnet.SubnetId))
	}
	return srv, subnets, nil
}
