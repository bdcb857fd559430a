package vpc

import (
	"context"
	"net/url"
	"strings"

	"github.com/berthdev/berth/internal/protocol"
)

// DescribeAvailabilityZones: the region's three zones.

func zoneFields(z *zoneXML, name string) ([]string, bool) {
	switch name {
	case "zone-name":
		return one(z.ZoneName), true
	case "zone-id":
		return one(z.ZoneID), true
	case "region-name":
		return one(z.RegionName), true
	case "state":
		return one(z.ZoneState), true
	case "zone-type":
		return one(z.ZoneType), true
	case "group-name":
		return one(z.GroupName), true
	case "network-border-group":
		return one(z.NetworkBorderGroup), true
	case "opt-in-status":
		return one(z.OptInStatus), true
	case "message":
		return nil, true
	}
	return nil, false
}

func (s *Service) describeAvailabilityZones(_ context.Context, sc scope, p url.Values) (any, error) {
	names, err := protocol.QueryList(p, "ZoneName")
	if err != nil {
		return nil, err
	}
	zoneIDs, err := protocol.QueryList(p, "ZoneId")
	if err != nil {
		return nil, err
	}
	if _, _, err := protocol.QueryBool(p, "AllAvailabilityZones"); err != nil {
		return nil, err
	}
	fs, err := parseFilters(p, zoneFields)
	if err != nil {
		return nil, err
	}
	all := make([]zoneXML, 0, 3)
	for _, z := range zonesOf(sc.region) {
		all = append(all, zoneXML{ZoneName: z.Name, ZoneID: z.ID, ZoneState: "available", RegionName: sc.region,
			GroupName: sc.region, NetworkBorderGroup: sc.region, OptInStatus: "opt-in-not-required",
			ZoneType: "availability-zone", MessageSet: items[struct{}]{}})
	}
	var bad []string
	for _, n := range names {
		if _, ok := findZone(sc.region, n, false); !ok {
			bad = append(bad, n)
		}
	}
	for _, id := range zoneIDs {
		if _, ok := findZone(sc.region, id, true); !ok {
			bad = append(bad, id)
		}
	}
	if len(bad) > 0 {
		return nil, errInvalidValue("Invalid availability zone: [%s]", strings.Join(bad, ", "))
	}
	out := all[:0:0]
	for _, z := range all {
		if (len(names) == 0 && len(zoneIDs) == 0) || contains(names, z.ZoneName) || contains(zoneIDs, z.ZoneID) {
			out = append(out, z)
		}
	}
	return &describeZonesResult{AvailabilityZones: filterItems(out, fs, zoneFields)}, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
