package agentapi

import "slices"

// Network types of the agent protocol: the task's elastic network interface
// (its awsvpc ENI) as the control plane allocated it, and the security-group
// firewall the agent enforces on it. The control plane (internal/vpc) fills
// them in; the agent hands them to internal/netns.

// ENI is a task's network interface: a veth whose task end is eth0 in the
// task's sandbox and whose other end sits on its subnet's bridge in the VPC's
// namespace on the host.
type ENI struct {
	// AttachmentID is the ECS attachment (a UUID) the ENI belongs to.
	AttachmentID string `json:"attachmentId"`
	// ID is the interface id, "eni-" and 17 hex digits.
	ID    string `json:"id"`
	VpcID string `json:"vpcId"`
	// VpcCIDR is the VPC's primary IPv4 block, e.g. "172.31.0.0/16".
	VpcCIDR  string `json:"vpcCidr"`
	SubnetID string `json:"subnetId"`
	// SubnetCIDR is the subnet's block, e.g. "172.31.0.0/20".
	SubnetCIDR string `json:"subnetCidr"`
	// Gateway is the subnet's router: its first usable address (base+1),
	// which the VPC namespace holds on the subnet's bridge.
	Gateway string `json:"gateway"`
	// PrivateIP is the ENI's address in the subnet, e.g. "172.31.0.4".
	PrivateIP string `json:"privateIp"`
	// MAC is the interface's hardware address, "0e:…" (locally administered).
	MAC string `json:"mac"`
	// PublicIP, when set, is the ENI's public address from the host's pool
	// (in dev a loopback address): the host forwards it to the task.
	PublicIP string `json:"publicIp,omitempty"`
	// NATEgress is true when the ENI may reach beyond the VPC through the
	// host (its subnet maps public IPs on launch, or it has a public IP).
	NATEgress bool `json:"natEgress,omitempty"`
	// SecurityGroups are the group ids on the ENI (1 to 5).
	SecurityGroups []string `json:"securityGroups"`
	// AvailabilityZone is the subnet's zone.
	AvailabilityZone string `json:"availabilityZone"`
	// PrivateDNSName is EC2's name for the address, "ip-172-31-0-4.ec2.internal".
	PrivateDNSName string `json:"privateDnsName,omitempty"`
}

// Firewall is the security-group policy of one ENI: the union of the rules
// of all its groups. Ingress is denied unless a rule allows it; egress
// likewise (a group's default egress rule allows all). Return traffic of
// allowed flows always passes (the firewall is stateful). A rule that
// references a security group names the group's address set (Sets); the
// poll that carries the firewall carries the sets, and ResolveSets turns
// the names into addresses.
type Firewall struct {
	ENIID string `json:"eniId"`
	// Revision orders versions of one ENI's firewall; a newer one replaces
	// an older one entirely.
	Revision int64          `json:"revision"`
	Ingress  []FirewallRule `json:"ingress"`
	Egress   []FirewallRule `json:"egress"`
}

// FirewallRule allows traffic of one protocol and port range from (ingress)
// or to (egress) a set of addresses.
type FirewallRule struct {
	// Protocol is "-1" (all), "tcp", "udp", "icmp", or an IP protocol number.
	Protocol string `json:"protocol"`
	// FromPort and ToPort are the inclusive port range for tcp and udp; for
	// icmp they are the ICMP type and code (-1 means any). Ignored for "-1".
	FromPort int `json:"fromPort"`
	ToPort   int `json:"toPort"`
	// CIDRs are IPv4 prefixes ("10.0.0.0/16", "10.0.1.7/32").
	CIDRs []string `json:"cidrs"`
	// Sets name address sets whose addresses the rule allows too: the
	// members of a security group the rule references.
	Sets []string `json:"sets,omitempty"`
}

// AddressSet is the addresses of a security group's members, which rules
// that reference the group allow. A member joining or leaving changes the
// set, not the firewalls that name it.
type AddressSet struct {
	Name string `json:"name"`
	// Revision orders versions of one set; a newer one replaces an older.
	Revision  int64    `json:"revision"`
	Addresses []string `json:"addresses"`
	// Delta (in a poll's delta only): Addresses are those added since the
	// poll's since and Removed those removed; Client.Tasks applies them to
	// the set it holds and hands out whole sets.
	Delta   bool     `json:"delta,omitempty"`
	Removed []string `json:"removed,omitempty"`
}

// AddressSetChange is the value of a set's key (store key
// sgsets/<name>): the change that made its revision, one member's address
// added or removed, or several members' addresses added (Added: one
// transaction attached several interfaces in the group).
type AddressSetChange struct {
	Add    string   `json:"add,omitempty"`
	Remove string   `json:"remove,omitempty"`
	Added  []string `json:"added,omitempty"`
}

// Members returns the addresses the change adds (add) or removes; ok is
// false when it is not one member's or several members' change (a set's
// deletion).
func (c AddressSetChange) Members() (addrs []string, add, ok bool) {
	switch {
	case c.Add != "" && c.Remove == "" && len(c.Added) == 0:
		return []string{c.Add}, true, true
	case c.Remove != "" && c.Add == "" && len(c.Added) == 0:
		return []string{c.Remove}, false, true
	case len(c.Added) > 0 && c.Add == "" && c.Remove == "":
		return c.Added, true, true
	}
	return nil, false, false
}

// ENIRequest is what attaching one task's interface asks for.
type ENIRequest struct {
	Account, Region, AttachmentID, Node string
	Subnets, Groups                     []string
	AssignPublicIP                      bool
}

// ResolveSets returns rules with every set name replaced by the /32 of
// each of its addresses (a set not in sets adds none), merged into CIDRs
// and sorted. A rule whose peers are all in empty sets keeps an empty CIDR
// list: it matches nothing.
func ResolveSets(rules []FirewallRule, sets []AddressSet) []FirewallRule {
	if rules == nil {
		return nil
	}
	byName := make(map[string]*AddressSet, len(sets))
	for i := range sets {
		byName[sets[i].Name] = &sets[i]
	}
	out := make([]FirewallRule, len(rules))
	for i, r := range rules {
		r.CIDRs = slices.Clone(r.CIDRs)
		for _, name := range r.Sets {
			if set := byName[name]; set != nil {
				for _, a := range set.Addresses {
					r.CIDRs = append(r.CIDRs, a+"/32")
				}
			}
		}
		if r.CIDRs == nil {
			r.CIDRs = []string{}
		}
		slices.Sort(r.CIDRs)
		r.CIDRs = slices.Compact(r.CIDRs)
		r.Sets = nil
		out[i] = r
	}
	return out
}

// SetNames returns the names of the sets the firewalls' rules refer to,
// sorted, each once.
func SetNames(fws []Firewall) []string {
	var out []string
	for _, fw := range fws {
		for _, rules := range [][]FirewallRule{fw.Ingress, fw.Egress} {
			for _, r := range rules {
				out = append(out, r.Sets...)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
