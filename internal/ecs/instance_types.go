package ecs

import (
	"context"
	"encoding/json"
	"sort"
	"strconv"
	"strings"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/scheduler"
	"github.com/berthdev/berth/internal/store"
)

// Container instances are hosts a user joined to one of their clusters
// (`berth agent --cluster NAME` with the user's credentials, or
// RegisterContainerInstance). They take only that account's EC2-launch-type
// tasks of that cluster; berth's own capacity (FARGATE) is never one.
//
// Stored: the instance under acct/<a>/<r>/instances/<cluster>/<id> (what
// was registered: resources, attributes, status), and nodeowners/<node> (its
// account, cluster and instance, and the hash of the node token its agent
// presents). What changes by the second (agentConnected, remaining
// resources, task counts) is computed when asked from nodes/<node> (the
// agent's lease) and assign/<node>/.
//
// Instance states (ECS's):
//
//	ACTIVE ──UpdateContainerInstancesState DRAINING──▶ DRAINING
//	   ▲                                                   │
//	   └──────────UpdateContainerInstancesState ACTIVE─────┘
//	ACTIVE | DRAINING ──DeregisterContainerInstance──▶ INACTIVE (record deleted)

// Instance statuses.
const (
	instanceActive   = "ACTIVE"
	instanceDraining = "DRAINING"
	instanceInactive = "INACTIVE"
)

// ContainerInstance is ECS's container instance shape.
type ContainerInstance struct {
	ContainerInstanceArn string       `json:"containerInstanceArn"`
	Ec2InstanceID        string       `json:"ec2InstanceId"`
	CapacityProviderName string       `json:"capacityProviderName,omitempty"`
	Version              int64        `json:"version"`
	VersionInfo          *VersionInfo `json:"versionInfo,omitempty"`
	RemainingResources   []Resource   `json:"remainingResources"`
	RegisteredResources  []Resource   `json:"registeredResources"`
	Status               string       `json:"status"`
	StatusReason         string       `json:"statusReason,omitempty"`
	AgentConnected       bool         `json:"agentConnected"`
	RunningTasksCount    int          `json:"runningTasksCount"`
	PendingTasksCount    int          `json:"pendingTasksCount"`
	Attributes           []IAttribute `json:"attributes"`
	RegisteredAt         *Time        `json:"registeredAt,omitempty"`
	Attachments          []Attachment `json:"attachments"`
	Tags                 []Tag        `json:"tags,omitempty"`
}

// VersionInfo is the agent's version.
type VersionInfo struct {
	AgentVersion  string `json:"agentVersion,omitempty"`
	AgentHash     string `json:"agentHash,omitempty"`
	DockerVersion string `json:"dockerVersion,omitempty"`
}

// Resource is a registered or remaining resource of an instance.
type Resource struct {
	Name           string   `json:"name"`
	Type           string   `json:"type"`
	DoubleValue    float64  `json:"doubleValue"`
	LongValue      int64    `json:"longValue"`
	IntegerValue   int      `json:"integerValue"`
	StringSetValue []string `json:"stringSetValue,omitempty"`
}

// IAttribute is an attribute of a resource (PutAttributes and friends, and
// container instances' attributes).
type IAttribute struct {
	Name       string `json:"name"`
	Value      string `json:"value,omitempty"`
	TargetType string `json:"targetType,omitempty"`
	TargetID   string `json:"targetId,omitempty"`
}

// instanceRecord is a stored container instance.
type instanceRecord struct {
	Instance ContainerInstance `json:"instance"`
	Cluster  string            `json:"cluster"`
	NodeID   string            `json:"nodeId"`
	// CPU, MemoryMiB are the registered resources; ReservedPorts the TCP
	// and UDP host ports the host keeps for itself.
	CPU           int   `json:"cpu"`
	MemoryMiB     int   `json:"memoryMiB"`
	ReservedPorts []int `json:"reservedPorts,omitempty"`
	// HostAddress is where the instance publishes bridge and host tasks'
	// ports (instance targets are dialed there).
	HostAddress string `json:"hostAddress,omitempty"`
	// Custom are the user's attributes (PutAttributes); Builtin the
	// agent's (ecs.*), which users cannot change.
	Custom  map[string]string `json:"custom,omitempty"`
	Builtin map[string]string `json:"builtin"`
}

// nodeOwner ties a host to the account and cluster it joined; a host with
// none is berth's own capacity.
type nodeOwner struct {
	Account    string `json:"account"`
	Region     string `json:"region"`
	Cluster    string `json:"cluster"`
	InstanceID string `json:"instanceId"`
	// TokenHash is the SHA-256 of the node token (hex).
	TokenHash string `json:"tokenHash"`
}

func instanceKey(sc scope, cluster, id string) string {
	return store.Scoped(sc.account, sc.region, "instances", cluster, id)
}

func (o *nodeOwner) scope() scope { return scope{account: o.Account, region: o.Region} }

// attributes are the instance's attributes, built-in then custom, by name.
func (r *instanceRecord) attributes() map[string]string {
	out := make(map[string]string, len(r.Builtin)+len(r.Custom))
	for k, v := range r.Builtin {
		out[k] = v
	}
	for k, v := range r.Custom {
		out[k] = v
	}
	return out
}

// usage is what is placed on a host now.
type usage struct {
	CPU, MemoryMiB int
	Ports          map[string]bool // "tcp/80"
}

// nodeUsage reads what is placed on a node from its assign keys.
func (s *Service) nodeUsage(ctx context.Context, node string) (usage, error) {
	u := usage{Ports: map[string]bool{}}
	err := s.st.List(ctx, store.Prefix("assign", node), func(_ string, val []byte) error {
		var spec agentapi.TaskSpec
		if json.Unmarshal(val, &spec) != nil {
			return nil
		}
		u.CPU += spec.CPU
		u.MemoryMiB += spec.MemoryMiB
		for _, pm := range spec.PortMappings {
			if pm.HostPort != 0 {
				u.Ports[portKey(pm.Protocol, pm.HostPort)] = true
			}
		}
		return nil
	})
	return u, err
}

func portKey(proto string, port int) string {
	if proto == "" {
		proto = "tcp"
	}
	return proto + "/" + strconv.Itoa(port)
}

// view is the instance as the API shows it now.
func (s *Service) instanceView(ctx context.Context, r *instanceRecord) ContainerInstance {
	ci := r.Instance
	ci.Attributes = make([]IAttribute, 0, len(r.Builtin)+len(r.Custom))
	attrs := r.attributes()
	names := make([]string, 0, len(attrs))
	for k := range attrs {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		ci.Attributes = append(ci.Attributes, IAttribute{Name: k, Value: attrs[k]})
	}
	var nr nodeRecord
	if _, err := s.st.Get(ctx, store.Key("nodes", r.NodeID), &nr); err == nil {
		ci.AgentConnected = true
	}
	u, _ := s.nodeUsage(ctx, r.NodeID)
	running, pending := s.taskCounts(ctx, r.NodeID)
	ci.RunningTasksCount, ci.PendingTasksCount = running, pending
	ci.RegisteredResources = resources(r.CPU, r.MemoryMiB, r.ReservedPorts, nil)
	ci.RemainingResources = resources(r.CPU-u.CPU, r.MemoryMiB-u.MemoryMiB, r.ReservedPorts, u.Ports)
	if ci.Attachments == nil {
		ci.Attachments = []Attachment{}
	}
	return ci
}

// taskCounts counts a node's tasks by whether they have reached RUNNING.
func (s *Service) taskCounts(ctx context.Context, node string) (running, pending int) {
	_ = s.st.List(ctx, store.Prefix("assign", node), func(_ string, val []byte) error {
		var spec agentapi.TaskSpec
		if json.Unmarshal(val, &spec) != nil {
			return nil
		}
		key, ok := taskKeyFromArn(spec.TaskArn)
		if !ok {
			return nil
		}
		var rec taskRecord
		if _, err := s.st.Get(ctx, key, &rec); err != nil {
			return nil
		}
		switch rec.Task.LastStatus {
		case agentapi.StatusRunning:
			running++
		case agentapi.StatusStopped, agentapi.StatusDeprovisioning, agentapi.StatusStopping, agentapi.StatusDeactivating:
		default:
			pending++
		}
		return nil
	})
	return running, pending
}

// resources is ECS's resource list: CPU, MEMORY, PORTS and PORTS_UDP (the
// reserved ports plus, for remaining resources, the host ports taken).
func resources(cpu, mem int, reserved []int, taken map[string]bool) []Resource {
	ports := func(proto string) []string {
		set := map[int]bool{}
		for _, p := range reserved {
			set[p] = true
		}
		for k := range taken {
			if p, ok := strings.CutPrefix(k, proto+"/"); ok {
				n, _ := strconv.Atoi(p)
				set[n] = true
			}
		}
		out := make([]int, 0, len(set))
		for p := range set {
			out = append(out, p)
		}
		sort.Ints(out)
		s := make([]string, len(out))
		for i, p := range out {
			s[i] = strconv.Itoa(p)
		}
		return s
	}
	return []Resource{
		{Name: "CPU", Type: "INTEGER", IntegerValue: cpu},
		{Name: "MEMORY", Type: "INTEGER", IntegerValue: mem},
		{Name: "PORTS", Type: "STRINGSET", StringSetValue: ports("tcp")},
		{Name: "PORTS_UDP", Type: "STRINGSET", StringSetValue: ports("udp")},
	}
}

// schedulerNode is the instance as the scheduler sees it, without what is
// placed on it (snapshotNodes adds that).
func (r *instanceRecord) schedulerNode() scheduler.Node {
	n := scheduler.Node{ID: r.NodeID, CPU: r.CPU, MemoryMiB: r.MemoryMiB, Attributes: r.attributes(), InstanceID: r.NodeID,
		Draining: r.Instance.Status == instanceDraining}
	if az := r.Builtin["ecs.availability-zone"]; az != "" {
		n.AZs = []string{az}
	}
	if r.Instance.VersionInfo != nil {
		n.AgentVersion = r.Instance.VersionInfo.AgentVersion
	}
	if r.Instance.RegisteredAt != nil {
		n.RegisteredAt = r.Instance.RegisteredAt.Time
	}
	for _, p := range r.ReservedPorts {
		n.UsedPorts = append(n.UsedPorts, scheduler.HostPort{Protocol: "tcp", Port: p})
	}
	return n
}
