package elb

import (
	"net/netip"
	"net/url"
	"regexp"
	"strings"

	"github.com/berthdev/berth/internal/protocol"
)

// Listener and rule actions and rule conditions: reading them from a
// request and checking them against the scope.

var (
	fixedStatusRe = regexp.MustCompile(`^[245]\d\d$`)
	methodRe      = regexp.MustCompile(`^[A-Za-z_-]+$`)
	contentTypes  = []string{"text/plain", "text/css", "text/html", "application/javascript", "application/json"}
)

// parseActions reads the action list name (DefaultActions or Actions).
// Target group ARNs are turned into ids of the caller's scope ("" for a
// foreign one); checkActions resolves them.
func parseActions(sc scope, p url.Values, name string) ([]actionRecord, error) {
	els, err := protocol.QueryMemberStructs(p, name)
	if err != nil {
		return nil, err
	}
	if len(els) == 0 {
		return nil, errMissing(name)
	}
	var out []actionRecord
	for i, el := range els {
		a := actionRecord{Type: el.Get("Type"), Order: i + 1}
		if o, ok, err := intParam(el, "Order", 1, maxPriority, "Action order must be between 1 and 50000"); err != nil {
			return nil, err
		} else if ok {
			a.Order = o
		}
		switch a.Type {
		case "forward":
			if err := parseForward(sc, el, &a); err != nil {
				return nil, err
			}
		case "fixed-response":
			c := &fixedResponse{StatusCode: el.Get("FixedResponseConfig.StatusCode"),
				ContentType: el.Get("FixedResponseConfig.ContentType"), MessageBody: el.Get("FixedResponseConfig.MessageBody")}
			switch {
			case !fixedStatusRe.MatchString(c.StatusCode):
				return nil, errValidation("Fixed response status code '%s' must be a 2XX, 4XX or 5XX code", c.StatusCode)
			case c.ContentType != "" && !oneOf(c.ContentType, contentTypes...):
				return nil, errValidation("Fixed response content type '%s' must be one of '%s'", c.ContentType, strings.Join(contentTypes, ", "))
			case len(c.MessageBody) > 1024:
				return nil, errValidation("Fixed response message body cannot be longer than 1024 characters")
			}
			a.Fixed = c
		case "redirect":
			r := &redirect{Protocol: el.Get("RedirectConfig.Protocol"), Port: el.Get("RedirectConfig.Port"),
				Host: el.Get("RedirectConfig.Host"), Path: el.Get("RedirectConfig.Path"),
				Query: el.Get("RedirectConfig.Query"), StatusCode: el.Get("RedirectConfig.StatusCode")}
			if !oneOf(r.StatusCode, "HTTP_301", "HTTP_302") {
				return nil, errValidation("Redirect status code must be 'HTTP_301' or 'HTTP_302'")
			}
			if r.Protocol == "" {
				r.Protocol = "#{protocol}"
			}
			if !oneOf(r.Protocol, "#{protocol}", "HTTP", "HTTPS") {
				return nil, errValidation("Redirect protocol must be 'HTTP', 'HTTPS' or '#{protocol}'")
			}
			if r.Port == "" {
				r.Port = "#{port}"
			}
			if r.Host == "" {
				r.Host = "#{host}"
			}
			if r.Path == "" {
				r.Path = "/#{path}"
			}
			if !strings.HasPrefix(r.Path, "/") {
				return nil, errValidation("Redirect path must start with a '/'")
			}
			if r.Query == "" {
				r.Query = "#{query}"
			}
			a.Redirect = r
		case "":
			return nil, errMissing(name + ".member." + itoa(i+1) + ".Type")
		default:
			return nil, errValidation("Action type '%s' is not supported; berth supports 'forward', 'fixed-response' and 'redirect'", a.Type)
		}
		out = append(out, a)
	}
	if len(out) > 1 {
		return nil, errInvalidAction("A rule or listener can have only one of the actions 'forward', 'fixed-response' and 'redirect'")
	}
	return out, nil
}

func parseForward(sc scope, el url.Values, a *actionRecord) error {
	single := el.Get("TargetGroupArn")
	tuples, err := protocol.QueryMemberStructs(el, "ForwardConfig.TargetGroups")
	if err != nil {
		return err
	}
	if single == "" && len(tuples) == 0 {
		return errValidation("A target group ARN must be specified")
	}
	if single != "" {
		id, err := sc.arnID(single, arnTG)
		if err != nil {
			return err
		}
		if len(tuples) > 0 && (len(tuples) != 1 || tuples[0].Get("TargetGroupArn") != single) {
			return errValidation("You cannot specify both a target group ARN and a ForwardConfig with a different target group")
		}
		a.Single = true
		a.TargetGroups = []weightedTG{{TGID: id, Weight: 1, ARN: single}}
	} else {
		if len(tuples) > maxWeightedTGs {
			return errValidation("A forward action can have at most %d target groups", maxWeightedTGs)
		}
		seen := map[string]bool{}
		for _, t := range tuples {
			id, err := sc.arnID(t.Get("TargetGroupArn"), arnTG)
			if err != nil {
				return err
			}
			w, ok, err := intParam(t, "Weight", 0, 999, "Target group weight must be between 0 and 999")
			if err != nil {
				return err
			}
			if !ok {
				w = 1
			}
			if seen[t.Get("TargetGroupArn")] {
				return errValidation("Target group '%s' is specified more than once in a forward action", t.Get("TargetGroupArn"))
			}
			seen[t.Get("TargetGroupArn")] = true
			a.TargetGroups = append(a.TargetGroups, weightedTG{TGID: id, Weight: w, ARN: t.Get("TargetGroupArn")})
		}
	}
	if en, ok, err := boolParam(el, "ForwardConfig.TargetGroupStickinessConfig.Enabled"); err != nil {
		return err
	} else if ok {
		a.Stickiness, a.StickinessSpecified = en, true
	}
	if d, ok, err := intParam(el, "ForwardConfig.TargetGroupStickinessConfig.DurationSeconds", 1, 604800,
		"Target group stickiness duration must be between 1 and 604800 seconds"); err != nil {
		return err
	} else if ok {
		a.StickinessDuration = d
	}
	if a.Stickiness && a.StickinessDuration == 0 {
		return errValidation("Target group stickiness duration must be specified when stickiness is enabled")
	}
	return nil
}

// checkActions checks that actions fit the load balancer lb and listener
// protocol: forwarded-to groups exist, are of lb's VPC, speak a compatible
// protocol and (for an ALB group) are used by no other load balancer.
func checkActions(st *state, lb *lbRecord, listenerProto string, actions []actionRecord) error {
	for _, a := range actions {
		if lb.Type == typeNetwork && a.Type != "forward" {
			return errInvalidAction("Action type '%s' is not supported for Network Load Balancers", a.Type)
		}
		var busy []string
		for _, w := range a.TargetGroups {
			tg := st.tgs[w.TGID]
			if tg == nil || w.ARN != "" && w.ARN != st.sc.tgARN(tg) {
				return errTGNotFound()
			}
			arn := st.sc.tgARN(tg)
			if tg.VpcID != lb.VpcID {
				// ELBv2 refuses this as a configuration conflict, not a
				// malformed request.
				return errInvalidConfig("Target group '%s' is in a different VPC than load balancer '%s'", arn, st.sc.lbARN(lb))
			}
			if !compatible(listenerProto, tg.Protocol) {
				return errIncompatibleProtocols(listenerProto, tg.Protocol)
			}
			for _, other := range st.tgLoadBalancers(tg.ID) {
				if other != lb.ID {
					busy = append(busy, arn)
					break
				}
			}
		}
		if len(busy) > 0 {
			return errTGAssociationLimit(busy)
		}
	}
	return nil
}

// compatible reports whether a listener of protocol lp may forward to a
// target group of protocol tp.
func compatible(lp, tp string) bool {
	switch lp {
	case "HTTP", "HTTPS":
		return tp == "HTTP" || tp == "HTTPS"
	case "TCP":
		return tp == "TCP" || tp == "TCP_UDP"
	case "UDP":
		return tp == "UDP" || tp == "TCP_UDP"
	case "TCP_UDP":
		return tp == "TCP_UDP"
	case "TLS":
		return tp == "TCP" || tp == "TLS"
	}
	return false
}

// conditionFields are the condition types berth supports, with the name of
// their *Config member.
var conditionFields = map[string]string{
	"path-pattern":        "PathPatternConfig",
	"host-header":         "HostHeaderConfig",
	"http-header":         "HttpHeaderConfig",
	"http-request-method": "HttpRequestMethodConfig",
	"query-string":        "QueryStringConfig",
	"source-ip":           "SourceIpConfig",
}

// parseConditions reads Conditions.member.N.
func parseConditions(p url.Values) ([]conditionRecord, error) {
	els, err := protocol.QueryMemberStructs(p, "Conditions")
	if err != nil {
		return nil, err
	}
	var out []conditionRecord
	total := 0
	seen := map[string]bool{}
	for _, el := range els {
		c := conditionRecord{Field: el.Get("Field")}
		cfg, ok := conditionFields[c.Field]
		if !ok {
			return nil, errValidation("Condition field '%s' must be one of '[http-header, http-request-method, host-header, path-pattern, query-string, source-ip]'", c.Field)
		}
		if seen[c.Field] && c.Field != "http-header" && c.Field != "query-string" {
			return nil, errValidation("Each condition field can be specified only once per rule except 'http-header' and 'query-string': '%s'", c.Field)
		}
		seen[c.Field] = true
		legacy, err := protocol.QueryMemberList(el, "Values")
		if err != nil {
			return nil, err
		}
		if c.Field == "query-string" {
			kvs, err := protocol.QueryMemberStructs(el, cfg+".Values")
			if err != nil {
				return nil, err
			}
			for _, q := range kvs {
				if q.Get("Value") == "" {
					return nil, errValidation("A query string condition value must not be empty")
				}
				c.QueryValues = append(c.QueryValues, kv{Key: q.Get("Key"), Value: q.Get("Value")})
			}
			total += len(c.QueryValues)
		} else {
			vals, err := protocol.QueryMemberList(el, cfg+".Values")
			if err != nil {
				return nil, err
			}
			if len(legacy) > 0 {
				if c.Field != "path-pattern" && c.Field != "host-header" {
					return nil, errValidation("Condition field '%s' requires '%s' and cannot use 'Values'", c.Field, cfg)
				}
				if len(vals) > 0 {
					return nil, errValidation("You cannot specify both 'Values' and '%s' for a condition", cfg)
				}
				vals, c.Legacy = legacy, true
			}
			c.Values = vals
			total += len(vals)
		}
		if c.Field == "http-header" {
			c.HeaderName = el.Get(cfg + ".HttpHeaderName")
			if c.HeaderName == "" || len(c.HeaderName) > 40 {
				return nil, errValidation("An HTTP header condition must specify a header name of at most 40 characters")
			}
		}
		if len(c.Values) == 0 && len(c.QueryValues) == 0 {
			return nil, errValidation("A condition of field '%s' must have at least one value", c.Field)
		}
		for _, v := range c.Values {
			if err := checkConditionValue(c.Field, v); err != nil {
				return nil, err
			}
		}
		out = append(out, c)
	}
	if total > maxRuleValues {
		return nil, errValidation("A rule can only have '%d' condition values", maxRuleValues)
	}
	return out, nil
}

func checkConditionValue(field, v string) error {
	switch field {
	case "path-pattern", "host-header", "http-header":
		if v == "" || len(v) > 128 {
			return errValidation("Condition value '%s' must be between 1 and 128 characters", v)
		}
	case "http-request-method":
		if len(v) > 40 || !methodRe.MatchString(v) {
			return errValidation("HTTP request method '%s' is not valid", v)
		}
	case "source-ip":
		if _, err := netip.ParsePrefix(v); err != nil {
			return errValidation("Source IP '%s' must be a valid CIDR block", v)
		}
	}
	return nil
}

// forwardedTGs returns the ids of the groups actions forward to.
func forwardedTGs(actions []actionRecord) []string {
	var out []string
	for _, a := range actions {
		for _, w := range a.TargetGroups {
			out = append(out, w.TGID)
		}
	}
	return out
}

// tgLoadBalancers returns the ids of the load balancers whose listeners or
// rules forward to the group tgID, sorted and without repeats.
func (st *state) tgLoadBalancers(tgID string) []string {
	set := map[string]bool{}
	for _, l := range st.listeners {
		for _, id := range forwardedTGs(l.DefaultActions) {
			if id == tgID {
				set[l.LBID] = true
			}
		}
	}
	for _, r := range st.rules {
		l := st.listeners[r.ListenerID]
		if l == nil {
			continue
		}
		for _, id := range forwardedTGs(r.Actions) {
			if id == tgID {
				set[l.LBID] = true
			}
		}
	}
	return sortedKeys(set)
}
