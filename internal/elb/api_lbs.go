package elb

import (
	"context"
	"net/url"
	"sort"

	"github.com/berthdev/berth/internal/protocol"
)

// CreateLoadBalancer, DescribeLoadBalancers, DeleteLoadBalancer.

func (s *Service) createLoadBalancer(ctx context.Context, sc scope, p url.Values) (any, error) {
	name := p.Get("Name")
	if err := validName(name, "Load balancer"); err != nil {
		return nil, err
	}
	lbType := p.Get("Type")
	if lbType == "" {
		lbType = typeApplication
	}
	if !oneOf(lbType, typeApplication, typeNetwork) {
		return nil, errValidation("Load balancer type '%s' is not supported; berth supports 'application' and 'network'", lbType)
	}
	scheme := p.Get("Scheme")
	if scheme == "" {
		scheme = "internet-facing"
	}
	if !oneOf(scheme, "internet-facing", "internal") {
		return nil, errValidation("Scheme '%s' must be one of 'internet-facing, internal'", scheme)
	}
	if ip := p.Get("IpAddressType"); ip != "" && ip != "ipv4" {
		return nil, errValidation("IP address type '%s' is not supported; berth supports 'ipv4'", ip)
	}
	subnets, err := protocol.QueryMemberList(p, "Subnets")
	if err != nil {
		return nil, err
	}
	mappings, err := protocol.QueryMemberStructs(p, "SubnetMappings")
	if err != nil {
		return nil, err
	}
	for _, m := range mappings {
		subnets = append(subnets, m.Get("SubnetId"))
	}
	subnets = dedupe(subnets)
	groups, err := protocol.QueryMemberList(p, "SecurityGroups")
	if err != nil {
		return nil, err
	}
	tags, err := parseTags(p, "Tags")
	if err != nil {
		return nil, err
	}
	lb := &lbRecord{ID: newID(), Name: name, Type: lbType, Scheme: scheme, Tags: tags, Created: s.cfg.Now().UTC()}
	if err := s.placeLB(ctx, sc, lb, subnets, groups); err != nil {
		return nil, err
	}
	err = s.change(ctx, sc, "create load balancer", func(st *state, t *txn) error {
		for _, o := range st.lbs {
			if o.Name == name {
				return errDuplicateLBName()
			}
		}
		t.put(sc.lbKey(lb.ID), lb)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &loadBalancersResult{LoadBalancers: list[lbXML]{s.lbXML(sc, lb)}}, nil
}

// placeLB resolves the load balancer's subnets (one VPC, distinct zones,
// two zones at least for an ALB) and security groups.
func (s *Service) placeLB(ctx context.Context, sc scope, lb *lbRecord, subnets, groups []string) error {
	if len(subnets) == 0 {
		if lb.Type == typeApplication {
			return errValidation("At least two subnets in two different Availability Zones must be specified")
		}
		return errValidation("At least one subnet must be specified")
	}
	var missing []string
	zones := map[string]bool{}
	for _, id := range subnets {
		vpcID, zone, cidr, err := s.net.SubnetInfo(ctx, sc.account, sc.region, id)
		if err != nil {
			return errInternal("subnet lookup", err)
		}
		if vpcID == "" {
			missing = append(missing, id)
			continue
		}
		if lb.VpcID == "" {
			lb.VpcID = vpcID
		} else if vpcID != lb.VpcID {
			return errInvalidSubnet("The subnets '%s' and '%s' are in different VPCs", subnets[0], id)
		}
		if zones[zone] {
			return errInvalidConfig("A load balancer cannot be attached to multiple subnets in the same Availability Zone")
		}
		zones[zone] = true
		lb.Subnets = append(lb.Subnets, subnetPlacement{SubnetID: id, Zone: zone, CIDR: cidr})
	}
	if len(missing) > 0 {
		return errSubnetNotFound(missing)
	}
	if lb.Type == typeApplication && len(zones) < 2 {
		return errValidation("At least two subnets in two different Availability Zones must be specified")
	}
	sort.Slice(lb.Subnets, func(i, j int) bool { return lb.Subnets[i].Zone < lb.Subnets[j].Zone })
	if lb.Type == typeNetwork && len(groups) == 0 {
		return nil
	}
	return s.resolveGroups(ctx, sc, lb, groups)
}

// resolveGroups checks groups (at most 5, in lb's VPC) and sets them on lb.
func (s *Service) resolveGroups(ctx context.Context, sc scope, lb *lbRecord, groups []string) error {
	groups = dedupe(groups)
	if len(groups) > 5 {
		return errValidation("A load balancer can have at most 5 security groups")
	}
	found, err := s.net.SecurityGroupsIn(ctx, sc.account, sc.region, lb.VpcID, groups)
	if err != nil {
		return errInternal("security group lookup", err)
	}
	have := map[string]bool{}
	for _, g := range found {
		have[g] = true
	}
	var bad []string
	for _, g := range groups {
		if !have[g] {
			bad = append(bad, g)
		}
	}
	if len(bad) > 0 {
		return errInvalidSecurityGroup(bad)
	}
	lb.SecurityGroups = found
	return nil
}

func (s *Service) describeLoadBalancers(ctx context.Context, sc scope, p url.Values) (any, error) {
	arns, err := protocol.QueryMemberList(p, "LoadBalancerArns")
	if err != nil {
		return nil, err
	}
	names, err := protocol.QueryMemberList(p, "Names")
	if err != nil {
		return nil, err
	}
	if len(arns) > 0 && len(names) > 0 {
		return nil, errValidation("Load balancer names and load balancer ARNs cannot be specified at the same time")
	}
	offset, size, err := paging(p)
	if err != nil {
		return nil, err
	}
	st, err := s.load(ctx, sc)
	if err != nil {
		return nil, err
	}
	var lbs []*lbRecord
	switch {
	case len(arns) > 0:
		for _, arn := range dedupe(arns) {
			lb, err := st.lbByARN(arn)
			if err != nil {
				return nil, err
			}
			lbs = append(lbs, lb)
		}
	case len(names) > 0:
		byName := map[string]*lbRecord{}
		for _, lb := range st.lbs {
			byName[lb.Name] = lb
		}
		for _, n := range dedupe(names) {
			lb := byName[n]
			if lb == nil {
				return nil, apiErr(codeLBNotFound, "Load balancers '[%s]' not found", n)
			}
			lbs = append(lbs, lb)
		}
	default:
		for _, lb := range st.lbs {
			lbs = append(lbs, lb)
		}
		sort.Slice(lbs, func(i, j int) bool { return lbs[i].Name < lbs[j].Name })
	}
	pg, next := page(lbs, offset, size)
	out := &loadBalancersResult{LoadBalancers: list[lbXML]{}, NextMarker: next}
	for _, lb := range pg {
		out.LoadBalancers = append(out.LoadBalancers, s.lbXML(sc, lb))
	}
	return out, nil
}

func (st *state) lbByARN(arn string) (*lbRecord, error) {
	if arn == "" {
		return nil, errMissing("LoadBalancerArn")
	}
	id, err := st.sc.arnID(arn, arnLB)
	if err != nil {
		return nil, err
	}
	lb := st.lbs[id]
	if lb == nil || st.sc.lbARN(lb) != arn {
		return nil, errLBNotFound()
	}
	return lb, nil
}

func (s *Service) deleteLoadBalancer(ctx context.Context, sc scope, p url.Values) (any, error) {
	arn := p.Get("LoadBalancerArn")
	if arn == "" {
		return nil, errMissing("LoadBalancerArn")
	}
	if _, err := sc.arnID(arn, arnLB); err != nil {
		return nil, err
	}
	err := s.change(ctx, sc, "delete load balancer", func(st *state, t *txn) error {
		lb, err := st.lbByARN(arn)
		if err != nil {
			return nil // deleting an absent load balancer succeeds, as in AWS
		}
		if err := deletionProtected(lb); err != nil {
			return err
		}
		for _, l := range st.listeners {
			if l.LBID == lb.ID {
				t.delPrefix(sc.rulesPrefix(l.ID))
			}
		}
		t.delPrefix(sc.listenersPrefix(lb.ID))
		t.del(sc.lbKey(lb.ID))
		return nil
	})
	return nil, err
}

// deleteListener adds the deletion of l and its rules to t.
func (st *state) deleteListener(t *txn, l *listenerRecord) {
	t.delPrefix(st.sc.rulesPrefix(l.ID))
	t.del(st.sc.listenerKey(l))
}
