package ecs

import (
	"crypto/rand"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strings"
	"time"
)

// Deployment statuses and rollout states, as ECS names them.
const (
	depPrimary  = "PRIMARY"
	depActive   = "ACTIVE"
	depInactive = "INACTIVE"

	rolloutInProgress = "IN_PROGRESS"
	rolloutCompleted  = "COMPLETED"
	rolloutFailed     = "FAILED"
)

// A deployment's life. The status says which deployment the scheduler grows
// (PRIMARY) and which it shrinks (ACTIVE); the rollout state says how the
// PRIMARY's rollout went.
//
//	status:   PRIMARY ──newer──▶ ACTIVE ──no tasks left──▶ INACTIVE (dropped from the list)
//	             │                  ▲
//	             └──────drained─────┘  (DeleteService: every deployment drains)
//
//	rollout:  IN_PROGRESS ──steady──▶ COMPLETED
//	              │
//	              └──breaker──▶ FAILED  (rollback: a new PRIMARY of the last
//	                                     completed definition; else no more launches)
//
// depEvent names what happened to a deployment; the table below is the only
// place where a deployment's status or rollout state changes.
type depEvent int

const (
	evSuperseded depEvent = iota // a newer deployment became PRIMARY
	evDrained                    // a non-primary deployment has no task left
	evSteady                     // the PRIMARY runs desiredCount healthy tasks and is alone
	evBreaker                    // the circuit breaker tripped
)

type depState struct{ status, rollout string }

// depTransitions maps (state, event) to the next state. A pair that is not in
// the table leaves the deployment as it is.
var depTransitions = map[depState]map[depEvent]depState{
	{depPrimary, rolloutInProgress}: {
		evSuperseded: {depActive, rolloutInProgress},
		evSteady:     {depPrimary, rolloutCompleted},
		evBreaker:    {depPrimary, rolloutFailed},
	},
	{depPrimary, rolloutCompleted}: {evSuperseded: {depActive, rolloutCompleted}},
	{depPrimary, rolloutFailed}:    {evSuperseded: {depActive, rolloutFailed}},
	{depActive, rolloutInProgress}: {evDrained: {depInactive, rolloutInProgress}},
	{depActive, rolloutCompleted}:  {evDrained: {depInactive, rolloutCompleted}},
	{depActive, rolloutFailed}:     {evDrained: {depInactive, rolloutFailed}},
}

// transition applies ev to d and reports whether it changed anything.
func (d *deploymentRecord) transition(ev depEvent, now time.Time) bool {
	next, ok := depTransitions[depState{d.Status, d.RolloutState}][ev]
	if !ok {
		return false
	}
	d.Status, d.RolloutState = next.status, next.rollout
	d.UpdatedAt = NewTime(now)
	return true
}

// newDeploymentID returns an id shaped as ECS's: "ecs-svc/" and 19 digits.
func newDeploymentID() string {
	n, _ := rand.Int(rand.Reader, big.NewInt(math.MaxInt64))
	return fmt.Sprintf("ecs-svc/%019d", n)
}

// newDeployment starts a PRIMARY deployment of a task definition.
func newDeployment(td string, launchType, platformVersion string, nc *NetworkConfiguration, plan *awsvpcPlan, desired int, now time.Time) deploymentRecord {
	d := deploymentRecord{Deployment: Deployment{
		ID: newDeploymentID(), Status: depPrimary, TaskDefinition: td, DesiredCount: desired,
		CreatedAt: NewTime(now), UpdatedAt: NewTime(now), LaunchType: launchType, NetworkConfiguration: nc,
		RolloutState: rolloutInProgress,
	}, Awsvpc: plan}
	d.RolloutStateReason = "ECS deployment " + d.ID + " in progress."
	if launchType == "FARGATE" {
		d.PlatformVersion, d.PlatformFamily = platformVersion, "Linux"
	}
	return d
}

// startDeployment makes d the service's PRIMARY: the current PRIMARY is
// superseded and drains as d grows.
func (r *serviceRecord) startDeployment(d deploymentRecord, now time.Time) {
	if d.LoadBalancers == nil {
		d.LoadBalancers = slices.Clone(r.Service.LoadBalancers)
		if d.LoadBalancers == nil {
			d.LoadBalancers = []ServiceLoadBalancer{}
		}
	}
	for i := range r.Deployments {
		r.Deployments[i].transition(evSuperseded, now)
	}
	r.Deployments = append([]deploymentRecord{d}, r.Deployments...)
	r.Service.TaskDefinition = d.TaskDefinition
	r.Steady = false
}

// breakerThreshold is the number of failed tasks that trips the deployment
// circuit breaker: half the desired count, rounded up, and at least 3 and at
// most 200 (AWS's rule).
func breakerThreshold(desired int) int {
	t := (desired + 1) / 2
	return min(max(t, 3), 200)
}

// launchBackoff is how long a deployment waits before launching again after
// n failed tasks in a row: base doubled per failure, up to 5 minutes.
func launchBackoff(base time.Duration, n int) time.Duration {
	if n <= 0 {
		return 0
	}
	d := base
	for i := 1; i < n && d < 5*time.Minute; i++ {
		d *= 2
	}
	return min(d, 5*time.Minute)
}

// Event wording, as ECS writes it.
func evStarted(svc string, ids []string) string {
	return fmt.Sprintf("(service %s) has started %d tasks: %s.", svc, len(ids), taskList(ids))
}

func evStopped(svc string, ids []string) string {
	return fmt.Sprintf("(service %s) has stopped %d running tasks: %s.", svc, len(ids), taskList(ids))
}

func evSteadyState(svc string) string { return "(service " + svc + ") has reached a steady state." }

func evDeploymentCompleted(svc, dep string) string {
	return "(service " + svc + ") (deployment " + dep + ") deployment completed."
}

func evDeploymentFailed(svc, dep string) string {
	return "(service " + svc + ") deployment " + dep + " deployment failed: tasks failed to start."
}

func evRollingBack(svc, dep string) string {
	return "(service " + svc + ") rolling back to deployment " + dep + "."
}

func evUnhealthy(svc, id string) string {
	return "(service " + svc + ") (task " + id + ") failed container health checks."
}

func taskList(ids []string) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = "(task " + id + ")"
	}
	return strings.Join(parts, " ")
}

// maxEvents is how many events a service keeps (DescribeServices shows up to 100).
const maxEvents = 100

// addEvent puts an event at the head of the service's log.
func (r *serviceRecord) addEvent(msg string, now time.Time) {
	ev := ServiceEvent{ID: newUUID(), CreatedAt: NewTime(now), Message: msg}
	r.Service.Events = append([]ServiceEvent{ev}, r.Service.Events...)
	if len(r.Service.Events) > maxEvents {
		r.Service.Events = r.Service.Events[:maxEvents]
	}
}

// percentOr reads an optional percentage.
func percentOr(p *int, def int) int {
	if p == nil {
		return def
	}
	return *p
}

// bounds are the service's task-count limits during a deployment: at least
// minHealthy healthy tasks, at most maxTotal tasks.
func (r *serviceRecord) bounds() (minHealthy, maxTotal int) {
	dc := r.Service.DeploymentConfiguration
	minPct, maxPct := 100, 200
	if dc != nil {
		minPct, maxPct = percentOr(dc.MinimumHealthyPercent, 100), percentOr(dc.MaximumPercent, 200)
	}
	desired := r.Service.DesiredCount
	minHealthy = int(math.Ceil(float64(desired) * float64(minPct) / 100))
	maxTotal = int(math.Floor(float64(desired) * float64(maxPct) / 100))
	// A deployment must be able to move: with no room above desired and no
	// room below it, one task may be replaced at a time.
	if maxTotal <= desired && minHealthy >= desired && desired > 0 {
		minHealthy = desired - 1
	}
	return minHealthy, max(maxTotal, desired)
}

// breaker is the service's circuit breaker setting (nil: off).
func (r *serviceRecord) breaker() *DeploymentCircuitBreaker {
	if dc := r.Service.DeploymentConfiguration; dc != nil && dc.DeploymentCircuitBreaker != nil && dc.DeploymentCircuitBreaker.Enable {
		return dc.DeploymentCircuitBreaker
	}
	return nil
}
