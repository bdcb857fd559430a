package throughput

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/berthdev/berth/bench"
)

// startServer starts `berth server --throttle off` (its default is AWS's
// 20 launches a second). It returns the server and a function that makes a
// fresh VPC with a /18 subnet in each of zones (room for 49,137 tasks'
// interfaces) and returns its subnets: each load step launches into one of
// its own, so that no step finds the subnets full, and each starts with an
// empty default security group.
func startServer(ctx context.Context, h *bench.Harness, zones []string) (*bench.Server, func(context.Context) ([]string, error), error) {
	srv, err := h.StartServer(ctx, "--throttle", "off")
	if err != nil {
		return nil, nil, err
	}
	vpcs := 0
	newSubnets := func(ctx context.Context) ([]string, error) {
		vpcs++
		vpc, err := srv.EC2.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String(fmt.Sprintf("10.%d.0.0/16", vpcs))})
		if err != nil {
			return nil, fmt.Errorf("create a VPC for the benchmark: %w", err)
		}
		var subnets []string
		for i, z := range zones {
			sn, err := srv.EC2.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpc.Vpc.VpcId, AvailabilityZone: aws.String(z),
				CidrBlock: aws.String(fmt.Sprintf("10.%d.%d.0/18", vpcs, i*64))})
			if err != nil {
				return nil, fmt.Errorf("create a subnet in %s: %w", z, err)
			}
			subnets = append(subnets, aws.ToString(sn.Subnet.SubnetId))
		}
		return subnets, nil
	}
	return srv, newSubnets, nil
}
