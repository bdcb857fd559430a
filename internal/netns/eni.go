package netns

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ENIConfig is a task's elastic network interface as the control plane
// allocated it.
type ENIConfig struct {
	// ID is the interface id ("eni-" and 17 hex digits).
	ID string
	// VpcID and SubnetID place it: the VPC's namespace, the subnet's bridge.
	VpcID    string
	SubnetID string
	// Subnet is the subnet's IPv4 block; Gateway is its router address
	// (base+1), held by the subnet's bridge in the VPC namespace.
	Subnet  netip.Prefix
	Gateway netip.Addr
	// Address is the ENI's private address in Subnet.
	Address netip.Addr
	// MAC is eth0's hardware address; nil derives one from ID.
	MAC net.HardwareAddr
	// NATEgress lets the ENI reach beyond the VPC through the host's
	// uplink, masqueraded (a public subnet, or a public IP).
	NATEgress bool
}

func (c ENIConfig) validate() error {
	if err := validID("ENI", c.ID); err != nil {
		return err
	}
	if err := validID("VPC", c.VpcID); err != nil {
		return err
	}
	if err := validID("subnet", c.SubnetID); err != nil {
		return err
	}
	if !c.Subnet.IsValid() || !c.Subnet.Addr().Is4() || c.Subnet.Bits() > 30 || c.Subnet.Masked() != c.Subnet {
		return fmt.Errorf("subnet %s is not an IPv4 network of /30 or larger", c.Subnet)
	}
	if !c.Subnet.Contains(c.Gateway) {
		return fmt.Errorf("gateway %s is not in subnet %s", c.Gateway, c.Subnet)
	}
	if !c.Subnet.Contains(c.Address) || c.Address == c.Gateway || c.Address == c.Subnet.Addr() {
		return fmt.Errorf("address %s is not a host address of subnet %s other than the gateway", c.Address, c.Subnet)
	}
	if c.MAC != nil && (len(c.MAC) != 6 || c.MAC[0]&1 != 0) {
		return fmt.Errorf("MAC %s is not a unicast Ethernet address", c.MAC)
	}
	return nil
}

// eniName is the task end of every ENI, inside its sandbox.
const eniName = "eth0"

// AttachENI gives the sandbox its ENI: eth0 with cfg's MAC and address, a
// default route and a route to MetadataAddr via the gateway, and a veth
// peer on the subnet's bridge in the VPC's namespace, which is created
// (with its uplink) if this is the VPC's first ENI on the host. Before eth0
// exists the sandbox gets the base firewall (ensureBaseFirewall) unless it
// has one, so a task is never reachable before its rules arrive.
//
// AttachENI is idempotent: an agent that restarts halfway calls it again
// and it completes what is missing, leaving what is right alone. Several
// tasks of one VPC may attach at once, from one process or several.
func AttachENI(sb *Sandbox, cfg ENIConfig) error {
	if err := attachENI(sb, cfg); err != nil {
		return fmt.Errorf("attach %s to %s: %w", cfg.ID, sb.Name, err)
	}
	return nil
}

func attachENI(sb *Sandbox, cfg ENIConfig) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	if cfg.MAC == nil {
		cfg.MAC = derivedMAC("eni " + cfg.ID)
	}
	if err := ensureBaseFirewall(sb); err != nil {
		return err
	}
	sbh, err := netlinkAt(sb.path)
	if err != nil {
		return fmt.Errorf("netlink in sandbox: %w", err)
	}
	defer sbh.Close()

	lk, err := lockVPC(cfg.VpcID)
	if err != nil {
		return err
	}
	v, vethIndex, err := attachVPCSide(sb, sbh, cfg)
	if err != nil {
		mounted, _ := isNamespaceMount(vpcPath(cfg.VpcID))
		lk.release(!mounted) // the VPC may have been deleted on the way out
		return err
	}
	lk.release(false)
	defer v.close()

	// The sandbox side is the task's alone: no lock needed.
	eth0, err := sbh.LinkByName(eniName)
	if err != nil {
		return fmt.Errorf("find %s: %w", eniName, err)
	}
	if alias := sandboxAlias(cfg.ID, cfg.VpcID); eth0.Attrs().Alias != alias {
		if err := sbh.LinkSetAlias(eth0, alias); err != nil {
			return fmt.Errorf("name %s: %w", eniName, err)
		}
	}
	addr := &netlink.Addr{IPNet: prefixNet(netip.PrefixFrom(cfg.Address, cfg.Subnet.Bits()))}
	if err := sbh.AddrReplace(eth0, addr); err != nil {
		return fmt.Errorf("address %s: %w", eniName, err)
	}
	if eth0.Attrs().Flags&net.FlagUp == 0 {
		if err := sbh.LinkSetUp(eth0); err != nil {
			return fmt.Errorf("set %s up: %w", eniName, err)
		}
	}
	gw := cfg.Gateway.AsSlice()
	routes := []*netlink.Route{
		{LinkIndex: eth0.Attrs().Index, Gw: gw},
		{LinkIndex: eth0.Attrs().Index, Gw: gw, Dst: prefixNet(netip.PrefixFrom(MetadataAddr, 32))},
	}
	for _, r := range routes {
		if err := sbh.RouteReplace(r); err != nil {
			return fmt.Errorf("route %v via %s: %w", r.Dst, cfg.Gateway, err)
		}
	}
	// The kernel turns a new link's carrier on asynchronously (linkwatch):
	// until then the veth drops what it is given and the bridge port is
	// disabled. Return only when both ends are up, so the task's first
	// packets are not lost.
	if err := waitOperUp(sbh, eth0.Attrs().Index); err != nil {
		return fmt.Errorf("%s: %w", eniName, err)
	}
	if err := waitOperUp(v.h, vethIndex); err != nil {
		return fmt.Errorf("%s: %w", eniLinkName(cfg.ID), err)
	}
	return nil
}

// operUpTimeout bounds waitOperUp; linkwatch runs within a second even
// when it batches events.
const operUpTimeout = 2 * time.Second

// waitOperUp polls the link until its operational state is up.
func waitOperUp(h *netlink.Handle, index int) error {
	deadline := time.Now().Add(operUpTimeout)
	for delay := 50 * time.Microsecond; ; delay = min(2*delay, 5*time.Millisecond) {
		l, err := h.LinkByIndex(index)
		if err != nil {
			return fmt.Errorf("link state: %w", err)
		}
		if l.Attrs().OperState == netlink.OperUp {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not up after %v (state %s)", operUpTimeout, l.Attrs().OperState)
		}
		time.Sleep(delay)
	}
}

// attachVPCSide makes the VPC namespace, the subnet's bridge and the veth
// pair, and updates the VPC's sets. It returns the open VPC namespace (the
// caller closes it) and the index of the VPC end. The caller holds the VPC
// lock.
func attachVPCSide(sb *Sandbox, sbh *netlink.Handle, cfg ENIConfig) (*vpcNS, int, error) {
	v, err := ensureVPC(cfg.VpcID)
	if err != nil {
		return nil, 0, err
	}
	index, err := v.attachENILink(sb, sbh, cfg)
	if err != nil {
		// Do not leave a VPC namespace that no ENI will ever detach from.
		n, lerr := v.users()
		v.close()
		if lerr == nil && n == 0 {
			err = errors.Join(err, teardownVPC(cfg.VpcID))
		}
		return nil, 0, err
	}
	return v, index, nil
}

func (v *vpcNS) attachENILink(sb *Sandbox, sbh *netlink.Handle, cfg ENIConfig) (int, error) {
	br, err := v.ensureBridge(cfg.SubnetID, cfg.Subnet, cfg.Gateway)
	if err != nil {
		return 0, err
	}
	name := eniLinkName(cfg.ID)
	alias := eniRecord{id: cfg.ID, addr: cfg.Address, mac: cfg.MAC, nat: cfg.NATEgress}.alias()
	vl, err := v.h.LinkByName(name)
	if err != nil && !isLinkNotFound(err) {
		return 0, fmt.Errorf("find %s: %w", name, err)
	}
	if vl != nil {
		if r, ok := parseENIAlias(vl.Attrs().Alias); ok && r.id != cfg.ID {
			return 0, fmt.Errorf("interface %s in the VPC namespace belongs to %s", name, r.id)
		}
	}
	eth0, err := sbh.LinkByName(eniName)
	if err != nil && !isLinkNotFound(err) {
		return 0, fmt.Errorf("find %s: %w", eniName, err)
	}
	paired := vl != nil && eth0 != nil && vl.Attrs().ParentIndex == eth0.Attrs().Index && eth0.Attrs().ParentIndex == vl.Attrs().Index
	// The VPC's sets (NAT egress, source check) follow the aliases.
	setsChanged := !paired || vl.Attrs().Alias != alias
	if paired {
		if err := fixENILink(v, sbh, vl, eth0, br, alias, cfg.MAC); err != nil {
			return 0, err
		}
	} else {
		// Whatever half is there is stale: a crash between creating the pair
		// and naming it, or an eth0 of something else.
		if vl != nil {
			if err := v.h.LinkDel(vl); err != nil && !isLinkNotFound(err) {
				return 0, fmt.Errorf("delete stale %s: %w", name, err)
			}
		}
		if eth0 != nil {
			if err := sbh.LinkDel(eth0); err != nil && !isLinkNotFound(err) {
				return 0, fmt.Errorf("delete stale %s: %w", eniName, err)
			}
		}
		if vl, err = createENILink(v, sb, name, br, alias, cfg.MAC); err != nil {
			return 0, err
		}
	}
	if setsChanged {
		if err := v.syncTables(false); err != nil {
			return 0, err
		}
	}
	if err := v.reachable(cfg.Address, br, cfg.MAC); err != nil {
		return 0, err
	}
	return vl.Attrs().Index, nil
}

// unreachable makes addr, an ENI's address that just left bridge br, fail
// at once from inside the VPC namespace (an unreachable /32 route, and no
// neighbour entry): a load balancer or a health check connecting to a task
// that stopped gets "no route to host" now rather than after seconds of ARP
// probes. reachable undoes it when an ENI takes the address again.
func (v *vpcNS) unreachable(addr netip.Addr, br int) error {
	if err := v.h.RouteReplace(deadRoute(addr)); err != nil {
		return fmt.Errorf("route %s unreachable: %w", addr, err)
	}
	n := &netlink.Neigh{LinkIndex: br, Family: netlink.FAMILY_V4, IP: addr.AsSlice()}
	if err := v.h.NeighDel(n); br > 0 && err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("forget neighbour %s: %w", addr, err)
	}
	return nil
}

// reachable routes addr again and points its neighbour entry at the new
// ENI's MAC: addresses are reused, MACs are not, and a stale entry for the
// previous holder would black-hole the first seconds of traffic (until the
// kernel's unicast probes of the old MAC give up).
func (v *vpcNS) reachable(addr netip.Addr, br int, mac net.HardwareAddr) error {
	if err := v.h.RouteDel(deadRoute(addr)); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("delete unreachable route to %s: %w", addr, err)
	}
	n := &netlink.Neigh{LinkIndex: br, Family: netlink.FAMILY_V4, State: netlink.NUD_STALE, IP: addr.AsSlice(), HardwareAddr: mac}
	if len(mac) == 0 { // the kernel picked it: learn it by ARP
		if err := v.h.NeighDel(n); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("forget neighbour %s: %w", addr, err)
		}
		return nil
	}
	if err := v.h.NeighSet(n); err != nil {
		return fmt.Errorf("set neighbour %s: %w", addr, err)
	}
	return nil
}

func deadRoute(addr netip.Addr) *netlink.Route {
	return &netlink.Route{Dst: &net.IPNet{IP: addr.AsSlice(), Mask: net.CIDRMask(addr.BitLen(), addr.BitLen())},
		Type: unix.RTN_UNREACHABLE, Table: unix.RT_TABLE_MAIN}
}

// createENILink creates the veth pair straight across the two namespaces:
// name on the bridge in the VPC namespace, eth0 in the sandbox.
func createENILink(v *vpcNS, sb *Sandbox, name string, br int, alias string, mac net.HardwareAddr) (netlink.Link, error) {
	sbfd, err := unix.Open(sb.path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: sb.path, Err: err}
	}
	defer unix.Close(sbfd)
	veth := &netlink.Veth{LinkAttrs: netlink.NewLinkAttrs(), PeerName: eniName, PeerHardwareAddr: mac, PeerNamespace: netlink.NsFd(sbfd)}
	veth.Name = name
	veth.Flags = net.FlagUp
	veth.MasterIndex = br
	if err := v.h.LinkAdd(veth); err != nil {
		if !errors.Is(err, unix.EEXIST) {
			// LinkAdd sets the master after creating the pair: undo a half.
			_ = v.h.LinkDel(veth)
		}
		return nil, fmt.Errorf("add veth %s: %w", name, err)
	}
	if err := v.h.LinkSetAlias(veth, alias); err != nil {
		_ = v.h.LinkDel(veth)
		return nil, fmt.Errorf("name veth %s: %w", name, err)
	}
	return veth, nil
}

// fixENILink brings an existing pair in line with the config.
func fixENILink(v *vpcNS, sbh *netlink.Handle, vl, eth0 netlink.Link, br int, alias string, mac net.HardwareAddr) error {
	name := vl.Attrs().Name
	if vl.Attrs().Alias != alias {
		if err := v.h.LinkSetAlias(vl, alias); err != nil {
			return fmt.Errorf("name veth %s: %w", name, err)
		}
	}
	if vl.Attrs().MasterIndex != br {
		if err := v.h.LinkSetMasterByIndex(vl, br); err != nil {
			return fmt.Errorf("put %s on its bridge: %w", name, err)
		}
	}
	if vl.Attrs().Flags&net.FlagUp == 0 {
		if err := v.h.LinkSetUp(vl); err != nil {
			return fmt.Errorf("set %s up: %w", name, err)
		}
	}
	if eth0.Attrs().HardwareAddr.String() != mac.String() {
		if err := sbh.LinkSetHardwareAddr(eth0, mac); err != nil {
			return fmt.Errorf("set MAC of %s: %w", eniName, err)
		}
	}
	return nil
}

// DetachENI removes an ENI: its VPC end is taken off the VPC at once (set
// down and out of the VPC's sets) and deleted, and the sandbox's eth0, its
// address and routes go with it. When it was the VPC's last ENI on this
// host and it holds no VPC address (AddVPCAddress), the VPC namespace is
// deleted too (listeners opened in it by
// ListenInVPC closed, uplink deleted, namespace unmounted). It is
// idempotent, and safe to call while other tasks of the VPC attach: the
// deletion itself, which the kernel makes take 10 to 20 ms, runs after the
// VPC lock is released. The sandbox and its firewall stay; DeleteSandbox
// removes them.
func DetachENI(vpcID, eniID string) error {
	if err := detachENI(vpcID, eniID); err != nil {
		return fmt.Errorf("detach %s from %s: %w", eniID, vpcID, err)
	}
	return nil
}

func detachENI(vpcID, eniID string) error {
	if err := validID("VPC", vpcID); err != nil {
		return err
	}
	if err := validID("ENI", eniID); err != nil {
		return err
	}
	lk, err := lockVPC(vpcID)
	if err != nil {
		return err
	}
	v, err := openVPC(vpcID)
	if errors.Is(err, os.ErrNotExist) {
		// Gone already; a host uplink can outlive a namespace some process
		// still held when it was unmounted.
		err = deleteHostUplink(vpcID)
		lk.release(err == nil)
		return err
	}
	if err != nil {
		lk.release(false)
		return err
	}
	vl, remaining, err := v.takeOff(eniID)
	if err != nil {
		v.close()
		lk.release(false)
		return err
	}
	if remaining > 0 {
		lk.release(false)
		defer v.close()
		return deleteLink(v.h, vl)
	}
	// The last one: everything goes, under the lock.
	err = deleteLink(v.h, vl)
	v.close()
	err = errors.Join(err, teardownVPC(vpcID))
	lk.release(err == nil)
	return err
}

// aliasDetached marks the VPC end of an ENI that DetachENI has taken off
// and is about to delete.
const aliasDetached = "berth-eni-detached "

// takeOff takes the ENI's VPC end off the VPC: down, marked detached (so
// that it no longer counts) and out of the VPC's sets. It returns the link
// (nil if there is none) and how many ENIs the VPC still has.
func (v *vpcNS) takeOff(eniID string) (netlink.Link, int, error) {
	name := eniLinkName(eniID)
	vl, err := v.h.LinkByName(name)
	if err != nil && !isLinkNotFound(err) {
		return nil, 0, fmt.Errorf("find %s: %w", name, err)
	}
	if vl != nil {
		alias := vl.Attrs().Alias
		r, ok := parseENIAlias(alias)
		if ok && r.id != eniID || !ok && alias != aliasDetached+eniID && alias != "" {
			return nil, 0, fmt.Errorf("interface %s in the VPC namespace belongs to %q", name, alias)
		}
		if err := v.h.LinkSetDown(vl); err != nil {
			return nil, 0, fmt.Errorf("set %s down: %w", name, err)
		}
		if err := v.h.LinkSetAlias(vl, aliasDetached+eniID); err != nil {
			return nil, 0, fmt.Errorf("mark %s detached: %w", name, err)
		}
		if ok && r.addr.IsValid() {
			if err := v.unreachable(r.addr, vl.Attrs().MasterIndex); err != nil {
				return nil, 0, err
			}
		}
	}
	n, err := v.users()
	if err != nil {
		return nil, 0, err
	}
	if n > 0 {
		if err := v.syncTables(false); err != nil {
			return nil, 0, err
		}
	}
	return vl, n, nil
}

// deleteLink deletes l (nil: nothing); a link already gone is not an error.
func deleteLink(h *netlink.Handle, l netlink.Link) error {
	if l == nil {
		return nil
	}
	if err := h.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) && !isLinkNotFound(err) {
		return fmt.Errorf("delete %s: %w", l.Attrs().Name, err)
	}
	return nil
}
