package vpc

import (
	"context"
	"net/netip"
	"net/url"
	"strconv"

	"github.com/berthdev/berth/internal/protocol"
)

// CreateSubnet, DescribeSubnets, DeleteSubnet, ModifySubnetAttribute.

func (s *Service) createSubnet(ctx context.Context, sc scope, p url.Values) (any, error) {
	vpcID, err := requiredID(p, "VpcId", kindVpc)
	if err != nil {
		return nil, err
	}
	cidr := p.Get("CidrBlock")
	if cidr == "" {
		return nil, errMissing("CidrBlock")
	}
	pfx, canonical, err := parseIPv4Prefix(cidr)
	if err != nil {
		return nil, errBadParam("cidrBlock", cidr, "This is not a valid CIDR block.")
	}
	if !canonical || pfx.Bits() < minBlockBits || pfx.Bits() > maxBlockBits {
		return nil, errCIDRInvalid(codeSubnetRange, cidr)
	}
	if p.Get("Ipv6CidrBlock") != "" {
		return nil, errInvalidValue("IPv6 CIDR blocks are not supported.")
	}
	if v6, _, err := protocol.QueryBool(p, "Ipv6Native"); err != nil {
		return nil, err
	} else if v6 {
		return nil, errInvalidValue("IPv6-only subnets are not supported.")
	}
	if p.Get("OutpostArn") != "" {
		return nil, errInvalidValue("Outposts are not supported.")
	}
	z, err := subnetZone(sc.region, p)
	if err != nil {
		return nil, err
	}
	tags, err := tagSpecs(p, "subnet")
	if err != nil {
		return nil, err
	}
	sn := &subnetRecord{ID: newID("subnet"), VpcID: vpcID, CIDR: pfx.String(), Zone: z.Name, Tags: tags,
		Created: s.cfg.Now().UTC()}
	err = s.update(ctx, "create subnet", func(t *txn) error {
		v, rev, found, err := get[vpcRecord](ctx, s.st, sc.vpcKey(vpcID))
		if err != nil {
			return err
		}
		if !found {
			return errNotFound(kindVpc, vpcID)
		}
		vpcPfx, err := netip.ParsePrefix(v.CIDR)
		if err != nil {
			return err
		}
		if pfx.Bits() < vpcPfx.Bits() || !vpcPfx.Contains(pfx.Addr()) {
			return errCIDRInvalid(codeSubnetRange, cidr)
		}
		subnets, err := list[subnetRecord](ctx, s.st, sc.prefix("subnets"))
		if err != nil {
			return err
		}
		for _, o := range subnets {
			if o.VpcID != vpcID {
				continue
			}
			if op, err := netip.ParsePrefix(o.CIDR); err == nil && op.Overlaps(pfx) {
				return errSubnetConflict(cidr)
			}
		}
		// Rewriting the VPC serialises subnet creation in it (no two
		// overlapping subnets) and tells a concurrent DeleteVpc.
		t.ifRev(sc.vpcKey(vpcID), rev)
		t.put(sc.vpcKey(vpcID), v)
		t.ifRev(sc.subnetKey(sn.ID), 0)
		t.put(sc.subnetKey(sn.ID), sn)
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.log.Info("created subnet", "account", sc.account, "region", sc.region, "subnet", sn.ID, "cidr", sn.CIDR, "zone", sn.Zone)
	return &createSubnetResult{Subnet: sc.subnetXML(sn, usableCount(pfx))}, nil
}

// subnetZone reads AvailabilityZone or AvailabilityZoneId (default: the
// region's first zone).
func subnetZone(region string, p url.Values) (zone, error) {
	name, id := p.Get("AvailabilityZone"), p.Get("AvailabilityZoneId")
	switch {
	case name != "" && id != "":
		return zone{}, errCombination("Only one of AvailabilityZone or AvailabilityZoneId may be specified.")
	case name != "":
		z, ok := findZone(region, name, false)
		if !ok {
			return zone{}, errZone("availabilityZone", name, zoneNames(region))
		}
		return z, nil
	case id != "":
		z, ok := findZone(region, id, true)
		if !ok {
			var ids []string
			for _, z := range zonesOf(region) {
				ids = append(ids, z.ID)
			}
			return zone{}, errZone("availabilityZoneId", id, ids)
		}
		return z, nil
	}
	return zonesOf(region)[0], nil
}

func subnetFields(sn *subnetXML, name string) ([]string, bool) {
	switch name {
	case "subnet-id", "subnetId":
		return one(sn.SubnetID), true
	case "vpc-id", "vpcId":
		return one(sn.VpcID), true
	case "cidr", "cidr-block", "cidrBlock":
		return one(sn.CidrBlock), true
	case "availability-zone", "availabilityZone":
		return one(sn.AvailabilityZone), true
	case "availability-zone-id", "availabilityZoneId":
		return one(sn.AvailabilityZoneID), true
	case "available-ip-address-count", "availableIpAddressCount":
		return one(strconv.Itoa(sn.AvailableIPAddressCount)), true
	case "default-for-az", "defaultForAz":
		return boolVal(sn.DefaultForAz), true
	case "map-public-ip-on-launch":
		return boolVal(sn.MapPublicIPOnLaunch), true
	case "owner-id":
		return one(sn.OwnerID), true
	case "state":
		return one(sn.State), true
	case "subnet-arn":
		return one(sn.SubnetArn), true
	}
	return tagFilter(sn.tags, name)
}

func (s *Service) describeSubnets(ctx context.Context, sc scope, p url.Values) (any, error) {
	ids, err := idList(p, "SubnetId", kindSubnet)
	if err != nil {
		return nil, err
	}
	fs, err := parseFilters(p, subnetFields)
	if err != nil {
		return nil, err
	}
	limit, after, err := paging(p, "SubnetIds", ids)
	if err != nil {
		return nil, err
	}
	subnets, err := list[subnetRecord](ctx, s.st, sc.prefix("subnets"))
	if err != nil {
		return nil, err
	}
	subnets, err = pick(subnets, ids, func(sn *subnetRecord) string { return sn.ID }, kindSubnet)
	if err != nil {
		return nil, err
	}
	out := make([]subnetXML, 0, len(subnets))
	for _, sn := range subnets {
		avail, err := s.availableAddresses(ctx, sc, sn)
		if err != nil {
			return nil, err
		}
		out = append(out, sc.subnetXML(sn, avail))
	}
	out = sortedBy(filterItems(out, fs, subnetFields), func(x *subnetXML) string { return x.SubnetID })
	out, next := page(out, func(x *subnetXML) string { return x.SubnetID }, limit, after)
	return &describeSubnetsResult{Subnets: out, NextToken: next}, nil
}

// availableAddresses is the subnet's AvailableIpAddressCount: its size less
// AWS's five reserved addresses and the leased ones.
func (s *Service) availableAddresses(ctx context.Context, sc scope, sn *subnetRecord) (int, error) {
	pfx, err := netip.ParsePrefix(sn.CIDR)
	if err != nil {
		return 0, err
	}
	leased, err := s.count(ctx, sc.leasePrefix(sn.ID))
	if err != nil {
		return 0, err
	}
	return max(usableCount(pfx)-leased, 0), nil
}

func (s *Service) deleteSubnet(ctx context.Context, sc scope, p url.Values) (any, error) {
	id, err := requiredID(p, "SubnetId", kindSubnet)
	if err != nil {
		return nil, err
	}
	err = s.update(ctx, "delete subnet", func(t *txn) error {
		_, rev, found, err := get[subnetRecord](ctx, s.st, sc.subnetKey(id))
		if err != nil {
			return err
		}
		if !found {
			return errNotFound(kindSubnet, id)
		}
		leased, err := s.count(ctx, sc.leasePrefix(id))
		if err != nil {
			return err
		}
		if leased > 0 {
			return errDependency("subnet", id)
		}
		t.ifRev(sc.subnetKey(id), rev)
		t.ifEmpty(sc.leasePrefix(id))
		t.del(sc.subnetKey(id))
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.leases.forget(sc.leasePrefix(id))
	s.log.Info("deleted subnet", "account", sc.account, "region", sc.region, "subnet", id)
	return returnTrue, nil
}

func (s *Service) modifySubnetAttribute(ctx context.Context, sc scope, p url.Values) (any, error) {
	id, err := requiredID(p, "SubnetId", kindSubnet)
	if err != nil {
		return nil, err
	}
	mapPublic, set, err := protocol.QueryBool(p, "MapPublicIpOnLaunch.Value")
	if err != nil {
		return nil, err
	}
	for _, unsupported := range []string{"AssignIpv6AddressOnCreation.Value", "MapCustomerOwnedIpOnLaunch.Value",
		"EnableDns64.Value", "EnableResourceNameDnsAAAARecordOnLaunch.Value"} {
		if on, _, err := protocol.QueryBool(p, unsupported); err != nil {
			return nil, err
		} else if on {
			return nil, errInvalidValue("The attribute %s is not supported.", unsupported)
		}
	}
	if !set {
		return nil, errMissing("MapPublicIpOnLaunch")
	}
	err = s.update(ctx, "modify subnet", func(t *txn) error {
		sn, rev, found, err := get[subnetRecord](ctx, s.st, sc.subnetKey(id))
		if err != nil {
			return err
		}
		if !found {
			return errNotFound(kindSubnet, id)
		}
		sn.MapPublicIP = mapPublic
		t.ifRev(sc.subnetKey(id), rev)
		t.put(sc.subnetKey(id), sn)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return returnTrue, nil
}
