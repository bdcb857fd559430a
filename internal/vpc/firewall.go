package vpc

import (
	"cmp"
	"context"
	"slices"

	"github.com/berthdev/berth/internal/agentapi"
)

// Compiling security groups into ENI firewalls.

// computeFirewall returns the firewall of eni: the union of the rules of
// its groups, ingress and egress, each source-group rule resolved to the /32
// of every ENI in enis (the scope's, eni included) that is in that group and
// in eni's VPC. Rules with the same protocol and ports are merged; a
// source-group rule whose group has no members adds nothing. The result is
// sorted, so equal policies compare equal. Revision is left 0.
func computeFirewall(eni *agentapi.ENI, groups map[string]*groupRecord, enis []*agentapi.ENI) agentapi.Firewall {
	type ruleKey struct {
		proto    string
		from, to int
	}
	sets := [2]map[ruleKey]map[string]bool{{}, {}} // ingress, egress
	for _, gid := range eni.SecurityGroups {
		g := groups[gid]
		if g == nil {
			continue
		}
		for _, r := range g.Rules {
			var cidrs []string
			if r.CIDR != "" {
				cidrs = []string{r.CIDR}
			} else {
				for _, o := range enis {
					if o.VpcID == eni.VpcID && slices.Contains(o.SecurityGroups, r.SourceGroup) {
						cidrs = append(cidrs, o.PrivateIP+"/32")
					}
				}
			}
			if len(cidrs) == 0 {
				continue
			}
			dir := 0
			if r.Egress {
				dir = 1
			}
			k := ruleKey{r.Protocol, r.FromPort, r.ToPort}
			if sets[dir][k] == nil {
				sets[dir][k] = map[string]bool{}
			}
			for _, c := range cidrs {
				sets[dir][k][c] = true
			}
		}
	}
	fw := agentapi.Firewall{ENIID: eni.ID}
	for dir, set := range sets {
		rules := make([]agentapi.FirewallRule, 0, len(set))
		for k, cs := range set {
			cidrs := make([]string, 0, len(cs))
			for c := range cs {
				cidrs = append(cidrs, c)
			}
			slices.Sort(cidrs)
			rules = append(rules, agentapi.FirewallRule{Protocol: k.proto, FromPort: k.from, ToPort: k.to, CIDRs: cidrs})
		}
		slices.SortFunc(rules, func(a, b agentapi.FirewallRule) int {
			return cmp.Or(cmp.Compare(a.Protocol, b.Protocol), cmp.Compare(a.FromPort, b.FromPort), cmp.Compare(a.ToPort, b.ToPort))
		})
		if dir == 0 {
			fw.Ingress = rules
		} else {
			fw.Egress = rules
		}
	}
	return fw
}

// sameFirewall reports whether two firewalls allow the same (revisions aside).
func sameFirewall(a, b agentapi.Firewall) bool {
	return a.ENIID == b.ENIID && sameRules(a.Ingress, b.Ingress) && sameRules(a.Egress, b.Egress)
}

func sameRules(a, b []agentapi.FirewallRule) bool {
	return slices.EqualFunc(a, b, func(x, y agentapi.FirewallRule) bool {
		return x.Protocol == y.Protocol && x.FromPort == y.FromPort && x.ToPort == y.ToPort && slices.Equal(x.CIDRs, y.CIDRs)
	})
}

// GroupIngress returns the ingress rules of the security groups groupIDs
// (all of one VPC) as an ENI in those groups would get them: source groups
// resolved to the /32 of their members, merged and sorted as
// computeFirewall does. Load balancers use it for their listeners. Unknown
// groups add nothing.
func (s *Service) GroupIngress(ctx context.Context, account, region string, groupIDs []string) ([]agentapi.FirewallRule, error) {
	sc := newScope(account, region)
	enis, rev, err := listRev[eniRecord](ctx, s.st, sc.prefix("enis"), 0)
	if err != nil {
		return nil, err
	}
	groupList, _, err := listRev[groupRecord](ctx, s.st, sc.prefix("sgs"), rev)
	if err != nil {
		return nil, err
	}
	groups := make(map[string]*groupRecord, len(groupList))
	for _, g := range groupList {
		groups[g.v.ID] = g.v
	}
	probe := agentapi.ENI{SecurityGroups: groupIDs}
	for _, id := range groupIDs {
		if g := groups[id]; g != nil {
			probe.VpcID = g.VpcID
			break
		}
	}
	members := make([]*agentapi.ENI, len(enis))
	for i, e := range enis {
		members[i] = &e.v.ENI
	}
	return computeFirewall(&probe, groups, members).Ingress, nil
}
