// Package elb owns berth's Elastic Load Balancing (ELBv2) control plane:
// application and network load balancers, their listeners and rules, target
// groups with their attributes, registered targets and the health the data
// plane reports for them.
//
// It serves the ELBv2 API (version 2015-12-01) over the query protocol
// (QueryService); gives ECS a small Go API to register a service's tasks
// as targets and read their health (RegisterTargets, DeregisterTargets,
// TargetHealth, TargetGroup); gives the future data plane a snapshot of every
// load balancer to build its proxies from (LoadBalancers) and a way to report
// health (SetTargetHealth, ReportTargetHealth); and runs reconcilers (Run)
// that delete targets once their deregistration delay has passed and place
// load balancers on nodes (placement.go: node, public address, ENIs and the
// agentapi.LoadBalancerSpec the node's agent runs). It does not proxy
// traffic.
//
// A load balancer is "provisioning" for Config.ProvisioningTime after it is
// created and, when placement runs, until it is placed; "active" after,
// computed when it is read. Its DNSName,
// NAME-<10 digits>.REGION.elb.localhost (internal-NAME-… for an internal
// one), is resolved on the host by the data plane, not here.
//
// Subnets, VPCs and security groups belong to the VPC service; this package
// reads them through the Networks interface it defines, so it does not
// import internal/vpc. All state lives in etcd (layout in records.go and
// internal/store/keys.go); every change is one transaction, so bad input or
// a lost race never leaves a half-made change.
package elb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/berthdev/berth/internal/protocol"
	"github.com/berthdev/berth/internal/store"
)

// ELBv2 API identity on the query protocol.
const (
	APIVersion   = "2015-12-01"
	SigningName  = "elasticloadbalancing"
	XMLNamespace = "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"
)

// Defaults of Config.
const (
	DefaultProvisioningTime  = time.Second
	DefaultReconcileInterval = time.Second
)

// Networks is what the ELB control plane needs to know of the VPC service.
// It uses plain types so that *vpc.Service satisfies it without either
// package importing the other.
type Networks interface {
	// SubnetInfo returns a subnet's VPC, availability zone and CIDR block;
	// vpcID is "" when the account has no such subnet.
	SubnetInfo(ctx context.Context, account, region, subnetID string) (vpcID, zone, cidr string, err error)
	// VpcCIDR returns a VPC's CIDR block, "" when the account has no such VPC.
	VpcCIDR(ctx context.Context, account, region, vpcID string) (cidr string, err error)
	// SecurityGroupsIn returns those of ids that are security groups of
	// vpcID (missing or foreign ones are left out); for no ids, the VPC's
	// default group.
	SecurityGroupsIn(ctx context.Context, account, region, vpcID string, ids []string) ([]string, error)
}

// Config configures the ELB service.
type Config struct {
	Store    *store.Store
	Networks Networks
	Logger   *slog.Logger
	// ProvisioningTime is how long a new load balancer stays
	// "provisioning" (default DefaultProvisioningTime).
	ProvisioningTime time.Duration
	// ReconcileInterval is how often Run looks for drained targets
	// (default DefaultReconcileInterval).
	ReconcileInterval time.Duration
	// Now is the clock (tests may replace it).
	Now func() time.Time
	// Nodes lists the registered agent nodes load balancers may be placed
	// on. With Nodes and ENIs set, Run also places load balancers
	// (placement.go); without, they are never placed and turn "active"
	// after ProvisioningTime.
	Nodes func(ctx context.Context) ([]string, error)
	// ENIs gives placed load balancers their network interfaces.
	ENIs ENIs
	// Firewall resolves load balancers' security groups into the ingress
	// rules of their specs (nil: specs carry no ingress of groups).
	Firewall GroupIngress
	// Instances resolves the targets of instance target groups (a user's
	// container instances) to the addresses the data plane dials (nil:
	// instance targets are refused).
	Instances Instances
	// PublicPool is where load balancers' public addresses come from
	// (default DefaultPublicPool); its network address and first address
	// are never handed out.
	PublicPool netip.Prefix
}

// Instances is the container instances an instance target group's targets
// name: InstanceAddress returns the address of an account's instance, or an
// error if the account has no such instance.
type Instances interface {
	InstanceAddress(ctx context.Context, account, region, instanceID string) (string, error)
}

// Service implements the ELBv2 API and its Go API.
type Service struct {
	cfg Config
	st  *store.Store
	net Networks
	log *slog.Logger

	// lbScopes are the scopes ("account/region") that had a load balancer
	// at the last placement pass (nil: no pass yet).
	lbScopes atomic.Pointer[map[string]bool]
}

// New creates the ELB service.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil {
		return nil, fmt.Errorf("new elb service: Store is required")
	}
	if cfg.Networks == nil {
		return nil, fmt.Errorf("new elb service: Networks is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ProvisioningTime <= 0 {
		cfg.ProvisioningTime = DefaultProvisioningTime
	}
	if cfg.ReconcileInterval <= 0 {
		cfg.ReconcileInterval = DefaultReconcileInterval
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if !cfg.PublicPool.IsValid() {
		cfg.PublicPool = DefaultPublicPool
	}
	if !cfg.PublicPool.Addr().Is4() || cfg.PublicPool.Bits() > 30 {
		return nil, fmt.Errorf("new elb service: public pool %s: need an IPv4 prefix of /30 or larger", cfg.PublicPool)
	}
	cfg.PublicPool = cfg.PublicPool.Masked()
	return &Service{cfg: cfg, st: cfg.Store, net: cfg.Networks, log: cfg.Logger}, nil
}

// QueryService returns the ELBv2 actions for the protocol router.
func (s *Service) QueryService() protocol.QueryService {
	return protocol.QueryService{
		Version:      APIVersion,
		SigningName:  SigningName,
		XMLNamespace: XMLNamespace,
		Style:        protocol.StyleStandard,
		Ops: map[string]protocol.QueryHandler{
			// api_lbs.go
			"CreateLoadBalancer":             s.op(s.createLoadBalancer),
			"DescribeLoadBalancers":          s.op(s.describeLoadBalancers),
			"DeleteLoadBalancer":             s.op(s.deleteLoadBalancer),
			"DescribeLoadBalancerAttributes": s.op(s.describeLoadBalancerAttributes),
			"ModifyLoadBalancerAttributes":   s.op(s.modifyLoadBalancerAttributes),
			"SetSecurityGroups":              s.op(s.setSecurityGroups),
			// api_tgs.go
			"CreateTargetGroup":             s.op(s.createTargetGroup),
			"DescribeTargetGroups":          s.op(s.describeTargetGroups),
			"ModifyTargetGroup":             s.op(s.modifyTargetGroup),
			"DeleteTargetGroup":             s.op(s.deleteTargetGroup),
			"DescribeTargetGroupAttributes": s.op(s.describeTargetGroupAttributes),
			"ModifyTargetGroupAttributes":   s.op(s.modifyTargetGroupAttributes),
			// api_targets.go
			"RegisterTargets":      s.op(s.registerTargets),
			"DeregisterTargets":    s.op(s.deregisterTargets),
			"DescribeTargetHealth": s.op(s.describeTargetHealth),
			// api_listeners.go
			"CreateListener":    s.op(s.createListener),
			"DescribeListeners": s.op(s.describeListeners),
			"ModifyListener":    s.op(s.modifyListener),
			"DeleteListener":    s.op(s.deleteListener),
			// api_rules.go
			"CreateRule":        s.op(s.createRule),
			"DescribeRules":     s.op(s.describeRules),
			"ModifyRule":        s.op(s.modifyRule),
			"DeleteRule":        s.op(s.deleteRule),
			"SetRulePriorities": s.op(s.setRulePriorities),
			// api_tags.go
			"AddTags":               s.op(s.addTags),
			"RemoveTags":            s.op(s.removeTags),
			"DescribeTags":          s.op(s.describeTags),
			"DescribeAccountLimits": s.op(s.describeAccountLimits),
		},
	}
}

// scope is one account's resources in one region.
type scope struct{ account, region string }

// opFunc is an ELBv2 action of the caller's scope.
type opFunc func(ctx context.Context, sc scope, p url.Values) (any, error)

func (s *Service) op(fn opFunc) protocol.QueryHandler {
	return func(ctx context.Context, p url.Values) (any, error) {
		id, ok := protocol.IdentityFrom(ctx)
		if !ok || id.AccountID == "" {
			return nil, errAccessDenied()
		}
		return fn(ctx, newScope(id.AccountID, id.Region), p)
	}
}

func newScope(account, region string) scope {
	if region == "" {
		region = "us-east-1"
	}
	return scope{account: account, region: region}
}

// newID returns 16 lowercase hex digits, the id part of an ELBv2 ARN.
func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go ≥1.24).
	return hex.EncodeToString(b[:])
}
