// Package netns owns berth's data-plane networking on one host: the task
// sandboxes, the VPC routers, the ENIs between them, the security-group
// firewalls, NAT egress and the public-IP forwarders. It talks to the
// kernel through netlink (vishvananda/netlink) and nftables
// (google/nftables); it never shells out to ip or nft.
//
// # Layout on a host
//
//	host namespace
//	│  bu<13 hex>  169.254.64.x+1/30 ─┐   uplink veth, one per VPC ("bu" + hash of the VPC id)
//	│  ip berth-egress (optional)     │   masquerade from the uplinks (EnableHostEgress)
//	│                                 │
//	├─ berth-vpc-<vpc id>  (a VPC's router, /var/run/netns/berth-vpc-<vpc id>)
//	│    uplink  169.254.64.x+2/30 ───┘   default route via the host side
//	│    lo      169.254.170.2/32          task metadata address (served by a later issue)
//	│            address/32 "lo:berth-lb"  load balancers' addresses in the VPC (vpcaddr.go)
//	│    br<12 hex>  gateway/prefix        one bridge per subnet ("br" + hash of the subnet id)
//	│      └ eni<12 hex>                   VPC end of each ENI ("eni" + hash of the ENI id)
//	│    inet berth-vpc                    NAT egress for ENIs in set @nat, nothing else out or in
//	│    bridge berth-ports                source check: each port only with its own MAC and address
//	│
//	├─ berth-vpc-bridge-<12 hex>  (an agent's bridge network for EC2 bridge-mode
//	│    tasks: a VPC namespace with one subnet, every task an ENI with NAT
//	│    egress, its ports published by PublicForwarders; see bridge.go)
//	│
//	└─ berth-<task id>  (a task's sandbox, /var/run/netns/berth-<task id>)
//	     eth0  address/prefix, MAC         the task end of its ENI; default route via the gateway
//	     inet berth                        the ENI's security groups (input/output, policy drop)
//
// Every name and address is derived from the ids or recorded on the links
// themselves (interface aliases "berth-…"; an ENI's records its id,
// address, MAC and NAT egress), so the kernel is the only state: an agent
// restarted at any point calls the same functions again and they finish
// the job. VPCs are isolated from each other and from the host (CIDRs may
// overlap); the host never gets a route to a VPC CIDR. The host reaches
// tasks only through sockets opened inside a VPC namespace (DialInVPC,
// ListenInVPC, PublicForwarder), whose packets come from the VPC's uplink
// address, outside every VPC CIDR.
//
// # Files
//
//	sandbox.go   task sandboxes (named namespaces)
//	vpc.go       VPC namespaces, bridges, names and aliases
//	eni.go       AttachENI, DetachENI
//	vpcaddr.go   the VPC namespace's own addresses (AddVPCAddress, DialInVPCFrom)
//	uplink.go    uplinks, host egress
//	vpcnft.go    the VPC namespace's nftables (NAT egress, source check)
//	firewall.go  security groups in the sandbox (ApplyFirewall)
//	socket.go    sockets inside a VPC namespace (DialInVPC, ListenInVPC)
//	forward.go   public IPs and bridge-mode host ports (PublicForwarder)
//	bridge.go    bridge networks (AttachBridge, DetachBridge)
//	cleanup.go   Leftovers, Cleanup, PruneVPCs
//	lock.go, nsexec.go, nft.go: locks, namespace switching, nftables helpers
//
// # Concurrency
//
// Changes to one VPC namespace (its bridges, ENIs, sets, its creation and
// deletion) are serialised by a per-VPC lock: a mutex within the process and
// an flock(2) on /run/berth/vpc-<vpc id>.lock across processes, so two agents
// on one host are safe. Choosing an uplink address takes the host-wide
// /run/berth/uplinks.lock. A sandbox belongs to one task and is changed by
// one caller at a time.
//
// # Namespace switching
//
// Work inside another namespace runs on a fresh goroutine locked to its OS
// thread (inNamespace, exported as RunIn); the thread is switched back
// afterwards, or, if that fails, left locked so that the Go runtime discards
// it. Sockets created there keep their namespace for life.
package netns
