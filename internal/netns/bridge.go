package netns

import (
	"fmt"
	"net/netip"
	"strings"
)

// A bridge network is what docker calls its default bridge, for the EC2
// launch type's bridge network mode: one per agent, a private subnet whose
// gateway is a Linux bridge, each task on it through an eth0 veth with an
// address the agent allocates, outbound traffic masqueraded through an
// uplink, container ports published on the host by forwarders.
//
// It is a VPC namespace in all but name ("berth-vpc-bridge-<hash>"): one
// "VPC" with one "subnet", each task an "ENI" with NAT egress. So it gets,
// from the same code and with the same guarantees, the uplink and its NAT
// (uplink.go; out beyond the host only with EnableHostEgress), the bridge
// ports' source check (a task cannot spoof another's address), the
// metadata address 169.254.170.2 on its lo (the agent's metadata server
// listens there with ListenInVPC), sockets inside it (DialInVPC, the
// PublicForwarder that publishes host ports), idempotent attach after an
// agent restart, and its deletion when its last task detaches (DetachENI)
// or PruneVPCs finds it empty. Unlike docker's, the subnet exists only
// inside that namespace: the host has no route to it, as to any VPC.

// BridgeNetworkPrefix starts the id of every bridge network: the VPC id
// of its namespace (VPC ids start with "vpc-", so the two never meet).
const BridgeNetworkPrefix = "bridge-"

// DefaultBridgeSubnet is docker's (and so ECS's) default bridge subnet. It
// lives only inside each bridge namespace, so several agents on one host
// may all use it.
var DefaultBridgeSubnet = netip.MustParsePrefix("172.17.0.0/16")

// BridgeNetworkID names the bridge network of the agent whose state lives
// under key (its data dir): unique per agent, stable across restarts.
func BridgeNetworkID(key string) string { return BridgeNetworkPrefix + shortHash(key, 12) }

// IsBridgeNetwork reports whether a VPC id names a bridge network.
func IsBridgeNetwork(vpcID string) bool { return strings.HasPrefix(vpcID, BridgeNetworkPrefix) }

// BridgeEndpoint is one task on a bridge network.
type BridgeEndpoint struct {
	// Network is the bridge network (BridgeNetworkID).
	Network string
	// Subnet is the network's IPv4 block; its first host address is the
	// gateway, on the bridge.
	Subnet netip.Prefix
	// TaskID names the endpoint (it becomes part of interface aliases).
	TaskID string
	// Address is the task's address in Subnet (not the gateway).
	Address netip.Addr
}

// BridgeGateway is the gateway address of a bridge subnet (its first host
// address), held by the bridge.
func BridgeGateway(subnet netip.Prefix) netip.Addr { return subnet.Masked().Addr().Next() }

// eni is the endpoint as the VPC code sees it.
func (e BridgeEndpoint) eni() ENIConfig {
	return ENIConfig{ID: bridgeEndpointID(e.TaskID), VpcID: e.Network, SubnetID: e.Network, Subnet: e.Subnet,
		Gateway: BridgeGateway(e.Subnet), Address: e.Address, NATEgress: true}
}

func bridgeEndpointID(taskID string) string { return "ep-" + taskID }

// bridgeFirewall lets everything in and out of a bridge task, as docker's
// bridge does (containers on it reach each other; the host reaches them
// only through published ports, since it has no route to the subnet).
var bridgeFirewall = Firewall{
	Ingress: []Rule{{Protocol: "-1", CIDRs: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}}},
	Egress:  []Rule{{Protocol: "-1", CIDRs: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}}},
}

// AttachBridge puts the sandbox on its bridge network: eth0 with the
// endpoint's address, a default route via the gateway (and so NAT egress
// through the uplink), and a firewall that admits all, creating the
// network's namespace if this is its first task. It is idempotent.
func AttachBridge(sb *Sandbox, e BridgeEndpoint) error {
	if !IsBridgeNetwork(e.Network) {
		return fmt.Errorf("attach %s to bridge network %q: not a bridge network id", sb.Name, e.Network)
	}
	if err := AttachENI(sb, e.eni()); err != nil {
		return err
	}
	if err := ApplyFirewall(sb, bridgeFirewall); err != nil {
		return fmt.Errorf("attach %s to bridge network %s: %w", sb.Name, e.Network, err)
	}
	return nil
}

// DetachBridge takes a task off its bridge network, deleting the network's
// namespace if it was the last (see DetachENI). DeleteSandbox does it too.
func DetachBridge(network, taskID string) error {
	return DetachENI(network, bridgeEndpointID(taskID))
}
