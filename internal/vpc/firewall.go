package vpc

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/berthdev/berth/internal/agentapi"
)

// Compiling security groups into ENI firewalls.

// maxTxnOps is how many operations one etcd transaction may carry (etcd's
// default --max-txn-ops).
const maxTxnOps = 128

// computeFirewall returns the firewall of eni (of scope sc): the union of
// the rules of its groups, ingress and egress. A CIDR rule allows its
// block; a source-group rule names the group's address set (sc.setName),
// which the agent fills with the group's members' addresses, so a member
// joining or leaving changes the set and no firewall. Rules with the same
// protocol and ports are merged. The result is sorted, so equal policies
// compare equal. Revision is left 0.
func computeFirewall(sc scope, eni *agentapi.ENI, groups map[string]*groupRecord) agentapi.Firewall {
	type ruleKey struct {
		proto    string
		from, to int
	}
	type peers struct{ cidrs, sets map[string]bool }
	rules := [2]map[ruleKey]peers{{}, {}} // ingress, egress
	for _, gid := range eni.SecurityGroups {
		g := groups[gid]
		if g == nil {
			continue
		}
		for _, r := range g.Rules {
			dir := 0
			if r.Egress {
				dir = 1
			}
			k := ruleKey{r.Protocol, r.FromPort, r.ToPort}
			p, ok := rules[dir][k]
			if !ok {
				p = peers{cidrs: map[string]bool{}, sets: map[string]bool{}}
				rules[dir][k] = p
			}
			if r.CIDR != "" {
				p.cidrs[r.CIDR] = true
			} else {
				p.sets[sc.setName(r.SourceGroup)] = true
			}
		}
	}
	fw := agentapi.Firewall{ENIID: eni.ID}
	for dir, set := range rules {
		out := make([]agentapi.FirewallRule, 0, len(set))
		for k, p := range set {
			r := agentapi.FirewallRule{Protocol: k.proto, FromPort: k.from, ToPort: k.to, CIDRs: sortedKeys(p.cidrs)}
			if len(p.sets) > 0 {
				r.Sets = sortedKeys(p.sets)
			}
			out = append(out, r)
		}
		slices.SortFunc(out, func(a, b agentapi.FirewallRule) int {
			return cmp.Or(cmp.Compare(a.Protocol, b.Protocol), cmp.Compare(a.FromPort, b.FromPort), cmp.Compare(a.ToPort, b.ToPort))
		})
		if dir == 0 {
			fw.Ingress = out
		} else {
			fw.Egress = out
		}
	}
	return fw
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// sameFirewall reports whether two firewalls allow the same (revisions aside).
func sameFirewall(a, b agentapi.Firewall) bool {
	return a.ENIID == b.ENIID && sameRules(a.Ingress, b.Ingress) && sameRules(a.Egress, b.Egress)
}

func sameRules(a, b []agentapi.FirewallRule) bool {
	return slices.EqualFunc(a, b, func(x, y agentapi.FirewallRule) bool {
		return x.Protocol == y.Protocol && x.FromPort == y.FromPort && x.ToPort == y.ToPort && slices.Equal(x.CIDRs, y.CIDRs) &&
			slices.Equal(x.Sets, y.Sets)
	})
}

// GroupIngress returns the ingress rules of the security groups groupIDs
// (all of one VPC) as an ENI in those groups would get them, with source
// groups resolved to the /32 of their members, merged and sorted as
// computeFirewall does. Load balancers use it for their listeners. Unknown
// groups add nothing.
func (s *Service) GroupIngress(ctx context.Context, account, region string, groupIDs []string) ([]agentapi.FirewallRule, error) {
	sc := newScope(account, region)
	groupList, rev, err := listRev[groupRecord](ctx, s.st, sc.prefix("sgs"), 0)
	if err != nil {
		return nil, err
	}
	groups := make(map[string]*groupRecord, len(groupList))
	for _, g := range groupList {
		groups[g.v.ID] = g.v
	}
	probe := agentapi.ENI{SecurityGroups: groupIDs}
	rules := computeFirewall(sc, &probe, groups).Ingress
	var names []string
	for _, r := range rules {
		names = append(names, r.Sets...)
	}
	sets, err := s.AddressSets(ctx, dedupe(names), rev, 0)
	if err != nil {
		return nil, err
	}
	return agentapi.ResolveSets(rules, sets), nil
}

// readSet returns the members of a set at revision setRev (the set's last
// change as of rev, so its members at rev), from the cache of the last
// read of each set: the agents of every node that names a set ask for it
// when it changes. Callers must not modify the addresses.
func (s *Service) readSet(ctx context.Context, sc scope, group, name string, setRev, rev int64) (agentapi.AddressSet, error) {
	s.setsMu.Lock()
	if c, ok := s.sets[name]; ok && c.Revision == setRev {
		s.setsMu.Unlock()
		return c, nil
	}
	s.setsMu.Unlock()
	members, err := s.st.C.Get(ctx, sc.memberPrefix(group), clientv3.WithPrefix(), clientv3.WithRev(rev))
	if err != nil {
		return agentapi.AddressSet{}, fmt.Errorf("read members of %s: %w", name, err)
	}
	set := agentapi.AddressSet{Name: name, Revision: setRev, Addresses: make([]string, 0, len(members.Kvs))}
	for _, kv := range members.Kvs {
		var m memberRecord
		if json.Unmarshal(kv.Value, &m) == nil && m.IP != "" {
			set.Addresses = append(set.Addresses, m.IP)
		}
	}
	slices.Sort(set.Addresses)
	s.setsMu.Lock()
	defer s.setsMu.Unlock()
	if s.sets == nil {
		s.sets = map[string]agentapi.AddressSet{}
	}
	if c, ok := s.sets[name]; !ok || c.Revision < setRev {
		s.sets[name] = set
	}
	return set, nil
}

// AddressSets reads, as of revision rev, the named address sets (as
// firewall rules name them) that changed after revision since: each with
// the revision of its last change and its members' addresses, sorted. A
// set that never had a member has revision 0 and no addresses. Names that
// are not sets are skipped.
func (s *Service) AddressSets(ctx context.Context, names []string, rev, since int64) ([]agentapi.AddressSet, error) {
	revs, err := s.AddressSetRevisions(ctx, names, rev)
	if err != nil {
		return nil, err
	}
	var out []agentapi.AddressSet
	for i, n := range names {
		sc, g, ok := parseSetName(n)
		if !ok || (since > 0 && revs[i] <= since) {
			continue
		}
		set, err := s.readSet(ctx, sc, g, n, revs[i], rev)
		if err != nil {
			return nil, err
		}
		out = append(out, set)
	}
	return out, nil
}

// AddressSetRevisions reads the revisions of the named sets as of revision
// rev, in order: that of each one's last change (0: never a member, or not
// a set).
func (s *Service) AddressSetRevisions(ctx context.Context, names []string, rev int64) ([]int64, error) {
	out := make([]int64, len(names))
	for lo := 0; lo < len(names); lo += maxTxnOps {
		var ops []clientv3.Op
		for _, n := range names[lo:min(lo+maxTxnOps, len(names))] {
			ops = append(ops, s.st.OpGet(setKey(n), clientv3.WithRev(rev), clientv3.WithKeysOnly()))
		}
		resp, err := s.st.C.Txn(ctx).Then(ops...).Commit()
		if err != nil {
			return nil, fmt.Errorf("read address sets: %w", err)
		}
		for i, rr := range resp.Responses {
			if kvs := rr.GetResponseRange().Kvs; len(kvs) > 0 {
				out[lo+i] = kvs[0].ModRevision
			}
		}
	}
	return out, nil
}
