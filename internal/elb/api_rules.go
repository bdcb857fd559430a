package elb

import (
	"context"
	"net/url"
	"sort"
	"strconv"

	"github.com/berthdev/berth/internal/protocol"
)

// CreateRule, DescribeRules, ModifyRule, DeleteRule, SetRulePriorities.

const maxRulesPerListener = 100

func parsePriority(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if s == "" {
		return 0, errMissing("Priority")
	}
	if err != nil || n < 1 || n > maxPriority {
		return 0, errValidation("Priority '%s' must be between 1 and %d", s, maxPriority)
	}
	return n, nil
}

func (st *state) priorityTaken(listenerID string, prio int, except string) bool {
	for _, r := range st.rules {
		if r.ListenerID == listenerID && r.Priority == prio && r.ID != except {
			return true
		}
	}
	return false
}

func (s *Service) createRule(ctx context.Context, sc scope, p url.Values) (any, error) {
	prio, err := parsePriority(p.Get("Priority"))
	if err != nil {
		return nil, err
	}
	conds, err := parseConditions(p)
	if err != nil {
		return nil, err
	}
	if len(conds) == 0 {
		return nil, errMissing("Conditions")
	}
	actions, err := parseActions(sc, p, "Actions")
	if err != nil {
		return nil, err
	}
	tags, err := parseTags(p, "Tags")
	if err != nil {
		return nil, err
	}
	var out *rulesResult
	err = s.change(ctx, sc, "create rule", func(st *state, t *txn) error {
		l, err := st.listenerByARN(p.Get("ListenerArn"))
		if err != nil {
			return err
		}
		lb := st.lbs[l.LBID]
		if lb.Type == typeNetwork {
			return errValidation("Rules are not supported for listeners of Network Load Balancers")
		}
		if st.priorityTaken(l.ID, prio, "") {
			return errPriorityInUse(prio)
		}
		n := 0
		for _, r := range st.rules {
			if r.ListenerID == l.ID {
				n++
			}
		}
		if n >= maxRulesPerListener {
			return errTooManyRules()
		}
		if err := checkActions(st, lb, l.Protocol, actions); err != nil {
			return err
		}
		r := &ruleRecord{ID: newID(), ListenerID: l.ID, Priority: prio, Conditions: conds, Actions: actions, Tags: tags}
		t.put(sc.ruleKey(r), r)
		st.rules[r.ID] = r
		out = &rulesResult{Rules: list[ruleXML]{st.ruleXML(r)}}
		return nil
	})
	return out, err
}

// ruleByARN finds a rule; def is the listener when arn names its default rule.
func (st *state) ruleByARN(arn string) (r *ruleRecord, def *listenerRecord, err error) {
	if arn == "" {
		return nil, nil, errMissing("RuleArn")
	}
	id, err := st.sc.arnID(arn, arnRule)
	if err != nil {
		return nil, nil, err
	}
	if r = st.rules[id]; r != nil {
		if l := st.listeners[r.ListenerID]; l != nil && st.lbs[l.LBID] != nil && st.sc.ruleARN(st.lbs[l.LBID], l, id) == arn {
			return r, nil, nil
		}
		return nil, nil, errRuleNotFound()
	}
	for _, l := range st.listeners {
		if l.DefaultRuleID == id && id != "" && st.lbs[l.LBID] != nil && st.sc.ruleARN(st.lbs[l.LBID], l, id) == arn {
			return nil, l, nil
		}
	}
	return nil, nil, errRuleNotFound()
}

func (s *Service) describeRules(ctx context.Context, sc scope, p url.Values) (any, error) {
	arns, err := protocol.QueryMemberList(p, "RuleArns")
	if err != nil {
		return nil, err
	}
	lARN := p.Get("ListenerArn")
	if len(arns) > 0 && lARN != "" || len(arns) == 0 && lARN == "" {
		return nil, errValidation("You must specify either listener ARN or rule ARNs, but not both")
	}
	offset, size, err := paging(p)
	if err != nil {
		return nil, err
	}
	st, err := s.load(ctx, sc)
	if err != nil {
		return nil, err
	}
	var rules []ruleXML
	if lARN != "" {
		l, err := st.listenerByARN(lARN)
		if err != nil {
			return nil, err
		}
		var rs []*ruleRecord
		for _, r := range st.rules {
			if r.ListenerID == l.ID {
				rs = append(rs, r)
			}
		}
		sort.Slice(rs, func(i, j int) bool { return rs[i].Priority < rs[j].Priority })
		for _, r := range rs {
			rules = append(rules, st.ruleXML(r))
		}
		rules = append(rules, st.defaultRuleXML(l))
	} else {
		for _, arn := range dedupe(arns) {
			r, def, err := st.ruleByARN(arn)
			if err != nil {
				return nil, err
			}
			if def != nil {
				rules = append(rules, st.defaultRuleXML(def))
			} else {
				rules = append(rules, st.ruleXML(r))
			}
		}
	}
	pg, next := page(rules, offset, size)
	return &rulesResult{Rules: append(list[ruleXML]{}, pg...), NextMarker: next}, nil
}

func (s *Service) modifyRule(ctx context.Context, sc scope, p url.Values) (any, error) {
	conds, err := parseConditions(p)
	if err != nil {
		return nil, err
	}
	var actions []actionRecord
	if els, err := protocol.QueryMemberStructs(p, "Actions"); err != nil {
		return nil, err
	} else if len(els) > 0 {
		if actions, err = parseActions(sc, p, "Actions"); err != nil {
			return nil, err
		}
	}
	var out *rulesResult
	err = s.change(ctx, sc, "modify rule", func(st *state, t *txn) error {
		r, def, err := st.ruleByARN(p.Get("RuleArn"))
		if err != nil {
			return err
		}
		if def != nil {
			if len(conds) > 0 {
				return errNotPermitted("Conditions cannot be specified for the default rule")
			}
			if actions != nil {
				lb := st.lbs[def.LBID]
				if err := checkActions(st, lb, def.Protocol, actions); err != nil {
					return err
				}
				def.DefaultActions = actions
				t.put(sc.listenerKey(def), def)
			}
			out = &rulesResult{Rules: list[ruleXML]{st.defaultRuleXML(def)}}
			return nil
		}
		l := st.listeners[r.ListenerID]
		if actions != nil {
			if err := checkActions(st, st.lbs[l.LBID], l.Protocol, actions); err != nil {
				return err
			}
			r.Actions = actions
		}
		if len(conds) > 0 {
			r.Conditions = conds
		}
		t.put(sc.ruleKey(r), r)
		out = &rulesResult{Rules: list[ruleXML]{st.ruleXML(r)}}
		return nil
	})
	return out, err
}

func (s *Service) deleteRule(ctx context.Context, sc scope, p url.Values) (any, error) {
	err := s.change(ctx, sc, "delete rule", func(st *state, t *txn) error {
		r, def, err := st.ruleByARN(p.Get("RuleArn"))
		if err != nil {
			return err
		}
		if def != nil {
			return errNotPermitted("Default rule '%s' cannot be deleted", p.Get("RuleArn"))
		}
		t.del(sc.ruleKey(r))
		return nil
	})
	return nil, err
}

func (s *Service) setRulePriorities(ctx context.Context, sc scope, p url.Values) (any, error) {
	els, err := protocol.QueryMemberStructs(p, "RulePriorities")
	if err != nil {
		return nil, err
	}
	if len(els) == 0 {
		return nil, errMissing("RulePriorities")
	}
	var out *rulesResult
	err = s.change(ctx, sc, "set rule priorities", func(st *state, t *txn) error {
		var changed []*ruleRecord
		seen := map[string]bool{}
		for _, el := range els {
			prio, err := parsePriority(el.Get("Priority"))
			if err != nil {
				return err
			}
			r, def, err := st.ruleByARN(el.Get("RuleArn"))
			if err != nil {
				return err
			}
			if def != nil {
				return errNotPermitted("Default rule '%s' cannot have its priority changed", el.Get("RuleArn"))
			}
			if seen[r.ID] {
				return errValidation("Rule '%s' is specified more than once", el.Get("RuleArn"))
			}
			seen[r.ID] = true
			r.Priority = prio
			changed = append(changed, r)
		}
		// Check uniqueness on the final priorities, so that rules may swap.
		for _, r := range changed {
			if st.priorityTaken(r.ListenerID, r.Priority, r.ID) {
				return errPriorityInUse(r.Priority)
			}
		}
		out = &rulesResult{Rules: list[ruleXML]{}}
		for _, r := range changed {
			t.put(sc.ruleKey(r), r)
			out.Rules = append(out.Rules, st.ruleXML(r))
		}
		return nil
	})
	return out, err
}
