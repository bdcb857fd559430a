package vpc

import (
	"context"
	"net/url"
)

// DescribeNetworkInterfaces: the ENIs of the caller's awsvpc tasks.

func eniFields(e *eniXML, name string) ([]string, bool) {
	switch name {
	case "network-interface-id":
		return one(e.NetworkInterfaceID), true
	case "subnet-id":
		return one(e.SubnetID), true
	case "vpc-id":
		return one(e.VpcID), true
	case "availability-zone":
		return one(e.AvailabilityZone), true
	case "description":
		return one(e.Description), true
	case "private-ip-address", "addresses.private-ip-address":
		return one(e.PrivateIPAddress), true
	case "private-dns-name":
		return one(e.PrivateDNSName), true
	case "mac-address":
		return one(e.MacAddress), true
	case "owner-id":
		return one(e.OwnerID), true
	case "requester-id":
		return one(e.RequesterID), true
	case "requester-managed":
		return boolVal(e.RequesterManaged), true
	case "status":
		return one(e.Status), true
	case "interface-type":
		return one(e.InterfaceType), true
	case "source-dest-check":
		return boolVal(e.SourceDestCheck), true
	case "attachment.attachment-id":
		return one(e.Attachment.AttachmentID), true
	case "attachment.status":
		return one(e.Attachment.Status), true
	case "addresses.primary":
		return boolVal(true), true
	case "association.public-ip", "addresses.association.public-ip":
		if e.Association == nil {
			return nil, true
		}
		return one(e.Association.PublicIP), true
	case "group-id":
		var out []string
		for _, g := range e.GroupSet {
			out = append(out, g.GroupID)
		}
		return out, true
	case "group-name":
		var out []string
		for _, g := range e.GroupSet {
			out = append(out, g.GroupName)
		}
		return out, true
	}
	return tagFilter(e.tags, name)
}

func (s *Service) describeNetworkInterfaces(ctx context.Context, sc scope, p url.Values) (any, error) {
	ids, err := idList(p, "NetworkInterfaceId", kindENI)
	if err != nil {
		return nil, err
	}
	fs, err := parseFilters(p, eniFields)
	if err != nil {
		return nil, err
	}
	limit, after, err := paging(p, "NetworkInterfaceIds", ids)
	if err != nil {
		return nil, err
	}
	enis, err := list[eniRecord](ctx, s.st, sc.prefix("enis"))
	if err != nil {
		return nil, err
	}
	enis, err = pick(enis, ids, func(r *eniRecord) string { return r.ENI.ID }, kindENI)
	if err != nil {
		return nil, err
	}
	names := map[string]string{}
	if len(enis) > 0 {
		groups, err := list[groupRecord](ctx, s.st, sc.prefix("sgs"))
		if err != nil {
			return nil, err
		}
		for _, g := range groups {
			names[g.ID] = g.Name
		}
	}
	out := make([]eniXML, 0, len(enis))
	for _, r := range enis {
		out = append(out, sc.eniXML(r, names))
	}
	out = sortedBy(filterItems(out, fs, eniFields), func(e *eniXML) string { return e.NetworkInterfaceID })
	out, next := page(out, func(e *eniXML) string { return e.NetworkInterfaceID }, limit, after)
	return &describeENIsResult{NetworkInterfaces: out, NextToken: next}, nil
}
