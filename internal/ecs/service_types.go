package ecs

import (
	"context"
	"time"

	"github.com/berthdev/berth/internal/store"
)

// ECSService is a service as DescribeServices shows it (ECS's Service shape;
// the Go name Service is the API implementation).
type ECSService struct {
	ServiceArn                    string                         `json:"serviceArn"`
	ServiceName                   string                         `json:"serviceName"`
	ClusterArn                    string                         `json:"clusterArn"`
	LoadBalancers                 []ServiceLoadBalancer          `json:"loadBalancers"`
	ServiceRegistries             []struct{}                     `json:"serviceRegistries"`
	Status                        string                         `json:"status"`
	DesiredCount                  int                            `json:"desiredCount"`
	RunningCount                  int                            `json:"runningCount"`
	PendingCount                  int                            `json:"pendingCount"`
	LaunchType                    string                         `json:"launchType,omitempty"`
	PlatformVersion               string                         `json:"platformVersion,omitempty"`
	PlatformFamily                string                         `json:"platformFamily,omitempty"`
	TaskDefinition                string                         `json:"taskDefinition"`
	DeploymentConfiguration       *DeploymentConfiguration       `json:"deploymentConfiguration"`
	Deployments                   []Deployment                   `json:"deployments"`
	Events                        []ServiceEvent                 `json:"events"`
	CreatedAt                     *Time                          `json:"createdAt,omitempty"`
	CapacityProviderStrategy      []CapacityProviderStrategyItem `json:"capacityProviderStrategy,omitempty"`
	PlacementConstraints          []PlacementConstraint          `json:"placementConstraints"`
	PlacementStrategy             []PlacementStrategy            `json:"placementStrategy"`
	NetworkConfiguration          *NetworkConfiguration          `json:"networkConfiguration,omitempty"`
	HealthCheckGracePeriodSeconds *int                           `json:"healthCheckGracePeriodSeconds,omitempty"`
	SchedulingStrategy            string                         `json:"schedulingStrategy"`
	DeploymentController          *DeploymentController          `json:"deploymentController"`
	Tags                          []Tag                          `json:"tags,omitempty"`
	CreatedBy                     string                         `json:"createdBy,omitempty"`
	EnableECSManagedTags          bool                           `json:"enableECSManagedTags"`
	PropagateTags                 string                         `json:"propagateTags,omitempty"`
	EnableExecuteCommand          bool                           `json:"enableExecuteCommand"`
}

// ServiceLoadBalancer puts a container port of the service's tasks into a
// target group.
type ServiceLoadBalancer struct {
	TargetGroupArn   string `json:"targetGroupArn,omitempty"`
	LoadBalancerName string `json:"loadBalancerName,omitempty"`
	ContainerName    string `json:"containerName,omitempty"`
	ContainerPort    *int   `json:"containerPort,omitempty"`
}

// DeploymentConfiguration bounds a rolling deployment.
type DeploymentConfiguration struct {
	DeploymentCircuitBreaker *DeploymentCircuitBreaker `json:"deploymentCircuitBreaker,omitempty"`
	MaximumPercent           *int                      `json:"maximumPercent,omitempty"`
	MinimumHealthyPercent    *int                      `json:"minimumHealthyPercent,omitempty"`
}

// DeploymentCircuitBreaker stops (and may roll back) a failing deployment.
type DeploymentCircuitBreaker struct {
	Enable   bool `json:"enable"`
	Rollback bool `json:"rollback"`
}

// DeploymentController names who deploys: always ECS here.
type DeploymentController struct {
	Type string `json:"type"`
}

// Deployment is one task definition rolled out to the service.
type Deployment struct {
	ID                   string                `json:"id"`
	Status               string                `json:"status"`
	TaskDefinition       string                `json:"taskDefinition"`
	DesiredCount         int                   `json:"desiredCount"`
	PendingCount         int                   `json:"pendingCount"`
	RunningCount         int                   `json:"runningCount"`
	FailedTasks          int                   `json:"failedTasks"`
	CreatedAt            *Time                 `json:"createdAt,omitempty"`
	UpdatedAt            *Time                 `json:"updatedAt,omitempty"`
	LaunchType           string                `json:"launchType,omitempty"`
	PlatformVersion      string                `json:"platformVersion,omitempty"`
	PlatformFamily       string                `json:"platformFamily,omitempty"`
	NetworkConfiguration *NetworkConfiguration `json:"networkConfiguration,omitempty"`
	// CapacityProviderStrategy is the deployment's (nil: a launch type).
	CapacityProviderStrategy []CapacityProviderStrategyItem `json:"capacityProviderStrategy,omitempty"`
	RolloutState             string                         `json:"rolloutState,omitempty"`
	RolloutStateReason       string                         `json:"rolloutStateReason,omitempty"`
}

// ServiceEvent is one line of a service's event log.
type ServiceEvent struct {
	ID        string `json:"id"`
	CreatedAt *Time  `json:"createdAt"`
	Message   string `json:"message"`
}

// deploymentRecord is a deployment as stored: what DescribeServices shows
// and what the scheduler needs to launch its tasks.
type deploymentRecord struct {
	Deployment
	// Awsvpc is the deployment's network, resolved when it was created.
	Awsvpc *awsvpcPlan `json:"awsvpc,omitempty"`
	// Failures counts tasks that failed in a row; BackoffUntil delays the
	// next launch after failures (ECS throttles a service whose tasks keep
	// failing to start).
	Failures     int       `json:"failures,omitempty"`
	BackoffUntil time.Time `json:"backoffUntil,omitzero"`
	// LoadBalancers are the service's load balancers when the deployment
	// started: its tasks register there (an UpdateService that changes them
	// starts a new deployment; old tasks leave the old groups as they stop).
	// nil in records written before berth kept them: the service's apply.
	LoadBalancers []ServiceLoadBalancer `json:"loadBalancers"`
}

// lbsOf are the load balancers task t registers in: its deployment's.
func (r *serviceRecord) lbsOf(t *svcTask) []ServiceLoadBalancer {
	for i := range r.Deployments {
		if d := &r.Deployments[i]; d.ID == t.Deployment && d.LoadBalancers != nil {
			return d.LoadBalancers
		}
	}
	return r.Service.LoadBalancers
}

// serviceRecord is a service as stored.
type serviceRecord struct {
	Service ECSService `json:"service"`
	Account string     `json:"account"`
	Region  string     `json:"region"`
	Cluster string     `json:"cluster"`
	// Deployments, the PRIMARY first; they replace Service.Deployments on the way out.
	Deployments []deploymentRecord `json:"deployments"`
	// Stable is the last deployment that completed: what a rollback returns to.
	Stable *deploymentRecord `json:"stable,omitempty"`
	// Steady is set while the service is in a steady state (its event is
	// written once per arrival).
	Steady bool `json:"steady,omitempty"`
	// InactiveAt is when the service became INACTIVE; the record goes after
	// the stopped-task retention.
	InactiveAt time.Time `json:"inactiveAt,omitzero"`
}

func (r *serviceRecord) scope() scope { return scope{account: r.Account, region: r.Region} }

// view is the service as the API returns it.
func (r *serviceRecord) view() *ECSService {
	out := r.Service
	out.Deployments = make([]Deployment, 0, len(r.Deployments))
	for _, d := range r.Deployments {
		out.Deployments = append(out.Deployments, d.Deployment)
	}
	if out.Events == nil {
		out.Events = []ServiceEvent{}
	}
	return &out
}

// primary is the service's newest deployment (nil for a drained service).
func (r *serviceRecord) primary() *deploymentRecord {
	if len(r.Deployments) == 0 || r.Deployments[0].Status != depPrimary {
		return nil
	}
	return &r.Deployments[0]
}

// Keys of services (see store/keys.go):
//
//	acct/<account>/<region>/services/<cluster>/<name>            the service record
//	acct/<account>/<region>/service-tasks/<cluster>/<name>/<id>  a task of the service, until the scheduler has seen it STOPPED
//	services/<account>/<region>/<cluster>/<name>                 every service, for the scheduler's pass
func serviceKey(sc scope, cluster, name string) string {
	return store.Scoped(sc.account, sc.region, "services", cluster, name)
}

func serviceTaskKey(sc scope, cluster, name, taskID string) string {
	return store.Scoped(sc.account, sc.region, "service-tasks", cluster, name, taskID)
}

func serviceTasksPrefix(sc scope, cluster, name string) string {
	return store.ScopedPrefix(sc.account, sc.region, "service-tasks", cluster, name)
}

func serviceIndexKey(sc scope, cluster, name string) string {
	return store.Key("services", sc.account, sc.region, cluster, name)
}

// serviceTaskEntry is the value of a service-tasks key.
type serviceTaskEntry struct {
	Deployment string `json:"deployment"`
}

// LBTarget is a task's address and port in a target group.
type LBTarget struct {
	ID   string
	Port int
}

// LoadBalancers is what the service scheduler needs of the load balancer
// control plane (internal/elb will implement it; daemon plugs it in). ECS
// owns the interface so that it never imports elb. Every call is idempotent.
type LoadBalancers interface {
	// RegisterTargets adds targets to a target group of the account.
	RegisterTargets(ctx context.Context, account, region, targetGroupArn string, targets []LBTarget) error
	// DeregisterTargets starts draining targets out of a target group.
	DeregisterTargets(ctx context.Context, account, region, targetGroupArn string, targets []LBTarget) error
	// TargetHealth returns each target's state as DescribeTargetHealth names
	// it (initial, healthy, unhealthy, draining, unused); a target the group
	// does not know is absent.
	TargetHealth(ctx context.Context, account, region, targetGroupArn string, targets []LBTarget) (map[LBTarget]string, error)
	// TargetGroupType returns the target group's target type ("ip",
	// "instance"), or "" when it does not exist in the account.
	TargetGroupType(ctx context.Context, account, region, targetGroupArn string) (string, error)
}

// errServiceNotFound and friends are ECS's service errors.
func serviceNotFound() error {
	return newErr(codeServiceNotFound, "Service not found.")
}

func serviceNotActive() error {
	return newErr(codeServiceNotActive, "Service was not ACTIVE.")
}
