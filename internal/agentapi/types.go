package agentapi

import "time"

// RegisterRequest announces a capacity host to the control plane.
type RegisterRequest struct {
	NodeID string `json:"nodeId"`
	// AvailabilityZones the host serves (berth dev's one host serves all).
	AvailabilityZones []string `json:"availabilityZones"`
	CPU               int      `json:"cpu"`       // CPU units (1024 per core)
	MemoryMiB         int      `json:"memoryMiB"` // memory offered to tasks
	// Pool is "fargate" for platform capacity.
	Pool string `json:"pool"`
	// Address is the agent's own HTTP endpoint (container logs).
	Address string `json:"address"`
	// CallbackToken, for a user's host, is the bearer token the control
	// plane presents at Address (berth's own hosts take the join token).
	CallbackToken string `json:"callbackToken,omitempty"`
}

// RegisterResponse tells the agent how often to heartbeat.
type RegisterResponse struct {
	HeartbeatSeconds int `json:"heartbeatSeconds"`
}

// Node is a registered host as the control plane stores it.
type Node struct {
	RegisterRequest
	RegisteredAt time.Time `json:"registeredAt"`
}

// TaskSpec is everything an agent needs to run a task: the control plane's
// desired state for it.
type TaskSpec struct {
	TaskArn    string `json:"taskArn"`
	TaskID     string `json:"taskId"`
	ClusterArn string `json:"clusterArn"`
	Account    string `json:"account"`
	Region     string `json:"region"`
	Family     string `json:"family"`
	Revision   int    `json:"revision"`
	// CPU in units (1024 = 1 vCPU) and memory in MiB: the task's hard limits.
	CPU       int `json:"cpu"`
	MemoryMiB int `json:"memoryMiB"`
	// DesiredStatus is RUNNING or STOPPED.
	DesiredStatus string `json:"desiredStatus"`
	// StopCode and StoppedReason explain a desired STOPPED (e.g. UserInitiated).
	StopCode      string          `json:"stopCode,omitempty"`
	StoppedReason string          `json:"stoppedReason,omitempty"`
	Containers    []ContainerSpec `json:"containers"`
	// ENI is the task's awsvpc network interface; nil for other network modes.
	ENI *ENI `json:"eni,omitempty"`
	// AvailabilityZone is the zone the task was placed in.
	AvailabilityZone string `json:"availabilityZone,omitempty"`
	// PortMappings are the container ports the task exposes (forwarded from
	// its public IP, if it has one).
	PortMappings []PortMapping `json:"portMappings,omitempty"`
	// TaskRoleArn is the task definition's taskRoleArn ("" for none), and
	// CredentialsID the id of the task's credentials at the metadata
	// address: containers get AWS_CONTAINER_CREDENTIALS_RELATIVE_URI =
	// /v2/credentials/<CredentialsID> (see credentials.go).
	TaskRoleArn   string `json:"taskRoleArn,omitempty"`
	CredentialsID string `json:"credentialsId,omitempty"`
	// Tags are the task's tags at launch (the metadata endpoint's TaskTags).
	Tags map[string]string `json:"tags,omitempty"`
	// Group is the task group (family:<name>, service:<name> or RunTask's
	// group): placement spreads and separates tasks by it.
	Group string `json:"group,omitempty"`
	// LaunchType is FARGATE ("" means FARGATE) or EC2.
	LaunchType string `json:"launchType,omitempty"`
	// NetworkMode is the task definition's: awsvpc ("" means awsvpc; ENI is
	// set), bridge (a sandbox on the host's bridge network, container ports
	// published on the host's address at PortMapping.HostPort, or a port the
	// agent picks from the ephemeral range when that is 0), host (the
	// containers share the host's network namespace) or none (a sandbox with
	// loopback only). Only EC2 tasks have modes other than awsvpc.
	NetworkMode string `json:"networkMode,omitempty"`
	// ContainerInstanceArn is the container instance an EC2 task runs on.
	ContainerInstanceArn string `json:"containerInstanceArn,omitempty"`
	// CapacityProviderName is the capacity provider the task was placed
	// with (FARGATE, FARGATE_SPOT, or a user's provider).
	CapacityProviderName string `json:"capacityProviderName,omitempty"`
}

// Network modes of TaskSpec.NetworkMode.
const (
	NetworkModeAwsvpc = "awsvpc"
	NetworkModeBridge = "bridge"
	NetworkModeHost   = "host"
	NetworkModeNone   = "none"
)

// PortMapping is a port a container listens on.
type PortMapping struct {
	ContainerPort int    `json:"containerPort"`
	Protocol      string `json:"protocol"` // tcp or udp
	// ContainerName is the container that declared the mapping.
	ContainerName string `json:"containerName,omitempty"`
	// HostPort is the host port of a bridge or host task (0 in bridge mode:
	// the agent picks one from the ephemeral range and reports it in
	// StateReport.NetworkBindings).
	HostPort int `json:"hostPort,omitempty"`
}

// NetworkBinding is a container port published on the host (bridge and host
// network modes), as DescribeTasks shows it in containers[].networkBindings.
type NetworkBinding struct {
	ContainerName string `json:"containerName"`
	BindIP        string `json:"bindIP"`
	ContainerPort int    `json:"containerPort"`
	HostPort      int    `json:"hostPort"`
	Protocol      string `json:"protocol"`
}

// ContainerSpec is one container of a task, with overrides already applied.
type ContainerSpec struct {
	Name                 string            `json:"name"`
	Image                string            `json:"image"`
	Essential            bool              `json:"essential"`
	EntryPoint           []string          `json:"entryPoint,omitempty"`
	Command              []string          `json:"command,omitempty"`
	Environment          []KeyValue        `json:"environment,omitempty"`
	CPU                  int               `json:"cpu,omitempty"`
	MemoryMiB            int               `json:"memoryMiB,omitempty"`
	MemoryReservationMiB int               `json:"memoryReservationMiB,omitempty"`
	DependsOn            []Dependency      `json:"dependsOn,omitempty"`
	HealthCheck          *HealthCheck      `json:"healthCheck,omitempty"`
	WorkingDirectory     string            `json:"workingDirectory,omitempty"`
	User                 string            `json:"user,omitempty"`
	Hostname             string            `json:"hostname,omitempty"`
	ReadonlyRootfs       bool              `json:"readonlyRootFilesystem,omitempty"`
	StopTimeoutSeconds   int               `json:"stopTimeout,omitempty"`
	AddCapabilities      []string          `json:"addCapabilities,omitempty"`
	Labels               map[string]string `json:"labels,omitempty"`
	// ContainerArn is the container's ARN as DescribeTasks shows it.
	ContainerArn string `json:"containerArn,omitempty"`
	// LogConfiguration is the container's log driver (see logs.go).
	LogConfiguration *LogConfiguration `json:"logConfiguration,omitempty"`
	// Privileged gives the container every capability and device, as
	// docker's --privileged (EC2 launch type only).
	Privileged bool `json:"privileged,omitempty"`
}

// KeyValue is an environment variable.
type KeyValue struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Dependency conditions of dependsOn.
const (
	ConditionStart    = "START"
	ConditionComplete = "COMPLETE"
	ConditionSuccess  = "SUCCESS"
	ConditionHealthy  = "HEALTHY"
)

// Dependency makes a container wait for another one.
type Dependency struct {
	ContainerName string `json:"containerName"`
	Condition     string `json:"condition"`
}

// HealthCheck is a container health check; durations in seconds.
type HealthCheck struct {
	Command     []string `json:"command"`
	Interval    int      `json:"interval"`
	Timeout     int      `json:"timeout"`
	Retries     int      `json:"retries"`
	StartPeriod int      `json:"startPeriod"`
}

// TasksResponse lists every task placed on a node, at an etcd revision.
type TasksResponse struct {
	Revision int64      `json:"revision"`
	Tasks    []TaskSpec `json:"tasks"`
	// Delta (asked for with delta=1 and a since): Tasks are only the specs
	// that changed after since, and Present are the ids of every task
	// placed on the node, in order; the rest are as the caller last saw
	// them. Client.Tasks asks for deltas and hands its caller whole lists.
	Delta   bool     `json:"delta,omitempty"`
	Present []string `json:"present,omitempty"`
	// PresentSame (asked for with keep=1 beside delta=1): Present is left
	// out, for no task left the node after since: the tasks placed on it
	// are those the caller held and those in Tasks. A host's list grows
	// with its tasks; sending it on every poll made each poll's cost grow
	// with them.
	PresentSame bool `json:"presentSame,omitempty"`
	// Known are the last accepted statuses of the tasks whose spec changed
	// after the poll's since (every task when since is 0): a task new to the
	// agent is always among them.
	Known []KnownState `json:"known"`
	// Firewalls are the security-group policies of the ENIs on the node.
	Firewalls []Firewall `json:"firewalls,omitempty"`
	// FirewallsDelta (asked for with fwdelta=1 beside delta=1): Firewalls
	// are only those that changed after since, and FirewallsPresent are the
	// ENI ids of every firewall of the node; the rest are as the caller
	// last saw them. Client.Tasks asks for these and hands out whole lists.
	FirewallsDelta   bool     `json:"firewallsDelta,omitempty"`
	FirewallsPresent []string `json:"firewallsPresent,omitempty"`
	// FirewallsPresentSame (with keep=1): FirewallsPresent is left out, as
	// Present is with PresentSame.
	FirewallsPresentSame bool `json:"firewallsPresentSame,omitempty"`
	// AddressSets are the sets the firewalls name (a delta: those that
	// changed after since, or that a firewall changed after since names;
	// the caller keeps the others from earlier polls).
	AddressSets []AddressSet `json:"addressSets,omitempty"`
	// LoadBalancers are the load balancers placed on the node.
	LoadBalancers []LoadBalancerSpec `json:"loadBalancers,omitempty"`
	// LeaseRenewed: the poll asked for a heartbeat (beat=1) and the control
	// plane renewed the node's lease on it (see Beats).
	LeaseRenewed bool `json:"leaseRenewed,omitempty"`
}

// KnownState is what the control plane last accepted from the agent for a task,
// so that a restarted agent can resume where it was.
type KnownState struct {
	TaskArn    string `json:"taskArn"`
	LastStatus string `json:"lastStatus"`
}

// StateReport is one transition of a task, sent by the agent that runs it.
// Seq grows with every report of a task (nanoseconds since the epoch), so a
// repeated or late report never moves a task backwards.
type StateReport struct {
	NodeID             string           `json:"nodeId"`
	TaskArn            string           `json:"taskArn"`
	Seq                int64            `json:"seq"`
	Status             string           `json:"status"`
	HealthStatus       string           `json:"healthStatus,omitempty"`
	StopCode           string           `json:"stopCode,omitempty"`
	StoppedReason      string           `json:"stoppedReason,omitempty"`
	PullStartedAt      *time.Time       `json:"pullStartedAt,omitempty"`
	PullStoppedAt      *time.Time       `json:"pullStoppedAt,omitempty"`
	StartedAt          *time.Time       `json:"startedAt,omitempty"`
	StoppingAt         *time.Time       `json:"stoppingAt,omitempty"`
	ExecutionStoppedAt *time.Time       `json:"executionStoppedAt,omitempty"`
	Containers         []ContainerState `json:"containers"`
	// NetworkBindings are the host ports of a bridge or host task, reported
	// once its sandbox is made (and repeated in every later report).
	NetworkBindings []NetworkBinding `json:"networkBindings,omitempty"`
}

// ContainerState is the actual state of one container.
type ContainerState struct {
	Name         string `json:"name"`
	RuntimeID    string `json:"runtimeId,omitempty"`
	ImageDigest  string `json:"imageDigest,omitempty"`
	Status       string `json:"status"`
	ExitCode     *int   `json:"exitCode,omitempty"`
	Reason       string `json:"reason,omitempty"`
	HealthStatus string `json:"healthStatus,omitempty"`
	Pid          uint32 `json:"pid,omitempty"`
}

// RegistryAuthRequest asks for credentials to pull a task's images from the
// control plane's registry.
type RegistryAuthRequest struct {
	NodeID  string `json:"nodeId"`
	TaskArn string `json:"taskArn"`
}

// RegistryAuth is HTTP Basic credentials of the task's account for the
// registry at Hosts (host:port as the agent reaches the control plane). They
// must never be sent to any other host.
type RegistryAuth struct {
	Username  string    `json:"username"`
	Password  string    `json:"password"`
	ExpiresAt time.Time `json:"expiresAt"`
	Hosts     []string  `json:"hosts"`
}
