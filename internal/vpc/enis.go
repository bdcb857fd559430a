package vpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/berthdev/berth/internal/agentapi"
)

// Task network interfaces: AttachENI and ReleaseENI, which ECS calls as it
// places and stops awsvpc tasks.

// maxENIGroups is how many security groups an ENI may have.
const maxENIGroups = 5

// maxAttachAttempts bounds AttachENI's optimistic retries; each lost race
// moves on to another address, so even many concurrent attachers into one
// subnet finish well within it.
const maxAttachAttempts = 400

// ENIs returns the network interfaces of an account's region.
func (s *Service) ENIs(ctx context.Context, account, region string) ([]agentapi.ENI, error) {
	recs, err := list[eniRecord](ctx, s.st, newScope(account, region).prefix("enis"))
	if err != nil {
		return nil, fmt.Errorf("list enis of %s/%s: %w", account, region, err)
	}
	out := make([]agentapi.ENI, len(recs))
	for i, r := range recs {
		out[i] = r.ENI
	}
	return out, nil
}

// attachPlan is what AttachENI read about the network an ENI goes into.
type attachPlan struct {
	vpc     *vpcRecord
	subnets []versioned[subnetRecord] // in the caller's order of preference
	groups  []versioned[groupRecord]
}

// planAttach reads the candidate subnets and the groups (none: the VPC's
// default group). A configuration that can no longer work (a subnet or
// group deleted since RunTask checked it) is a stop error.
func (s *Service) planAttach(ctx context.Context, sc scope, subnets, groups []string) (*attachPlan, error) {
	plan := &attachPlan{}
	for _, id := range dedupe(subnets) {
		sn, rev, found, err := get[subnetRecord](ctx, s.st, sc.subnetKey(id))
		if err != nil {
			return nil, err
		}
		if !found {
			return nil, stopErr("subnet %s does not exist", id)
		}
		if len(plan.subnets) > 0 && sn.VpcID != plan.subnets[0].v.VpcID {
			return nil, stopErr("subnets %s and %s are in different VPCs", plan.subnets[0].v.ID, id)
		}
		plan.subnets = append(plan.subnets, versioned[subnetRecord]{v: sn, rev: rev})
	}
	vpcID := plan.subnets[0].v.VpcID
	v, _, found, err := get[vpcRecord](ctx, s.st, sc.vpcKey(vpcID))
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, stopErr("vpc %s does not exist", vpcID)
	}
	plan.vpc = v
	groups = dedupe(groups)
	if len(groups) == 0 {
		groups = []string{v.DefaultGroupID}
	}
	if len(groups) > maxENIGroups {
		return nil, stopErr("an ENI can have at most %d security groups, not %d", maxENIGroups, len(groups))
	}
	for _, id := range groups {
		g, rev, found, err := get[groupRecord](ctx, s.st, sc.groupKey(id))
		if err != nil {
			return nil, err
		}
		if !found {
			return nil, stopErr("security group %s does not exist", id)
		}
		if g.VpcID != vpcID {
			return nil, stopErr("security group %s is not in the subnets' VPC %s", id, vpcID)
		}
		plan.groups = append(plan.groups, versioned[groupRecord]{v: g, rev: rev})
	}
	return plan, nil
}

// planCacheSize bounds the plans kept: one per distinct network
// configuration (scope, subnets, groups) in use.
const planCacheSize = 1024

// cachedPlan is planAttach, from memory when the same configuration was
// planned before. A stale plan is safe: the attach transaction compares the
// revisions of the subnet and the groups it read (the VPC's CIDR and
// default group never change), and a failed comparison forgets the plan.
func (s *Service) cachedPlan(ctx context.Context, sc scope, subnets, groups []string) (*attachPlan, error) {
	key := sc.account + "/" + sc.region + "|" + strings.Join(dedupe(subnets), ",") + "|" + strings.Join(dedupe(groups), ",")
	s.plansMu.Lock()
	p := s.plans[key]
	s.plansMu.Unlock()
	if p != nil {
		return p, nil
	}
	p, err := s.planAttach(ctx, sc, subnets, groups)
	if err != nil {
		return nil, err
	}
	s.plansMu.Lock()
	defer s.plansMu.Unlock()
	if s.plans == nil || len(s.plans) >= planCacheSize {
		s.plans = map[string]*attachPlan{}
	}
	s.plans[key] = p
	return p, nil
}

// forgetPlans drops the cached plans of a scope.
func (s *Service) forgetPlans(sc scope) {
	prefix := sc.account + "/" + sc.region + "|"
	s.plansMu.Lock()
	defer s.plansMu.Unlock()
	for k := range s.plans {
		if strings.HasPrefix(k, prefix) {
			delete(s.plans, k)
		}
	}
}

func dedupe(ids []string) []string {
	var out []string
	for _, id := range ids {
		if id != "" && !contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

// AttachENI allocates the network interface of an awsvpc task: the lowest
// free address of the first of subnets (candidates in order of preference,
// all in one VPC) with room, a MAC, the private DNS name, a public IP from
// the pool if assignPublicIP, and the ENI's firewall on node. The ENI
// record, the address leases, the group memberships and the firewall are
// written in one etcd transaction that fails if any address is taken, so
// no address is handed out twice, across concurrent calls and replicas.
//
// It is idempotent by attachmentID: when the ENI exists it is returned as
// it is. When every subnet is full (or the public pool is), or the subnets
// or groups are gone, the error implements StopReason() string: the task
// cannot start. Any other error is transient.
func (s *Service) AttachENI(ctx context.Context, account, region, attachmentID, node string, subnets, groups []string, assignPublicIP bool) (agentapi.ENI, error) {
	if attachmentID == "" || node == "" || len(dedupe(subnets)) == 0 {
		return agentapi.ENI{}, fmt.Errorf("attach eni: attachment id, node and subnets are required (got %q, %q, %v)", attachmentID, node, subnets)
	}
	sc := newScope(account, region)
	if err := s.ensureDefaults(ctx, sc); err != nil {
		return agentapi.ENI{}, err
	}
	for attempt := 0; attempt < maxAttachAttempts; attempt++ {
		eni, done, err := s.tryAttach(ctx, sc, attachmentID, node, subnets, groups, assignPublicIP, attempt)
		if done || err != nil {
			if err != nil {
				return agentapi.ENI{}, fmt.Errorf("attach eni %s: %w", attachmentID, err)
			}
			return eni, nil
		}
		if err := ctx.Err(); err != nil {
			return agentapi.ENI{}, fmt.Errorf("attach eni %s: %w", attachmentID, err)
		}
	}
	return agentapi.ENI{}, fmt.Errorf("attach eni %s: too much contention after %d attempts", attachmentID, maxAttachAttempts)
}

// tryAttach makes one attempt; done=false means it lost a race and the
// caller should try again.
func (s *Service) tryAttach(ctx context.Context, sc scope, attachmentID, node string, subnets, groups []string,
	assignPublicIP bool, attempt int) (agentapi.ENI, bool, error) {
	// An ENI that exists already fails the transaction, which then returns
	// it: a call repeated after a crash costs no extra read up front.
	plan, err := s.cachedPlan(ctx, sc, subnets, groups)
	if err != nil {
		return agentapi.ENI{}, false, err
	}
	cand, eni, err := s.pickAddresses(ctx, sc, plan, attachmentID, assignPublicIP, attempt)
	if err != nil {
		return agentapi.ENI{}, false, err
	}
	return s.commitAttach(ctx, sc, plan, cand, eni, node)
}

// pickAddresses reserves the interface's addresses: the lowest free one of
// the first of plan's subnets with room, and a public one if asked. The
// caller settles them (s.settleENI) once its transaction's outcome is known.
func (s *Service) pickAddresses(ctx context.Context, sc scope, plan *attachPlan, attachmentID string, assignPublicIP bool,
	attempt int) (versioned[subnetRecord], agentapi.ENI, error) {
	var full []string
	for _, cand := range plan.subnets {
		sn := cand.v
		pfx, err := netip.ParsePrefix(sn.CIDR)
		if err != nil {
			return cand, agentapi.ENI{}, fmt.Errorf("subnet %s: %w", sn.ID, err)
		}
		ip, ok := netip.Addr{}, false
		if first, last, any := subnetRange(pfx); any {
			if ip, ok, err = s.reserve(ctx, sc.leasePrefix(sn.ID), first, last, attempt); err != nil {
				return cand, agentapi.ENI{}, err
			}
		}
		if !ok {
			full = append(full, fmt.Sprintf("%s (%s)", sn.ID, sn.CIDR))
			continue
		}
		var pub netip.Addr
		if assignPublicIP {
			first, last := poolRange(s.cfg.PublicIPPool)
			if pub, ok, err = s.reserve(ctx, publicIPPrefix(), first, last, attempt); err != nil || !ok {
				s.settle(sc.leasePrefix(sn.ID), ip, false)
				if err != nil {
					return cand, agentapi.ENI{}, err
				}
				return cand, agentapi.ENI{}, stopErr("unable to assign a public IP address: the public address pool %s has no free addresses", s.cfg.PublicIPPool)
			}
		}
		return cand, s.newENI(sc, plan, sn, pfx, ip, pub, attachmentID), nil
	}
	if len(full) == 1 {
		return versioned[subnetRecord]{}, agentapi.ENI{}, stopErr("unable to assign an IP address: subnet %s has no free addresses", full[0])
	}
	return versioned[subnetRecord]{}, agentapi.ENI{}, stopErr("unable to assign an IP address: subnets %s have no free addresses", strings.Join(full, ", "))
}

// settleENI settles the addresses pickAddresses reserved for eni: leased
// tells whether each is now taken (by eni or, after a lost race, by another).
func (s *Service) settleENI(sc scope, eni agentapi.ENI, privLeased, pubLeased bool) {
	s.settle(sc.leasePrefix(eni.SubnetID), netip.MustParseAddr(eni.PrivateIP), privLeased)
	if eni.PublicIP != "" {
		s.settle(publicIPPrefix(), netip.MustParseAddr(eni.PublicIP), pubLeased)
	}
}

func (s *Service) newENI(sc scope, plan *attachPlan, sn *subnetRecord, pfx netip.Prefix, ip, pub netip.Addr, attachmentID string) agentapi.ENI {
	id := newID("eni")
	eni := agentapi.ENI{
		AttachmentID: attachmentID, ID: id, VpcID: sn.VpcID, VpcCIDR: plan.vpc.CIDR,
		SubnetID: sn.ID, SubnetCIDR: pfx.String(), Gateway: gateway(pfx).String(),
		PrivateIP: ip.String(), MAC: macFor(id), AvailabilityZone: sn.Zone,
		PrivateDNSName: privateDNSName(sc.region, ip), NATEgress: sn.MapPublicIP || pub.IsValid(),
	}
	if pub.IsValid() {
		eni.PublicIP = pub.String()
	}
	for _, g := range plan.groups {
		eni.SecurityGroups = append(eni.SecurityGroups, g.v.ID)
	}
	return eni
}

// attachOps adds to t what attaching eni on node writes: the ENI record,
// its leases, group memberships and firewall, each required absent (the
// subnet and groups unchanged since plan was read). It returns the keys of
// the address sets eni joins: their puts are the caller's, as a
// transaction of several attaches puts each key once.
func (s *Service) attachOps(t *txn, sc scope, plan *attachPlan, cand versioned[subnetRecord], eni agentapi.ENI, node string) []string {
	groups := map[string]*groupRecord{}
	// The firewall's revision: that of the newest record it is computed
	// from. No firewall of this ENI came before it, and the reconciler's
	// later ones are computed from snapshots after the commit, so newer.
	var fwRev int64
	for _, g := range plan.groups {
		groups[g.v.ID] = g.v
		fwRev = max(fwRev, g.rev)
	}
	for _, sn := range plan.subnets {
		fwRev = max(fwRev, sn.rev)
	}
	fw := computeFirewall(sc, &eni, groups)
	fw.Revision = fwRev

	rec := eniRecord{ENI: eni, Node: node, Attached: s.cfg.Now().UTC()}
	leaseKey := sc.leaseKey(eni.SubnetID, eni.PrivateIP)
	t.ifRev(sc.eniKey(eni.AttachmentID), 0)
	t.ifRev(leaseKey, 0)
	t.ifRev(sc.subnetKey(cand.v.ID), cand.rev)
	for _, g := range plan.groups {
		t.ifRev(sc.groupKey(g.v.ID), g.rev)
	}
	t.ifRev(fwKey(node, eni.ID), 0)
	t.put(sc.eniKey(eni.AttachmentID), rec)
	t.put(leaseKey, leaseRecord{AttachmentID: eni.AttachmentID, ENIID: eni.ID})
	var sets []string
	for _, g := range eni.SecurityGroups {
		t.put(sc.memberKey(g, eni.AttachmentID), memberRecord{ENIID: eni.ID, IP: eni.PrivateIP})
		sets = append(sets, setKey(sc.setName(g)))
	}
	t.put(fwKey(node, eni.ID), fw)
	if eni.PublicIP != "" {
		pk := publicIPKey(eni.PublicIP)
		t.ifRev(pk, 0)
		t.put(pk, publicIPRecord{Account: sc.account, Region: sc.region, AttachmentID: eni.AttachmentID})
	}
	return sets
}

// commitAttach writes the ENI, its leases, memberships and firewall in one
// transaction. On a lost race it records the addresses that were taken in
// the lease cache and returns done=false. Either way it settles the
// addresses tryAttach reserved.
func (s *Service) commitAttach(ctx context.Context, sc scope, plan *attachPlan, cand versioned[subnetRecord],
	eni agentapi.ENI, node string) (agentapi.ENI, bool, error) {
	t := &txn{}
	for _, key := range s.attachOps(t, sc, plan, cand, eni, node) {
		t.put(key, agentapi.AddressSetChange{Add: eni.PrivateIP})
	}
	leaseKey := sc.leaseKey(eni.SubnetID, eni.PrivateIP)
	t.els = append(t.els, clientv3.OpGet(leaseKey, clientv3.WithCountOnly()), clientv3.OpGet(sc.eniKey(eni.AttachmentID)))
	if eni.PublicIP != "" {
		t.els = append(t.els, clientv3.OpGet(publicIPKey(eni.PublicIP), clientv3.WithCountOnly()))
	}
	ok, resp, err := s.commit(ctx, t)
	privTaken, pubTaken := true, true // an unknown outcome: the next read of the leases tells
	var existing []byte
	if err == nil && !ok {
		privTaken = resp.Responses[0].GetResponseRange().Count > 0
		if kvs := resp.Responses[1].GetResponseRange().Kvs; len(kvs) > 0 {
			existing = kvs[0].Value
		}
		pubTaken = eni.PublicIP != "" && resp.Responses[2].GetResponseRange().Count > 0
	}
	s.settleENI(sc, eni, privTaken, pubTaken)
	if err != nil {
		return agentapi.ENI{}, false, err
	}
	if ok {
		s.logAttached(sc, eni, node)
		return eni, true, nil
	}
	if existing != nil {
		var rec eniRecord
		if err := json.Unmarshal(existing, &rec); err != nil {
			return agentapi.ENI{}, false, fmt.Errorf("decode eni %s: %w", eni.AttachmentID, err)
		}
		return rec.ENI, true, nil
	}
	if !privTaken && !pubTaken {
		// Not a lost address: the subnet or a group changed since the plan
		// was read.
		s.forgetPlans(sc)
	}
	return agentapi.ENI{}, false, nil
}

func (s *Service) logAttached(sc scope, eni agentapi.ENI, node string) {
	s.log.Info("attached eni", "account", sc.account, "region", sc.region, "attachment", eni.AttachmentID,
		"eni", eni.ID, "subnet", eni.SubnetID, "ip", eni.PrivateIP, "publicIp", eni.PublicIP, "node", node)
}

// errReleased ends ReleaseENI's update when there is nothing to release.
var errReleased = errors.New("eni already released")

// ReleaseENI frees a task's interface: the ENI record, its address and
// public address leases, its group memberships and its firewall go in one
// transaction. Releasing an ENI that does not exist is not an error.
func (s *Service) ReleaseENI(ctx context.Context, account, region, attachmentID string) error {
	sc := newScope(account, region)
	var released agentapi.ENI
	err := s.update(ctx, "release eni", func(t *txn) error {
		rec, rev, found, err := get[eniRecord](ctx, s.st, sc.eniKey(attachmentID))
		if err != nil {
			return err
		}
		if !found {
			return errReleased
		}
		e := rec.ENI
		t.ifRev(sc.eniKey(attachmentID), rev)
		t.del(sc.eniKey(attachmentID))
		t.del(sc.leaseKey(e.SubnetID, e.PrivateIP))
		for _, g := range e.SecurityGroups {
			t.del(sc.memberKey(g, attachmentID))
			t.put(setKey(sc.setName(g)), agentapi.AddressSetChange{Remove: e.PrivateIP})
		}
		if e.PublicIP != "" {
			t.del(publicIPKey(e.PublicIP))
		}
		t.del(fwKey(rec.Node, e.ID))
		released = e
		return nil
	})
	if errors.Is(err, errReleased) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("release eni %s: %w", attachmentID, err)
	}
	if a, err := netip.ParseAddr(released.PrivateIP); err == nil {
		s.released(sc.leasePrefix(released.SubnetID), a)
	}
	if a, err := netip.ParseAddr(released.PublicIP); err == nil {
		s.released(publicIPPrefix(), a)
	}
	s.log.Info("released eni", "account", account, "region", region, "attachment", attachmentID,
		"eni", released.ID, "ip", released.PrivateIP)
	return nil
}

// SetENIDescription sets the description DescribeNetworkInterfaces shows
// for an interface: load balancers name theirs "ELB app/NAME/ID". An
// interface that does not exist is not an error.
func (s *Service) SetENIDescription(ctx context.Context, account, region, attachmentID, description string) error {
	sc := newScope(account, region)
	err := s.update(ctx, "set eni description", func(t *txn) error {
		rec, rev, found, err := get[eniRecord](ctx, s.st, sc.eniKey(attachmentID))
		if err != nil {
			return err
		}
		if !found || rec.Description == description {
			return errReleased
		}
		rec.Description = description
		t.ifRev(sc.eniKey(attachmentID), rev)
		t.put(sc.eniKey(attachmentID), rec)
		return nil
	})
	if errors.Is(err, errReleased) {
		return nil
	}
	return err
}
