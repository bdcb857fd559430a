package vpc

import (
	"context"
	"fmt"
	"strings"
)

// ResolveAwsvpc: checking an ECS awsvpcConfiguration.

// ECS's limits on an awsvpcConfiguration.
const (
	maxTaskSubnets = 16
	maxTaskGroups  = 5
)

// ResolveAwsvpc checks a RunTask awsvpcConfiguration against the account's
// network: every subnet exists and all lie in one VPC; every group exists in
// that VPC (none given: the VPC's default group). It returns the VPC, each
// subnet's availability zone and the group ids. A bad configuration is a
// *protocol.Error with ECS's code InvalidParameterException whose message
// embeds EC2's reason, as ECS words it; any other error is internal.
func (s *Service) ResolveAwsvpc(ctx context.Context, account, region string, subnets, groups []string) (vpcID string, subnetAZ map[string]string, groupIDs []string, err error) {
	sc := newScope(account, region)
	if err := s.ensureDefaults(ctx, sc); err != nil {
		return "", nil, nil, err
	}
	subnets, groups = dedupe(subnets), dedupe(groups)
	switch {
	case len(subnets) == 0:
		return "", nil, nil, ecsInvalid("subnets can not be empty.")
	case len(subnets) > maxTaskSubnets:
		return "", nil, nil, ecsInvalid("subnets can have at most %d items.", maxTaskSubnets)
	case len(groups) > maxTaskGroups:
		return "", nil, nil, ecsInvalid("securityGroups can have at most %d items.", maxTaskGroups)
	}
	for _, id := range subnets {
		if !validID(id, kindSubnet.prefix) {
			return "", nil, nil, ec2Reason("subnet", []string{id}, errMalformed(kindSubnet, id))
		}
	}
	for _, id := range groups {
		if !validID(id, kindGroup.prefix) {
			return "", nil, nil, ec2Reason("security group", []string{id}, errMalformed(kindGroup, id))
		}
	}

	subnetAZ = map[string]string{}
	subnetVpc := map[string]string{}
	var missing []string
	for _, id := range subnets {
		sn, _, found, err := get[subnetRecord](ctx, s.st, sc.subnetKey(id))
		if err != nil {
			return "", nil, nil, fmt.Errorf("resolve awsvpc: %w", err)
		}
		if !found {
			missing = append(missing, id)
			continue
		}
		subnetAZ[id], subnetVpc[id] = sn.Zone, sn.VpcID
	}
	if len(missing) > 0 {
		return "", nil, nil, ec2Reason("subnet", missing, errNotFound(kindSubnet, missing...))
	}
	vpcID = subnetVpc[subnets[0]]
	for _, id := range subnets[1:] {
		if subnetVpc[id] != vpcID {
			return "", nil, nil, ecsInvalid("Subnets can not be in different VPCs: %s is in %s but %s is in %s. "+
				"Give subnets of one VPC.", subnets[0], vpcID, id, subnetVpc[id])
		}
	}
	v, _, found, err := get[vpcRecord](ctx, s.st, sc.vpcKey(vpcID))
	if err != nil {
		return "", nil, nil, fmt.Errorf("resolve awsvpc: %w", err)
	}
	if !found {
		return "", nil, nil, ecsInvalid("The VPC %s of subnet %s does not exist.", vpcID, subnets[0])
	}
	if len(groups) == 0 {
		return vpcID, subnetAZ, []string{v.DefaultGroupID}, nil
	}
	for _, id := range groups {
		g, _, found, err := get[groupRecord](ctx, s.st, sc.groupKey(id))
		if err != nil {
			return "", nil, nil, fmt.Errorf("resolve awsvpc: %w", err)
		}
		if !found {
			missing = append(missing, id)
			continue
		}
		if g.VpcID != vpcID {
			return "", nil, nil, ecsInvalid("Security group %s and subnet %s belong to different networks: "+
				"the group is in %s, the subnet in %s. Give security groups of the subnets' VPC.", id, subnets[0], g.VpcID, vpcID)
		}
	}
	if len(missing) > 0 {
		return "", nil, nil, ec2Reason("security group", missing, errNotFound(kindGroup, missing...))
	}
	return vpcID, subnetAZ, groups, nil
}

// ec2Reason words an EC2 error the way ECS passes it on: "Error retrieving
// subnet information for [subnet-x]: The subnet ID 'subnet-x' does not
// exist (ErrorCode: InvalidSubnetID.NotFound)".
func ec2Reason(noun string, ids []string, ec2 error) error {
	e := asAPIErr(ec2)
	return ecsInvalid("Error retrieving %s information for [%s]: %s (ErrorCode: %s)", noun, strings.Join(ids, ", "), e.Message, e.Code)
}
