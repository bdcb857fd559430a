package ecs

import (
	"context"
	"errors"
	"regexp"
	"sort"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/berthdev/berth/internal/protocol"
	"github.com/berthdev/berth/internal/scheduler"
	"github.com/berthdev/berth/internal/store"
)

// Capacity providers. FARGATE and FARGATE_SPOT are berth's own capacity,
// on every cluster of every account; FARGATE_SPOT is the same hosts, its
// tasks billed at the Spot rate and interruptible (spot.go). A user's
// capacity provider is a group of their container instances: on AWS it
// wraps an Auto Scaling group; berth has none, so the group is the
// container instances that joined with `berth agent --capacity-provider
// NAME`. Its autoScalingGroupArn, managed scaling and managed termination
// protection are recorded and shown but nothing scales: berth never adds or
// terminates hosts, so termination protection has nothing to protect.
//
// A strategy either names Fargate providers (tasks are FARGATE, on berth's
// hosts) or the user's (tasks are EC2, on that provider's instances), never
// both, as ECS requires. Tasks of a user's provider that no instance can
// take stay PROVISIONING until one can, as ECS does.

const (
	providerFargate     = "FARGATE"
	providerFargateSpot = "FARGATE_SPOT"
)

// CapacityProviderStrategyItem is ECS's capacityProviderStrategy element.
type CapacityProviderStrategyItem struct {
	CapacityProvider string `json:"capacityProvider"`
	Weight           int    `json:"weight"`
	Base             int    `json:"base"`
}

// CapacityProvider is ECS's capacity provider shape.
type CapacityProvider struct {
	CapacityProviderArn      string                    `json:"capacityProviderArn"`
	Name                     string                    `json:"name"`
	Status                   string                    `json:"status"`
	AutoScalingGroupProvider *AutoScalingGroupProvider `json:"autoScalingGroupProvider,omitempty"`
	UpdateStatus             string                    `json:"updateStatus,omitempty"`
	Tags                     []Tag                     `json:"tags,omitempty"`
}

// AutoScalingGroupProvider is recorded as given (see the package note).
type AutoScalingGroupProvider struct {
	AutoScalingGroupArn          string          `json:"autoScalingGroupArn"`
	ManagedScaling               *ManagedScaling `json:"managedScaling,omitempty"`
	ManagedTerminationProtection string          `json:"managedTerminationProtection,omitempty"`
	ManagedDraining              string          `json:"managedDraining,omitempty"`
}

// ManagedScaling is an Auto Scaling group's managed scaling settings.
type ManagedScaling struct {
	Status                 string `json:"status,omitempty"`
	TargetCapacity         int    `json:"targetCapacity,omitempty"`
	MinimumScalingStepSize int    `json:"minimumScalingStepSize,omitempty"`
	MaximumScalingStepSize int    `json:"maximumScalingStepSize,omitempty"`
	InstanceWarmupPeriod   int    `json:"instanceWarmupPeriod,omitempty"`
}

var providerNameRE = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,255}$`)

func isFargateProvider(name string) bool {
	return name == providerFargate || name == providerFargateSpot
}

func providerKey(sc scope, name string) string {
	return store.Scoped(sc.account, sc.region, "capacity-providers", name)
}

func fargateProviders(sc scope) []CapacityProvider {
	return []CapacityProvider{
		{CapacityProviderArn: sc.arn("capacity-provider/" + providerFargate), Name: providerFargate, Status: "ACTIVE"},
		{CapacityProviderArn: sc.arn("capacity-provider/" + providerFargateSpot), Name: providerFargateSpot, Status: "ACTIVE"},
	}
}

type createProviderInput struct {
	Name                     string                    `json:"name"`
	AutoScalingGroupProvider *AutoScalingGroupProvider `json:"autoScalingGroupProvider"`
	Tags                     []Tag                     `json:"tags"`
}

func (s *Service) createCapacityProvider(ctx context.Context, body []byte) (any, error) {
	sc, in, err := request[createProviderInput](ctx, body)
	if err != nil {
		return nil, err
	}
	if !providerNameRE.MatchString(in.Name) {
		return nil, invalidParam("The capacity provider name can have up to 255 characters: letters, numbers, underscores and hyphens.")
	}
	lower := strings.ToLower(in.Name)
	if strings.HasPrefix(lower, "aws") || strings.HasPrefix(lower, "ecs") || strings.HasPrefix(lower, "fargate") {
		return nil, invalidParam("The capacity provider name cannot be prefixed with \"aws\", \"ecs\", or \"fargate\".")
	}
	if in.AutoScalingGroupProvider == nil || in.AutoScalingGroupProvider.AutoScalingGroupArn == "" {
		return nil, invalidParam("autoScalingGroupProvider.autoScalingGroupArn is required. (berth has no Auto Scaling groups: any name is recorded; the provider's capacity is the container instances that join with `berth agent --capacity-provider %s`.)", in.Name)
	}
	if err := validateTags(in.Tags); err != nil {
		return nil, err
	}
	asg := *in.AutoScalingGroupProvider
	if asg.ManagedTerminationProtection == "" {
		asg.ManagedTerminationProtection = "DISABLED"
	}
	if asg.ManagedScaling == nil {
		asg.ManagedScaling = &ManagedScaling{Status: "DISABLED", TargetCapacity: 100, MinimumScalingStepSize: 1, MaximumScalingStepSize: 10000, InstanceWarmupPeriod: 300}
	}
	cp := CapacityProvider{CapacityProviderArn: sc.arn("capacity-provider/" + in.Name), Name: in.Name, Status: "ACTIVE",
		AutoScalingGroupProvider: &asg, Tags: in.Tags}
	if err := s.st.Create(ctx, providerKey(sc, in.Name), cp); errors.Is(err, store.ErrExists) {
		return nil, clientErr("The specified capacity provider already exists. To change the configuration of an existing capacity provider, update the capacity provider.")
	} else if err != nil {
		return nil, err
	}
	return map[string]any{"capacityProvider": cp}, nil
}

// getProvider finds one of the account's providers (FARGATE and
// FARGATE_SPOT included).
func (s *Service) getProvider(ctx context.Context, sc scope, ref string) (*CapacityProvider, error) {
	name := lastSegment(ref)
	if strings.HasPrefix(ref, "arn:") && foreignArn(sc, ref) {
		return nil, store.ErrNotFound
	}
	for _, f := range fargateProviders(sc) {
		if f.Name == name {
			return &f, nil
		}
	}
	var cp CapacityProvider
	if _, err := s.st.Get(ctx, providerKey(sc, name), &cp); err != nil {
		return nil, err
	}
	return &cp, nil
}

func (s *Service) describeCapacityProviders(ctx context.Context, body []byte) (any, error) {
	sc, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	var in struct {
		CapacityProviders []string `json:"capacityProviders"`
		Include           []string `json:"include"`
		MaxResults        *int     `json:"maxResults"`
		NextToken         string   `json:"nextToken"`
	}
	if err := protocol.Decode(body, &in); err != nil {
		return nil, err
	}
	failures := []Failure{}
	var out []CapacityProvider
	if len(in.CapacityProviders) > 0 {
		for _, ref := range in.CapacityProviders {
			cp, err := s.getProvider(ctx, sc, ref)
			if errors.Is(err, store.ErrNotFound) {
				failures = append(failures, Failure{Arn: ref, Reason: "MISSING"})
				continue
			}
			if err != nil {
				return nil, err
			}
			out = append(out, *cp)
		}
	} else {
		own, err := store.ListJSON[CapacityProvider](ctx, s.st, store.ScopedPrefix(sc.account, sc.region, "capacity-providers"))
		if err != nil {
			return nil, err
		}
		out = append(fargateProviders(sc), own...)
		sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	}
	if !contains(in.Include, "TAGS") {
		for i := range out {
			out[i].Tags = nil
		}
	}
	pg, next, err := page(out, func(c CapacityProvider) string { return c.Name }, in.NextToken, in.MaxResults, 10)
	if err != nil {
		return nil, err
	}
	if pg == nil {
		pg = []CapacityProvider{}
	}
	res := map[string]any{"capacityProviders": pg, "failures": failures}
	if next != "" {
		res["nextToken"] = next
	}
	return res, nil
}

func (s *Service) updateCapacityProvider(ctx context.Context, body []byte) (any, error) {
	sc, in, err := request[createProviderInput](ctx, body)
	if err != nil {
		return nil, err
	}
	if isFargateProvider(in.Name) {
		return nil, invalidParam("The FARGATE and FARGATE_SPOT capacity providers cannot be updated.")
	}
	cp, err := store.Mutate(ctx, s.st, providerKey(sc, lastSegment(in.Name)), func(cp *CapacityProvider) ([]clientv3.Op, error) {
		if a := in.AutoScalingGroupProvider; a != nil && cp.AutoScalingGroupProvider != nil {
			if a.ManagedScaling != nil {
				cp.AutoScalingGroupProvider.ManagedScaling = a.ManagedScaling
			}
			if a.ManagedTerminationProtection != "" {
				cp.AutoScalingGroupProvider.ManagedTerminationProtection = a.ManagedTerminationProtection
			}
			if a.ManagedDraining != "" {
				cp.AutoScalingGroupProvider.ManagedDraining = a.ManagedDraining
			}
		}
		cp.UpdateStatus = "UPDATE_COMPLETE"
		return nil, nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, invalidParam("The specified capacity provider does not exist.")
	}
	if err != nil {
		return nil, err
	}
	return map[string]any{"capacityProvider": cp}, nil
}

func (s *Service) deleteCapacityProvider(ctx context.Context, body []byte) (any, error) {
	sc, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	var in struct {
		CapacityProvider string `json:"capacityProvider"`
	}
	if err := protocol.Decode(body, &in); err != nil {
		return nil, err
	}
	name := lastSegment(in.CapacityProvider)
	if isFargateProvider(name) {
		return nil, invalidParam("The FARGATE and FARGATE_SPOT capacity providers cannot be deleted.")
	}
	cp, err := s.getProvider(ctx, sc, in.CapacityProvider)
	if errors.Is(err, store.ErrNotFound) {
		return nil, invalidParam("The specified capacity provider does not exist.")
	}
	if err != nil {
		return nil, err
	}
	clusters, err := store.ListJSON[Cluster](ctx, s.st, store.ScopedPrefix(sc.account, sc.region, "clusters"))
	if err != nil {
		return nil, err
	}
	for _, c := range clusters {
		if c.Status == "ACTIVE" && contains(c.CapacityProviders, name) {
			return nil, clientErr("The specified capacity provider is in use by cluster %s and cannot be deleted. Remove it with PutClusterCapacityProviders first.", c.ClusterName)
		}
	}
	if err := s.st.Delete(ctx, providerKey(sc, name)); err != nil {
		return nil, err
	}
	cp.Status = "INACTIVE"
	return map[string]any{"capacityProvider": cp}, nil
}

type putClusterProvidersInput struct {
	Cluster                         string                         `json:"cluster"`
	CapacityProviders               []string                       `json:"capacityProviders"`
	DefaultCapacityProviderStrategy []CapacityProviderStrategyItem `json:"defaultCapacityProviderStrategy"`
}

func (s *Service) putClusterCapacityProviders(ctx context.Context, body []byte) (any, error) {
	sc, in, err := request[putClusterProvidersInput](ctx, body)
	if err != nil {
		return nil, err
	}
	if in.CapacityProviders == nil || in.DefaultCapacityProviderStrategy == nil {
		return nil, invalidParam("capacityProviders and defaultCapacityProviderStrategy are required (they may be empty lists).")
	}
	cluster, err := s.getCluster(ctx, sc, in.Cluster)
	if err != nil {
		return nil, err
	}
	if err := s.checkClusterProviders(ctx, sc, cluster.ClusterName, in.CapacityProviders, in.DefaultCapacityProviderStrategy); err != nil {
		return nil, err
	}
	c, err := store.Mutate(ctx, s.st, store.Scoped(sc.account, sc.region, "clusters", cluster.ClusterName), func(c *Cluster) ([]clientv3.Op, error) {
		c.CapacityProviders = in.CapacityProviders
		c.DefaultCapacityProviderStrategy = in.DefaultCapacityProviderStrategy
		return nil, nil
	})
	if err != nil {
		return nil, err
	}
	return map[string]any{"cluster": s.withCounts(ctx, sc, c)}, nil
}

// checkClusterProviders checks providers a cluster is to use and its
// default strategy: each provider exists, a user's provider belongs to no
// other cluster, and the strategy uses only these providers.
func (s *Service) checkClusterProviders(ctx context.Context, sc scope, cluster string, providers []string, strategy []CapacityProviderStrategyItem) error {
	for _, p := range providers {
		if _, err := s.getProvider(ctx, sc, p); errors.Is(err, store.ErrNotFound) {
			return invalidParam("The specified capacity provider %s does not exist.", p)
		} else if err != nil {
			return err
		}
		if isFargateProvider(p) {
			continue
		}
		clusters, err := store.ListJSON[Cluster](ctx, s.st, store.ScopedPrefix(sc.account, sc.region, "clusters"))
		if err != nil {
			return err
		}
		for _, c := range clusters {
			if c.ClusterName != cluster && c.Status == "ACTIVE" && contains(c.CapacityProviders, p) {
				return invalidParam("The specified capacity provider %s is already associated with cluster %s.", p, c.ClusterName)
			}
		}
	}
	if len(strategy) == 0 {
		return nil
	}
	return checkStrategy(strategy, providers)
}

// checkStrategy applies ECS's rules to a capacity provider strategy whose
// providers must be among the cluster's.
func checkStrategy(strategy []CapacityProviderStrategyItem, clusterProviders []string) error {
	fargate, own := 0, 0
	for _, it := range strategy {
		if !contains(clusterProviders, it.CapacityProvider) {
			return invalidParam("The specified capacity provider strategy cannot contain a capacity provider that is not associated with the cluster. Associate the capacity provider with the cluster or specify a valid capacity provider and try again.")
		}
		if isFargateProvider(it.CapacityProvider) {
			fargate++
		} else {
			own++
		}
	}
	if fargate > 0 && own > 0 {
		return invalidParam("The specified capacity provider strategy cannot contain a mix of capacity providers using Auto Scaling groups and Fargate providers. Specify one or the other and try again.")
	}
	if err := scheduler.ValidateProviderStrategy(shares(strategy)); err != nil {
		return invalidParam("%s.", err.Error())
	}
	return nil
}

func shares(strategy []CapacityProviderStrategyItem) []scheduler.ProviderShare {
	out := make([]scheduler.ProviderShare, len(strategy))
	for i, it := range strategy {
		out[i] = scheduler.ProviderShare{Provider: it.CapacityProvider, Base: it.Base, Weight: it.Weight}
	}
	return out
}

// resolveLaunch decides how a RunTask or CreateService launches: a launch
// type, or a capacity provider strategy (the request's, else the cluster's
// default). It returns the strategy (nil for a launch type) and the launch
// type its tasks get.
func resolveLaunch(cluster *Cluster, launchType string, strategy []CapacityProviderStrategyItem) ([]CapacityProviderStrategyItem, string, error) {
	if launchType != "" && len(strategy) > 0 {
		return nil, "", invalidParam("Specifying both a launch type and capacity provider strategy is not supported. Remove one and try again.")
	}
	if launchType != "" {
		return nil, launchType, nil
	}
	if len(strategy) == 0 {
		strategy = cluster.DefaultCapacityProviderStrategy
	}
	if len(strategy) == 0 {
		return nil, providerFargate, nil // berth's default; ECS would use EC2
	}
	if err := checkStrategy(strategy, cluster.CapacityProviders); err != nil {
		return nil, "", err
	}
	if isFargateProvider(strategy[0].CapacityProvider) {
		return strategy, providerFargate, nil
	}
	return strategy, compatEC2, nil
}

// splitProviders names the provider of each of n new tasks.
func splitProviders(strategy []CapacityProviderStrategyItem, n int, running map[string]int) ([]string, error) {
	if len(strategy) == 0 {
		return nil, nil
	}
	out, err := scheduler.SplitByProviders(shares(strategy), n, running)
	if err != nil {
		return nil, invalidParam("%s.", err.Error())
	}
	return out, nil
}
