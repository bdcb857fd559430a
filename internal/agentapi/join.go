package agentapi

// PathJoin is where a host joins a user's cluster as a container instance.
// The request is signed with SigV4 (signing name "ecs") by the user's own
// credentials, not the platform's join token; the answer is a node token
// that authenticates the host's later agent calls and only for that host.
const PathJoin = PathPrefix + "join"

// JoinRequest registers (or re-registers) a host as a container instance.
type JoinRequest struct {
	Cluster string `json:"cluster"`
	// ContainerInstanceArn, when the host joined before, keeps its ARN.
	ContainerInstanceArn string `json:"containerInstanceArn,omitempty"`
	// NodeID is the host's EC2-shaped instance id (i-…).
	NodeID           string            `json:"nodeId"`
	AvailabilityZone string            `json:"availabilityZone"`
	InstanceType     string            `json:"instanceType,omitempty"`
	Architecture     string            `json:"architecture,omitempty"`
	CPU              int               `json:"cpu"`
	MemoryMiB        int               `json:"memoryMiB"`
	Attributes       map[string]string `json:"attributes,omitempty"`
	AgentVersion     string            `json:"agentVersion,omitempty"`
	// HostAddress is the instance's address: bridge and host tasks'
	// published ports, which instance target groups dial.
	HostAddress string `json:"hostAddress,omitempty"`
	// CapacityProvider is the user's capacity provider the instance
	// belongs to ("" for none).
	CapacityProvider string `json:"capacityProvider,omitempty"`
}

// JoinResponse is the host's container instance and its node token.
type JoinResponse struct {
	ContainerInstanceArn string `json:"containerInstanceArn"`
	ClusterArn           string `json:"clusterArn"`
	// Token is the bearer token of this host's later agent calls.
	Token string `json:"token"`
}

// Pools of RegisterRequest.Pool.
const (
	PoolFargate = "fargate" // berth's own capacity
	PoolEC2     = "ec2"     // a user's container instance
)
