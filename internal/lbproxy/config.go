package lbproxy

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Load balancer types (LoadBalancer.Type), as ELBv2 spells them.
const (
	TypeApplication = "application"
	TypeNetwork     = "network"
)

// Protocols of listeners, target groups and health checks.
const (
	ProtocolHTTP = "HTTP"
	ProtocolTCP  = "TCP"
)

// Action types (Action.Type).
const (
	ActionForward       = "forward"
	ActionFixedResponse = "fixed-response"
	ActionRedirect      = "redirect"
)

// Condition fields (Condition.Field).
const (
	FieldPathPattern       = "path-pattern"
	FieldHostHeader        = "host-header"
	FieldHTTPHeader        = "http-header"
	FieldHTTPRequestMethod = "http-request-method"
	FieldQueryString       = "query-string"
	FieldSourceIP          = "source-ip"
)

// Load-balancing algorithms (TargetGroup.Algorithm).
const (
	AlgorithmRoundRobin               = "round_robin"
	AlgorithmLeastOutstandingRequests = "least_outstanding_requests"
)

// Dialer opens a connection to a target. The agent passes one that dials from
// inside the VPC's network namespace with the load balancer's own source
// address; tests pass a loopback dialer.
type Dialer func(ctx context.Context, network, address string) (net.Conn, error)

// ListenFunc opens a listener socket. The engine calls it for every listener
// it starts, with network "tcp" and address "ADDR:PORT", one call per address
// in LoadBalancer.Addresses. The agent passes one that listens inside the
// VPC's namespace (or on the load balancer's loopback address in dev).
type ListenFunc func(ctx context.Context, network, address string) (net.Listener, error)

// LoadBalancer is one ALB or NLB: where it listens and what its listeners do.
// It is plain data, filled from ELBv2's model by the agent.
type LoadBalancer struct {
	// ARN identifies the load balancer.
	ARN string `json:"arn"`
	// Type is "application" (HTTP listeners) or "network" (TCP listeners).
	Type string `json:"type"`
	// Addresses are the IP addresses its listeners bind (each listener binds
	// every address). Empty means "127.0.0.1".
	Addresses []string `json:"addresses,omitempty"`
	// IdleTimeout is the ALB attribute idle_timeout.timeout_seconds: how long
	// a target may stay silent before the request fails with 504, and how
	// long an idle client connection is kept. Zero means Options.IdleTimeout.
	IdleTimeout time.Duration `json:"idleTimeout,omitempty"`
	// Listeners are the load balancer's listeners.
	Listeners []Listener `json:"listeners"`
	// TargetGroups are the target groups its listeners' actions forward to.
	// A target group used by several load balancers may appear in each; the
	// last copy given to Apply wins.
	TargetGroups []TargetGroup `json:"targetGroups"`
}

// Listener is one port of a load balancer.
type Listener struct {
	// ARN identifies the listener; Apply matches running listeners by ARN.
	ARN string `json:"arn"`
	// Protocol is "HTTP" (application) or "TCP" (network).
	Protocol string `json:"protocol"`
	// Port is the listening port; 0 picks a free port (tests), see
	// Engine.ListenerAddrs.
	Port int `json:"port"`
	// DefaultActions run when no rule matches (for TCP listeners, always).
	DefaultActions []Action `json:"defaultActions"`
	// Rules are evaluated by ascending Priority (HTTP listeners only).
	Rules []Rule `json:"rules,omitempty"`
}

// Rule is a listener rule: when all its conditions match, its actions run.
type Rule struct {
	ARN        string      `json:"arn"`
	Priority   int         `json:"priority"`
	Conditions []Condition `json:"conditions"`
	Actions    []Action    `json:"actions"`
}

// Condition is one rule condition. The values of one condition are OR'ed; the
// conditions of a rule are AND'ed, as in ELBv2.
//
//   - path-pattern: Values are patterns over the URL path, case-sensitive,
//     with * (any run of characters) and ? (one character).
//   - host-header: Values are patterns over the Host (port removed),
//     case-insensitive, with * and ?.
//   - http-header: HTTPHeaderName names the header (case-insensitive);
//     Values are case-insensitive patterns over any of its values.
//   - http-request-method: Values are method names, compared exactly.
//   - query-string: QueryString pairs; a pair matches a query parameter when
//     its Key (if set) and Value patterns both match, case-insensitively.
//   - source-ip: SourceIP are CIDRs matched against the client's address.
type Condition struct {
	Field          string     `json:"field"`
	Values         []string   `json:"values,omitempty"`
	HTTPHeaderName string     `json:"httpHeaderName,omitempty"`
	QueryString    []KeyValue `json:"queryString,omitempty"`
	SourceIP       []string   `json:"sourceIp,omitempty"`
}

// KeyValue is one query-string condition value; an empty Key matches any key.
type KeyValue struct {
	Key   string `json:"key,omitempty"`
	Value string `json:"value"`
}

// Action is what a listener or rule does with a request. Only the first
// action of a list is used (ELBv2's authenticate actions, which would come
// first, are not supported).
type Action struct {
	Type          string         `json:"type"`
	Forward       *ForwardConfig `json:"forwardConfig,omitempty"`
	FixedResponse *FixedResponse `json:"fixedResponseConfig,omitempty"`
	Redirect      *Redirect      `json:"redirectConfig,omitempty"`
}

// ForwardConfig spreads requests (or connections) over target groups by
// weight. Weights are 0..999; a single group with weight 0 still receives
// traffic, as ELBv2 treats a lone TargetGroupArn.
type ForwardConfig struct {
	TargetGroups []WeightedTargetGroup `json:"targetGroups"`
}

// WeightedTargetGroup is one target group of a forward action.
type WeightedTargetGroup struct {
	ARN    string `json:"arn"`
	Weight int    `json:"weight"`
}

// FixedResponse answers without a target.
type FixedResponse struct {
	// StatusCode is the HTTP status, "2XX", "4XX" or "5XX" in ELBv2 ("200").
	StatusCode string `json:"statusCode"`
	// ContentType defaults to "text/plain".
	ContentType string `json:"contentType,omitempty"`
	MessageBody string `json:"messageBody,omitempty"`
}

// Redirect answers with a redirect. Every URI component may use the
// placeholders #{protocol}, #{host}, #{port}, #{path} and #{query}; an empty
// component keeps the request's value (ELBv2's defaults).
type Redirect struct {
	Protocol string `json:"protocol,omitempty"` // HTTP, HTTPS or #{protocol}
	Host     string `json:"host,omitempty"`
	Port     string `json:"port,omitempty"`
	Path     string `json:"path,omitempty"` // starts with "/"
	Query    string `json:"query,omitempty"`
	// StatusCode is HTTP_301 or HTTP_302.
	StatusCode string `json:"statusCode"`
}

// TargetGroup is a set of targets with a health check and an algorithm.
type TargetGroup struct {
	ARN string `json:"arn"`
	// Protocol is "HTTP" (ALB) or "TCP" (NLB).
	Protocol string `json:"protocol"`
	// Port is the default target port, used by targets without one.
	Port    int      `json:"port"`
	Targets []Target `json:"targets"`
	// HealthCheck configures the target group's health checks.
	HealthCheck HealthCheck `json:"healthCheck"`
	// DeregistrationDelay bounds how long a removed target drains
	// (deregistration_delay.timeout_seconds, 300 s in ELBv2). Zero closes
	// a removed target's connections at once.
	DeregistrationDelay time.Duration `json:"deregistrationDelay"`
	// Algorithm is round_robin (default) or least_outstanding_requests.
	// Network target groups always use the flow hash.
	Algorithm string `json:"algorithm,omitempty"`
	// SlowStart is accepted and ignored for now (targets get their full
	// share as soon as they are healthy).
	SlowStart time.Duration `json:"slowStart,omitempty"`
	// ProxyProtocolV2 (proxy_protocol_v2.enabled, network only) sends a
	// PROXY protocol v2 header with the client's address on each
	// connection to a target. The NLB otherwise connects from its own
	// address: it does not preserve client addresses.
	ProxyProtocolV2 bool `json:"proxyProtocolV2,omitempty"`
}

// Target is a registered target: an IP address (or an instance id) and port.
type Target struct {
	ID string `json:"id"`
	// Port is the target port; 0 means TargetGroup.Port.
	Port int `json:"port,omitempty"`
	// Address, for an instance target (ID is an instance id), is the
	// instance's address that connections dial; empty means ID.
	Address string `json:"address,omitempty"`
}

// HealthCheck configures a target group's health checks. Intervals are
// durations (ELBv2 gives seconds) so that tests can use short ones.
type HealthCheck struct {
	// Enabled turns checks on. With checks off, targets are healthy as soon
	// as they are registered.
	Enabled bool `json:"enabled"`
	// Protocol is HTTP or TCP; empty means the target group's protocol.
	Protocol string `json:"protocol,omitempty"`
	// Port is "traffic-port" (default) or a port number.
	Port string `json:"port,omitempty"`
	// Path is the HTTP check's path; default "/".
	Path string `json:"path,omitempty"`
	// Interval between checks of one target; default 30 s.
	Interval time.Duration `json:"interval,omitempty"`
	// Timeout of one check; default 5 s (6 s for HTTP in ELBv2 NLBs,
	// 5 s for ALBs); it is capped at Interval.
	Timeout time.Duration `json:"timeout,omitempty"`
	// HealthyThreshold consecutive successes make a target healthy;
	// default 5.
	HealthyThreshold int `json:"healthyThreshold,omitempty"`
	// UnhealthyThreshold consecutive failures make it unhealthy; default 2.
	UnhealthyThreshold int `json:"unhealthyThreshold,omitempty"`
	// Matcher is the HTTP codes that pass: "200", "200-299", "200,302".
	// Default "200".
	Matcher string `json:"matcher,omitempty"`
}

// Target states and reason codes, as DescribeTargetHealth reports them.
const (
	StateInitial   = "initial"
	StateHealthy   = "healthy"
	StateUnhealthy = "unhealthy"
	StateDraining  = "draining"

	ReasonRegistrationInProgress   = "Elb.RegistrationInProgress"
	ReasonInitialHealthChecking    = "Elb.InitialHealthChecking"
	ReasonResponseCodeMismatch     = "Target.ResponseCodeMismatch"
	ReasonTimeout                  = "Target.Timeout"
	ReasonFailedHealthChecks       = "Target.FailedHealthChecks"
	ReasonDeregistrationInProgress = "Target.DeregistrationInProgress"
)

// TargetStatus is the health of one target, for DescribeTargetHealth.
type TargetStatus struct {
	ID          string `json:"id"`
	Port        int    `json:"port"`
	State       string `json:"state"`
	Reason      string `json:"reason,omitempty"`
	Description string `json:"description,omitempty"`
}

// withDefaults returns h with ELBv2's defaults filled in.
func (h HealthCheck) withDefaults(tgProtocol string) HealthCheck {
	if h.Protocol == "" {
		h.Protocol = tgProtocol
	}
	if h.Port == "" {
		h.Port = "traffic-port"
	}
	if h.Path == "" {
		h.Path = "/"
	}
	if h.Interval <= 0 {
		h.Interval = 30 * time.Second
	}
	if h.Timeout <= 0 {
		h.Timeout = 5 * time.Second
	}
	if h.Timeout > h.Interval {
		h.Timeout = h.Interval
	}
	if h.HealthyThreshold <= 0 {
		h.HealthyThreshold = 5
	}
	if h.UnhealthyThreshold <= 0 {
		h.UnhealthyThreshold = 2
	}
	if h.Matcher == "" {
		h.Matcher = "200"
	}
	return h
}

// codeRange is an inclusive range of HTTP status codes.
type codeRange struct{ lo, hi int }

// parseMatcher parses "200", "200-299" or "200,302".
func parseMatcher(s string) ([]codeRange, error) {
	var out []codeRange
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 100 || a > 599 {
			return nil, fmt.Errorf("matcher %q: bad code %q", s, lo)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a || b > 599 {
				return nil, fmt.Errorf("matcher %q: bad range %q", s, part)
			}
		}
		out = append(out, codeRange{a, b})
	}
	return out, nil
}

func matchCode(rs []codeRange, code int) bool {
	for _, r := range rs {
		if code >= r.lo && code <= r.hi {
			return true
		}
	}
	return false
}

// validateAction checks one action list against the known target groups.
func validateActions(acts []Action, tgs map[string]*TargetGroup, lbType string) error {
	if len(acts) == 0 {
		return fmt.Errorf("no actions")
	}
	a := acts[0]
	switch a.Type {
	case ActionForward:
		if a.Forward == nil || len(a.Forward.TargetGroups) == 0 {
			return fmt.Errorf("forward action without target groups")
		}
		for _, wtg := range a.Forward.TargetGroups {
			if _, ok := tgs[wtg.ARN]; !ok {
				return fmt.Errorf("forward to unknown target group %q", wtg.ARN)
			}
			if wtg.Weight < 0 || wtg.Weight > 999 {
				return fmt.Errorf("target group %q: weight %d out of 0..999", wtg.ARN, wtg.Weight)
			}
		}
	case ActionFixedResponse, ActionRedirect:
		if lbType != TypeApplication {
			return fmt.Errorf("%s action on a %s load balancer", a.Type, lbType)
		}
		if a.Type == ActionFixedResponse {
			if a.FixedResponse == nil {
				return fmt.Errorf("fixed-response action without config")
			}
			if c, err := strconv.Atoi(a.FixedResponse.StatusCode); err != nil || c < 200 || c > 599 {
				return fmt.Errorf("fixed-response: bad status code %q", a.FixedResponse.StatusCode)
			}
		} else {
			if a.Redirect == nil {
				return fmt.Errorf("redirect action without config")
			}
			if a.Redirect.StatusCode != "HTTP_301" && a.Redirect.StatusCode != "HTTP_302" {
				return fmt.Errorf("redirect: bad status code %q", a.Redirect.StatusCode)
			}
		}
	default:
		return fmt.Errorf("unsupported action type %q", a.Type)
	}
	return nil
}

// validate checks a whole configuration before Apply changes anything.
func validate(lbs []LoadBalancer) (map[string]*TargetGroup, error) {
	tgs := map[string]*TargetGroup{}
	for i := range lbs {
		for j := range lbs[i].TargetGroups {
			tg := &lbs[i].TargetGroups[j]
			if tg.ARN == "" {
				return nil, fmt.Errorf("load balancer %q: target group without ARN", lbs[i].ARN)
			}
			switch tg.Protocol {
			case ProtocolHTTP, ProtocolTCP:
			default:
				return nil, fmt.Errorf("target group %q: unsupported protocol %q", tg.ARN, tg.Protocol)
			}
			hc := tg.HealthCheck.withDefaults(tg.Protocol)
			if _, err := parseMatcher(hc.Matcher); err != nil {
				return nil, fmt.Errorf("target group %q: %w", tg.ARN, err)
			}
			if hc.Port != "traffic-port" {
				if p, err := strconv.Atoi(hc.Port); err != nil || p < 1 || p > 65535 {
					return nil, fmt.Errorf("target group %q: bad health check port %q", tg.ARN, hc.Port)
				}
			}
			switch tg.Algorithm {
			case "", AlgorithmRoundRobin, AlgorithmLeastOutstandingRequests:
			default:
				return nil, fmt.Errorf("target group %q: unsupported algorithm %q", tg.ARN, tg.Algorithm)
			}
			for _, t := range tg.Targets {
				if _, err := netip.ParseAddr(cmp.Or(t.Address, t.ID)); err != nil {
					return nil, fmt.Errorf("target group %q: target %q is not an IP address and has none", tg.ARN, t.ID)
				}
				if port := targetPort(tg, t); port < 1 || port > 65535 {
					return nil, fmt.Errorf("target group %q: target %s: bad port %d", tg.ARN, t.ID, port)
				}
			}
			tgs[tg.ARN] = tg
		}
	}
	seen := map[string]bool{}
	for _, lb := range lbs {
		want := ProtocolHTTP
		switch lb.Type {
		case TypeApplication:
		case TypeNetwork:
			want = ProtocolTCP
		default:
			return nil, fmt.Errorf("load balancer %q: unsupported type %q", lb.ARN, lb.Type)
		}
		for _, a := range lb.Addresses {
			if _, err := netip.ParseAddr(a); err != nil {
				return nil, fmt.Errorf("load balancer %q: bad address %q", lb.ARN, a)
			}
		}
		for _, l := range lb.Listeners {
			if l.ARN == "" || seen[l.ARN] {
				return nil, fmt.Errorf("load balancer %q: listener ARN %q empty or repeated", lb.ARN, l.ARN)
			}
			seen[l.ARN] = true
			if l.Protocol != want {
				return nil, fmt.Errorf("listener %q: protocol %q unsupported on a %s load balancer", l.ARN, l.Protocol, lb.Type)
			}
			if l.Port < 0 || l.Port > 65535 {
				return nil, fmt.Errorf("listener %q: bad port %d", l.ARN, l.Port)
			}
			if err := validateActions(l.DefaultActions, tgs, lb.Type); err != nil {
				return nil, fmt.Errorf("listener %q: default actions: %w", l.ARN, err)
			}
			if lb.Type == TypeNetwork && len(l.Rules) > 0 {
				return nil, fmt.Errorf("listener %q: rules on a TCP listener", l.ARN)
			}
			for _, r := range l.Rules {
				if err := validateActions(r.Actions, tgs, lb.Type); err != nil {
					return nil, fmt.Errorf("listener %q: rule %q: %w", l.ARN, r.ARN, err)
				}
				if _, err := compileConditions(r.Conditions); err != nil {
					return nil, fmt.Errorf("listener %q: rule %q: %w", l.ARN, r.ARN, err)
				}
			}
		}
	}
	return tgs, nil
}

func targetPort(tg *TargetGroup, t Target) int {
	if t.Port != 0 {
		return t.Port
	}
	return tg.Port
}
