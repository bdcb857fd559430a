package vpc

import (
	"context"
	"net/url"
	"strings"

	"github.com/berthdev/berth/internal/protocol"
)

// CreateSecurityGroup, DescribeSecurityGroups, DeleteSecurityGroup.

// maxGroupName is the longest group name and description EC2 takes.
const maxGroupName = 255

// groupNameChars are the characters EC2 allows in VPC group names and
// descriptions besides letters, digits and spaces.
const groupNameChars = "._-:/()#,@[]+=&;{}!$*"

func checkGroupText(param, v string) error {
	if len(v) > maxGroupName {
		return errBadParam(param, v, "It may have at most 255 characters.")
	}
	for _, c := range v {
		ok := c == ' ' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			strings.ContainsRune(groupNameChars, c)
		if !ok {
			return errBadParam(param, v, "Character sets beyond ASCII are not supported; use a-z, A-Z, 0-9, spaces, and ._-:/()#,@[]+=&;{}!$*.")
		}
	}
	return nil
}

func (s *Service) createSecurityGroup(ctx context.Context, sc scope, p url.Values) (any, error) {
	name, desc := p.Get("GroupName"), p.Get("GroupDescription")
	if name == "" {
		return nil, errMissing("GroupName")
	}
	if !p.Has("GroupDescription") || desc == "" {
		return nil, errMissing("GroupDescription")
	}
	if err := checkGroupText("GroupName", name); err != nil {
		return nil, err
	}
	if err := checkGroupText("GroupDescription", desc); err != nil {
		return nil, err
	}
	if strings.HasPrefix(strings.ToLower(name), "sg-") {
		return nil, errInvalidValue("Group names may not be in the format sg-*.")
	}
	if name == defaultGroupName {
		return nil, apiErr(codeGroupReserved, "The security group '%s' is reserved", name)
	}
	vpcID := p.Get("VpcId")
	if vpcID == "" {
		id, err := s.defaultVpcID(ctx, sc)
		if err != nil {
			return nil, err
		}
		if id == "" {
			return nil, errNoDefaultVpc()
		}
		vpcID = id
	} else if err := checkID(kindVpc, vpcID); err != nil {
		return nil, err
	}
	tags, err := tagSpecs(p, "security-group")
	if err != nil {
		return nil, err
	}
	g := &groupRecord{ID: newID("sg"), VpcID: vpcID, Name: name, Description: desc, Tags: tags,
		Rules: []ruleRecord{allowAllEgress()}, Created: s.cfg.Now().UTC()}
	err = s.update(ctx, "create security group", func(t *txn) error {
		v, rev, found, err := get[vpcRecord](ctx, s.st, sc.vpcKey(vpcID))
		if err != nil {
			return err
		}
		if !found {
			return errNotFound(kindVpc, vpcID)
		}
		groups, err := list[groupRecord](ctx, s.st, sc.prefix("sgs"))
		if err != nil {
			return err
		}
		for _, o := range groups {
			if o.VpcID == vpcID && o.Name == name {
				return errGroupDuplicate(name, vpcID)
			}
		}
		// Rewriting the VPC serialises group creation in it (one group
		// per name) and tells a concurrent DeleteVpc.
		t.ifRev(sc.vpcKey(vpcID), rev)
		t.put(sc.vpcKey(vpcID), v)
		t.ifRev(sc.groupKey(g.ID), 0)
		t.put(sc.groupKey(g.ID), g)
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.log.Info("created security group", "account", sc.account, "region", sc.region, "group", g.ID, "name", name, "vpc", vpcID)
	return &createSecurityGroupResult{GroupID: g.ID, TagSet: tagSetXML(tags)}, nil
}

// groupByName finds the group named name in VPC vpcID ("": the default VPC,
// which is where EC2 looks up a bare GroupName).
func (s *Service) groupByName(ctx context.Context, sc scope, name, vpcID string) (*groupRecord, error) {
	if vpcID == "" {
		id, err := s.defaultVpcID(ctx, sc)
		if err != nil {
			return nil, err
		}
		if id == "" {
			return nil, errGroupNameNotFound(name, "")
		}
		vpcID = id
	}
	groups, err := list[groupRecord](ctx, s.st, sc.prefix("sgs"))
	if err != nil {
		return nil, err
	}
	for _, g := range groups {
		if g.VpcID == vpcID && g.Name == name {
			return g, nil
		}
	}
	return nil, errGroupNameNotFound(name, vpcID)
}

// targetGroupID reads the group an action is about: GroupId, or GroupName
// (in the default VPC) when byName is allowed.
func (s *Service) targetGroupID(ctx context.Context, sc scope, p url.Values, byName bool) (string, error) {
	if id := p.Get("GroupId"); id != "" {
		return id, checkID(kindGroup, id)
	}
	if name := p.Get("GroupName"); name != "" && byName {
		g, err := s.groupByName(ctx, sc, name, "")
		if err != nil {
			return "", err
		}
		return g.ID, nil
	}
	if byName {
		return "", errMissing("GroupId or GroupName")
	}
	return "", errMissing("GroupId")
}

func groupFields(g *groupXML, name string) ([]string, bool) {
	switch name {
	case "group-id":
		return one(g.GroupID), true
	case "group-name":
		return one(g.GroupName), true
	case "description":
		return one(g.GroupDescription), true
	case "vpc-id":
		return one(g.VpcID), true
	case "owner-id":
		return one(g.OwnerID), true
	}
	perms := g.IPPermissions
	field, ok := strings.CutPrefix(name, "ip-permission.")
	if rest, egress := strings.CutPrefix(name, "egress.ip-permission."); egress {
		perms, field, ok = g.IPPermissionsEgress, rest, true
	}
	if ok {
		return permissionField(perms, field)
	}
	return tagFilter(g.tags, name)
}

func permissionField(perms []ipPermissionXML, field string) ([]string, bool) {
	var out []string
	for _, p := range perms {
		switch field {
		case "protocol":
			out = append(out, p.IPProtocol)
		case "from-port":
			if p.FromPort != nil {
				out = append(out, intVal(*p.FromPort)...)
			}
		case "to-port":
			if p.ToPort != nil {
				out = append(out, intVal(*p.ToPort)...)
			}
		case "cidr":
			for _, r := range p.IPRanges {
				out = append(out, r.CidrIP)
			}
		case "group-id":
			for _, g := range p.Groups {
				out = append(out, g.GroupID)
			}
		case "user-id":
			for _, g := range p.Groups {
				out = append(out, g.UserID)
			}
		default:
			return nil, false
		}
	}
	switch field {
	case "protocol", "from-port", "to-port", "cidr", "group-id", "user-id":
		return out, true
	}
	return nil, false
}

func (s *Service) describeSecurityGroups(ctx context.Context, sc scope, p url.Values) (any, error) {
	ids, err := idList(p, "GroupId", kindGroup)
	if err != nil {
		return nil, err
	}
	names, err := protocol.QueryList(p, "GroupName")
	if err != nil {
		return nil, err
	}
	fs, err := parseFilters(p, groupFields)
	if err != nil {
		return nil, err
	}
	limit, after, err := paging(p, "GroupIds", append(ids, names...))
	if err != nil {
		return nil, err
	}
	groups, err := list[groupRecord](ctx, s.st, sc.prefix("sgs"))
	if err != nil {
		return nil, err
	}
	selected, err := pick(groups, ids, func(g *groupRecord) string { return g.ID }, kindGroup)
	if err != nil {
		return nil, err
	}
	if len(names) > 0 {
		// Names are looked up in the default VPC, as EC2 does.
		byName := make([]*groupRecord, 0, len(names))
		for _, n := range names {
			g, err := s.groupByName(ctx, sc, n, "")
			if err != nil {
				return nil, err
			}
			byName = append(byName, g)
		}
		if len(ids) == 0 {
			selected = nil
		}
		for _, g := range byName {
			if !containsGroup(selected, g.ID) {
				selected = append(selected, g)
			}
		}
	}
	out := make([]groupXML, 0, len(selected))
	for _, g := range selected {
		out = append(out, sc.groupXML(g))
	}
	out = sortedBy(filterItems(out, fs, groupFields), func(g *groupXML) string { return g.GroupID })
	out, next := page(out, func(g *groupXML) string { return g.GroupID }, limit, after)
	return &describeSecurityGroupsResult{SecurityGroups: out, NextToken: next}, nil
}

func containsGroup(gs []*groupRecord, id string) bool {
	for _, g := range gs {
		if g.ID == id {
			return true
		}
	}
	return false
}

func (s *Service) deleteSecurityGroup(ctx context.Context, sc scope, p url.Values) (any, error) {
	id, err := s.targetGroupID(ctx, sc, p, true)
	if err != nil {
		return nil, err
	}
	err = s.update(ctx, "delete security group", func(t *txn) error {
		g, rev, found, err := get[groupRecord](ctx, s.st, sc.groupKey(id))
		if err != nil {
			return err
		}
		if !found {
			return errNotFound(kindGroup, id)
		}
		if g.IsDefault {
			return apiErr(codeCannotDelete, "the specified group: \"%s\" name: \"%s\" cannot be deleted by a user", g.ID, g.Name)
		}
		members, err := s.count(ctx, sc.memberPrefix(id))
		if err != nil {
			return err
		}
		if members > 0 {
			return errGroupDependency(id)
		}
		groups, err := list[groupRecord](ctx, s.st, sc.prefix("sgs"))
		if err != nil {
			return err
		}
		for _, o := range groups {
			if o.ID == id {
				continue
			}
			for _, r := range o.Rules {
				if r.SourceGroup == id {
					return errGroupDependency(id)
				}
			}
		}
		// A new reference rewrites this group, a new member adds a
		// member key: the conditions catch both.
		t.ifRev(sc.groupKey(id), rev)
		t.ifEmpty(sc.memberPrefix(id))
		t.del(sc.groupKey(id))
		t.del(setKey(sc.setName(id)))
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.log.Info("deleted security group", "account", sc.account, "region", sc.region, "group", id)
	return returnTrue, nil
}
