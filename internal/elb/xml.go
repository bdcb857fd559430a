package elb

import (
	"fmt"
	"hash/fnv"
	"sort"
	"strconv"

	"github.com/berthdev/berth/internal/protocol"
)

// Reply shapes, element names as in botocore's elbv2 model, and the
// conversions from records.

type list[T any] = protocol.MemberList[T]

type lbStateXML struct {
	Code   string  `xml:"Code"`
	Reason *string `xml:"Reason"`
}

type azXML struct {
	ZoneName string `xml:"ZoneName"`
	SubnetID string `xml:"SubnetId"`
}

type lbXML struct {
	LoadBalancerArn       string       `xml:"LoadBalancerArn"`
	DNSName               string       `xml:"DNSName"`
	CanonicalHostedZoneID string       `xml:"CanonicalHostedZoneId"`
	CreatedTime           string       `xml:"CreatedTime"`
	LoadBalancerName      string       `xml:"LoadBalancerName"`
	Scheme                string       `xml:"Scheme"`
	VpcID                 string       `xml:"VpcId"`
	State                 lbStateXML   `xml:"State"`
	Type                  string       `xml:"Type"`
	AvailabilityZones     list[azXML]  `xml:"AvailabilityZones"`
	SecurityGroups        list[string] `xml:"SecurityGroups,omitempty"`
	IPAddressType         string       `xml:"IpAddressType"`
}

type matcherXML struct {
	HTTPCode string `xml:"HttpCode"`
}

type tgXML struct {
	TargetGroupArn             string       `xml:"TargetGroupArn"`
	TargetGroupName            string       `xml:"TargetGroupName"`
	Protocol                   string       `xml:"Protocol"`
	Port                       int          `xml:"Port"`
	VpcID                      string       `xml:"VpcId"`
	HealthCheckProtocol        string       `xml:"HealthCheckProtocol"`
	HealthCheckPort            string       `xml:"HealthCheckPort"`
	HealthCheckEnabled         bool         `xml:"HealthCheckEnabled"`
	HealthCheckIntervalSeconds int          `xml:"HealthCheckIntervalSeconds"`
	HealthCheckTimeoutSeconds  int          `xml:"HealthCheckTimeoutSeconds"`
	HealthyThresholdCount      int          `xml:"HealthyThresholdCount"`
	UnhealthyThresholdCount    int          `xml:"UnhealthyThresholdCount"`
	HealthCheckPath            *string      `xml:"HealthCheckPath"`
	Matcher                    *matcherXML  `xml:"Matcher"`
	LoadBalancerArns           list[string] `xml:"LoadBalancerArns"`
	TargetType                 string       `xml:"TargetType"`
	ProtocolVersion            *string      `xml:"ProtocolVersion"`
	IPAddressType              string       `xml:"IpAddressType"`
}

type tupleXML struct {
	TargetGroupArn string `xml:"TargetGroupArn"`
	Weight         int    `xml:"Weight"`
}

type stickinessXML struct {
	Enabled         bool `xml:"Enabled"`
	DurationSeconds *int `xml:"DurationSeconds"`
}

type forwardXML struct {
	TargetGroups                list[tupleXML] `xml:"TargetGroups"`
	TargetGroupStickinessConfig stickinessXML  `xml:"TargetGroupStickinessConfig"`
}

type fixedXML struct {
	MessageBody *string `xml:"MessageBody"`
	StatusCode  string  `xml:"StatusCode"`
	ContentType *string `xml:"ContentType"`
}

type redirectXML struct {
	Protocol   string `xml:"Protocol"`
	Port       string `xml:"Port"`
	Host       string `xml:"Host"`
	Path       string `xml:"Path"`
	Query      string `xml:"Query"`
	StatusCode string `xml:"StatusCode"`
}

type actionXML struct {
	Type                string       `xml:"Type"`
	TargetGroupArn      *string      `xml:"TargetGroupArn"`
	Order               int          `xml:"Order"`
	RedirectConfig      *redirectXML `xml:"RedirectConfig"`
	FixedResponseConfig *fixedXML    `xml:"FixedResponseConfig"`
	ForwardConfig       *forwardXML  `xml:"ForwardConfig"`
}

type certXML struct {
	CertificateArn string `xml:"CertificateArn"`
}

type listenerXML struct {
	ListenerArn     string          `xml:"ListenerArn"`
	LoadBalancerArn string          `xml:"LoadBalancerArn"`
	Port            int             `xml:"Port"`
	Protocol        string          `xml:"Protocol"`
	Certificates    list[certXML]   `xml:"Certificates,omitempty"`
	SslPolicy       *string         `xml:"SslPolicy"`
	DefaultActions  list[actionXML] `xml:"DefaultActions"`
}

type valuesXML struct {
	Values list[string] `xml:"Values"`
}

type headerXML struct {
	HTTPHeaderName string       `xml:"HttpHeaderName"`
	Values         list[string] `xml:"Values"`
}

type kvXML struct {
	Key   *string `xml:"Key"`
	Value string  `xml:"Value"`
}

type queryXML struct {
	Values list[kvXML] `xml:"Values"`
}

type conditionXML struct {
	Field                   string       `xml:"Field"`
	Values                  list[string] `xml:"Values,omitempty"`
	HostHeaderConfig        *valuesXML   `xml:"HostHeaderConfig"`
	PathPatternConfig       *valuesXML   `xml:"PathPatternConfig"`
	HTTPHeaderConfig        *headerXML   `xml:"HttpHeaderConfig"`
	QueryStringConfig       *queryXML    `xml:"QueryStringConfig"`
	HTTPRequestMethodConfig *valuesXML   `xml:"HttpRequestMethodConfig"`
	SourceIPConfig          *valuesXML   `xml:"SourceIpConfig"`
}

type ruleXML struct {
	RuleArn    string             `xml:"RuleArn"`
	Priority   string             `xml:"Priority"`
	Conditions list[conditionXML] `xml:"Conditions"`
	Actions    list[actionXML]    `xml:"Actions"`
	IsDefault  bool               `xml:"IsDefault"`
}

type targetXML struct {
	ID               string  `xml:"Id"`
	Port             int     `xml:"Port"`
	AvailabilityZone *string `xml:"AvailabilityZone"`
}

type targetHealthXML struct {
	State       string  `xml:"State"`
	Reason      *string `xml:"Reason"`
	Description *string `xml:"Description"`
}

type thdXML struct {
	Target          targetXML       `xml:"Target"`
	HealthCheckPort string          `xml:"HealthCheckPort"`
	TargetHealth    targetHealthXML `xml:"TargetHealth"`
}

type attrXML struct {
	Key   string `xml:"Key"`
	Value string `xml:"Value"`
}

type tagXML struct {
	Key   string `xml:"Key"`
	Value string `xml:"Value"`
}

type tagDescXML struct {
	ResourceArn string       `xml:"ResourceArn"`
	Tags        list[tagXML] `xml:"Tags"`
}

type limitXML struct {
	Name string `xml:"Name"`
	Max  string `xml:"Max"`
}

// Results.

type loadBalancersResult struct {
	LoadBalancers list[lbXML] `xml:"LoadBalancers"`
	NextMarker    *string     `xml:"NextMarker"`
}

type targetGroupsResult struct {
	TargetGroups list[tgXML] `xml:"TargetGroups"`
	NextMarker   *string     `xml:"NextMarker"`
}

type listenersResult struct {
	Listeners  list[listenerXML] `xml:"Listeners"`
	NextMarker *string           `xml:"NextMarker"`
}

type rulesResult struct {
	Rules      list[ruleXML] `xml:"Rules"`
	NextMarker *string       `xml:"NextMarker"`
}

type attributesResult struct {
	Attributes list[attrXML] `xml:"Attributes"`
}

type targetHealthResult struct {
	TargetHealthDescriptions list[thdXML] `xml:"TargetHealthDescriptions"`
}

type tagsResult struct {
	TagDescriptions list[tagDescXML] `xml:"TagDescriptions"`
}

type limitsResult struct {
	Limits list[limitXML] `xml:"Limits"`
}

// Conversions.

func strp(s string) *string { return &s }

func itoa(n int) string { return strconv.Itoa(n) }

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// dnsName is the load balancer's DNS name: NAME-<10 digits>.REGION.elb.localhost.
func dnsName(sc scope, lb *lbRecord) string {
	h := fnv.New32a()
	h.Write([]byte(sc.account + "/" + lb.ID))
	name := fmt.Sprintf("%s-%010d.%s.elb.localhost", lb.Name, h.Sum32(), sc.region)
	if lb.Scheme == "internal" {
		name = "internal-" + name
	}
	return name
}

// lbState is provisioning until ProvisioningTime after creation and, when
// placement runs, until the load balancer is placed.
func (s *Service) lbState(lb *lbRecord) string {
	if s.cfg.Now().Sub(lb.Created) < s.cfg.ProvisioningTime || s.cfg.Nodes != nil && s.cfg.ENIs != nil && !placed(lb) {
		return "provisioning"
	}
	return "active"
}

func (s *Service) lbXML(sc scope, lb *lbRecord) lbXML {
	x := lbXML{LoadBalancerArn: sc.lbARN(lb), DNSName: dnsName(sc, lb), CanonicalHostedZoneID: hostedZoneALB,
		CreatedTime: lb.Created.UTC().Format(timeLayout), LoadBalancerName: lb.Name, Scheme: lb.Scheme,
		VpcID: lb.VpcID, State: lbStateXML{Code: s.lbState(lb)}, Type: lb.Type, IPAddressType: "ipv4",
		SecurityGroups: lb.SecurityGroups}
	if lb.Type == typeNetwork {
		x.CanonicalHostedZoneID = hostedZoneNLB
	}
	for _, sn := range lb.Subnets {
		x.AvailabilityZones = append(x.AvailabilityZones, azXML{ZoneName: sn.Zone, SubnetID: sn.SubnetID})
	}
	return x
}

func (st *state) tgXML(tg *tgRecord) tgXML {
	hc := tg.HealthCheck
	x := tgXML{TargetGroupArn: st.sc.tgARN(tg), TargetGroupName: tg.Name, Protocol: tg.Protocol, Port: tg.Port,
		VpcID: tg.VpcID, HealthCheckProtocol: hc.Protocol, HealthCheckPort: hc.Port, HealthCheckEnabled: hc.Enabled,
		HealthCheckIntervalSeconds: hc.Interval, HealthCheckTimeoutSeconds: hc.Timeout,
		HealthyThresholdCount: hc.Healthy, UnhealthyThresholdCount: hc.Unhealthy,
		TargetType: tg.TargetType, IPAddressType: "ipv4", LoadBalancerArns: list[string]{}}
	if hc.Path != "" {
		x.HealthCheckPath = strp(hc.Path)
	}
	if hc.Matcher != "" {
		x.Matcher = &matcherXML{HTTPCode: hc.Matcher}
	}
	if tg.Protocol == "HTTP" || tg.Protocol == "HTTPS" {
		x.ProtocolVersion = strp("HTTP1")
	}
	for _, id := range st.tgLoadBalancers(tg.ID) {
		if lb := st.lbs[id]; lb != nil {
			x.LoadBalancerArns = append(x.LoadBalancerArns, st.sc.lbARN(lb))
		}
	}
	return x
}

func (st *state) actionXML(a actionRecord) actionXML {
	x := actionXML{Type: a.Type, Order: a.Order}
	switch a.Type {
	case "forward":
		f := &forwardXML{TargetGroups: list[tupleXML]{}}
		for _, w := range a.TargetGroups {
			arn := ""
			if tg := st.tgs[w.TGID]; tg != nil {
				arn = st.sc.tgARN(tg)
			}
			f.TargetGroups = append(f.TargetGroups, tupleXML{TargetGroupArn: arn, Weight: w.Weight})
			if a.Single {
				x.TargetGroupArn = strp(arn)
			}
		}
		f.TargetGroupStickinessConfig.Enabled = a.Stickiness
		if a.StickinessDuration > 0 {
			f.TargetGroupStickinessConfig.DurationSeconds = &a.StickinessDuration
		}
		x.ForwardConfig = f
	case "fixed-response":
		f := &fixedXML{StatusCode: a.Fixed.StatusCode}
		if a.Fixed.ContentType != "" {
			f.ContentType = strp(a.Fixed.ContentType)
		}
		if a.Fixed.MessageBody != "" {
			f.MessageBody = strp(a.Fixed.MessageBody)
		}
		x.FixedResponseConfig = f
	case "redirect":
		r := a.Redirect
		x.RedirectConfig = &redirectXML{Protocol: r.Protocol, Port: r.Port, Host: r.Host, Path: r.Path, Query: r.Query, StatusCode: r.StatusCode}
	}
	return x
}

func (st *state) actionsXML(as []actionRecord) list[actionXML] {
	out := list[actionXML]{}
	for _, a := range as {
		out = append(out, st.actionXML(a))
	}
	return out
}

func (st *state) listenerXML(l *listenerRecord) listenerXML {
	lb := st.lbs[l.LBID]
	x := listenerXML{ListenerArn: st.sc.listenerARN(lb, l), LoadBalancerArn: st.sc.lbARN(lb), Port: l.Port,
		Protocol: l.Protocol, DefaultActions: st.actionsXML(l.DefaultActions)}
	for _, c := range l.Certificates {
		x.Certificates = append(x.Certificates, certXML{CertificateArn: c})
	}
	if l.SslPolicy != "" {
		x.SslPolicy = strp(l.SslPolicy)
	}
	return x
}

func conditionXMLOf(c conditionRecord) conditionXML {
	x := conditionXML{Field: c.Field}
	vals := &valuesXML{Values: c.Values}
	switch c.Field {
	case "path-pattern":
		x.PathPatternConfig, x.Values = vals, c.Values
	case "host-header":
		x.HostHeaderConfig, x.Values = vals, c.Values
	case "http-header":
		x.HTTPHeaderConfig = &headerXML{HTTPHeaderName: c.HeaderName, Values: c.Values}
	case "http-request-method":
		x.HTTPRequestMethodConfig = vals
	case "source-ip":
		x.SourceIPConfig = vals
	case "query-string":
		q := &queryXML{Values: list[kvXML]{}}
		for _, v := range c.QueryValues {
			e := kvXML{Value: v.Value}
			if v.Key != "" {
				e.Key = strp(v.Key)
			}
			q.Values = append(q.Values, e)
		}
		x.QueryStringConfig = q
	}
	return x
}

func (st *state) ruleXML(r *ruleRecord) ruleXML {
	l := st.listeners[r.ListenerID]
	lb := st.lbs[l.LBID]
	x := ruleXML{RuleArn: st.sc.ruleARN(lb, l, r.ID), Priority: itoa(r.Priority), Actions: st.actionsXML(r.Actions),
		Conditions: list[conditionXML]{}}
	for _, c := range r.Conditions {
		x.Conditions = append(x.Conditions, conditionXMLOf(c))
	}
	return x
}

// defaultRuleXML is the listener's default rule, made of its default actions.
func (st *state) defaultRuleXML(l *listenerRecord) ruleXML {
	lb := st.lbs[l.LBID]
	return ruleXML{RuleArn: st.sc.ruleARN(lb, l, l.DefaultRuleID), Priority: "default", IsDefault: true,
		Conditions: list[conditionXML]{}, Actions: st.actionsXML(l.DefaultActions)}
}

func tagsXML(tags []tag) list[tagXML] {
	out := list[tagXML]{}
	for _, t := range tags {
		out = append(out, tagXML(t))
	}
	return out
}

func attrsXML(attrs map[string]string) list[attrXML] {
	keys := make([]string, 0, len(attrs))
	for k := range attrs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := list[attrXML]{}
	for _, k := range keys {
		out = append(out, attrXML{Key: k, Value: attrs[k]})
	}
	return out
}
