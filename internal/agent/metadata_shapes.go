package agent

import (
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/berthdev/berth/internal/agentapi"
)

// The JSON shapes of the task metadata endpoint v4 on Fargate, field for
// field as AWS documents them ("Amazon ECS task metadata v4 JSON response
// for tasks on Fargate"). Fields AWS omits when unset are omitempty here.

type v4Task struct {
	Cluster            string        `json:"Cluster"`
	TaskARN            string        `json:"TaskARN"`
	Family             string        `json:"Family"`
	Revision           string        `json:"Revision"`
	DesiredStatus      string        `json:"DesiredStatus"`
	KnownStatus        string        `json:"KnownStatus"`
	Limits             *v4TaskLimits `json:"Limits,omitempty"`
	PullStartedAt      *time.Time    `json:"PullStartedAt,omitempty"`
	PullStoppedAt      *time.Time    `json:"PullStoppedAt,omitempty"`
	ExecutionStoppedAt *time.Time    `json:"ExecutionStoppedAt,omitempty"`
	AvailabilityZone   string        `json:"AvailabilityZone,omitempty"`
	LaunchType         string        `json:"LaunchType"`
	Containers         []v4Container `json:"Containers"`
}

// v4TaskWithTags is /taskWithTags: the task and its tags (a Fargate task
// has no container instance, so its tags are empty).
type v4TaskWithTags struct {
	v4Task
	TaskTags              map[string]string `json:"TaskTags"`
	ContainerInstanceTags map[string]string `json:"ContainerInstanceTags"`
}

// v4TaskLimits are the task's size: CPU in vCPUs, memory in MiB.
type v4TaskLimits struct {
	CPU    float64 `json:"CPU"`
	Memory int     `json:"Memory"`
}

// v4ContainerLimits are a container's own: CPU in units, memory in MiB.
type v4ContainerLimits struct {
	CPU    float64 `json:"CPU"`
	Memory int     `json:"Memory"`
}

type v4Container struct {
	DockerID      string            `json:"DockerId"`
	Name          string            `json:"Name"`
	DockerName    string            `json:"DockerName"`
	Image         string            `json:"Image"`
	ImageID       string            `json:"ImageID"`
	Ports         []v4Port          `json:"Ports,omitempty"`
	Labels        map[string]string `json:"Labels,omitempty"`
	DesiredStatus string            `json:"DesiredStatus"`
	KnownStatus   string            `json:"KnownStatus"`
	ExitCode      *int              `json:"ExitCode,omitempty"`
	Limits        v4ContainerLimits `json:"Limits"`
	CreatedAt     *time.Time        `json:"CreatedAt,omitempty"`
	StartedAt     *time.Time        `json:"StartedAt,omitempty"`
	Type          string            `json:"Type"`
	Health        *v4Health         `json:"Health,omitempty"`
	ContainerARN  string            `json:"ContainerARN,omitempty"`
	LogDriver     string            `json:"LogDriver,omitempty"`
	LogOptions    map[string]string `json:"LogOptions,omitempty"`
	Networks      []v4Network       `json:"Networks,omitempty"`
}

type v4Port struct {
	ContainerPort int      `json:"ContainerPort"`
	Protocol      string   `json:"Protocol"`
	HostPort      int      `json:"HostPort"`
	HostIP        string   `json:"HostIp,omitempty"`
	IPv4Addresses []string `json:"IPv4Addresses,omitempty"`
}

type v4Health struct {
	Status string `json:"status"`
}

type v4Network struct {
	NetworkMode              string   `json:"NetworkMode"`
	IPv4Addresses            []string `json:"IPv4Addresses"`
	AttachmentIndex          int      `json:"AttachmentIndex"`
	MACAddress               string   `json:"MACAddress"`
	IPv4SubnetCIDRBlock      string   `json:"IPv4SubnetCIDRBlock"`
	PrivateDNSName           string   `json:"PrivateDNSName,omitempty"`
	SubnetGatewayIpv4Address string   `json:"SubnetGatewayIpv4Address"`
}

func taskMetadata(t *metaTask) v4Task {
	out := v4Task{
		Cluster: t.spec.ClusterArn, TaskARN: t.spec.TaskArn, Family: t.spec.Family,
		Revision: strconv.Itoa(t.spec.Revision), DesiredStatus: t.desired, KnownStatus: metaTaskStatus(t.known),
		PullStartedAt: utc(t.pullStart), PullStoppedAt: utc(t.pullStop), ExecutionStoppedAt: utc(t.execStop),
		AvailabilityZone: t.spec.AvailabilityZone, LaunchType: "FARGATE", Containers: []v4Container{},
	}
	if t.spec.LaunchType != "" {
		out.LaunchType = t.spec.LaunchType
	}
	if out.AvailabilityZone == "" && t.spec.ENI != nil {
		out.AvailabilityZone = t.spec.ENI.AvailabilityZone
	}
	if t.spec.CPU > 0 || t.spec.MemoryMiB > 0 {
		out.Limits = &v4TaskLimits{CPU: float64(t.spec.CPU) / 1024, Memory: t.spec.MemoryMiB}
	}
	for i := range t.containers {
		out.Containers = append(out.Containers, containerMetadata(t, &t.containers[i]))
	}
	return out
}

func taskWithTags(t *metaTask) v4TaskWithTags {
	tags := map[string]string{}
	for k, v := range t.spec.Tags {
		tags[k] = v
	}
	return v4TaskWithTags{v4Task: taskMetadata(t), TaskTags: tags, ContainerInstanceTags: map[string]string{}}
}

// metaTaskStatus maps berth's (ECS's API) task statuses onto those the ECS
// agent shows in metadata: it knows NONE, PULLED, RUNNING, STOPPED.
func metaTaskStatus(s string) string {
	switch s {
	case "", agentapi.StatusProvisioning:
		return "NONE"
	case agentapi.StatusPending:
		return "PULLED"
	case agentapi.StatusActivating, agentapi.StatusRunning:
		return "RUNNING"
	case agentapi.StatusStopped:
		return "STOPPED"
	default: // DEACTIVATING, STOPPING, DEPROVISIONING: still running down
		return "RUNNING"
	}
}

func containerMetadata(t *metaTask, c *metaContainer) v4Container {
	desired := t.desired
	if desired == "" {
		desired = agentapi.StatusRunning
	}
	out := v4Container{
		DockerID: c.id, Name: c.spec.Name, DockerName: c.spec.Name, Image: c.spec.Image, ImageID: c.digest,
		Labels: map[string]string{
			labelCluster: t.spec.ClusterArn, labelContainerName: c.spec.Name, labelTaskArn: t.spec.TaskArn,
			labelFamily: t.spec.Family, labelRevision: strconv.Itoa(t.spec.Revision),
		},
		DesiredStatus: desired, KnownStatus: c.status, ExitCode: c.exitCode,
		Limits:    v4ContainerLimits{CPU: float64(c.spec.CPU), Memory: c.spec.MemoryMiB},
		CreatedAt: utc(c.startedAt), StartedAt: utc(c.startedAt), Type: "NORMAL", ContainerARN: c.spec.ContainerArn,
	}
	if c.status == "" {
		out.KnownStatus = agentapi.ContainerPending
	}
	for k, v := range c.spec.Labels {
		out.Labels[k] = v
	}
	if c.health != "" {
		out.Health = &v4Health{Status: c.health}
	}
	if t.spec.NetworkMode == agentapi.NetworkModeBridge && t.address != "" {
		out.Networks = []v4Network{{NetworkMode: agentapi.NetworkModeBridge, IPv4Addresses: []string{t.address}}}
		for _, b := range t.bindings {
			if b.ContainerName == "" || b.ContainerName == c.spec.Name {
				out.Ports = append(out.Ports, v4Port{ContainerPort: b.ContainerPort, Protocol: b.Protocol, HostPort: b.HostPort, HostIP: b.BindIP})
			}
		}
	}
	if e := t.spec.ENI; e != nil {
		out.Networks = []v4Network{eniNetwork(e)}
		for _, p := range t.spec.PortMappings {
			proto := p.Protocol
			if proto == "" {
				proto = "tcp"
			}
			out.Ports = append(out.Ports, v4Port{ContainerPort: p.ContainerPort, Protocol: proto, HostPort: p.ContainerPort})
		}
	}
	return out
}

func eniNetwork(e *agentapi.ENI) v4Network {
	n := v4Network{NetworkMode: "awsvpc", IPv4Addresses: []string{e.PrivateIP}, MACAddress: e.MAC,
		IPv4SubnetCIDRBlock: e.SubnetCIDR, PrivateDNSName: e.PrivateDNSName}
	// The gateway with the subnet's prefix length, as the ECS agent shows it.
	if p, err := netip.ParsePrefix(e.SubnetCIDR); err == nil && e.Gateway != "" {
		n.SubnetGatewayIpv4Address = e.Gateway + "/" + strconv.Itoa(p.Bits())
	}
	if n.PrivateDNSName == "" && e.PrivateIP != "" {
		n.PrivateDNSName = "ip-" + strings.ReplaceAll(e.PrivateIP, ".", "-") + ".ec2.internal"
	}
	return n
}

func utc(t *time.Time) *time.Time {
	if t == nil || t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}
