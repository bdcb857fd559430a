package ecs

import (
	"encoding/json"
	"math"
	"strconv"
	"time"
)

// Time is a timestamp that travels as ECS sends it: seconds since the epoch,
// with a fraction (awsJson1_1's timestamp format).
type Time struct{ time.Time }

// NewTime wraps t; a zero t yields nil.
func NewTime(t time.Time) *Time {
	if t.IsZero() {
		return nil
	}
	return &Time{t.UTC()}
}

// MarshalJSON writes epoch seconds with millisecond precision.
func (t Time) MarshalJSON() ([]byte, error) {
	ms := t.UnixMilli()
	return []byte(strconv.FormatFloat(float64(ms)/1000, 'f', 3, 64)), nil
}

// UnmarshalJSON reads epoch seconds (number) or an RFC 3339 string.
func (t *Time) UnmarshalJSON(b []byte) error {
	var f float64
	if err := json.Unmarshal(b, &f); err == nil {
		sec, frac := math.Modf(f)
		// Rounded to the microsecond: truncating the float's noise
		// (.113 read as .112999916) lost a millisecond at every rewrite.
		t.Time = time.Unix(int64(sec), int64(math.Round(frac*1e6))*1e3).UTC()
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	p, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return err
	}
	t.Time = p.UTC()
	return nil
}

// Tag is a resource tag.
type Tag struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// KeyValuePair is a name/value pair (environment variables, settings).
type KeyValuePair struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Cluster is an ECS cluster.
type Cluster struct {
	ClusterArn                        string           `json:"clusterArn"`
	ClusterName                       string           `json:"clusterName"`
	Status                            string           `json:"status"`
	RegisteredContainerInstancesCount int              `json:"registeredContainerInstancesCount"`
	RunningTasksCount                 int              `json:"runningTasksCount"`
	PendingTasksCount                 int              `json:"pendingTasksCount"`
	ActiveServicesCount               int              `json:"activeServicesCount"`
	Statistics                        []KeyValuePair   `json:"statistics"`
	Tags                              []Tag            `json:"tags,omitempty"`
	Settings                          []ClusterSetting `json:"settings"`
	CapacityProviders                 []string         `json:"capacityProviders"`
	// DefaultCapacityProviderStrategy is used by RunTask and CreateService
	// calls that name neither a launch type nor a strategy.
	DefaultCapacityProviderStrategy []CapacityProviderStrategyItem `json:"defaultCapacityProviderStrategy"`
}

// ClusterSetting is a cluster setting such as containerInsights.
type ClusterSetting struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// PortMapping maps a container port.
type PortMapping struct {
	ContainerPort *int   `json:"containerPort,omitempty"`
	HostPort      *int   `json:"hostPort,omitempty"`
	Protocol      string `json:"protocol,omitempty"`
	Name          string `json:"name,omitempty"`
	AppProtocol   string `json:"appProtocol,omitempty"`
}

// HealthCheck is a container health check.
type HealthCheck struct {
	Command     []string `json:"command"`
	Interval    *int     `json:"interval,omitempty"`
	Timeout     *int     `json:"timeout,omitempty"`
	Retries     *int     `json:"retries,omitempty"`
	StartPeriod *int     `json:"startPeriod,omitempty"`
}

// ContainerDependency is one entry of dependsOn.
type ContainerDependency struct {
	ContainerName string `json:"containerName"`
	Condition     string `json:"condition"`
}

// LogConfiguration selects a log driver.
type LogConfiguration struct {
	LogDriver string            `json:"logDriver"`
	Options   map[string]string `json:"options,omitempty"`
}

// KernelCapabilities adds or drops capabilities.
type KernelCapabilities struct {
	Add  []string `json:"add,omitempty"`
	Drop []string `json:"drop,omitempty"`
}

// LinuxParameters are Linux-specific container options.
type LinuxParameters struct {
	Capabilities       *KernelCapabilities `json:"capabilities,omitempty"`
	InitProcessEnabled *bool               `json:"initProcessEnabled,omitempty"`
}

// ContainerDefinition is one container of a task definition.
type ContainerDefinition struct {
	Name                   string                `json:"name"`
	Image                  string                `json:"image"`
	Cpu                    int                   `json:"cpu"`
	Memory                 *int                  `json:"memory,omitempty"`
	MemoryReservation      *int                  `json:"memoryReservation,omitempty"`
	Essential              *bool                 `json:"essential,omitempty"`
	EntryPoint             []string              `json:"entryPoint,omitempty"`
	Command                []string              `json:"command,omitempty"`
	Environment            []KeyValuePair        `json:"environment"`
	PortMappings           []PortMapping         `json:"portMappings"`
	HealthCheck            *HealthCheck          `json:"healthCheck,omitempty"`
	DependsOn              []ContainerDependency `json:"dependsOn,omitempty"`
	WorkingDirectory       string                `json:"workingDirectory,omitempty"`
	User                   string                `json:"user,omitempty"`
	Hostname               string                `json:"hostname,omitempty"`
	Privileged             *bool                 `json:"privileged,omitempty"`
	ReadonlyRootFilesystem *bool                 `json:"readonlyRootFilesystem,omitempty"`
	StopTimeout            *int                  `json:"stopTimeout,omitempty"`
	StartTimeout           *int                  `json:"startTimeout,omitempty"`
	LogConfiguration       *LogConfiguration     `json:"logConfiguration,omitempty"`
	LinuxParameters        *LinuxParameters      `json:"linuxParameters,omitempty"`
	DockerLabels           map[string]string     `json:"dockerLabels,omitempty"`
	MountPoints            []json.RawMessage     `json:"mountPoints"`
	VolumesFrom            []json.RawMessage     `json:"volumesFrom"`
}

// IsEssential applies ECS's default: a container is essential unless it says otherwise.
func (c *ContainerDefinition) IsEssential() bool { return c.Essential == nil || *c.Essential }

// Attribute is a task definition requirement or instance attribute.
type Attribute struct {
	Name  string `json:"name"`
	Value string `json:"value,omitempty"`
}

// TaskDefinition is a registered revision of a family.
type TaskDefinition struct {
	TaskDefinitionArn       string                `json:"taskDefinitionArn"`
	Family                  string                `json:"family"`
	Revision                int                   `json:"revision"`
	ContainerDefinitions    []ContainerDefinition `json:"containerDefinitions"`
	TaskRoleArn             string                `json:"taskRoleArn,omitempty"`
	ExecutionRoleArn        string                `json:"executionRoleArn,omitempty"`
	NetworkMode             string                `json:"networkMode,omitempty"`
	Status                  string                `json:"status"`
	RequiresCompatibilities []string              `json:"requiresCompatibilities,omitempty"`
	Compatibilities         []string              `json:"compatibilities"`
	Cpu                     string                `json:"cpu,omitempty"`
	Memory                  string                `json:"memory,omitempty"`
	PidMode                 string                `json:"pidMode,omitempty"`
	IpcMode                 string                `json:"ipcMode,omitempty"`
	Volumes                 []json.RawMessage     `json:"volumes"`
	PlacementConstraints    []json.RawMessage     `json:"placementConstraints"`
	RequiresAttributes      []Attribute           `json:"requiresAttributes,omitempty"`
	RuntimePlatform         json.RawMessage       `json:"runtimePlatform,omitempty"`
	EphemeralStorage        json.RawMessage       `json:"ephemeralStorage,omitempty"`
	RegisteredAt            *Time                 `json:"registeredAt,omitempty"`
	DeregisteredAt          *Time                 `json:"deregisteredAt,omitempty"`
	RegisteredBy            string                `json:"registeredBy,omitempty"`
	// Tags are stored with the definition but returned only when asked for.
	Tags []Tag `json:"-"`
}

// NetworkBinding is a published port.
type NetworkBinding struct {
	BindIP        string `json:"bindIP,omitempty"`
	ContainerPort int    `json:"containerPort,omitempty"`
	HostPort      int    `json:"hostPort,omitempty"`
	Protocol      string `json:"protocol,omitempty"`
}

// NetworkInterface is a container's view of the task ENI.
type NetworkInterface struct {
	AttachmentID       string `json:"attachmentId,omitempty"`
	PrivateIpv4Address string `json:"privateIpv4Address,omitempty"`
}

// Container is a running (or stopped) container of a task.
type Container struct {
	ContainerArn      string             `json:"containerArn"`
	TaskArn           string             `json:"taskArn"`
	Name              string             `json:"name"`
	Image             string             `json:"image"`
	ImageDigest       string             `json:"imageDigest,omitempty"`
	RuntimeID         string             `json:"runtimeId,omitempty"`
	LastStatus        string             `json:"lastStatus"`
	ExitCode          *int               `json:"exitCode,omitempty"`
	Reason            string             `json:"reason,omitempty"`
	NetworkBindings   []NetworkBinding   `json:"networkBindings"`
	NetworkInterfaces []NetworkInterface `json:"networkInterfaces"`
	HealthStatus      string             `json:"healthStatus,omitempty"`
	Cpu               string             `json:"cpu,omitempty"`
	Memory            string             `json:"memory,omitempty"`
	MemoryReservation string             `json:"memoryReservation,omitempty"`
}

// ContainerOverride overrides parts of a container definition for one task.
type ContainerOverride struct {
	Name              string         `json:"name"`
	Command           []string       `json:"command,omitempty"`
	Environment       []KeyValuePair `json:"environment,omitempty"`
	Cpu               *int           `json:"cpu,omitempty"`
	Memory            *int           `json:"memory,omitempty"`
	MemoryReservation *int           `json:"memoryReservation,omitempty"`
}

// TaskOverride overrides parts of a task definition for one task.
type TaskOverride struct {
	ContainerOverrides []ContainerOverride `json:"containerOverrides"`
	Cpu                string              `json:"cpu,omitempty"`
	Memory             string              `json:"memory,omitempty"`
	TaskRoleArn        string              `json:"taskRoleArn,omitempty"`
	ExecutionRoleArn   string              `json:"executionRoleArn,omitempty"`
}

// AwsVpcConfiguration is the network configuration of an awsvpc task.
type AwsVpcConfiguration struct {
	Subnets        []string `json:"subnets"`
	SecurityGroups []string `json:"securityGroups,omitempty"`
	AssignPublicIp string   `json:"assignPublicIp,omitempty"`
}

// NetworkConfiguration wraps the awsvpc configuration.
type NetworkConfiguration struct {
	AwsvpcConfiguration *AwsVpcConfiguration `json:"awsvpcConfiguration,omitempty"`
}

// Attachment is an elastic network interface attached to a task.
type Attachment struct {
	ID      string         `json:"id"`
	Type    string         `json:"type"`
	Status  string         `json:"status"`
	Details []KeyValuePair `json:"details"`
}

// Task is a task as DescribeTasks shows it.
type Task struct {
	TaskArn              string        `json:"taskArn"`
	ClusterArn           string        `json:"clusterArn"`
	TaskDefinitionArn    string        `json:"taskDefinitionArn"`
	ContainerInstanceArn string        `json:"containerInstanceArn,omitempty"`
	CapacityProviderName string        `json:"capacityProviderName,omitempty"`
	Overrides            TaskOverride  `json:"overrides"`
	LastStatus           string        `json:"lastStatus"`
	DesiredStatus        string        `json:"desiredStatus"`
	HealthStatus         string        `json:"healthStatus,omitempty"`
	Cpu                  string        `json:"cpu"`
	Memory               string        `json:"memory"`
	Containers           []Container   `json:"containers"`
	StartedBy            string        `json:"startedBy,omitempty"`
	Version              int64         `json:"version"`
	StopCode             string        `json:"stopCode,omitempty"`
	StoppedReason        string        `json:"stoppedReason,omitempty"`
	Connectivity         string        `json:"connectivity,omitempty"`
	ConnectivityAt       *Time         `json:"connectivityAt,omitempty"`
	PullStartedAt        *Time         `json:"pullStartedAt,omitempty"`
	PullStoppedAt        *Time         `json:"pullStoppedAt,omitempty"`
	ExecutionStoppedAt   *Time         `json:"executionStoppedAt,omitempty"`
	CreatedAt            *Time         `json:"createdAt,omitempty"`
	StartedAt            *Time         `json:"startedAt,omitempty"`
	StoppingAt           *Time         `json:"stoppingAt,omitempty"`
	StoppedAt            *Time         `json:"stoppedAt,omitempty"`
	Group                string        `json:"group,omitempty"`
	LaunchType           string        `json:"launchType,omitempty"`
	PlatformVersion      string        `json:"platformVersion,omitempty"`
	PlatformFamily       string        `json:"platformFamily,omitempty"`
	AvailabilityZone     string        `json:"availabilityZone,omitempty"`
	Attachments          []Attachment  `json:"attachments"`
	Tags                 []Tag         `json:"tags,omitempty"`
	EnableExecuteCommand bool          `json:"enableExecuteCommand"`
	EphemeralStorage     *EphemeralStg `json:"ephemeralStorage,omitempty"`
}

// EphemeralStg is the task's ephemeral storage size.
type EphemeralStg struct {
	SizeInGiB int `json:"sizeInGiB"`
}

// Failure is one failed item of a batch call.
type Failure struct {
	Arn    string `json:"arn,omitempty"`
	Reason string `json:"reason"`
	Detail string `json:"detail,omitempty"`
}
