// Package agentapi owns the contract between the control plane and the host
// agents: the statuses of tasks and containers and their order, the task spec
// an agent is told to run, the state reports it sends back, and the HTTP
// client of that exchange. It is berth's own protocol: AWS has none for this.
package agentapi

// Task statuses, in lifecycle order, exactly as ECS names them:
//
//	PROVISIONING ─► PENDING ─► ACTIVATING ─► RUNNING
//	     │             │           │            │
//	     └─────────────┴───────────┴────────────┴─► DEACTIVATING ─► STOPPING ─► DEPROVISIONING ─► STOPPED
//
// A status only ever moves right (a task may skip statuses, e.g. a task that
// fails to pull goes from PENDING straight to STOPPING). The control plane sets
// PROVISIONING when it accepts a task; every later status is reported by the
// agent that runs it.
const (
	StatusProvisioning   = "PROVISIONING"
	StatusPending        = "PENDING"
	StatusActivating     = "ACTIVATING"
	StatusRunning        = "RUNNING"
	StatusDeactivating   = "DEACTIVATING"
	StatusStopping       = "STOPPING"
	StatusDeprovisioning = "DEPROVISIONING"
	StatusStopped        = "STOPPED"
)

var taskOrder = map[string]int{
	StatusProvisioning:   1,
	StatusPending:        2,
	StatusActivating:     3,
	StatusRunning:        4,
	StatusDeactivating:   5,
	StatusStopping:       6,
	StatusDeprovisioning: 7,
	StatusStopped:        8,
}

// TaskStatusRank orders task statuses; unknown statuses rank 0.
func TaskStatusRank(s string) int { return taskOrder[s] }

// ValidTaskStatus reports whether s is a task status.
func ValidTaskStatus(s string) bool { return taskOrder[s] > 0 }

// Container statuses as ECS reports them.
const (
	ContainerPending = "PENDING"
	ContainerRunning = "RUNNING"
	ContainerStopped = "STOPPED"
)

// Health statuses of containers and tasks.
const (
	HealthUnknown   = "UNKNOWN"
	HealthHealthy   = "HEALTHY"
	HealthUnhealthy = "UNHEALTHY"
)

// Stop codes, as ECS names them.
const (
	StopTaskFailedToStart         = "TaskFailedToStart"
	StopEssentialContainerExited  = "EssentialContainerExited"
	StopUserInitiated             = "UserInitiated"
	StopServiceSchedulerInitiated = "ServiceSchedulerInitiated"
	StopSpotInterruption          = "SpotInterruption"
	StopTerminationNotice         = "TerminationNotice"
)
