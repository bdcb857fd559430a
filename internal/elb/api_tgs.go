package elb

import (
	"context"
	"net/url"
	"regexp"
	"sort"
	"strconv"

	"github.com/berthdev/berth/internal/protocol"
)

// CreateTargetGroup, DescribeTargetGroups, ModifyTargetGroup,
// DeleteTargetGroup, DescribeTargetGroupAttributes,
// ModifyTargetGroupAttributes.

var (
	tgProtocols = []string{"HTTP", "HTTPS", "TCP", "UDP", "TLS", "TCP_UDP"}
	matcherRe   = regexp.MustCompile(`^\d{3}(-\d{3})?(,\d{3}(-\d{3})?)*$`)
)

func isHTTP(proto string) bool { return proto == "HTTP" || proto == "HTTPS" }

// defaultHealthCheck is AWS's health check of a new group of protocol proto.
func defaultHealthCheck(proto string) healthCheck {
	if isHTTP(proto) {
		return healthCheck{Enabled: true, Protocol: proto, Port: "traffic-port", Path: "/", Interval: 30, Timeout: 5,
			Healthy: 5, Unhealthy: 2, Matcher: "200"}
	}
	return healthCheck{Enabled: true, Protocol: "TCP", Port: "traffic-port", Interval: 30, Timeout: 10, Healthy: 5, Unhealthy: 2}
}

// applyHealthCheck applies the HealthCheck* parameters of p to hc and checks
// the result.
func applyHealthCheck(p url.Values, tgProto string, hc *healthCheck) error {
	if v := p.Get("HealthCheckProtocol"); v != "" {
		if !oneOf(v, "HTTP", "HTTPS", "TCP") {
			return errValidation("Health check protocol '%s' must be one of 'HTTP, HTTPS, TCP'", v)
		}
		if isHTTP(tgProto) && v == "TCP" {
			return errValidation("Health check protocol 'TCP' is not supported for target groups with the '%s' protocol", tgProto)
		}
		if !isHTTP(hc.Protocol) && isHTTP(v) {
			if hc.Path == "" {
				hc.Path = "/"
			}
			if hc.Matcher == "" {
				hc.Matcher = "200-399"
			}
		}
		if !isHTTP(v) {
			hc.Path, hc.Matcher = "", ""
		}
		hc.Protocol = v
	}
	if v := p.Get("HealthCheckPort"); v != "" {
		if n, err := strconv.Atoi(v); v != "traffic-port" && (err != nil || n < 1 || n > 65535) {
			return errValidation("Health check port '%s' must be 'traffic-port' or a port from 1 to 65535", v)
		}
		hc.Port = v
	}
	if b, ok, err := boolParam(p, "HealthCheckEnabled"); err != nil {
		return err
	} else if ok {
		hc.Enabled = b
	}
	if v := p.Get("HealthCheckPath"); v != "" {
		if !isHTTP(hc.Protocol) {
			return errValidation("Health check path cannot be set for the '%s' health check protocol", hc.Protocol)
		}
		if v[0] != '/' || len(v) > 1024 {
			return errValidation("Health check path must begin with a '/' character, and can be at most 1024 characters in length")
		}
		hc.Path = v
	}
	var err error
	set := func(dst *int, name string, min, max int, msg string) {
		if err != nil {
			return
		}
		if n, ok, e := intParam(p, name, min, max, msg); e != nil {
			err = e
		} else if ok {
			*dst = n
		}
	}
	set(&hc.Interval, "HealthCheckIntervalSeconds", 5, 300, "Health check interval must be between 5 and 300 seconds")
	set(&hc.Timeout, "HealthCheckTimeoutSeconds", 2, 120, "Health check timeout must be between 2 and 120 seconds")
	set(&hc.Healthy, "HealthyThresholdCount", 2, 10, "Healthy threshold count must be between 2 and 10")
	set(&hc.Unhealthy, "UnhealthyThresholdCount", 2, 10, "Unhealthy threshold count must be between 2 and 10")
	if err != nil {
		return err
	}
	if hc.Timeout >= hc.Interval {
		return errValidation("Health check timeout '%d' must be smaller than the interval '%d'", hc.Timeout, hc.Interval)
	}
	if v := p.Get("Matcher.HttpCode"); v != "" {
		if !isHTTP(hc.Protocol) {
			return errValidation("Health check matcher HTTP code cannot be set for the '%s' health check protocol", hc.Protocol)
		}
		if !matcherRe.MatchString(v) || !matcherInRange(v) {
			return errValidation("Health check matcher HTTP code '%s' must be a code or range of codes from 200 to 499", v)
		}
		hc.Matcher = v
	}
	if p.Get("Matcher.GrpcCode") != "" {
		return errValidation("gRPC matchers are not supported")
	}
	return nil
}

func matcherInRange(m string) bool {
	for i := 0; i+3 <= len(m); i += 4 {
		n, _ := strconv.Atoi(m[i : i+3])
		if n < 200 || n > 499 {
			return false
		}
	}
	return true
}

// defaultAttributes are a new group's attributes.
func defaultAttributes(proto string) map[string]string {
	a := map[string]string{
		"deregistration_delay.timeout_seconds": "300",
		"stickiness.enabled":                   "false",
	}
	if isHTTP(proto) {
		a["stickiness.type"] = "lb_cookie"
		a["stickiness.lb_cookie.duration_seconds"] = "86400"
		a["slow_start.duration_seconds"] = "0"
		a["load_balancing.algorithm.type"] = "round_robin"
		a["load_balancing.cross_zone.enabled"] = "use_load_balancer_configuration"
	} else {
		a["stickiness.type"] = "source_ip"
		a["deregistration_delay.connection_termination.enabled"] = "false"
		a["preserve_client_ip.enabled"] = "false"
		a["proxy_protocol_v2.enabled"] = "false"
		a["load_balancing.cross_zone.enabled"] = "use_load_balancer_configuration"
	}
	return a
}

// checkAttribute checks one attribute of a group of protocol proto.
func checkAttribute(proto string, attrs map[string]string, k, v string) error {
	if _, known := attrs[k]; !known {
		return errValidation("Target group attribute key '%s' is not recognized", k)
	}
	intIn := func(min, max int) bool { n, err := strconv.Atoi(v); return err == nil && n >= min && n <= max }
	isBool := v == "true" || v == "false"
	var ok bool
	switch k {
	case "deregistration_delay.timeout_seconds":
		ok = intIn(0, 3600)
	case "slow_start.duration_seconds":
		ok = v == "0" || intIn(30, 900)
	case "load_balancing.algorithm.type":
		ok = oneOf(v, "round_robin", "least_outstanding_requests")
	case "stickiness.type":
		ok = isHTTP(proto) && v == "lb_cookie" || !isHTTP(proto) && v == "source_ip"
	case "stickiness.lb_cookie.duration_seconds":
		ok = intIn(1, 604800)
	case "load_balancing.cross_zone.enabled":
		ok = oneOf(v, "true", "false", "use_load_balancer_configuration")
	default:
		ok = isBool
	}
	if !ok {
		return errValidation("'%s' is not a valid value for target group attribute '%s'", v, k)
	}
	return nil
}

func (s *Service) createTargetGroup(ctx context.Context, sc scope, p url.Values) (any, error) {
	name := p.Get("Name")
	if err := validName(name, "Target group"); err != nil {
		return nil, err
	}
	tt := p.Get("TargetType")
	if tt == "" {
		tt = "instance"
	}
	if !oneOf(tt, "ip", "instance") {
		return nil, errValidation("Target type '%s' is not supported; berth supports 'ip' and 'instance'", tt)
	}
	proto := p.Get("Protocol")
	if proto == "" {
		return nil, errValidation("A protocol must be specified")
	}
	if !oneOf(proto, tgProtocols...) {
		return nil, errValidation("Protocol '%s' must be one of '%s'", proto, "HTTP, HTTPS, TCP, TLS, UDP, TCP_UDP")
	}
	port, ok, err := intParam(p, "Port", 1, 65535, "Port must be between 1 and 65535")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errValidation("A port must be specified")
	}
	vpcID := p.Get("VpcId")
	if vpcID == "" {
		return nil, errValidation("A VPC ID must be specified")
	}
	if pv := p.Get("ProtocolVersion"); pv != "" && pv != "HTTP1" {
		return nil, errValidation("Protocol version '%s' is not supported; berth supports 'HTTP1'", pv)
	}
	hc := defaultHealthCheck(proto)
	if err := applyHealthCheck(p, proto, &hc); err != nil {
		return nil, err
	}
	tags, err := parseTags(p, "Tags")
	if err != nil {
		return nil, err
	}
	cidr, err := s.net.VpcCIDR(ctx, sc.account, sc.region, vpcID)
	if err != nil {
		return nil, errInternal("vpc lookup", err)
	}
	if cidr == "" {
		return nil, errValidation("The VPC ID '%s' is not found", vpcID)
	}
	tg := &tgRecord{ID: newID(), Name: name, Protocol: proto, Port: port, VpcID: vpcID, VpcCIDR: cidr, TargetType: tt,
		HealthCheck: hc, Attributes: defaultAttributes(proto), Tags: tags, Created: s.cfg.Now().UTC()}
	var st0 *state
	err = s.change(ctx, sc, "create target group", func(st *state, t *txn) error {
		st0 = st
		for _, o := range st.tgs {
			if o.Name == name {
				return errDuplicateTGName()
			}
		}
		t.put(sc.tgKey(tg.ID), tg)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &targetGroupsResult{TargetGroups: list[tgXML]{st0.tgXML(tg)}}, nil
}

func (st *state) tgByARN(arn string) (*tgRecord, error) {
	if arn == "" {
		return nil, errMissing("TargetGroupArn")
	}
	id, err := st.sc.arnID(arn, arnTG)
	if err != nil {
		return nil, err
	}
	tg := st.tgs[id]
	if tg == nil || st.sc.tgARN(tg) != arn {
		return nil, errTGNotFound()
	}
	return tg, nil
}

func (s *Service) describeTargetGroups(ctx context.Context, sc scope, p url.Values) (any, error) {
	arns, err := protocol.QueryMemberList(p, "TargetGroupArns")
	if err != nil {
		return nil, err
	}
	names, err := protocol.QueryMemberList(p, "Names")
	if err != nil {
		return nil, err
	}
	lbARN := p.Get("LoadBalancerArn")
	given := 0
	for _, b := range []bool{len(arns) > 0, len(names) > 0, lbARN != ""} {
		if b {
			given++
		}
	}
	if given > 1 {
		return nil, errValidation("Target group ARNs, names and a load balancer ARN cannot be specified at the same time")
	}
	offset, size, err := paging(p)
	if err != nil {
		return nil, err
	}
	st, err := s.load(ctx, sc)
	if err != nil {
		return nil, err
	}
	var tgs []*tgRecord
	switch {
	case len(arns) > 0:
		for _, arn := range dedupe(arns) {
			tg, err := st.tgByARN(arn)
			if err != nil {
				return nil, err
			}
			tgs = append(tgs, tg)
		}
	case len(names) > 0:
		byName := map[string]*tgRecord{}
		for _, tg := range st.tgs {
			byName[tg.Name] = tg
		}
		for _, n := range dedupe(names) {
			tg := byName[n]
			if tg == nil {
				return nil, apiErr(codeTGNotFound, "Target groups '[%s]' not found", n)
			}
			tgs = append(tgs, tg)
		}
	default:
		var lbID string
		if lbARN != "" {
			lb, err := st.lbByARN(lbARN)
			if err != nil {
				return nil, err
			}
			lbID = lb.ID
		}
		for _, tg := range st.tgs {
			if lbID == "" || oneOf(lbID, st.tgLoadBalancers(tg.ID)...) {
				tgs = append(tgs, tg)
			}
		}
		sort.Slice(tgs, func(i, j int) bool { return tgs[i].Name < tgs[j].Name })
	}
	pg, next := page(tgs, offset, size)
	out := &targetGroupsResult{TargetGroups: list[tgXML]{}, NextMarker: next}
	for _, tg := range pg {
		out.TargetGroups = append(out.TargetGroups, st.tgXML(tg))
	}
	return out, nil
}

func (s *Service) modifyTargetGroup(ctx context.Context, sc scope, p url.Values) (any, error) {
	var out *targetGroupsResult
	err := s.change(ctx, sc, "modify target group", func(st *state, t *txn) error {
		tg, err := st.tgByARN(p.Get("TargetGroupArn"))
		if err != nil {
			return err
		}
		if err := applyHealthCheck(p, tg.Protocol, &tg.HealthCheck); err != nil {
			return err
		}
		t.put(sc.tgKey(tg.ID), tg)
		out = &targetGroupsResult{TargetGroups: list[tgXML]{st.tgXML(tg)}}
		return nil
	})
	return out, err
}

func (s *Service) deleteTargetGroup(ctx context.Context, sc scope, p url.Values) (any, error) {
	arn := p.Get("TargetGroupArn")
	if arn == "" {
		return nil, errMissing("TargetGroupArn")
	}
	if _, err := sc.arnID(arn, arnTG); err != nil {
		return nil, err
	}
	err := s.change(ctx, sc, "delete target group", func(st *state, t *txn) error {
		tg, err := st.tgByARN(arn)
		if err != nil {
			return nil // deleting an absent group succeeds, as in AWS
		}
		if len(st.tgLoadBalancers(tg.ID)) > 0 {
			return errTGInUse(arn)
		}
		t.del(sc.tgKey(tg.ID))
		t.delPrefix(sc.targetsPrefix(tg.ID))
		return nil
	})
	return nil, err
}

func (s *Service) describeTargetGroupAttributes(ctx context.Context, sc scope, p url.Values) (any, error) {
	st, err := s.load(ctx, sc)
	if err != nil {
		return nil, err
	}
	tg, err := st.tgByARN(p.Get("TargetGroupArn"))
	if err != nil {
		return nil, err
	}
	return &attributesResult{Attributes: attrsXML(tg.Attributes)}, nil
}

func (s *Service) modifyTargetGroupAttributes(ctx context.Context, sc scope, p url.Values) (any, error) {
	els, err := protocol.QueryMemberStructs(p, "Attributes")
	if err != nil {
		return nil, err
	}
	if len(els) == 0 {
		return nil, errMissing("Attributes")
	}
	var out *attributesResult
	err = s.change(ctx, sc, "modify target group attributes", func(st *state, t *txn) error {
		tg, err := st.tgByARN(p.Get("TargetGroupArn"))
		if err != nil {
			return err
		}
		changed := map[string]string{}
		for _, el := range els {
			k, v := el.Get("Key"), el.Get("Value")
			if err := checkAttribute(tg.Protocol, tg.Attributes, k, v); err != nil {
				return err
			}
			tg.Attributes[k] = v
			changed[k] = v
		}
		t.put(sc.tgKey(tg.ID), tg)
		out = &attributesResult{Attributes: attrsXML(changed)}
		return nil
	})
	return out, err
}
