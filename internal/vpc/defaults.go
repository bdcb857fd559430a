package vpc

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Availability zones and the defaults every account gets.

// zone is one availability zone of a region.
type zone struct {
	Name string // us-east-1a
	ID   string // use1-az1
}

// zonesOf returns the three zones of region: <region>a, b and c, with zone
// ids in AWS's style (use1-az1 …).
func zonesOf(region string) []zone {
	code := regionCode(region)
	out := make([]zone, 3)
	for i := range out {
		out[i] = zone{Name: region + string(rune('a'+i)), ID: fmt.Sprintf("%s-az%d", code, i+1)}
	}
	return out
}

func zoneNames(region string) []string {
	zs := zonesOf(region)
	out := make([]string, len(zs))
	for i, z := range zs {
		out[i] = z.Name
	}
	return out
}

// findZone returns the zone of region named name (byID: whose id is name).
func findZone(region, name string, byID bool) (zone, bool) {
	for _, z := range zonesOf(region) {
		if (!byID && z.Name == name) || (byID && z.ID == name) {
			return z, true
		}
	}
	return zone{}, false
}

// regionCode abbreviates a region as AWS's zone ids do: us-east-1 → use1,
// ap-southeast-2 → apse2, eu-central-1 → euc1.
func regionCode(region string) string {
	parts := strings.Split(region, "-")
	if len(parts) < 3 {
		return strings.ReplaceAll(region, "-", "")
	}
	dirs := map[string]string{
		"east": "e", "west": "w", "north": "n", "south": "s", "central": "c",
		"northeast": "ne", "northwest": "nw", "southeast": "se", "southwest": "sw",
	}
	var b strings.Builder
	b.WriteString(parts[0])
	for _, p := range parts[1 : len(parts)-1] {
		if d, ok := dirs[p]; ok {
			b.WriteString(d)
		} else if p != "" {
			b.WriteByte(p[0])
		}
	}
	b.WriteString(parts[len(parts)-1])
	return b.String()
}

// The default VPC as AWS makes it.
const (
	defaultVpcCIDR          = "172.31.0.0/16"
	defaultGroupName        = "default"
	defaultGroupDescription = "default VPC security group"
)

// defaultSubnetCIDRs are the default subnets, one per zone in zone order.
var defaultSubnetCIDRs = []string{"172.31.0.0/20", "172.31.16.0/20", "172.31.32.0/20"}

// ensureDefaults makes the scope's default VPC, its default subnets and
// default security group, once: the first caller's transaction creates the
// defaults marker along with them; a concurrent second one finds it made
// and creates nothing.
func (s *Service) ensureDefaults(ctx context.Context, sc scope) error {
	if _, ok := s.ready.Load(sc); ok {
		return nil
	}
	_, _, found, err := get[defaultsRecord](ctx, s.st, sc.defaultsKey())
	if err != nil {
		return fmt.Errorf("default vpc of %s/%s: %w", sc.account, sc.region, err)
	}
	if !found {
		now := s.cfg.Now().UTC()
		v := newVpcRecord(defaultVpcCIDR, true, nil, now)
		g := newDefaultGroup(v, now)
		t := &txn{}
		t.ifRev(sc.defaultsKey(), 0)
		t.put(sc.defaultsKey(), defaultsRecord{VpcID: v.ID})
		t.put(sc.indexKey(), scopeIndexRecord{Account: sc.account, Region: sc.region})
		t.put(sc.vpcKey(v.ID), v)
		t.put(sc.groupKey(g.ID), g)
		for i, z := range zonesOf(sc.region) {
			sn := subnetRecord{ID: newID("subnet"), VpcID: v.ID, CIDR: defaultSubnetCIDRs[i], Zone: z.Name,
				DefaultForAz: true, MapPublicIP: true, Created: now}
			t.put(sc.subnetKey(sn.ID), sn)
		}
		ok, _, err := s.commit(ctx, t)
		if err != nil {
			return fmt.Errorf("create default vpc of %s/%s: %w", sc.account, sc.region, err)
		}
		if ok {
			s.log.Info("created default vpc", "account", sc.account, "region", sc.region, "vpc", v.ID)
		}
	}
	s.ready.Store(sc, struct{}{})
	return nil
}

// defaultVpcID returns the scope's default VPC, "" if it was deleted.
func (s *Service) defaultVpcID(ctx context.Context, sc scope) (string, error) {
	d, _, found, err := get[defaultsRecord](ctx, s.st, sc.defaultsKey())
	if err != nil || !found {
		return "", err
	}
	_, _, found, err = get[vpcRecord](ctx, s.st, sc.vpcKey(d.VpcID))
	if err != nil || !found {
		return "", err
	}
	return d.VpcID, nil
}

func newVpcRecord(cidr string, isDefault bool, tags []tag, now time.Time) *vpcRecord {
	v := &vpcRecord{ID: newID("vpc"), CIDR: cidr, AssociationID: newID("vpc-cidr-assoc"), IsDefault: isDefault,
		Tags: tags, Created: now}
	v.DefaultGroupID = newID("sg")
	return v
}

// newDefaultGroup is the "default" group of VPC v (its id is
// v.DefaultGroupID): all traffic in from members of the group itself, all
// traffic out.
func newDefaultGroup(v *vpcRecord, now time.Time) *groupRecord {
	return &groupRecord{ID: v.DefaultGroupID, VpcID: v.ID, Name: defaultGroupName, Description: defaultGroupDescription,
		IsDefault: true, Created: now,
		Rules: []ruleRecord{
			{ID: newID("sgr"), Protocol: "-1", FromPort: -1, ToPort: -1, SourceGroup: v.DefaultGroupID},
			allowAllEgress(),
		}}
}

// allowAllEgress is the egress rule every new group starts with.
func allowAllEgress() ruleRecord {
	return ruleRecord{ID: newID("sgr"), Egress: true, Protocol: "-1", FromPort: -1, ToPort: -1, CIDR: "0.0.0.0/0"}
}
