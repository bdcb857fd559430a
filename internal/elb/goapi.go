package elb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/berthdev/berth/internal/store"
)

// The Go API: for ECS services (register tasks as targets, read their
// health), for the data plane (the snapshot it builds proxies from, and the
// health it reports), and the reconciler.

// RegisterTargets registers targets in the group tgArn of account/region,
// as the RegisterTargets action does. Errors are *protocol.Error with ELBv2's
// codes (TargetGroupNotFound, InvalidTarget, …) or internal.
func (s *Service) RegisterTargets(ctx context.Context, account, region, tgArn string, targets []Target) error {
	if len(targets) == 0 {
		return nil
	}
	return s.register(ctx, newScope(account, region), tgArn, nil, targets)
}

// DeregisterTargets starts draining targets of the group tgArn; a target
// that is not registered is an InvalidTarget error.
func (s *Service) DeregisterTargets(ctx context.Context, account, region, tgArn string, targets []Target) error {
	if len(targets) == 0 {
		return nil
	}
	return s.deregister(ctx, newScope(account, region), tgArn, nil, targets)
}

// TargetHealthInfo is one target's health as DescribeTargetHealth shows it.
type TargetHealthInfo struct {
	ID     string
	Port   int
	State  string // StateInitial, StateHealthy, …
	Reason string // ReasonRegistrationInProgress, … ("" when healthy)
}

// TargetHealth returns the health of every target of the group tgArn
// (drained targets are left out).
func (s *Service) TargetHealth(ctx context.Context, account, region, tgArn string) ([]TargetHealthInfo, error) {
	sc := newScope(account, region)
	st, err := s.load(ctx, sc)
	if err != nil {
		return nil, err
	}
	tg, err := st.tgByARN(tgArn)
	if err != nil {
		return nil, err
	}
	have, err := s.targets(ctx, sc, tg.ID)
	if err != nil {
		return nil, err
	}
	var out []TargetHealthInfo
	for _, v := range have {
		state, reason, _, gone := s.health(st, tg, v.t)
		if !gone {
			out = append(out, TargetHealthInfo{ID: v.t.ID, Port: v.t.Port, State: state, Reason: reason})
		}
	}
	return out, nil
}

// TargetGroupInfo is what another service needs to know of a target group.
type TargetGroupInfo struct {
	VpcID, Protocol  string
	Port             int
	TargetType       string   // "ip" or "instance"
	LoadBalancerARNs []string // the load balancers that forward to it
}

// TargetGroup describes the target group arn of the account.
func (s *Service) TargetGroup(ctx context.Context, account, region, arn string) (TargetGroupInfo, error) {
	sc := newScope(account, region)
	st, err := s.load(ctx, sc)
	if err != nil {
		return TargetGroupInfo{}, err
	}
	tg, err := st.tgByARN(arn)
	if err != nil {
		return TargetGroupInfo{}, err
	}
	info := TargetGroupInfo{VpcID: tg.VpcID, Protocol: tg.Protocol, Port: tg.Port, TargetType: tg.TargetType}
	for _, id := range st.tgLoadBalancers(tg.ID) {
		info.LoadBalancerARNs = append(info.LoadBalancerARNs, sc.lbARN(st.lbs[id]))
	}
	return info, nil
}

// SetTargetHealth records the health the data plane's checker found for a
// registered target: state is one of the State* constants, reason one of
// the Reason* ones ("" when healthy). A target that is not registered (or
// is draining) is left alone and is not an error: it may have just been
// deregistered. tgArn names the account and region.
func (s *Service) SetTargetHealth(ctx context.Context, tgArn, id string, port int, state, reason, description string) error {
	if !oneOf(state, healthStates...) {
		return fmt.Errorf("set target health: unknown state %q", state)
	}
	sc, tgID, err := parseTGArn(tgArn)
	if err != nil {
		return fmt.Errorf("set target health: %w", err)
	}
	key := sc.targetKey(tgID, id, port)
	for attempt := 0; attempt < maxAttempts; attempt++ {
		resp, err := s.st.C.Get(ctx, key)
		if err != nil {
			return fmt.Errorf("set target health: %w", err)
		}
		if len(resp.Kvs) == 0 {
			return nil
		}
		r := &targetRecord{}
		if err := json.Unmarshal(resp.Kvs[0].Value, r); err != nil {
			return fmt.Errorf("set target health: decode %s: %w", key, err)
		}
		if r.Deregistered != nil || r.State == state && r.Reason == reason && r.Description == description {
			return nil
		}
		r.State, r.Reason, r.Description, r.Checked = state, reason, description, s.cfg.Now().UTC()
		b, _ := json.Marshal(r)
		tx, err := s.st.C.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", resp.Kvs[0].ModRevision)).
			Then(store.OpPutBytes(key, b)).Commit()
		if err != nil {
			return fmt.Errorf("set target health: %w", err)
		}
		if tx.Succeeded {
			return nil
		}
	}
	return errors.New("set target health: too many concurrent changes")
}

// parseTGArn is the scope and id of a target group ARN.
func parseTGArn(arn string) (scope, string, error) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 {
		return scope{}, "", fmt.Errorf("bad target group ARN %q", arn)
	}
	sc := newScope(parts[4], parts[3])
	id, err := sc.arnID(arn, arnTG)
	if err != nil {
		return scope{}, "", fmt.Errorf("bad target group ARN %q", arn)
	}
	return sc, id, nil
}

// markDrained records that load balancer lbID's data plane has finished
// draining the deregistered targets of group tgArn that its report no
// longer lists (present holds those it lists, by targetID). A target that
// every load balancer of its group has drained is gone at once, before its
// deregistration delay: ELBv2 likewise completes a deregistration early
// when the target has no in-flight requests and no active connections.
func (s *Service) markDrained(ctx context.Context, tgArn, lbID string, present map[string]bool) error {
	sc, tgID, err := parseTGArn(tgArn)
	if err != nil {
		return fmt.Errorf("mark drained: %w", err)
	}
	have, err := s.targets(ctx, sc, tgID)
	if err != nil {
		return fmt.Errorf("mark drained: %w", err)
	}
	for _, v := range have {
		r := v.t
		if r.Deregistered == nil || present[targetID(r.ID, r.Port)] || slices.Contains(r.DrainedBy, lbID) {
			continue
		}
		r.DrainedBy = append(r.DrainedBy, lbID)
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		key := sc.targetKey(tgID, r.ID, r.Port)
		// A lost race (the target changed) waits for the next report.
		if _, err := s.st.C.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", v.rev)).
			Then(store.OpPutBytes(key, b)).Commit(); err != nil {
			return fmt.Errorf("mark drained: %w", err)
		}
	}
	return nil
}

// LoadBalancerConfig is one load balancer as the data plane needs it: what
// it builds a proxy from. LoadBalancers returns them for every account.
type LoadBalancerConfig struct {
	Account, Region string
	ARN, Name       string
	Type            string // "application" or "network"
	Scheme          string
	DNSName         string
	State           string // "provisioning" or "active"
	VpcID           string
	Subnets         []SubnetConfig
	SecurityGroups  []string
	// Attributes are the load balancer's attributes, defaults included.
	Attributes map[string]string
	Listeners  []ListenerConfig
	// TargetGroups are the groups its listeners and rules forward to, by ARN.
	TargetGroups map[string]TargetGroupConfig
}

// SubnetConfig is a subnet a load balancer has a node in.
type SubnetConfig struct{ ID, Zone, CIDR string }

// ListenerConfig is a listener with its rules, highest priority first, the
// default rule last (Priority 0, no conditions).
type ListenerConfig struct {
	ARN      string
	Protocol string
	Port     int
	Rules    []RuleConfig
}

// RuleConfig is a rule: all conditions must match; then the action applies.
type RuleConfig struct {
	ARN        string
	Priority   int // 0 for the default rule
	Conditions []ConditionConfig
	Action     ActionConfig
}

// ConditionConfig is a rule condition. Field is path-pattern, host-header,
// http-header (HeaderName), http-request-method, query-string (Query) or
// source-ip; a condition matches when any of its values does.
type ConditionConfig struct {
	Field      string
	HeaderName string
	Values     []string
	Query      []QueryCondition
}

// QueryCondition is a key=value pair of a query-string condition (Key ""
// matches any key).
type QueryCondition struct{ Key, Value string }

// ActionConfig is a rule's action: forward to weighted target groups,
// answer a fixed response, or redirect.
type ActionConfig struct {
	Type               string // forward, fixed-response, redirect
	Forward            []WeightedTargetGroup
	Stickiness         bool
	StickinessDuration time.Duration
	FixedStatusCode    string
	FixedContentType   string
	FixedBody          string
	// Redirect parts, with #{protocol}-style placeholders; StatusCode is
	// HTTP_301 or HTTP_302.
	RedirectProtocol, RedirectHost, RedirectPort, RedirectPath, RedirectQuery, RedirectStatusCode string
}

// WeightedTargetGroup is one target group of a forward action.
type WeightedTargetGroup struct {
	ARN    string
	Weight int
}

// TargetGroupConfig is a target group with its health check, attributes and
// targets.
type TargetGroupConfig struct {
	ARN, Name   string
	Protocol    string
	Port        int
	TargetType  string
	HealthCheck HealthCheckConfig
	// Attributes are the group's attributes as DescribeTargetGroupAttributes
	// shows them (deregistration_delay.timeout_seconds, …).
	Attributes map[string]string
	Targets    []TargetConfig
}

// HealthCheckConfig is how the data plane checks a group's targets.
type HealthCheckConfig struct {
	Enabled            bool
	Protocol           string
	Port               string // "traffic-port" or a port number
	Path               string
	Interval, Timeout  time.Duration
	Healthy, Unhealthy int
	Matcher            string // e.g. "200", "200-299", "200,302"
}

// TargetConfig is a registered target and its health. Draining targets are
// included (State "draining", DrainUntil set) so the proxy can let their
// in-flight requests finish; drained ones are not.
type TargetConfig struct {
	ID         string
	Port       int
	State      string
	Reason     string
	DrainUntil time.Time
}

// LoadBalancers returns every load balancer of every account with its
// listeners, rules, target groups, targets and attributes: the snapshot the
// data plane builds its proxies from. Each scope is read consistently; the
// result is sorted by account, region and name.
func (s *Service) LoadBalancers(ctx context.Context) ([]LoadBalancerConfig, error) {
	scopes, err := s.scopes(ctx)
	if err != nil {
		return nil, err
	}
	var out []LoadBalancerConfig
	for _, sc := range scopes {
		st, err := s.load(ctx, sc)
		if err != nil {
			return nil, err
		}
		var lbs []*lbRecord
		for _, lb := range st.lbs {
			lbs = append(lbs, lb)
		}
		sort.Slice(lbs, func(i, j int) bool { return lbs[i].Name < lbs[j].Name })
		for _, lb := range lbs {
			c, err := s.lbConfig(ctx, st, lb)
			if err != nil {
				return nil, err
			}
			out = append(out, c)
		}
	}
	return out, nil
}

func (s *Service) lbConfig(ctx context.Context, st *state, lb *lbRecord) (LoadBalancerConfig, error) {
	sc := st.sc
	c := LoadBalancerConfig{Account: sc.account, Region: sc.region, ARN: sc.lbARN(lb), Name: lb.Name, Type: lb.Type,
		Scheme: lb.Scheme, DNSName: dnsName(sc, lb), State: s.lbState(lb), VpcID: lb.VpcID,
		SecurityGroups: lb.SecurityGroups, Attributes: lb.attributes(), TargetGroups: map[string]TargetGroupConfig{}}
	for _, sn := range lb.Subnets {
		c.Subnets = append(c.Subnets, SubnetConfig{ID: sn.SubnetID, Zone: sn.Zone, CIDR: sn.CIDR})
	}
	var ls []*listenerRecord
	for _, l := range st.listeners {
		if l.LBID == lb.ID {
			ls = append(ls, l)
		}
	}
	sort.Slice(ls, func(i, j int) bool { return ls[i].Port < ls[j].Port })
	var tgIDs []string
	for _, l := range ls {
		lc := ListenerConfig{ARN: sc.listenerARN(lb, l), Protocol: l.Protocol, Port: l.Port}
		var rs []*ruleRecord
		for _, r := range st.rules {
			if r.ListenerID == l.ID {
				rs = append(rs, r)
			}
		}
		sort.Slice(rs, func(i, j int) bool { return rs[i].Priority < rs[j].Priority })
		for _, r := range rs {
			rc := RuleConfig{ARN: sc.ruleARN(lb, l, r.ID), Priority: r.Priority, Action: st.actionConfig(r.Actions)}
			for _, cond := range r.Conditions {
				cc := ConditionConfig{Field: cond.Field, HeaderName: cond.HeaderName, Values: cond.Values}
				for _, q := range cond.QueryValues {
					cc.Query = append(cc.Query, QueryCondition(q))
				}
				rc.Conditions = append(rc.Conditions, cc)
			}
			lc.Rules = append(lc.Rules, rc)
			tgIDs = append(tgIDs, forwardedTGs(r.Actions)...)
		}
		lc.Rules = append(lc.Rules, RuleConfig{ARN: sc.ruleARN(lb, l, l.DefaultRuleID), Action: st.actionConfig(l.DefaultActions)})
		tgIDs = append(tgIDs, forwardedTGs(l.DefaultActions)...)
		c.Listeners = append(c.Listeners, lc)
	}
	for _, id := range dedupe(tgIDs) {
		tg := st.tgs[id]
		if tg == nil {
			continue
		}
		hc := tg.HealthCheck
		tc := TargetGroupConfig{ARN: sc.tgARN(tg), Name: tg.Name, Protocol: tg.Protocol, Port: tg.Port, TargetType: tg.TargetType,
			Attributes: map[string]string{}, HealthCheck: HealthCheckConfig{Enabled: hc.Enabled, Protocol: hc.Protocol, Port: hc.Port,
				Path: hc.Path, Interval: time.Duration(hc.Interval) * time.Second, Timeout: time.Duration(hc.Timeout) * time.Second,
				Healthy: hc.Healthy, Unhealthy: hc.Unhealthy, Matcher: hc.Matcher}}
		for k, v := range tg.Attributes {
			tc.Attributes[k] = v
		}
		have, err := s.targets(ctx, sc, tg.ID)
		if err != nil {
			return c, err
		}
		for _, v := range have {
			state, reason, _, gone := s.health(st, tg, v.t)
			if gone {
				continue
			}
			t := TargetConfig{ID: v.t.ID, Port: v.t.Port, State: state, Reason: reason}
			if v.t.Deregistered != nil {
				t.DrainUntil = v.t.Deregistered.Add(deregistrationDelay(tg))
			}
			tc.Targets = append(tc.Targets, t)
		}
		c.TargetGroups[tc.ARN] = tc
	}
	return c, nil
}

func (st *state) actionConfig(as []actionRecord) ActionConfig {
	if len(as) == 0 {
		return ActionConfig{}
	}
	a := as[0]
	c := ActionConfig{Type: a.Type, Stickiness: a.Stickiness, StickinessDuration: time.Duration(a.StickinessDuration) * time.Second}
	for _, w := range a.TargetGroups {
		if tg := st.tgs[w.TGID]; tg != nil {
			c.Forward = append(c.Forward, WeightedTargetGroup{ARN: st.sc.tgARN(tg), Weight: w.Weight})
		}
	}
	if f := a.Fixed; f != nil {
		c.FixedStatusCode, c.FixedContentType, c.FixedBody = f.StatusCode, f.ContentType, f.MessageBody
	}
	if r := a.Redirect; r != nil {
		c.RedirectProtocol, c.RedirectHost, c.RedirectPort, c.RedirectPath, c.RedirectQuery, c.RedirectStatusCode =
			r.Protocol, r.Host, r.Port, r.Path, r.Query, r.StatusCode
	}
	return c
}

// scopes lists the scopes that have ELB state.
func (s *Service) scopes(ctx context.Context) ([]scope, error) {
	prefix := scopeIndexPrefix()
	resp, err := s.st.C.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return nil, fmt.Errorf("list elb scopes: %w", err)
	}
	var out []scope
	for _, kv := range resp.Kvs {
		acct, region, ok := strings.Cut(strings.TrimPrefix(string(kv.Key), prefix), "/")
		if ok {
			out = append(out, scope{account: acct, region: region})
		}
	}
	return out, nil
}

// Run deletes drained targets (deregistered longer ago than their group's
// deregistration delay) every Config.ReconcileInterval until ctx ends and,
// with Config.Nodes and Config.ENIs, runs placement (placement.go). It is
// safe to run on several replicas at once. DescribeTargetHealth hides
// drained targets already, so this only keeps etcd tidy.
func (s *Service) Run(ctx context.Context) error {
	if s.cfg.Nodes != nil && s.cfg.ENIs != nil {
		done := make(chan struct{})
		defer func() { <-done }()
		go func() {
			defer close(done)
			s.runPlacement(ctx)
		}()
	}
	tick := time.NewTicker(s.cfg.ReconcileInterval)
	defer tick.Stop()
	for {
		if err := s.Reconcile(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("elb reconcile", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// Reconcile makes one pass of Run.
func (s *Service) Reconcile(ctx context.Context) error {
	scopes, err := s.scopes(ctx)
	if err != nil {
		return err
	}
	for _, sc := range scopes {
		st, err := s.load(ctx, sc)
		if err != nil {
			return err
		}
		for _, tg := range st.tgs {
			have, err := s.targets(ctx, sc, tg.ID)
			if err != nil {
				return err
			}
			for _, v := range have {
				if _, _, _, gone := s.health(st, tg, v.t); !gone {
					continue
				}
				key := sc.targetKey(tg.ID, v.t.ID, v.t.Port)
				if _, err := s.st.C.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", v.rev)).
					Then(clientv3.OpDelete(key)).Commit(); err != nil {
					return fmt.Errorf("delete drained target: %w", err)
				}
			}
		}
	}
	return nil
}
