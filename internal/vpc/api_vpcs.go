package vpc

import (
	"context"
	"net/url"

	"github.com/berthdev/berth/internal/protocol"
)

// CreateVpc, DescribeVpcs, DeleteVpc.

func (s *Service) createVpc(ctx context.Context, sc scope, p url.Values) (any, error) {
	cidr := p.Get("CidrBlock")
	if cidr == "" {
		if p.Get("Ipv4IpamPoolId") != "" {
			return nil, errInvalidValue("IPAM pools are not supported; pass CidrBlock.")
		}
		return nil, errMissing("CidrBlock")
	}
	pfx, canonical, err := parseIPv4Prefix(cidr)
	if err != nil {
		return nil, errBadParam("cidrBlock", cidr, "This is not a valid CIDR block.")
	}
	if !canonical || pfx.Bits() < minBlockBits || pfx.Bits() > maxBlockBits {
		return nil, errCIDRInvalid(codeVpcRange, cidr)
	}
	for _, r := range reservedVpcRanges {
		if r.Overlaps(pfx) {
			return nil, errCIDRInvalid(codeVpcRange, cidr)
		}
	}
	if ipv6, _, err := protocol.QueryBool(p, "AmazonProvidedIpv6CidrBlock"); err != nil {
		return nil, err
	} else if ipv6 || p.Get("Ipv6CidrBlock") != "" || p.Get("Ipv6IpamPoolId") != "" {
		return nil, errInvalidValue("IPv6 CIDR blocks are not supported.")
	}
	if t := p.Get("InstanceTenancy"); t != "" && t != "default" {
		return nil, errBadParam("instanceTenancy", t, "Only 'default' tenancy is supported.")
	}
	tags, err := tagSpecs(p, "vpc")
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now().UTC()
	v := newVpcRecord(pfx.String(), false, tags, now)
	g := newDefaultGroup(v, now)
	t := &txn{}
	t.ifRev(sc.vpcKey(v.ID), 0)
	t.put(sc.vpcKey(v.ID), v)
	t.put(sc.groupKey(g.ID), g)
	if ok, _, err := s.commit(ctx, t); err != nil {
		return nil, err
	} else if !ok {
		return nil, errInvalidValue("VPC id %s collided; try again", v.ID)
	}
	s.log.Info("created vpc", "account", sc.account, "region", sc.region, "vpc", v.ID, "cidr", v.CIDR)
	return &createVpcResult{Vpc: sc.vpcXML(v)}, nil
}

func vpcFields(v *vpcXML, name string) ([]string, bool) {
	switch name {
	case "vpc-id":
		return one(v.VpcID), true
	case "cidr", "cidr-block", "cidrBlock", "cidr-block-association.cidr-block":
		return one(v.CidrBlock), true
	case "cidr-block-association.association-id":
		if len(v.CidrBlockAssociationSet) == 0 {
			return nil, true
		}
		return one(v.CidrBlockAssociationSet[0].AssociationID), true
	case "cidr-block-association.state":
		return one("associated"), true
	case "dhcp-options-id":
		return one(v.DhcpOptionsID), true
	case "is-default", "isDefault":
		return boolVal(v.IsDefault), true
	case "owner-id":
		return one(v.OwnerID), true
	case "state":
		return one(v.State), true
	case "instance-tenancy":
		return one(v.InstanceTenancy), true
	}
	return tagFilter(v.tags, name)
}

func (s *Service) describeVpcs(ctx context.Context, sc scope, p url.Values) (any, error) {
	ids, err := idList(p, "VpcId", kindVpc)
	if err != nil {
		return nil, err
	}
	fs, err := parseFilters(p, vpcFields)
	if err != nil {
		return nil, err
	}
	limit, after, err := paging(p, "VpcIds", ids)
	if err != nil {
		return nil, err
	}
	vpcs, err := list[vpcRecord](ctx, s.st, sc.prefix("vpcs"))
	if err != nil {
		return nil, err
	}
	vpcs, err = pick(vpcs, ids, func(v *vpcRecord) string { return v.ID }, kindVpc)
	if err != nil {
		return nil, err
	}
	out := make([]vpcXML, 0, len(vpcs))
	for _, v := range vpcs {
		out = append(out, sc.vpcXML(v))
	}
	out = sortedBy(filterItems(out, fs, vpcFields), func(v *vpcXML) string { return v.VpcID })
	out, next := page(out, func(v *vpcXML) string { return v.VpcID }, limit, after)
	return &describeVpcsResult{Vpcs: out, NextToken: next}, nil
}

// pick keeps the records named by ids (all of them when ids is empty); an
// id that names none is the kind's NotFound error.
func pick[T any](all []*T, ids []string, id func(*T) string, k kind) ([]*T, error) {
	if len(ids) == 0 {
		return all, nil
	}
	byID := make(map[string]*T, len(all))
	for _, r := range all {
		byID[id(r)] = r
	}
	var out []*T
	var missing []string
	for _, want := range ids {
		if r, ok := byID[want]; ok {
			out = append(out, r)
		} else {
			missing = append(missing, want)
		}
	}
	if len(missing) > 0 {
		return nil, errNotFound(k, missing...)
	}
	return out, nil
}

func (s *Service) deleteVpc(ctx context.Context, sc scope, p url.Values) (any, error) {
	id, err := requiredID(p, "VpcId", kindVpc)
	if err != nil {
		return nil, err
	}
	err = s.update(ctx, "delete vpc", func(t *txn) error {
		v, rev, found, err := get[vpcRecord](ctx, s.st, sc.vpcKey(id))
		if err != nil {
			return err
		}
		if !found {
			return errNotFound(kindVpc, id)
		}
		subnets, err := list[subnetRecord](ctx, s.st, sc.prefix("subnets"))
		if err != nil {
			return err
		}
		for _, sn := range subnets {
			if sn.VpcID == id {
				return errDependency("vpc", id)
			}
		}
		groups, err := list[groupRecord](ctx, s.st, sc.prefix("sgs"))
		if err != nil {
			return err
		}
		for _, g := range groups {
			if g.VpcID == id && g.ID != v.DefaultGroupID {
				return errDependency("vpc", id)
			}
		}
		// Subnets and groups are created by rewriting the VPC's record:
		// its revision proves none appeared since the lists above.
		t.ifRev(sc.vpcKey(id), rev)
		t.del(sc.vpcKey(id))
		t.del(sc.groupKey(v.DefaultGroupID))
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.log.Info("deleted vpc", "account", sc.account, "region", sc.region, "vpc", id)
	return returnTrue, nil
}
