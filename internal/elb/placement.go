package elb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/lbproxy"
	"github.com/berthdev/berth/internal/store"
)

// Placement: the reconciler that runs load balancers. For every load
// balancer it chooses a node (the one with the fewest load balancers; kept
// once chosen unless the node disappears), leases a public address from
// Config.PublicPool (global keys lbaddr/<ip>, created only if absent), gives
// it one network interface per subnet (attachment "elb-<lb-id>-<subnet-id>",
// in the load balancer's security groups, so that targets' groups that name
// them admit its addresses) and writes the spec the node's agent runs,
// lbs/<node>/<lb-id> (agentapi.LoadBalancerSpec), whenever it changes.
// Deleted load balancers lose their spec, interfaces and address.
//
// Everything lives in etcd: the placement (node, address, interfaces) is
// part of the load balancer's record, written with the scope's seq check;
// the address lease names its load balancer and subnets, so a crash
// between steps leaves nothing that the next pass does not finish or
// collect. Two reconcilers on one store agree: the first placement written
// wins, and a spec is only written over the version that was read.

// DefaultPublicPool is where load balancers' public addresses come from
// unless Config.PublicPool says otherwise: loopback, so that in dev the
// host reaches them without touching any real network.
var DefaultPublicPool = netip.MustParsePrefix("127.101.0.0/16")

// DefaultIdleTimeout is ALB's idle_timeout.timeout_seconds default.
const DefaultIdleTimeout = 60 * time.Second

// placementDebounce gathers the changes one placement pass answers.
const placementDebounce = 30 * time.Millisecond

// ENIs is what placement needs of the VPC service: the load balancer's
// network interfaces. *vpc.Service satisfies it.
type ENIs interface {
	AttachENI(ctx context.Context, account, region, attachmentID, node string, subnets, groups []string, assignPublicIP bool) (agentapi.ENI, error)
	ReleaseENI(ctx context.Context, account, region, attachmentID string) error
}

// ENIDescriber is optionally implemented by ENIs: placement names each
// interface "ELB app/NAME/ID" (net/NAME/ID for an NLB), as AWS does.
type ENIDescriber interface {
	SetENIDescription(ctx context.Context, account, region, attachmentID, description string) error
}

// GroupIngress resolves security groups' ingress rules (source groups to
// their members' addresses). *vpc.Service satisfies it.
type GroupIngress interface {
	GroupIngress(ctx context.Context, account, region string, groupIDs []string) ([]agentapi.FirewallRule, error)
}

// lbPlacement is where a load balancer runs, stored in its record.
type lbPlacement struct {
	Node          string `json:"node"`
	PublicAddress string `json:"publicAddress"`
	// ENINode is the node ENIs were attached for (their firewalls live
	// there); when Node moves they are attached again.
	ENINode string                     `json:"eniNode,omitempty"`
	ENIs    []agentapi.LoadBalancerENI `json:"enis,omitempty"`
}

// addrLease is the value of lbaddr/<ip>.
type addrLease struct {
	Account string   `json:"account"`
	Region  string   `json:"region"`
	LBID    string   `json:"lbId"`
	Subnets []string `json:"subnets"`
}

// SpecKey is where the spec of load balancer lbID placed on node lives.
func SpecKey(node, lbID string) string { return store.Key("lbs", node, lbID) }

// SpecPrefix is the directory of the specs placed on node.
func SpecPrefix(node string) string { return store.Prefix("lbs", node) }

func addrKey(ip string) string { return store.Key("lbaddr", ip) }

func eniAttachment(lbID, subnet string) string { return "elb-" + lbID + "-" + subnet }

// placed reports whether a load balancer has everything it runs with.
func placed(lb *lbRecord) bool {
	p := lb.Placement
	return p != nil && p.Node != "" && p.PublicAddress != "" && p.ENINode == p.Node && len(p.ENIs) == len(lb.Subnets)
}

// runPlacement runs placement passes until ctx ends: on every change of
// ELB, VPC or node state (debounced), and every ReconcileInterval.
func (s *Service) runPlacement(ctx context.Context) {
	for ctx.Err() == nil {
		s.placementWatch(ctx)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// touchesELB reports whether any of evs is of what load balancers are
// placed from: a scope's ELB state (acct/<account>/<region>/elb/…), and in
// a scope with load balancers its security groups and their members
// (listeners' ingress) and its container instances (instance targets). The
// rest of an account's state (tasks above all, which change all the time)
// places no load balancer; the periodic pass catches anything else.
func (s *Service) touchesELB(evs []*clientv3.Event) bool {
	withLBs := s.lbScopes.Load()
	for _, ev := range evs {
		rest := strings.TrimPrefix(string(ev.Kv.Key), store.Prefix("acct"))
		parts := strings.SplitN(rest, "/", 5)
		if len(parts) < 4 {
			continue
		}
		if parts[2] == "elb" {
			return true
		}
		if withLBs != nil && !(*withLBs)[parts[0]+"/"+parts[1]] {
			continue
		}
		if parts[2] == "instances" || (parts[2] == "vpc" && (parts[3] == "sgs" || parts[3] == "sg-members")) {
			return true
		}
	}
	return false
}

func (s *Service) placementWatch(ctx context.Context) {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	acct := s.st.C.Watch(wctx, store.Prefix("acct"), clientv3.WithPrefix())
	nodes := s.st.C.Watch(wctx, store.Prefix("nodes"), clientv3.WithPrefix())
	tick := time.NewTicker(s.cfg.ReconcileInterval)
	defer tick.Stop()
	pass := func() {
		if err := s.Place(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("elb placement", "err", err)
		}
	}
	pass()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case wr, ok := <-acct:
			if !ok || wr.Err() != nil {
				return
			}
			if !s.touchesELB(wr.Events) {
				continue // a task or another service's record: nothing to place
			}
		case wr, ok := <-nodes:
			if !ok || wr.Err() != nil {
				return
			}
		}
		// Debounce: gather what else arrives shortly.
		t := time.NewTimer(placementDebounce)
	drain:
		for {
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case wr, ok := <-acct:
				if !ok || wr.Err() != nil {
					t.Stop()
					return
				}
			case wr, ok := <-nodes:
				if !ok || wr.Err() != nil {
					t.Stop()
					return
				}
			case <-t.C:
				break drain
			}
		}
		pass()
	}
}

type specEntry struct {
	node, key string
	rev       int64
	spec      agentapi.LoadBalancerSpec
}

type leaseEntry struct {
	ip    string
	rev   int64
	lease addrLease
}

// placeCtx is what one pass knows.
type placeCtx struct {
	alive  map[string]bool
	nodes  []string
	counts map[string]int
	leases map[string]leaseEntry   // by ip
	byLB   map[string][]leaseEntry // by lb id
	specs  map[string][]specEntry  // by lb id
}

// Place makes one placement pass over every load balancer. It does nothing
// without Config.Nodes and Config.ENIs.
func (s *Service) Place(ctx context.Context) error {
	if s.cfg.Nodes == nil || s.cfg.ENIs == nil {
		return nil
	}
	pc := &placeCtx{alive: map[string]bool{}, counts: map[string]int{}, leases: map[string]leaseEntry{},
		byLB: map[string][]leaseEntry{}, specs: map[string][]specEntry{}}
	// Leases and specs first, then the load balancers: one absent at the
	// later read is gone for good (ids are never reused).
	resp, err := s.st.C.Get(ctx, store.Prefix("lbaddr"), clientv3.WithPrefix())
	if err != nil {
		return fmt.Errorf("list lb addresses: %w", err)
	}
	for _, kv := range resp.Kvs {
		var l addrLease
		if json.Unmarshal(kv.Value, &l) != nil {
			continue
		}
		e := leaseEntry{ip: strings.TrimPrefix(string(kv.Key), store.Prefix("lbaddr")), rev: kv.ModRevision, lease: l}
		pc.leases[e.ip] = e
		pc.byLB[l.LBID] = append(pc.byLB[l.LBID], e)
	}
	resp, err = s.st.C.Get(ctx, store.Prefix("lbs"), clientv3.WithPrefix())
	if err != nil {
		return fmt.Errorf("list lb specs: %w", err)
	}
	for _, kv := range resp.Kvs {
		node, id, ok := strings.Cut(strings.TrimPrefix(string(kv.Key), store.Prefix("lbs")), "/")
		if !ok {
			continue
		}
		e := specEntry{node: node, key: string(kv.Key), rev: kv.ModRevision}
		_ = json.Unmarshal(kv.Value, &e.spec)
		pc.specs[id] = append(pc.specs[id], e)
	}
	scopes, err := s.scopes(ctx)
	if err != nil {
		return err
	}
	type item struct {
		st *state
		lb *lbRecord
	}
	var items []item
	live := map[string]scope{}
	for _, sc := range scopes {
		st, err := s.load(ctx, sc)
		if err != nil {
			return err
		}
		for _, lb := range st.lbs {
			items = append(items, item{st, lb})
			live[lb.ID] = sc
		}
	}
	// The hosts, only when there is a load balancer to place: a pass runs
	// every second, and most scopes have none.
	if len(items) > 0 {
		nodes, err := s.cfg.Nodes(ctx)
		if err != nil {
			return fmt.Errorf("list nodes: %w", err)
		}
		for _, n := range nodes {
			if n != "" && !pc.alive[n] {
				pc.alive[n] = true
				pc.nodes = append(pc.nodes, n)
			}
		}
		sort.Strings(pc.nodes)
		for _, it := range items {
			if p := it.lb.Placement; p != nil && pc.alive[p.Node] {
				pc.counts[p.Node]++
			}
		}
	}
	withLBs := map[string]bool{}
	for _, sc := range live {
		withLBs[sc.account+"/"+sc.region] = true
	}
	s.lbScopes.Store(&withLBs)
	sort.Slice(items, func(i, j int) bool {
		a, b := items[i].lb, items[j].lb
		if !a.Created.Equal(b.Created) {
			return a.Created.Before(b.Created)
		}
		return a.ID < b.ID
	})
	var errs []error
	for _, it := range items {
		err := s.placeOne(ctx, pc, it.st, it.lb)
		if errors.Is(err, errPlacementMoved) {
			// Another reconciler placed it meanwhile: its write wakes
			// the next pass, which starts from that placement.
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("load balancer %s: %w", it.lb.Name, err))
		}
	}
	// Collect what deleted load balancers leave.
	for ip, l := range pc.leases {
		sc, ok := live[l.lease.LBID]
		if ok && sc == (scope{account: l.lease.Account, region: l.lease.Region}) {
			continue
		}
		if err := s.releaseLB(ctx, pc, l); err != nil {
			errs = append(errs, fmt.Errorf("release %s: %w", ip, err))
		}
	}
	for id, es := range pc.specs {
		if _, ok := live[id]; ok {
			continue
		}
		for _, e := range es {
			if err := s.deleteIfRev(ctx, e.key, e.rev); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// releaseLB frees what a deleted load balancer held: its interfaces, its
// specs, then its address lease.
func (s *Service) releaseLB(ctx context.Context, pc *placeCtx, l leaseEntry) error {
	for _, sn := range l.lease.Subnets {
		if err := s.cfg.ENIs.ReleaseENI(ctx, l.lease.Account, l.lease.Region, eniAttachment(l.lease.LBID, sn)); err != nil {
			return err
		}
	}
	for _, e := range pc.specs[l.lease.LBID] {
		if err := s.deleteIfRev(ctx, e.key, e.rev); err != nil {
			return err
		}
	}
	delete(pc.specs, l.lease.LBID)
	if err := s.deleteIfRev(ctx, addrKey(l.ip), l.rev); err != nil {
		return err
	}
	s.log.Info("released load balancer", "account", l.lease.Account, "region", l.lease.Region, "lb", l.lease.LBID, "address", l.ip)
	return nil
}

func (s *Service) deleteIfRev(ctx context.Context, key string, rev int64) error {
	if _, err := s.st.C.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).
		Then(clientv3.OpDelete(key)).Commit(); err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return nil
}

// errPlacementMoved reports that another writer changed a placement
// meanwhile; the next pass starts from its version.
var errPlacementMoved = errors.New("placement changed concurrently")

// placeOne brings one load balancer to running: node, address, ENIs, spec.
func (s *Service) placeOne(ctx context.Context, pc *placeCtx, st *state, lb *lbRecord) error {
	sc := st.sc
	cur := lb.Placement
	p := &lbPlacement{}
	if cur != nil {
		c := *cur
		c.ENIs = slices.Clone(cur.ENIs)
		p = &c
	}
	if p.Node == "" || !pc.alive[p.Node] {
		if len(pc.nodes) == 0 {
			return nil // stays provisioning until a node registers
		}
		best := pc.nodes[0]
		for _, n := range pc.nodes[1:] {
			if pc.counts[n] < pc.counts[best] {
				best = n
			}
		}
		p.Node = best
		pc.counts[best]++
	}
	// Surplus leases of this load balancer (a lost race) go.
	for _, l := range pc.byLB[lb.ID] {
		if p.PublicAddress != "" && l.ip != p.PublicAddress {
			if err := s.deleteIfRev(ctx, addrKey(l.ip), l.rev); err != nil {
				return err
			}
			delete(pc.leases, l.ip)
		}
	}
	if p.PublicAddress == "" {
		ip, err := s.leaseAddress(ctx, pc, sc, lb)
		if err != nil {
			return err
		}
		p.PublicAddress = ip
	}
	if !reflect.DeepEqual(p, cur) {
		if err := s.savePlacement(ctx, sc, lb.ID, cur, p); err != nil {
			return err
		}
		cur = p
	}
	// Interfaces: attached for p.Node (again when the node moved).
	if p.ENINode != "" && p.ENINode != p.Node {
		for _, sn := range lb.Subnets {
			if err := s.cfg.ENIs.ReleaseENI(ctx, sc.account, sc.region, eniAttachment(lb.ID, sn.SubnetID)); err != nil {
				return err
			}
		}
	}
	next := *p
	next.ENIs = nil
	for _, sn := range lb.Subnets {
		e, err := s.cfg.ENIs.AttachENI(ctx, sc.account, sc.region, eniAttachment(lb.ID, sn.SubnetID), p.Node,
			[]string{sn.SubnetID}, lb.SecurityGroups, false)
		if err != nil {
			return fmt.Errorf("attach eni in %s: %w", sn.SubnetID, err)
		}
		if d, ok := s.cfg.ENIs.(ENIDescriber); ok && !slices.ContainsFunc(p.ENIs, func(x agentapi.LoadBalancerENI) bool { return x.ID == e.ID }) {
			desc := "ELB " + typeSegment(lb.Type) + "/" + lb.Name + "/" + lb.ID
			if err := d.SetENIDescription(ctx, sc.account, sc.region, eniAttachment(lb.ID, sn.SubnetID), desc); err != nil {
				return fmt.Errorf("describe eni in %s: %w", sn.SubnetID, err)
			}
		}
		next.ENIs = append(next.ENIs, agentapi.LoadBalancerENI{ID: e.ID, SubnetID: e.SubnetID, SubnetCIDR: e.SubnetCIDR,
			Gateway: e.Gateway, PrivateIP: e.PrivateIP})
	}
	next.ENINode = p.Node
	if !reflect.DeepEqual(&next, cur) {
		if err := s.savePlacement(ctx, sc, lb.ID, cur, &next); err != nil {
			return err
		}
	}
	lb.Placement = &next
	return s.writeSpec(ctx, pc, st, lb)
}

// savePlacement writes want into the load balancer's record if its
// placement is still expect.
func (s *Service) savePlacement(ctx context.Context, sc scope, lbID string, expect, want *lbPlacement) error {
	return s.change(ctx, sc, "place load balancer", func(st *state, t *txn) error {
		lb := st.lbs[lbID]
		if lb == nil {
			return nil // deleted meanwhile: collected by the next pass
		}
		if !reflect.DeepEqual(lb.Placement, expect) {
			return errPlacementMoved
		}
		c := *lb
		c.Placement = want
		t.put(sc.lbKey(lbID), &c)
		return nil
	})
}

// leaseAddress returns the load balancer's address lease, making one (the
// lowest free address of the pool) if it has none.
func (s *Service) leaseAddress(ctx context.Context, pc *placeCtx, sc scope, lb *lbRecord) (string, error) {
	for _, l := range pc.byLB[lb.ID] {
		if l.lease.Account == sc.account && l.lease.Region == sc.region {
			return l.ip, nil
		}
	}
	pool := s.cfg.PublicPool
	lease := addrLease{Account: sc.account, Region: sc.region, LBID: lb.ID}
	for _, sn := range lb.Subnets {
		lease.Subnets = append(lease.Subnets, sn.SubnetID)
	}
	b, _ := json.Marshal(lease)
	// Skip the network address and the first one.
	a := pool.Addr().Next().Next()
	for tries := 0; pool.Contains(a) && tries < 1000; a = a.Next() {
		ip := a.String()
		if _, taken := pc.leases[ip]; taken {
			continue
		}
		tries++
		resp, err := s.st.C.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(addrKey(ip)), "=", 0)).
			Then(store.OpPutBytes(addrKey(ip), b)).Commit()
		if err != nil {
			return "", fmt.Errorf("lease address: %w", err)
		}
		e := leaseEntry{ip: ip, lease: lease}
		if resp.Succeeded {
			e.rev = resp.Header.Revision
			pc.leases[ip] = e
			pc.byLB[lb.ID] = append(pc.byLB[lb.ID], e)
			return ip, nil
		}
		pc.leases[ip] = leaseEntry{ip: ip} // taken by someone else
	}
	return "", fmt.Errorf("lease address: the pool %s has no free address", pool)
}

// writeSpec writes the load balancer's spec on its node if it changed and
// removes copies on other nodes.
func (s *Service) writeSpec(ctx context.Context, pc *placeCtx, st *state, lb *lbRecord) error {
	spec, err := s.buildSpec(ctx, st, lb)
	if err != nil {
		return err
	}
	p := lb.Placement
	key := SpecKey(p.Node, lb.ID)
	resp, err := s.st.C.Get(ctx, key)
	if err != nil {
		return fmt.Errorf("read spec: %w", err)
	}
	var rev int64
	if len(resp.Kvs) > 0 {
		rev = resp.Kvs[0].ModRevision
		var old agentapi.LoadBalancerSpec
		if json.Unmarshal(resp.Kvs[0].Value, &old) == nil {
			spec.Revision = old.Revision
			if sameSpec(&old, &spec) {
				return s.dropOtherSpecs(ctx, pc, lb.ID, p.Node)
			}
		}
	}
	// Every input was read before this revision.
	spec.Revision = resp.Header.Revision
	b, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	if _, err := s.st.C.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).
		Then(store.OpPutBytes(key, b)).Commit(); err != nil {
		return fmt.Errorf("write spec: %w", err)
	}
	return s.dropOtherSpecs(ctx, pc, lb.ID, p.Node)
}

func (s *Service) dropOtherSpecs(ctx context.Context, pc *placeCtx, lbID, node string) error {
	for _, e := range pc.specs[lbID] {
		if e.node != node {
			if err := s.deleteIfRev(ctx, e.key, e.rev); err != nil {
				return err
			}
		}
	}
	return nil
}

// instanceAddresses gives the targets of instance target groups the
// addresses of their instances; a target whose instance is gone is left
// out (the data plane cannot reach it; it stays "initial").
func (s *Service) instanceAddresses(ctx context.Context, sc scope, c LoadBalancerConfig, p *lbproxy.LoadBalancer) {
	if s.cfg.Instances == nil {
		return
	}
	for i := range p.TargetGroups {
		tg := &p.TargetGroups[i]
		if cfg, ok := c.TargetGroups[tg.ARN]; !ok || cfg.TargetType != "instance" {
			continue
		}
		kept := tg.Targets[:0]
		for _, t := range tg.Targets {
			if addr, err := s.cfg.Instances.InstanceAddress(ctx, sc.account, sc.region, t.ID); err == nil {
				t.Address = addr
				kept = append(kept, t)
			}
		}
		tg.Targets = kept
	}
}

func sameSpec(a, b *agentapi.LoadBalancerSpec) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// buildSpec computes what the node's agent runs for lb (Revision unset).
func (s *Service) buildSpec(ctx context.Context, st *state, lb *lbRecord) (agentapi.LoadBalancerSpec, error) {
	sc := st.sc
	c, err := s.lbConfig(ctx, st, lb)
	if err != nil {
		return agentapi.LoadBalancerSpec{}, err
	}
	p := lb.Placement
	spec := agentapi.LoadBalancerSpec{ARN: c.ARN, Account: sc.account, Region: sc.region, VpcID: lb.VpcID,
		DNSName: c.DNSName, PublicAddress: p.PublicAddress, ENIs: p.ENIs, Proxy: proxyConfig(c)}
	s.instanceAddresses(ctx, sc, c, &spec.Proxy)
	switch {
	case len(lb.SecurityGroups) == 0:
		// An NLB without security groups admits everyone.
		spec.Ingress = []agentapi.FirewallRule{{Protocol: "-1", CIDRs: []string{"0.0.0.0/0"}}}
	case s.cfg.Firewall != nil:
		if spec.Ingress, err = s.cfg.Firewall.GroupIngress(ctx, sc.account, sc.region, lb.SecurityGroups); err != nil {
			return spec, fmt.Errorf("security group ingress: %w", err)
		}
	}
	return spec, nil
}

// proxyConfig converts a load balancer's configuration into the proxy
// engine's. Draining targets are left out: the engine drains what leaves.
func proxyConfig(c LoadBalancerConfig) lbproxy.LoadBalancer {
	out := lbproxy.LoadBalancer{ARN: c.ARN, Type: c.Type, IdleTimeout: attrSeconds(c.Attributes, "idle_timeout.timeout_seconds", int(DefaultIdleTimeout/time.Second)),
		Listeners: []lbproxy.Listener{}, TargetGroups: []lbproxy.TargetGroup{}}
	for _, l := range c.Listeners {
		pl := lbproxy.Listener{ARN: l.ARN, Protocol: l.Protocol, Port: l.Port}
		for _, r := range l.Rules {
			acts := proxyActions(r.Action)
			if r.Priority == 0 && len(r.Conditions) == 0 {
				pl.DefaultActions = acts
				continue
			}
			pr := lbproxy.Rule{ARN: r.ARN, Priority: r.Priority, Actions: acts, Conditions: []lbproxy.Condition{}}
			for _, cond := range r.Conditions {
				pc := lbproxy.Condition{Field: cond.Field, HTTPHeaderName: cond.HeaderName}
				switch cond.Field {
				case lbproxy.FieldSourceIP:
					pc.SourceIP = cond.Values
				case lbproxy.FieldQueryString:
					for _, q := range cond.Query {
						pc.QueryString = append(pc.QueryString, lbproxy.KeyValue{Key: q.Key, Value: q.Value})
					}
				default:
					pc.Values = cond.Values
				}
				pr.Conditions = append(pr.Conditions, pc)
			}
			pl.Rules = append(pl.Rules, pr)
		}
		out.Listeners = append(out.Listeners, pl)
	}
	arns := make([]string, 0, len(c.TargetGroups))
	for arn := range c.TargetGroups {
		arns = append(arns, arn)
	}
	sort.Strings(arns)
	for _, arn := range arns {
		tg := c.TargetGroups[arn]
		hc := tg.HealthCheck
		ptg := lbproxy.TargetGroup{ARN: tg.ARN, Protocol: tg.Protocol, Port: tg.Port, Targets: []lbproxy.Target{},
			HealthCheck: lbproxy.HealthCheck{Enabled: hc.Enabled, Protocol: hc.Protocol, Port: hc.Port, Path: hc.Path,
				Interval: hc.Interval, Timeout: hc.Timeout, HealthyThreshold: hc.Healthy, UnhealthyThreshold: hc.Unhealthy,
				Matcher: hc.Matcher},
			DeregistrationDelay: attrSeconds(tg.Attributes, "deregistration_delay.timeout_seconds", 300),
			SlowStart:           attrSeconds(tg.Attributes, "slow_start.duration_seconds", 0),
			ProxyProtocolV2:     tg.Attributes["proxy_protocol_v2.enabled"] == "true",
		}
		if c.Type == typeApplication {
			ptg.Algorithm = tg.Attributes["load_balancing.algorithm.type"]
		}
		for _, t := range tg.Targets {
			if t.State == StateDraining || !t.DrainUntil.IsZero() {
				continue
			}
			ptg.Targets = append(ptg.Targets, lbproxy.Target{ID: t.ID, Port: t.Port})
		}
		out.TargetGroups = append(out.TargetGroups, ptg)
	}
	return out
}

func proxyActions(a ActionConfig) []lbproxy.Action {
	pa := lbproxy.Action{Type: a.Type}
	switch a.Type {
	case lbproxy.ActionForward:
		pa.Forward = &lbproxy.ForwardConfig{}
		for _, w := range a.Forward {
			pa.Forward.TargetGroups = append(pa.Forward.TargetGroups, lbproxy.WeightedTargetGroup{ARN: w.ARN, Weight: w.Weight})
		}
	case lbproxy.ActionFixedResponse:
		pa.FixedResponse = &lbproxy.FixedResponse{StatusCode: a.FixedStatusCode, ContentType: a.FixedContentType, MessageBody: a.FixedBody}
	case lbproxy.ActionRedirect:
		pa.Redirect = &lbproxy.Redirect{Protocol: a.RedirectProtocol, Host: a.RedirectHost, Port: a.RedirectPort,
			Path: a.RedirectPath, Query: a.RedirectQuery, StatusCode: a.RedirectStatusCode}
	}
	return []lbproxy.Action{pa}
}

func attrSeconds(attrs map[string]string, name string, def int) time.Duration {
	n, err := strconv.Atoi(attrs[name])
	if err != nil {
		n = def
	}
	return time.Duration(n) * time.Second
}

// ReportTargetHealth applies an agent's health report of the targets of a
// load balancer placed on its node: for every target of that load
// balancer's groups, SetTargetHealth. Groups the load balancer does not
// forward to are ignored, as are draining reports (deregistration is the
// control plane's to decide); a deregistered target the report no longer
// lists has drained (markDrained). A load balancer not placed on r.NodeID is an
// error.
func (s *Service) ReportTargetHealth(ctx context.Context, r agentapi.TargetHealthReport) error {
	id := r.LoadBalancerARN[strings.LastIndex(r.LoadBalancerARN, "/")+1:]
	var spec agentapi.LoadBalancerSpec
	if _, err := s.st.Get(ctx, SpecKey(r.NodeID, id), &spec); err != nil || spec.ARN != r.LoadBalancerARN {
		return fmt.Errorf("load balancer %s is not placed on node %s", r.LoadBalancerARN, r.NodeID)
	}
	groups := map[string]bool{}
	for _, tg := range spec.Proxy.TargetGroups {
		groups[tg.ARN] = true
	}
	var errs []error
	for arn, ts := range r.TargetGroups {
		if !groups[arn] {
			continue
		}
		present := make(map[string]bool, len(ts))
		for _, t := range ts {
			present[targetID(t.ID, t.Port)] = true
		}
		if err := s.markDrained(ctx, arn, id, present); err != nil {
			errs = append(errs, err)
		}
		for _, t := range ts {
			if t.State == lbproxy.StateDraining || !oneOf(t.State, healthStates...) {
				continue
			}
			if err := s.SetTargetHealth(ctx, arn, t.ID, t.Port, t.State, t.Reason, t.Description); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}
