package vpc

import (
	"context"
	"fmt"
)

// Read-only lookups for other services (the ELB control plane's Networks
// interface). They take plain types so that the caller need not import this
// package. An unknown or malformed id is reported as absent, not as an
// error; errors are etcd failures.

// SubnetInfo returns a subnet's VPC, availability zone and CIDR block;
// vpcID is "" when the account has no such subnet.
func (s *Service) SubnetInfo(ctx context.Context, account, region, subnetID string) (vpcID, zone, cidr string, err error) {
	sc := newScope(account, region)
	if err := s.ensureDefaults(ctx, sc); err != nil {
		return "", "", "", err
	}
	if !validID(subnetID, kindSubnet.prefix) {
		return "", "", "", nil
	}
	sn, _, found, err := get[subnetRecord](ctx, s.st, sc.subnetKey(subnetID))
	if err != nil || !found {
		return "", "", "", err
	}
	return sn.VpcID, sn.Zone, sn.CIDR, nil
}

// VpcCIDR returns a VPC's CIDR block, "" when the account has no such VPC.
func (s *Service) VpcCIDR(ctx context.Context, account, region, vpcID string) (string, error) {
	sc := newScope(account, region)
	if err := s.ensureDefaults(ctx, sc); err != nil {
		return "", err
	}
	if !validID(vpcID, kindVpc.prefix) {
		return "", nil
	}
	v, _, found, err := get[vpcRecord](ctx, s.st, sc.vpcKey(vpcID))
	if err != nil || !found {
		return "", err
	}
	return v.CIDR, nil
}

// SecurityGroupsIn returns those of ids that are security groups of vpcID,
// in the order given (unknown ones and those of other VPCs are left out);
// for no ids, the VPC's default group (none if the VPC does not exist).
func (s *Service) SecurityGroupsIn(ctx context.Context, account, region, vpcID string, ids []string) ([]string, error) {
	sc := newScope(account, region)
	if err := s.ensureDefaults(ctx, sc); err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		v, _, found, err := get[vpcRecord](ctx, s.st, sc.vpcKey(vpcID))
		if err != nil || !found || !validID(vpcID, kindVpc.prefix) {
			return nil, err
		}
		return []string{v.DefaultGroupID}, nil
	}
	var out []string
	for _, id := range ids {
		if !validID(id, kindGroup.prefix) {
			continue
		}
		g, _, found, err := get[groupRecord](ctx, s.st, sc.groupKey(id))
		if err != nil {
			return nil, fmt.Errorf("security group lookup: %w", err)
		}
		if found && g.VpcID == vpcID {
			out = append(out, id)
		}
	}
	return out, nil
}
