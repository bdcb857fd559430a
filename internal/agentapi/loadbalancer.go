package agentapi

import "github.com/berthdev/berth/internal/lbproxy"

// Load balancers in the agent protocol. The control plane (internal/elb)
// places each load balancer on one node and gives it addresses; the agent of
// that node runs its proxy (internal/lbproxy) and reports its targets'
// health back.

// PathTargetHealth is where an agent reports the health of the targets of
// the load balancers it runs (POST, a TargetHealthReport).
const PathTargetHealth = PathPrefix + "target-health"

// LoadBalancerSpec is a load balancer placed on a node: its proxy
// configuration and where it lives.
type LoadBalancerSpec struct {
	ARN     string `json:"arn"`
	Account string `json:"account"`
	Region  string `json:"region"`
	VpcID   string `json:"vpcId"`
	// DNSName resolves to PublicAddress on the host (the agent keeps a
	// block of /etc/hosts for it).
	DNSName string `json:"dnsName"`
	// PublicAddress is the host address its listeners bind: in dev a
	// loopback address of its own (127.101.0.0/16).
	PublicAddress string `json:"publicAddress"`
	// ENIs are its network interfaces in the VPC, one per subnet: it dials
	// targets from their addresses, so targets' security groups see the
	// load balancer's groups as the source.
	ENIs []LoadBalancerENI `json:"enis"`
	// Ingress is the union of its security groups' ingress rules, source
	// groups resolved to addresses: who may reach its listeners. Clients on
	// the host count as the internet (0.0.0.0/0), as for public IPs.
	Ingress []FirewallRule `json:"ingress"`
	// Proxy is what the proxy engine runs: listeners, rules, target groups
	// and targets. Proxy.Addresses is ignored: the agent binds PublicAddress.
	Proxy lbproxy.LoadBalancer `json:"proxy"`
	// Revision grows with every change of the spec.
	Revision int64 `json:"revision"`
}

// LoadBalancerENI is one of a load balancer's interfaces in its VPC.
type LoadBalancerENI struct {
	ID         string `json:"id"`
	SubnetID   string `json:"subnetId"`
	SubnetCIDR string `json:"subnetCidr"`
	Gateway    string `json:"gateway"`
	PrivateIP  string `json:"privateIp"`
}

// TargetHealthReport is the health of the targets of one load balancer as
// the agent running it sees them, by target group ARN.
type TargetHealthReport struct {
	NodeID          string                            `json:"nodeId"`
	LoadBalancerARN string                            `json:"loadBalancerArn"`
	TargetGroups    map[string][]lbproxy.TargetStatus `json:"targetGroups"`
}
