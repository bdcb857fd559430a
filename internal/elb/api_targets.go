package elb

import (
	"context"
	"net/netip"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/berthdev/berth/internal/protocol"
)

// RegisterTargets, DeregisterTargets, DescribeTargetHealth, and the health
// a target shows, derived at read time from its record.

// Target is a target of a target group: an IP address (or instance id) and
// a port.
type Target struct {
	ID   string
	Port int
}

// Target health states and reasons (the elbv2 model's enums).
const (
	StateInitial   = "initial"
	StateHealthy   = "healthy"
	StateUnhealthy = "unhealthy"
	StateUnused    = "unused"
	StateDraining  = "draining"

	ReasonRegistrationInProgress   = "Elb.RegistrationInProgress"
	ReasonInitialHealthChecking    = "Elb.InitialHealthChecking"
	ReasonResponseCodeMismatch     = "Target.ResponseCodeMismatch"
	ReasonTimeout                  = "Target.Timeout"
	ReasonFailedHealthChecks       = "Target.FailedHealthChecks"
	ReasonNotRegistered            = "Target.NotRegistered"
	ReasonNotInUse                 = "Target.NotInUse"
	ReasonDeregistrationInProgress = "Target.DeregistrationInProgress"
	ReasonHealthCheckDisabled      = "Target.HealthCheckDisabled"
)

var healthStates = []string{StateInitial, StateHealthy, StateUnhealthy, StateUnused, StateDraining, "unhealthy.draining", "unavailable"}

// maxTargetsPerCall bounds one RegisterTargets or DeregisterTargets call
// (a berth limit: one call is one etcd transaction, which etcd bounds).
const maxTargetsPerCall = 50

// parseTargets reads Targets.member.N.Id/Port; a missing port is the group's.
func parseTargets(p url.Values, defPort int) ([]Target, error) {
	els, err := protocol.QueryMemberStructs(p, "Targets")
	if err != nil {
		return nil, err
	}
	if len(els) == 0 {
		return nil, errMissing("Targets")
	}
	if len(els) > maxTargetsPerCall {
		return nil, errValidation("At most %d targets can be specified in one call", maxTargetsPerCall)
	}
	out := make([]Target, 0, len(els))
	for _, el := range els {
		t := Target{ID: el.Get("Id"), Port: defPort}
		if t.ID == "" {
			return nil, errValidation("A target ID must be specified")
		}
		if n, ok, err := intParam(el, "Port", 1, 65535, "Port must be between 1 and 65535"); err != nil {
			return nil, err
		} else if ok {
			t.Port = n
		}
		out = append(out, t)
	}
	return out, nil
}

// checkTarget checks that t can be a target of tg: an address in its VPC,
// or for an instance group one of the account's container instances.
func (s *Service) checkTarget(ctx context.Context, sc scope, tg *tgRecord, t Target) error {
	if t.Port < 1 || t.Port > 65535 {
		return errValidation("Port must be between 1 and 65535")
	}
	if tg.TargetType == "instance" {
		if s.cfg.Instances == nil {
			return errInvalidTarget("The following targets are not valid instances: '%s'", t.ID)
		}
		if _, err := s.cfg.Instances.InstanceAddress(ctx, sc.account, sc.region, t.ID); err != nil {
			return errInvalidTarget("The following targets are not valid instances: '%s'", t.ID)
		}
		return nil
	}
	if tg.TargetType != "ip" {
		return errInvalidTarget("The following targets are not valid instances: '%s'", t.ID)
	}
	a, err := netip.ParseAddr(t.ID)
	if err != nil || !a.Is4() {
		return errInvalidTarget("The IP address '%s' is not a valid IPv4 address", t.ID)
	}
	if pfx, err := netip.ParsePrefix(tg.VpcCIDR); err == nil && !pfx.Contains(a) {
		return errInvalidTarget("The IP address '%s' is not within the CIDR block of VPC '%s'", t.ID, tg.VpcID)
	}
	return nil
}

// register registers targets in the group arn of scope sc: new ones are
// added, draining ones come back, registered ones are left as they are.
func (s *Service) register(ctx context.Context, sc scope, arn string, p url.Values, targets []Target) error {
	return s.changeOpt(ctx, sc, "register targets", false, func(st *state, t *txn) error {
		tg, err := st.tgByARN(arn)
		if err != nil {
			return err
		}
		if targets == nil {
			if targets, err = parseTargets(p, tg.Port); err != nil {
				return err
			}
		}
		if len(targets) > maxTargetsPerCall {
			return errValidation("At most %d targets can be specified in one call", maxTargetsPerCall)
		}
		for _, x := range targets {
			if err := s.checkTarget(ctx, sc, tg, x); err != nil {
				return err
			}
		}
		have, err := s.targets(ctx, sc, tg.ID)
		if err != nil {
			return err
		}
		byKey := map[string]versionedTarget{}
		for _, v := range have {
			byKey[targetID(v.t.ID, v.t.Port)] = v
		}
		n := len(have)
		now := s.cfg.Now().UTC()
		for _, x := range targets {
			k := targetID(x.ID, x.Port)
			old, exists := byKey[k]
			if exists && old.t.Deregistered == nil {
				continue
			}
			if !exists {
				n++
			}
			t.ifRev(sc.targetKey(tg.ID, x.ID, x.Port), old.rev)
			t.put(sc.targetKey(tg.ID, x.ID, x.Port), &targetRecord{ID: x.ID, Port: x.Port, Registered: now})
			byKey[k] = versionedTarget{t: &targetRecord{ID: x.ID, Port: x.Port}, rev: -1}
		}
		if n > maxTargets {
			return errTooManyTargets()
		}
		return nil
	})
}

func targetID(id string, port int) string { return id + ":" + strconv.Itoa(port) }

// deregister marks targets of the group arn as draining. Targets that are
// not registered are an InvalidTarget error, as in AWS.
func (s *Service) deregister(ctx context.Context, sc scope, arn string, p url.Values, targets []Target) error {
	return s.changeOpt(ctx, sc, "deregister targets", false, func(st *state, t *txn) error {
		tg, err := st.tgByARN(arn)
		if err != nil {
			return err
		}
		if targets == nil {
			if targets, err = parseTargets(p, tg.Port); err != nil {
				return err
			}
		}
		if len(targets) > maxTargetsPerCall {
			return errValidation("At most %d targets can be specified in one call", maxTargetsPerCall)
		}
		have, err := s.targets(ctx, sc, tg.ID)
		if err != nil {
			return err
		}
		byKey := map[string]versionedTarget{}
		for _, v := range have {
			byKey[targetID(v.t.ID, v.t.Port)] = v
		}
		now := s.cfg.Now().UTC()
		done := map[string]bool{}
		for _, x := range targets {
			k := targetID(x.ID, x.Port)
			v, ok := byKey[k]
			if !ok {
				return errInvalidTarget("The following targets are not registered in target group '%s': 'Id: %s, Port: %d'", arn, x.ID, x.Port)
			}
			if v.t.Deregistered != nil || done[k] {
				continue
			}
			done[k] = true
			v.t.Deregistered = &now
			t.ifRev(sc.targetKey(tg.ID, x.ID, x.Port), v.rev)
			t.put(sc.targetKey(tg.ID, x.ID, x.Port), v.t)
		}
		return nil
	})
}

func (s *Service) registerTargets(ctx context.Context, sc scope, p url.Values) (any, error) {
	return nil, s.register(ctx, sc, p.Get("TargetGroupArn"), p, nil)
}

func (s *Service) deregisterTargets(ctx context.Context, sc scope, p url.Values) (any, error) {
	return nil, s.deregister(ctx, sc, p.Get("TargetGroupArn"), p, nil)
}

// deregistrationDelay is the group's deregistration_delay.timeout_seconds.
func deregistrationDelay(tg *tgRecord) time.Duration {
	n, err := strconv.Atoi(tg.Attributes["deregistration_delay.timeout_seconds"])
	if err != nil {
		n = 300
	}
	return time.Duration(n) * time.Second
}

// health is what DescribeTargetHealth shows for target r of group tg; gone
// is true once a deregistered target has drained.
func (s *Service) health(st *state, tg *tgRecord, r *targetRecord) (state, reason, desc string, gone bool) {
	if r.Deregistered != nil {
		if !s.cfg.Now().Before(r.Deregistered.Add(deregistrationDelay(tg))) || drainedEverywhere(st.tgLoadBalancers(tg.ID), r.DrainedBy) {
			return "", "", "", true
		}
		return StateDraining, ReasonDeregistrationInProgress, "Target deregistration is in progress", false
	}
	if len(st.tgLoadBalancers(tg.ID)) == 0 {
		return StateUnused, ReasonNotInUse, "Target group is not configured to receive traffic from the load balancer", false
	}
	if !tg.HealthCheck.Enabled {
		return StateUnavailable, ReasonHealthCheckDisabled, "Health checks are disabled", false
	}
	if r.State != "" {
		return r.State, r.Reason, r.Description, false
	}
	return StateInitial, ReasonRegistrationInProgress, "Target registration is in progress", false
}

// drainedEverywhere reports whether every load balancer of lbs has drained
// the target (a group no load balancer uses has nothing to drain).
func drainedEverywhere(lbs, drainedBy []string) bool {
	for _, id := range lbs {
		if !slices.Contains(drainedBy, id) {
			return false
		}
	}
	return true
}

// StateUnavailable is the state of a target whose group has health checks
// disabled.
const StateUnavailable = "unavailable"

func (s *Service) describeTargetHealth(ctx context.Context, sc scope, p url.Values) (any, error) {
	st, err := s.load(ctx, sc)
	if err != nil {
		return nil, err
	}
	tg, err := st.tgByARN(p.Get("TargetGroupArn"))
	if err != nil {
		return nil, err
	}
	var want []Target
	if els, err := protocol.QueryMemberStructs(p, "Targets"); err != nil {
		return nil, err
	} else if len(els) > 0 {
		if want, err = parseTargets(p, tg.Port); err != nil {
			return nil, err
		}
	}
	have, err := s.targets(ctx, sc, tg.ID)
	if err != nil {
		return nil, err
	}
	out := &targetHealthResult{TargetHealthDescriptions: list[thdXML]{}}
	add := func(id string, port int, state, reason, desc string) {
		hp := tg.HealthCheck.Port
		if hp == "traffic-port" {
			hp = strconv.Itoa(port)
		}
		h := thdXML{Target: targetXML{ID: id, Port: port}, HealthCheckPort: hp, TargetHealth: targetHealthXML{State: state}}
		if reason != "" {
			h.TargetHealth.Reason, h.TargetHealth.Description = strp(reason), strp(desc)
		}
		out.TargetHealthDescriptions = append(out.TargetHealthDescriptions, h)
	}
	byKey := map[string]*targetRecord{}
	for _, v := range have {
		byKey[targetID(v.t.ID, v.t.Port)] = v.t
	}
	if want == nil {
		sort.Slice(have, func(i, j int) bool { return have[i].t.Registered.Before(have[j].t.Registered) })
		for _, v := range have {
			if state, reason, desc, gone := s.health(st, tg, v.t); !gone {
				add(v.t.ID, v.t.Port, state, reason, desc)
			}
		}
		return out, nil
	}
	for _, w := range want {
		r := byKey[targetID(w.ID, w.Port)]
		if r != nil {
			if state, reason, desc, gone := s.health(st, tg, r); !gone {
				add(w.ID, w.Port, state, reason, desc)
				continue
			}
		}
		add(w.ID, w.Port, StateUnused, ReasonNotRegistered, "Target is not registered to the target group")
	}
	return out, nil
}
