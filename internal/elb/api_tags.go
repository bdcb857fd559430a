package elb

import (
	"context"
	"net/url"

	"github.com/berthdev/berth/internal/protocol"
)

// AddTags, RemoveTags, DescribeTags, DescribeAccountLimits.

// tagsOf returns a pointer to the tags of the resource arn and the key and
// record to write back.
func (st *state) tagsOf(arn string) (tags *[]tag, key string, rec any, err error) {
	parts := arnResource(arn)
	switch parts {
	case arnLB.resource:
		lb, err := st.lbByARN(arn)
		if err != nil {
			return nil, "", nil, err
		}
		return &lb.Tags, st.sc.lbKey(lb.ID), lb, nil
	case arnTG.resource:
		tg, err := st.tgByARN(arn)
		if err != nil {
			return nil, "", nil, err
		}
		return &tg.Tags, st.sc.tgKey(tg.ID), tg, nil
	case arnListener.resource:
		l, err := st.listenerByARN(arn)
		if err != nil {
			return nil, "", nil, err
		}
		return &l.Tags, st.sc.listenerKey(l), l, nil
	case arnRule.resource:
		r, def, err := st.ruleByARN(arn)
		if err != nil {
			return nil, "", nil, err
		}
		if def != nil {
			return &def.DefaultTags, st.sc.listenerKey(def), def, nil
		}
		return &r.Tags, st.sc.ruleKey(r), r, nil
	}
	return nil, "", nil, errValidation("'%s' is not a valid resource ARN", arn)
}

// arnResource returns the resource type of an ELB ARN ("loadbalancer", …).
func arnResource(arn string) string {
	colon := 0
	for i := 0; i < len(arn); i++ {
		if arn[i] == ':' {
			colon++
			if colon == 5 {
				rest := arn[i+1:]
				for j := 0; j < len(rest); j++ {
					if rest[j] == '/' {
						return rest[:j]
					}
				}
				return rest
			}
		}
	}
	return ""
}

func resourceARNs(p url.Values) ([]string, error) {
	arns, err := protocol.QueryMemberList(p, "ResourceArns")
	if err != nil {
		return nil, err
	}
	if len(arns) == 0 {
		return nil, errMissing("ResourceArns")
	}
	if len(arns) > maxARNsPerCall {
		return nil, errValidation("At most %d resource ARNs can be specified", maxARNsPerCall)
	}
	return dedupe(arns), nil
}

func (s *Service) addTags(ctx context.Context, sc scope, p url.Values) (any, error) {
	arns, err := resourceARNs(p)
	if err != nil {
		return nil, err
	}
	add, err := parseTags(p, "Tags")
	if err != nil {
		return nil, err
	}
	if len(add) == 0 {
		return nil, errMissing("Tags")
	}
	return nil, s.change(ctx, sc, "add tags", func(st *state, t *txn) error {
		for _, arn := range arns {
			tags, key, rec, err := st.tagsOf(arn)
			if err != nil {
				return err
			}
			merged, err := mergeTags(*tags, add)
			if err != nil {
				return err
			}
			*tags = merged
			t.put(key, rec)
		}
		return nil
	})
}

func (s *Service) removeTags(ctx context.Context, sc scope, p url.Values) (any, error) {
	arns, err := resourceARNs(p)
	if err != nil {
		return nil, err
	}
	keys, err := protocol.QueryMemberList(p, "TagKeys")
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, errMissing("TagKeys")
	}
	drop := map[string]bool{}
	for _, k := range keys {
		drop[k] = true
	}
	return nil, s.change(ctx, sc, "remove tags", func(st *state, t *txn) error {
		for _, arn := range arns {
			tags, key, rec, err := st.tagsOf(arn)
			if err != nil {
				return err
			}
			var kept []tag
			for _, tg := range *tags {
				if !drop[tg.Key] {
					kept = append(kept, tg)
				}
			}
			*tags = kept
			t.put(key, rec)
		}
		return nil
	})
}

func (s *Service) describeTags(ctx context.Context, sc scope, p url.Values) (any, error) {
	arns, err := resourceARNs(p)
	if err != nil {
		return nil, err
	}
	st, err := s.load(ctx, sc)
	if err != nil {
		return nil, err
	}
	out := &tagsResult{TagDescriptions: list[tagDescXML]{}}
	for _, arn := range arns {
		tags, _, _, err := st.tagsOf(arn)
		if err != nil {
			return nil, err
		}
		out.TagDescriptions = append(out.TagDescriptions, tagDescXML{ResourceArn: arn, Tags: tagsXML(*tags)})
	}
	return out, nil
}

func (s *Service) describeAccountLimits(_ context.Context, _ scope, _ url.Values) (any, error) {
	limits := []limitXML{
		{"application-load-balancers", "50"}, {"network-load-balancers", "50"},
		{"target-groups", "3000"}, {"targets-per-application-load-balancer", itoa(maxTargets)},
		{"listeners-per-application-load-balancer", "50"}, {"listeners-per-network-load-balancer", "50"},
		{"rules-per-application-load-balancer", itoa(maxRulesPerListener)},
		{"condition-values-per-alb-rule", itoa(maxRuleValues)},
		{"target-groups-per-action-on-application-load-balancer", itoa(maxWeightedTGs)},
	}
	return &limitsResult{Limits: limits}, nil
}
