package ecs

import (
	"context"
	"errors"
	"reflect"
	"regexp"
	"slices"
	"sort"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/berthdev/berth/internal/protocol"
	"github.com/berthdev/berth/internal/store"
)

// Service statuses, as ECS names them.
const (
	svcActive   = "ACTIVE"
	svcDraining = "DRAINING"
	svcInactive = "INACTIVE"
)

var serviceNameRE = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,255}$`)

type createServiceInput struct {
	Cluster                       string                         `json:"cluster"`
	ServiceName                   string                         `json:"serviceName"`
	TaskDefinition                string                         `json:"taskDefinition"`
	DesiredCount                  *int                           `json:"desiredCount"`
	LaunchType                    string                         `json:"launchType"`
	NetworkConfiguration          *NetworkConfiguration          `json:"networkConfiguration"`
	LoadBalancers                 []ServiceLoadBalancer          `json:"loadBalancers"`
	HealthCheckGracePeriodSeconds *int                           `json:"healthCheckGracePeriodSeconds"`
	DeploymentConfiguration       *DeploymentConfiguration       `json:"deploymentConfiguration"`
	PropagateTags                 string                         `json:"propagateTags"`
	EnableECSManagedTags          bool                           `json:"enableECSManagedTags"`
	Tags                          []Tag                          `json:"tags"`
	PlatformVersion               string                         `json:"platformVersion"`
	SchedulingStrategy            string                         `json:"schedulingStrategy"`
	ClientToken                   string                         `json:"clientToken"`
	PlacementConstraints          []PlacementConstraint          `json:"placementConstraints"`
	PlacementStrategy             []PlacementStrategy            `json:"placementStrategy"`
	CapacityProviderStrategy      []CapacityProviderStrategyItem `json:"capacityProviderStrategy"`
}

// serviceTaskDef resolves and checks the task definition of a service.
func (s *Service) serviceTaskDef(ctx context.Context, sc scope, ref, launchType string) (*TaskDefinition, error) {
	if ref == "" {
		return nil, invalidParam("taskDefinition is required.")
	}
	td, _, err := s.getTaskDef(ctx, sc, ref)
	if err != nil {
		return nil, err
	}
	if td.Status != "ACTIVE" {
		return nil, clientErr("TaskDefinition is inactive")
	}
	if !contains(td.Compatibilities, launchType) {
		return nil, invalidParam("Task definition does not support launch_type %s.", launchType)
	}
	return td, nil
}

// checkDeploymentConfiguration validates the percentages and fills ECS's defaults into have.
func checkDeploymentConfiguration(have, in *DeploymentConfiguration) (*DeploymentConfiguration, error) {
	out := &DeploymentConfiguration{MaximumPercent: new(int), MinimumHealthyPercent: new(int)}
	*out.MaximumPercent, *out.MinimumHealthyPercent = 200, 100
	if have != nil {
		*out.MaximumPercent, *out.MinimumHealthyPercent = percentOr(have.MaximumPercent, 200), percentOr(have.MinimumHealthyPercent, 100)
		out.DeploymentCircuitBreaker = have.DeploymentCircuitBreaker
	}
	if in != nil {
		if in.MaximumPercent != nil {
			*out.MaximumPercent = *in.MaximumPercent
		}
		if in.MinimumHealthyPercent != nil {
			*out.MinimumHealthyPercent = *in.MinimumHealthyPercent
		}
		if in.DeploymentCircuitBreaker != nil {
			out.DeploymentCircuitBreaker = in.DeploymentCircuitBreaker
		}
	}
	if m := *out.MinimumHealthyPercent; m < 0 || m > 100 {
		return nil, invalidParam("minimumHealthyPercent must be between 0 and 100.")
	}
	if m := *out.MaximumPercent; m < 100 || m > 2000 {
		return nil, invalidParam("maximumPercent must be between 100 and 2000.")
	}
	if out.DeploymentCircuitBreaker == nil {
		out.DeploymentCircuitBreaker = &DeploymentCircuitBreaker{}
	}
	return out, nil
}

// checkServiceLoadBalancers checks each load balancer against the task
// definition: the container exists and exposes the port.
func (s *Service) checkServiceLoadBalancers(ctx context.Context, sc scope, lbs []ServiceLoadBalancer, td *TaskDefinition) error {
	if len(lbs) == 0 {
		return nil
	}
	if s.cfg.LoadBalancers == nil {
		return invalidParam("load balancers are not available")
	}
	if len(lbs) > 5 {
		return invalidParam("loadBalancers can have at most 5 items.")
	}
	for _, lb := range lbs {
		if lb.TargetGroupArn == "" {
			return invalidParam("targetGroupArn is required for a load balancer of a service using the awsvpc network mode.")
		}
		if lb.ContainerName == "" || lb.ContainerPort == nil {
			return invalidParam("containerName and containerPort are required in a load balancer.")
		}
		i := slices.IndexFunc(td.ContainerDefinitions, func(c ContainerDefinition) bool { return c.Name == lb.ContainerName })
		if i < 0 {
			return invalidParam("The container %s does not exist in the task definition.", lb.ContainerName)
		}
		if !slices.ContainsFunc(td.ContainerDefinitions[i].PortMappings, func(pm PortMapping) bool {
			return pm.ContainerPort != nil && *pm.ContainerPort == *lb.ContainerPort
		}) {
			return invalidParam("The container %s did not have a container port %d defined.", lb.ContainerName, *lb.ContainerPort)
		}
		tt, err := s.cfg.LoadBalancers.TargetGroupType(ctx, sc.account, sc.region, lb.TargetGroupArn)
		if err != nil {
			return err
		}
		switch {
		case tt == "":
			return invalidParam("Unable to find target group %s.", lb.TargetGroupArn)
		case tt != "ip" && td.NetworkMode == networkAwsvpc:
			return invalidParam("The provided target group %s has target type %s, which is incompatible with the awsvpc network mode specified in the task definition.", lb.TargetGroupArn, tt)
		case tt != "instance" && (td.NetworkMode == networkBridge || td.NetworkMode == networkHost):
			return invalidParam("The provided target group %s has target type %s, which is incompatible with the %s network mode specified in the task definition.", lb.TargetGroupArn, tt, td.NetworkMode)
		case td.NetworkMode == networkNone:
			return invalidParam("A task definition with the none network mode cannot be behind a load balancer.")
		}
	}
	return nil
}

func (s *Service) createService(ctx context.Context, body []byte) (any, error) {
	sc, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	var in createServiceInput
	if err := protocol.Decode(body, &in); err != nil {
		return nil, err
	}
	if !serviceNameRE.MatchString(in.ServiceName) {
		return nil, invalidParam("Service name can have up to 255 characters: letters (uppercase and lowercase), numbers, underscores, and hyphens.")
	}
	desired := 0
	if in.DesiredCount != nil {
		desired = *in.DesiredCount
	}
	if desired < 0 {
		return nil, invalidParam("desiredCount must be 0 or more.")
	}
	switch in.SchedulingStrategy {
	case "", "REPLICA":
	case "DAEMON":
		return nil, invalidParam("The daemon scheduling strategy is not supported with the FARGATE launch type.")
	default:
		return nil, invalidParam("schedulingStrategy must be REPLICA or DAEMON.")
	}
	cluster, err := s.getCluster(ctx, sc, in.Cluster)
	if err != nil {
		return nil, err
	}
	strategy, launchType, err := resolveLaunch(cluster, in.LaunchType, in.CapacityProviderStrategy)
	if err != nil {
		return nil, err
	}
	switch launchType {
	case "FARGATE":
	case compatEC2:
	case "EXTERNAL":
		return nil, invalidParam("No Container Instances were found in your cluster.")
	default:
		return nil, invalidParam("launchType must be one of EC2, FARGATE, EXTERNAL.")
	}
	if launchType != compatEC2 && len(in.PlacementStrategy)+len(in.PlacementConstraints) > 0 {
		return nil, invalidParam("Placement strategies and constraints are not supported with launch type %s.", launchType)
	}
	if err := validatePlacement(in.PlacementStrategy, in.PlacementConstraints); err != nil {
		return nil, err
	}
	pv := in.PlatformVersion
	if pv == "" && launchType != compatEC2 {
		pv = "LATEST"
	}
	if launchType == compatEC2 && pv != "" {
		return nil, invalidParam("The platform version must be null when specifying an EC2 launch type.")
	}
	if launchType != compatEC2 && pv != "LATEST" && pv != "1.4.0" {
		return nil, invalidParam("The specified platform version does not exist. Use LATEST or 1.4.0.")
	}
	if p := in.PropagateTags; p != "" && p != "TASK_DEFINITION" && p != "SERVICE" && p != "NONE" {
		return nil, invalidParam("propagateTags must be one of TASK_DEFINITION, SERVICE, NONE.")
	}
	if g := in.HealthCheckGracePeriodSeconds; g != nil && *g < 0 {
		return nil, invalidParam("healthCheckGracePeriodSeconds must be 0 or more.")
	}
	if err := validateTags(in.Tags); err != nil {
		return nil, err
	}
	dc, err := checkDeploymentConfiguration(nil, in.DeploymentConfiguration)
	if err != nil {
		return nil, err
	}
	td, err := s.serviceTaskDef(ctx, sc, in.TaskDefinition, launchType)
	if err != nil {
		return nil, err
	}
	vpc, err := awsvpcConfig(td, in.NetworkConfiguration)
	if err != nil {
		return nil, err
	}
	if err := s.checkServiceLoadBalancers(ctx, sc, in.LoadBalancers, td); err != nil {
		return nil, err
	}
	plan, err := s.resolveAwsvpc(ctx, sc, vpc)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now()
	var nc *NetworkConfiguration
	if vpc != nil {
		nc = &NetworkConfiguration{AwsvpcConfiguration: vpc}
		if vpc.AssignPublicIp == "" {
			vpc.AssignPublicIp = "DISABLED"
		}
	}
	svc := ECSService{
		ServiceArn: sc.arn("service/" + cluster.ClusterName + "/" + in.ServiceName), ServiceName: in.ServiceName,
		ClusterArn: cluster.ClusterArn, LoadBalancers: in.LoadBalancers, ServiceRegistries: []struct{}{},
		Status: svcActive, DesiredCount: desired, LaunchType: launchType, PlatformVersion: pv, PlatformFamily: "Linux",
		TaskDefinition: td.TaskDefinitionArn, DeploymentConfiguration: dc, CreatedAt: NewTime(now),
		PlacementConstraints: orEmpty(in.PlacementConstraints), PlacementStrategy: orEmpty(in.PlacementStrategy), NetworkConfiguration: nc,
		HealthCheckGracePeriodSeconds: in.HealthCheckGracePeriodSeconds, SchedulingStrategy: "REPLICA",
		DeploymentController: &DeploymentController{Type: "ECS"}, Tags: in.Tags,
		EnableECSManagedTags: in.EnableECSManagedTags, PropagateTags: in.PropagateTags,
		CreatedBy: "arn:aws:iam::" + sc.account + ":root", CapacityProviderStrategy: strategy,
	}
	if svc.LoadBalancers == nil {
		svc.LoadBalancers = []ServiceLoadBalancer{}
	}
	if svc.PropagateTags == "" {
		svc.PropagateTags = "NONE"
	}
	rec := serviceRecord{Service: svc, Account: sc.account, Region: sc.region, Cluster: cluster.ClusterName}
	d := newDeployment(td.TaskDefinitionArn, launchType, pv, nc, plan, desired, now)
	d.CapacityProviderStrategy = strategy
	rec.startDeployment(d, now)
	key := serviceKey(sc, cluster.ClusterName, in.ServiceName)
	var existing serviceRecord
	rev, err := s.st.Get(ctx, key, &existing)
	switch {
	case err == nil && existing.Service.Status == svcActive:
		return nil, invalidParam("Creation of service was not idempotent.")
	case err == nil && existing.Service.Status == svcDraining:
		return nil, invalidParam("Unable to Start a service that is still Draining.")
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return nil, err
	}
	if err := s.st.PutIfRevision(ctx, key, rev, rec, clientv3.OpPut(serviceIndexKey(sc, cluster.ClusterName, in.ServiceName), "{}")); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return nil, invalidParam("Creation of service was not idempotent.")
		}
		return nil, err
	}
	s.wakeServices()
	return map[string]any{"service": rec.view()}, nil
}

type updateServiceInput struct {
	Cluster                       string                   `json:"cluster"`
	Service                       string                   `json:"service"`
	DesiredCount                  *int                     `json:"desiredCount"`
	TaskDefinition                string                   `json:"taskDefinition"`
	NetworkConfiguration          *NetworkConfiguration    `json:"networkConfiguration"`
	ForceNewDeployment            bool                     `json:"forceNewDeployment"`
	DeploymentConfiguration       *DeploymentConfiguration `json:"deploymentConfiguration"`
	HealthCheckGracePeriodSeconds *int                     `json:"healthCheckGracePeriodSeconds"`
	PlatformVersion               string                   `json:"platformVersion"`
	PropagateTags                 string                   `json:"propagateTags"`
	EnableECSManagedTags          *bool                    `json:"enableECSManagedTags"`
	// LoadBalancers replaces the service's load balancers (an empty list
	// removes them all) and starts a new deployment, as ECS does.
	LoadBalancers *[]ServiceLoadBalancer `json:"loadBalancers"`
	// CapacityProviderStrategy, PlacementStrategy and PlacementConstraints
	// replace the service's (an empty list clears them): a new deployment.
	CapacityProviderStrategy *[]CapacityProviderStrategyItem `json:"capacityProviderStrategy"`
	PlacementStrategy        *[]PlacementStrategy            `json:"placementStrategy"`
	PlacementConstraints     *[]PlacementConstraint          `json:"placementConstraints"`
}

func (s *Service) updateService(ctx context.Context, body []byte) (any, error) {
	sc, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	var in updateServiceInput
	if err := protocol.Decode(body, &in); err != nil {
		return nil, err
	}
	if in.Service == "" {
		return nil, invalidParam("service is required.")
	}
	if in.DesiredCount != nil && *in.DesiredCount < 0 {
		return nil, invalidParam("desiredCount must be 0 or more.")
	}
	if p := in.PropagateTags; p != "" && p != "TASK_DEFINITION" && p != "SERVICE" && p != "NONE" {
		return nil, invalidParam("propagateTags must be one of TASK_DEFINITION, SERVICE, NONE.")
	}
	if pv := in.PlatformVersion; pv != "" && pv != "LATEST" && pv != "1.4.0" {
		return nil, invalidParam("The specified platform version does not exist. Use LATEST or 1.4.0.")
	}
	cluster, err := s.getCluster(ctx, sc, in.Cluster)
	if err != nil {
		return nil, err
	}
	key := serviceKey(sc, cluster.ClusterName, lastSegment(in.Service))
	var cur serviceRecord
	if _, err := s.st.Get(ctx, key, &cur); errors.Is(err, store.ErrNotFound) {
		return nil, serviceNotFound()
	} else if err != nil {
		return nil, err
	}
	if cur.Service.Status != svcActive {
		return nil, serviceNotActive()
	}
	// Resolve what a new deployment needs before the transaction.
	td, err := s.serviceTaskDef(ctx, sc, firstNonEmpty(in.TaskDefinition, cur.Service.TaskDefinition), cur.Service.LaunchType)
	if err != nil {
		return nil, err
	}
	nc := cur.Service.NetworkConfiguration
	if in.NetworkConfiguration != nil {
		nc = in.NetworkConfiguration
	}
	var ncIn *NetworkConfiguration
	if nc != nil {
		ncIn = nc
	}
	vpc, err := awsvpcConfig(td, ncIn)
	if err != nil {
		return nil, err
	}
	if vpc != nil && vpc.AssignPublicIp == "" {
		vpc.AssignPublicIp = "DISABLED"
	}
	lbs := cur.Service.LoadBalancers
	lbsChanged := in.LoadBalancers != nil && !reflect.DeepEqual(*in.LoadBalancers, lbs)
	if lbsChanged {
		lbs = *in.LoadBalancers
	}
	if err := s.checkServiceLoadBalancers(ctx, sc, lbs, td); err != nil {
		return nil, err
	}
	strategy, placementChanged, err := s.updatedPlacement(ctx, sc, &cur, &in)
	if err != nil {
		return nil, err
	}
	newDep := in.ForceNewDeployment || td.TaskDefinitionArn != cur.Service.TaskDefinition || in.NetworkConfiguration != nil ||
		(in.PlatformVersion != "" && in.PlatformVersion != cur.Service.PlatformVersion) || lbsChanged || placementChanged
	var plan *awsvpcPlan
	if newDep {
		if plan, err = s.resolveAwsvpc(ctx, sc, vpc); err != nil {
			return nil, err
		}
	}
	now := s.cfg.Now()
	rec, err := store.Mutate(ctx, s.st, key, func(r *serviceRecord) ([]clientv3.Op, error) {
		if r.Service.Status != svcActive {
			return nil, serviceNotActive()
		}
		dc, err := checkDeploymentConfiguration(r.Service.DeploymentConfiguration, in.DeploymentConfiguration)
		if err != nil {
			return nil, err
		}
		r.Service.DeploymentConfiguration = dc
		if in.DesiredCount != nil && *in.DesiredCount != r.Service.DesiredCount {
			r.Service.DesiredCount = *in.DesiredCount
			r.Steady = false
			if p := r.primary(); p != nil {
				p.DesiredCount = *in.DesiredCount
				p.UpdatedAt = NewTime(now)
			}
		}
		if in.HealthCheckGracePeriodSeconds != nil {
			r.Service.HealthCheckGracePeriodSeconds = in.HealthCheckGracePeriodSeconds
		}
		if in.PropagateTags != "" {
			r.Service.PropagateTags = in.PropagateTags
		}
		if in.EnableECSManagedTags != nil {
			r.Service.EnableECSManagedTags = *in.EnableECSManagedTags
		}
		if in.PlatformVersion != "" {
			r.Service.PlatformVersion = in.PlatformVersion
		}
		if newDep {
			if vpc != nil {
				r.Service.NetworkConfiguration = &NetworkConfiguration{AwsvpcConfiguration: vpc}
			}
			if lbsChanged {
				r.Service.LoadBalancers = lbs
				if r.Service.LoadBalancers == nil {
					r.Service.LoadBalancers = []ServiceLoadBalancer{}
				}
			}
			if placementChanged {
				r.Service.CapacityProviderStrategy = strategy
				if in.PlacementStrategy != nil {
					r.Service.PlacementStrategy = orEmpty(*in.PlacementStrategy)
				}
				if in.PlacementConstraints != nil {
					r.Service.PlacementConstraints = orEmpty(*in.PlacementConstraints)
				}
			}
			d := newDeployment(td.TaskDefinitionArn, r.Service.LaunchType, r.Service.PlatformVersion, r.Service.NetworkConfiguration, plan, r.Service.DesiredCount, now)
			d.CapacityProviderStrategy = r.Service.CapacityProviderStrategy
			r.startDeployment(d, now)
		}
		return nil, nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, serviceNotFound()
	}
	if err != nil {
		return nil, err
	}
	s.wakeServices()
	return map[string]any{"service": rec.view()}, nil
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (s *Service) deleteService(ctx context.Context, body []byte) (any, error) {
	sc, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	var in struct {
		Cluster string `json:"cluster"`
		Service string `json:"service"`
		Force   bool   `json:"force"`
	}
	if err := protocol.Decode(body, &in); err != nil {
		return nil, err
	}
	if in.Service == "" {
		return nil, invalidParam("service is required.")
	}
	cluster, err := s.getCluster(ctx, sc, in.Cluster)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now()
	rec, err := store.Mutate(ctx, s.st, serviceKey(sc, cluster.ClusterName, lastSegment(in.Service)), func(r *serviceRecord) ([]clientv3.Op, error) {
		switch r.Service.Status {
		case svcInactive:
			return nil, serviceNotActive()
		case svcDraining:
			return nil, nil
		}
		if r.Service.DesiredCount > 0 && !in.Force {
			return nil, invalidParam("The service cannot be stopped while it is scaled above 0.")
		}
		r.Service.Status = svcDraining
		r.Service.DesiredCount = 0
		r.Steady = false
		for i := range r.Deployments {
			r.Deployments[i].transition(evSuperseded, now)
			r.Deployments[i].DesiredCount = 0
		}
		return nil, nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, serviceNotFound()
	}
	if err != nil {
		return nil, err
	}
	s.wakeServices()
	return map[string]any{"service": rec.view()}, nil
}

func (s *Service) describeServices(ctx context.Context, body []byte) (any, error) {
	sc, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	var in struct {
		Cluster  string   `json:"cluster"`
		Services []string `json:"services"`
		Include  []string `json:"include"`
	}
	if err := protocol.Decode(body, &in); err != nil {
		return nil, err
	}
	if len(in.Services) == 0 {
		return nil, invalidParam("Services cannot be empty.")
	}
	if len(in.Services) > 10 {
		return nil, invalidParam("services can have at most 10 items.")
	}
	cluster, err := s.getCluster(ctx, sc, in.Cluster)
	if err != nil {
		return nil, err
	}
	withTags := contains(in.Include, "TAGS")
	services := []*ECSService{}
	failures := []Failure{}
	for _, p := range in.Services {
		name := lastSegment(p)
		var r serviceRecord
		_, err := s.st.Get(ctx, serviceKey(sc, cluster.ClusterName, name), &r)
		if errors.Is(err, store.ErrNotFound) {
			failures = append(failures, Failure{Arn: sc.arn("service/" + cluster.ClusterName + "/" + name), Reason: "MISSING"})
			continue
		}
		if err != nil {
			return nil, err
		}
		v := r.view()
		if !withTags {
			v.Tags = nil
		}
		services = append(services, v)
	}
	return map[string]any{"services": services, "failures": failures}, nil
}

func (s *Service) listServices(ctx context.Context, body []byte) (any, error) {
	sc, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	var in struct {
		listInput
		Cluster            string `json:"cluster"`
		LaunchType         string `json:"launchType"`
		SchedulingStrategy string `json:"schedulingStrategy"`
	}
	if err := protocol.Decode(body, &in); err != nil {
		return nil, err
	}
	if in.LaunchType != "" && in.LaunchType != "FARGATE" && in.LaunchType != "EC2" && in.LaunchType != "EXTERNAL" {
		return nil, invalidParam("launchType must be one of EC2, FARGATE, EXTERNAL.")
	}
	cluster, err := s.getCluster(ctx, sc, in.Cluster)
	if err != nil {
		return nil, err
	}
	all, err := store.ListJSON[serviceRecord](ctx, s.st, store.ScopedPrefix(sc.account, sc.region, "services", cluster.ClusterName))
	if err != nil {
		return nil, err
	}
	arns := []string{}
	for _, r := range all {
		switch {
		case r.Service.Status != svcActive:
		case in.LaunchType != "" && r.Service.LaunchType != in.LaunchType:
		case in.SchedulingStrategy != "" && r.Service.SchedulingStrategy != in.SchedulingStrategy:
		default:
			arns = append(arns, r.Service.ServiceArn)
		}
	}
	sort.Strings(arns)
	limit := in.MaxResults
	if limit == nil {
		ten := 10
		limit = &ten
	}
	pg, next, err := page(arns, func(a string) string { return a }, in.NextToken, limit, 100)
	if err != nil {
		return nil, err
	}
	return map[string]any{"serviceArns": pg, "nextToken": omitEmpty(next)}, nil
}

// activeServices counts a cluster's ACTIVE services (DescribeClusters' activeServicesCount).
func (s *Service) activeServices(ctx context.Context, sc scope, cluster string) int {
	n := 0
	all, _ := store.ListJSON[serviceRecord](ctx, s.st, store.ScopedPrefix(sc.account, sc.region, "services", cluster))
	for _, r := range all {
		if r.Service.Status == svcActive {
			n++
		}
	}
	return n
}

// orEmpty is list, or an empty one for JSON's [] rather than null.
func orEmpty[T any](list []T) []T {
	if list == nil {
		return []T{}
	}
	return list
}

// updatedPlacement checks an UpdateService's capacity provider strategy and
// placement: the strategy the service is to have, and whether anything
// changed. A strategy may change within Fargate's providers or within the
// user's, not between them (that would change the launch type).
func (s *Service) updatedPlacement(ctx context.Context, sc scope, cur *serviceRecord, in *updateServiceInput) ([]CapacityProviderStrategyItem, bool, error) {
	strategy, changed := cur.Service.CapacityProviderStrategy, false
	if in.CapacityProviderStrategy != nil && !reflect.DeepEqual(*in.CapacityProviderStrategy, strategy) {
		cluster, err := s.getCluster(ctx, sc, cur.Cluster)
		if err != nil {
			return nil, false, err
		}
		next, launchType, err := resolveLaunch(cluster, "", *in.CapacityProviderStrategy)
		if err != nil {
			return nil, false, err
		}
		if launchType != cur.Service.LaunchType {
			return nil, false, invalidParam("The capacity provider strategy cannot change the service's launch type (%s to %s); create a new service.", cur.Service.LaunchType, launchType)
		}
		strategy, changed = next, true
	}
	if in.PlacementStrategy != nil || in.PlacementConstraints != nil {
		if cur.Service.LaunchType != compatEC2 {
			return nil, false, invalidParam("Placement strategies and constraints are not supported with launch type %s.", cur.Service.LaunchType)
		}
		ps, pc := cur.Service.PlacementStrategy, cur.Service.PlacementConstraints
		if in.PlacementStrategy != nil {
			ps = *in.PlacementStrategy
		}
		if in.PlacementConstraints != nil {
			pc = *in.PlacementConstraints
		}
		if err := validatePlacement(ps, pc); err != nil {
			return nil, false, err
		}
		changed = true
	}
	return strategy, changed, nil
}
