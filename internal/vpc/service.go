// Package vpc owns berth's EC2 networking control plane: VPCs, subnets,
// security groups and the task network interfaces (ENIs) of awsvpc tasks,
// with their address management (IPAM) and the per-ENI firewalls that the
// security groups compile to.
//
// It serves the EC2 API's networking actions over the query protocol
// (QueryService), gives ECS a small Go API to validate an
// awsvpcConfiguration and to attach and release a task's ENI (ResolveAwsvpc,
// AttachENI, ReleaseENI), and runs a reconciler (Run) that keeps every ENI's
// firewall (store key fw/<node>/<eni-id>) equal to the union of its groups'
// rules, a source group named by its address set (the group's members'
// addresses, AddressSets). It computes; the agent of
// each node applies what it computes (internal/netns). Every account gets, on
// first use, a default VPC with a default subnet per availability zone and a
// default security group, as in AWS.
//
// All state lives in etcd (layout in internal/store/keys.go); every change
// that touches several keys is one transaction, so bad input or a lost race
// never leaves a half-made change, and several server replicas may serve the
// API and run the reconciler at once.
package vpc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"sync"
	"time"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/protocol"
	"github.com/berthdev/berth/internal/store"
)

// EC2 API identity on the query protocol.
const (
	APIVersion   = "2016-11-15"
	SigningName  = "ec2"
	XMLNamespace = "http://ec2.amazonaws.com/doc/2016-11-15/"
)

// DefaultPublicIPPool is the pool public addresses come from unless
// Config.PublicIPPool says otherwise: a loopback range, so that in dev the
// host reaches tasks' public addresses without touching any real network.
var DefaultPublicIPPool = netip.MustParsePrefix("127.100.0.0/16")

// DefaultDebounce is how long the firewall reconciler gathers changes
// before it recomputes.
const DefaultDebounce = 25 * time.Millisecond

// Config configures the VPC service.
type Config struct {
	Store  *store.Store
	Logger *slog.Logger
	// PublicIPPool is where public IPs come from (default
	// DefaultPublicIPPool); its network address and first address are never
	// handed out. Leases are global, across accounts.
	PublicIPPool netip.Prefix
	// Debounce is the firewall reconciler's gathering delay (default
	// DefaultDebounce).
	Debounce time.Duration
	// Now is the clock (tests may replace it).
	Now func() time.Time
}

// Service implements the EC2 networking API and the ENI and firewall control
// plane.
type Service struct {
	cfg Config
	st  *store.Store
	log *slog.Logger

	// ready remembers the scopes whose defaults exist in etcd (a cache of
	// a fact that never becomes false: defaults are created once).
	ready sync.Map // scope → struct{}

	// leases is where attaches pick free addresses (leases.go).
	leases leaseCache

	// plans caches attach plans by configuration (cachedPlan).
	plansMu sync.Mutex
	plans   map[string]*attachPlan

	// sets caches the last read of each address set (readSet).
	setsMu sync.Mutex
	sets   map[string]agentapi.AddressSet
}

// New creates the VPC service.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil {
		return nil, fmt.Errorf("new vpc service: Store is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if !cfg.PublicIPPool.IsValid() {
		cfg.PublicIPPool = DefaultPublicIPPool
	}
	if !cfg.PublicIPPool.Addr().Is4() || cfg.PublicIPPool.Bits() > 30 {
		return nil, fmt.Errorf("new vpc service: public IP pool %s: need an IPv4 prefix of /30 or larger", cfg.PublicIPPool)
	}
	cfg.PublicIPPool = cfg.PublicIPPool.Masked()
	if cfg.Debounce <= 0 {
		cfg.Debounce = DefaultDebounce
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{cfg: cfg, st: cfg.Store, log: cfg.Logger}, nil
}

// QueryService returns the EC2 actions for the protocol router.
func (s *Service) QueryService() protocol.QueryService {
	return protocol.QueryService{
		Version:           APIVersion,
		SigningName:       SigningName,
		XMLNamespace:      XMLNamespace,
		Style:             protocol.StyleEC2,
		InternalErrorCode: "InternalError",
		Ops: map[string]protocol.QueryHandler{
			// api_vpcs.go
			"CreateVpc":    s.op(s.createVpc),
			"DescribeVpcs": s.op(s.describeVpcs),
			"DeleteVpc":    s.op(s.deleteVpc),
			// api_subnets.go
			"CreateSubnet":          s.op(s.createSubnet),
			"DescribeSubnets":       s.op(s.describeSubnets),
			"DeleteSubnet":          s.op(s.deleteSubnet),
			"ModifySubnetAttribute": s.op(s.modifySubnetAttribute),
			// api_groups.go, api_rules.go
			"CreateSecurityGroup":           s.op(s.createSecurityGroup),
			"DescribeSecurityGroups":        s.op(s.describeSecurityGroups),
			"DeleteSecurityGroup":           s.op(s.deleteSecurityGroup),
			"AuthorizeSecurityGroupIngress": s.op(s.authorize(false)),
			"AuthorizeSecurityGroupEgress":  s.op(s.authorize(true)),
			"RevokeSecurityGroupIngress":    s.op(s.revoke(false)),
			"RevokeSecurityGroupEgress":     s.op(s.revoke(true)),
			"DescribeSecurityGroupRules":    s.op(s.describeSecurityGroupRules),
			// api_enis.go, api_zones.go, api_tags.go
			"DescribeNetworkInterfaces": s.op(s.describeNetworkInterfaces),
			"DescribeAvailabilityZones": s.op(s.describeAvailabilityZones),
			"CreateTags":                s.op(s.createTags),
			"DeleteTags":                s.op(s.deleteTags),
		},
	}
}

// scope is one account's resources in one region.
type scope struct{ account, region string }

// opFunc is an EC2 action of the caller's scope.
type opFunc func(ctx context.Context, sc scope, p url.Values) (any, error)

// op adapts an action to a protocol.QueryHandler: it finds the caller's
// scope, makes sure its default VPC exists, and honours DryRun.
func (s *Service) op(fn opFunc) protocol.QueryHandler {
	return func(ctx context.Context, p url.Values) (any, error) {
		sc, err := scopeOf(ctx)
		if err != nil {
			return nil, err
		}
		if dry, _, err := protocol.QueryBool(p, "DryRun"); err != nil {
			return nil, err
		} else if dry {
			return nil, errDryRun()
		}
		if err := s.ensureDefaults(ctx, sc); err != nil {
			return nil, err
		}
		return fn(ctx, sc, p)
	}
}

func scopeOf(ctx context.Context) (scope, error) {
	id, ok := protocol.IdentityFrom(ctx)
	if !ok || id.AccountID == "" {
		return scope{}, errAuthFailure()
	}
	return newScope(id.AccountID, id.Region), nil
}

func newScope(account, region string) scope {
	if region == "" {
		region = "us-east-1"
	}
	return scope{account: account, region: region}
}

// newID returns a resource id: prefix, "-" and 17 lowercase hex digits.
func newID(prefix string) string {
	var b [9]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go ≥1.24).
	return prefix + "-" + hex.EncodeToString(b[:])[:17]
}
