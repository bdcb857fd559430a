package vpc

import (
	"context"
	"net/url"

	"github.com/berthdev/berth/internal/protocol"
)

// AuthorizeSecurityGroupIngress/Egress, RevokeSecurityGroupIngress/Egress,
// DescribeSecurityGroupRules.

// maxRulesPerDirection is EC2's default quota of rules per group and
// direction.
const maxRulesPerDirection = 60

// sameRule reports whether two rules allow the same traffic (ids and
// descriptions aside).
func sameRule(a, b ruleRecord) bool {
	return a.Egress == b.Egress && a.Protocol == b.Protocol && a.FromPort == b.FromPort && a.ToPort == b.ToPort &&
		a.CIDR == b.CIDR && a.SourceGroup == b.SourceGroup
}

// expand turns a request's permissions into rules of group g, one per peer,
// resolving peer group names in g's VPC. With verify, peer groups named by
// id must exist in g's VPC, and it returns those it read with their
// revisions, so the caller can require them unchanged; without (revoking),
// an id is taken as it is, since only a rule that exists can match.
func (s *Service) expand(ctx context.Context, sc scope, g *groupRecord, perms []permission, egress, verify bool) ([]ruleRecord, map[string]versioned[groupRecord], error) {
	peers := map[string]versioned[groupRecord]{}
	var out []ruleRecord
	for _, perm := range perms {
		base := ruleRecord{Egress: egress, Protocol: perm.Protocol, FromPort: perm.FromPort, ToPort: perm.ToPort}
		for _, c := range perm.CIDRs {
			r := base
			r.CIDR, r.Description = c.CIDR, c.Description
			out = append(out, r)
		}
		for _, pg := range perm.Groups {
			if pg.UserID != "" && pg.UserID != sc.account {
				if !verify {
					return nil, nil, errPermissionNotFound()
				}
				return nil, nil, errInvalidValue("Security groups of other accounts cannot be referenced (UserId %s).", pg.UserID)
			}
			id := pg.GroupID
			if id == "" {
				peer, err := s.groupByName(ctx, sc, pg.GroupName, g.VpcID)
				if err != nil {
					return nil, nil, err
				}
				id = peer.ID
			}
			if _, seen := peers[id]; !seen && verify {
				peer, rev, found, err := get[groupRecord](ctx, s.st, sc.groupKey(id))
				if err != nil {
					return nil, nil, err
				}
				if !found {
					return nil, nil, errNotFound(kindGroup, id)
				}
				if peer.VpcID != g.VpcID {
					return nil, nil, apiErr(codeGroupNotFound, "You have specified two resources that belong to different networks.")
				}
				peers[id] = versioned[groupRecord]{v: peer, rev: rev}
			}
			r := base
			r.SourceGroup, r.Description = id, pg.Description
			out = append(out, r)
		}
	}
	return out, peers, nil
}

func (s *Service) authorize(egress bool) opFunc {
	return func(ctx context.Context, sc scope, p url.Values) (any, error) {
		id, err := s.targetGroupID(ctx, sc, p, !egress)
		if err != nil {
			return nil, err
		}
		perms, err := parsePermissions(p)
		if err != nil {
			return nil, err
		}
		if len(perms) == 0 {
			return nil, errMissing("IpPermissions")
		}
		if specs, err := protocol.QueryStructs(p, "TagSpecification"); err != nil {
			return nil, err
		} else if len(specs) > 0 {
			return nil, errInvalidValue("Tags on security group rules are not supported.")
		}
		var added []ruleRecord
		err = s.update(ctx, "authorize", func(t *txn) error {
			g, rev, found, err := get[groupRecord](ctx, s.st, sc.groupKey(id))
			if err != nil {
				return err
			}
			if !found {
				return errNotFound(kindGroup, id)
			}
			rules, peers, err := s.expand(ctx, sc, g, perms, egress, true)
			if err != nil {
				return err
			}
			added = added[:0]
			for _, r := range rules {
				for _, have := range append(g.Rules, added...) {
					if sameRule(have, r) {
						return errPermissionDuplicate(r)
					}
				}
				r.ID = newID("sgr")
				added = append(added, r)
			}
			n := len(added)
			for _, r := range g.Rules {
				if r.Egress == egress {
					n++
				}
			}
			if n > maxRulesPerDirection {
				return apiErr(codeRulesLimitExceeded, "The maximum number of rules per security group has been reached.")
			}
			g.Rules = append(g.Rules, added...)
			t.ifRev(sc.groupKey(id), rev)
			t.put(sc.groupKey(id), g)
			// A reference rewrites the peer group, so that deleting it
			// (which compares its revision) sees the new reference.
			for pid, peer := range peers {
				if pid == id {
					continue
				}
				t.ifRev(sc.groupKey(pid), peer.rev)
				t.put(sc.groupKey(pid), peer.v)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		s.log.Info("authorized security group rules", "account", sc.account, "region", sc.region, "group", id,
			"egress", egress, "rules", len(added))
		res := &authorizeResult{Return: true, SecurityGroupRules: items[ruleXML]{}}
		for _, r := range added {
			res.SecurityGroupRules = append(res.SecurityGroupRules, sc.ruleXML(id, r))
		}
		return res, nil
	}
}

func (s *Service) revoke(egress bool) opFunc {
	return func(ctx context.Context, sc scope, p url.Values) (any, error) {
		id, err := s.targetGroupID(ctx, sc, p, !egress)
		if err != nil {
			return nil, err
		}
		ruleIDs, err := idList(p, "SecurityGroupRuleId", kindRule)
		if err != nil {
			return nil, err
		}
		perms, err := parsePermissions(p)
		if err != nil {
			return nil, err
		}
		switch {
		case len(ruleIDs) > 0 && len(perms) > 0:
			return nil, errCombination("SecurityGroupRuleIds may not be used with IpPermissions.")
		case len(ruleIDs) == 0 && len(perms) == 0:
			return nil, errMissing("IpPermissions or SecurityGroupRuleIds")
		}
		removed := 0
		err = s.update(ctx, "revoke", func(t *txn) error {
			g, rev, found, err := get[groupRecord](ctx, s.st, sc.groupKey(id))
			if err != nil {
				return err
			}
			if !found {
				return errNotFound(kindGroup, id)
			}
			drop := map[string]bool{}
			for _, rid := range ruleIDs {
				if !hasRuleID(g.Rules, rid, egress) {
					return errNotFound(kindRule, rid)
				}
				drop[rid] = true
			}
			if len(perms) > 0 {
				rules, _, err := s.expand(ctx, sc, g, perms, egress, false)
				if err != nil {
					return err
				}
				for _, want := range rules {
					matched := false
					for _, have := range g.Rules {
						if sameRule(have, want) {
							drop[have.ID], matched = true, true
						}
					}
					if !matched {
						return errPermissionNotFound()
					}
				}
			}
			kept := g.Rules[:0:0]
			for _, r := range g.Rules {
				if !drop[r.ID] {
					kept = append(kept, r)
				}
			}
			removed = len(g.Rules) - len(kept)
			g.Rules = kept
			t.ifRev(sc.groupKey(id), rev)
			t.put(sc.groupKey(id), g)
			return nil
		})
		if err != nil {
			return nil, err
		}
		s.log.Info("revoked security group rules", "account", sc.account, "region", sc.region, "group", id,
			"egress", egress, "rules", removed)
		return returnTrue, nil
	}
}

func hasRuleID(rules []ruleRecord, id string, egress bool) bool {
	for _, r := range rules {
		if r.ID == id && r.Egress == egress {
			return true
		}
	}
	return false
}

func ruleFields(r *ruleXML, name string) ([]string, bool) {
	switch name {
	case "group-id":
		return one(r.GroupID), true
	case "security-group-rule-id":
		return one(r.SecurityGroupRuleID), true
	}
	return tagFilter(nil, name)
}

func (s *Service) describeSecurityGroupRules(ctx context.Context, sc scope, p url.Values) (any, error) {
	ids, err := idList(p, "SecurityGroupRuleId", kindRule)
	if err != nil {
		return nil, err
	}
	fs, err := parseFilters(p, ruleFields)
	if err != nil {
		return nil, err
	}
	limit, after, err := paging(p, "SecurityGroupRuleIds", ids)
	if err != nil {
		return nil, err
	}
	groups, err := list[groupRecord](ctx, s.st, sc.prefix("sgs"))
	if err != nil {
		return nil, err
	}
	var all []*ruleXML
	for _, g := range groups {
		for _, r := range g.Rules {
			x := sc.ruleXML(g.ID, r)
			all = append(all, &x)
		}
	}
	all, err = pick(all, ids, func(r *ruleXML) string { return r.SecurityGroupRuleID }, kindRule)
	if err != nil {
		return nil, err
	}
	out := make([]ruleXML, 0, len(all))
	for _, r := range all {
		out = append(out, *r)
	}
	out = sortedBy(filterItems(out, fs, ruleFields), func(r *ruleXML) string { return r.SecurityGroupRuleID })
	out, next := page(out, func(r *ruleXML) string { return r.SecurityGroupRuleID }, limit, after)
	return &describeRulesResult{SecurityGroupRules: out, NextToken: next}, nil
}
