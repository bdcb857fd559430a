package netns

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Each VPC namespace has an uplink to the host: a veth whose host end is
// "bu" + 13 hex digits of a hash of the VPC id, with the first address of a
// link-local /30 from UplinkPool, and whose VPC end is "uplink" with the
// second address and the VPC's default route. The host gets only the /30's
// connected route, never a route to a VPC CIDR.
//
// What may cross the uplink is decided in the VPC namespace (vpcnft.go).
// On the host, EnableHostEgress masquerades what comes out of the uplinks
// on to the host's own network.

// UplinkPool is where uplink /30s come from (169.254.64.0–169.254.127.255,
// well away from the metadata range 169.254.170.0/24).
var UplinkPool = netip.MustParsePrefix("169.254.64.0/18")

const (
	uplinkName       = "uplink" // the VPC end, inside the VPC namespace
	uplinkHostPrefix = "bu"
	// HostEgressTable is the host's nftables table (family ip) of
	// EnableHostEgress.
	HostEgressTable = "berth-egress"
)

// uplinkHostName is the host end of a VPC's uplink.
func uplinkHostName(vpcID string) string { return uplinkHostPrefix + shortHash(vpcID, 13) }

// ensureUplink makes the uplink veth, its addresses and the VPC's default
// route, and returns the VPC end.
func (v *vpcNS) ensureUplink() (netlink.Link, error) {
	hostName := uplinkHostName(v.id)
	alias := aliasUplink + v.id
	hl, err := netlink.LinkByName(hostName)
	if err != nil && !isLinkNotFound(err) {
		return nil, fmt.Errorf("find uplink %s: %w", hostName, err)
	}
	if hl != nil && hl.Attrs().Alias != alias && hl.Attrs().Alias != "" {
		return nil, fmt.Errorf("host interface %s exists and is not the uplink of %s (alias %q)", hostName, v.id, hl.Attrs().Alias)
	}
	vl, err := v.h.LinkByName(uplinkName)
	if err != nil && !isLinkNotFound(err) {
		return nil, fmt.Errorf("find uplink in VPC: %w", err)
	}
	paired := hl != nil && vl != nil && hl.Attrs().ParentIndex == vl.Attrs().Index && vl.Attrs().ParentIndex == hl.Attrs().Index
	if !paired {
		// Half a pair or a stale one (from a namespace that was deleted
		// while something held it): start over.
		if hl != nil {
			if err := netlink.LinkDel(hl); err != nil && !isLinkNotFound(err) {
				return nil, fmt.Errorf("delete stale uplink %s: %w", hostName, err)
			}
		}
		if vl != nil {
			if err := v.h.LinkDel(vl); err != nil && !isLinkNotFound(err) {
				return nil, fmt.Errorf("delete stale uplink in VPC: %w", err)
			}
		}
		veth := &netlink.Veth{LinkAttrs: netlink.NewLinkAttrs(), PeerName: uplinkName, PeerNamespace: netlink.NsFd(v.fd)}
		veth.Name = hostName
		veth.Flags = net.FlagUp
		if err := netlink.LinkAdd(veth); err != nil {
			return nil, fmt.Errorf("add uplink %s: %w", hostName, err)
		}
		hl = veth
		if vl, err = v.h.LinkByName(uplinkName); err != nil {
			return nil, fmt.Errorf("find new uplink in VPC: %w", err)
		}
	}
	if hl.Attrs().Alias != alias {
		if err := netlink.LinkSetAlias(hl, alias); err != nil {
			return nil, fmt.Errorf("name uplink %s: %w", hostName, err)
		}
	}
	hostAddr, err := ensureHostUplinkAddr(hl, v.id)
	if err != nil {
		return nil, err
	}
	vpcAddr := hostAddr.Next()
	if err := v.h.AddrReplace(vl, &netlink.Addr{IPNet: prefixNet(netip.PrefixFrom(vpcAddr, 30))}); err != nil {
		return nil, fmt.Errorf("address uplink in VPC: %w", err)
	}
	if err := v.h.LinkSetUp(vl); err != nil {
		return nil, fmt.Errorf("set uplink in VPC up: %w", err)
	}
	if hl.Attrs().Flags&net.FlagUp == 0 {
		if err := netlink.LinkSetUp(hl); err != nil {
			return nil, fmt.Errorf("set uplink %s up: %w", hostName, err)
		}
	}
	def := &netlink.Route{LinkIndex: vl.Attrs().Index, Gw: hostAddr.AsSlice()}
	if err := v.h.RouteReplace(def); err != nil {
		return nil, fmt.Errorf("default route of VPC via %s: %w", hostAddr, err)
	}
	return vl, nil
}

// ensureHostUplinkAddr returns the host end's address, choosing and
// assigning a free /30 of UplinkPool if it has none. The choice runs under
// the host-wide uplinks lock: it scans every address on the host.
func ensureHostUplinkAddr(hl netlink.Link, vpcID string) (netip.Addr, error) {
	if a, ok := uplinkAddrOf(hl); ok {
		return a, nil
	}
	lk, err := lockKey(uplinksLock)
	if err != nil {
		return netip.Addr{}, err
	}
	defer lk.release(false)
	all, err := dump(func() ([]netlink.Addr, error) { return netlink.AddrList(nil, netlink.FAMILY_V4) })
	if err != nil {
		return netip.Addr{}, fmt.Errorf("list host addresses: %w", err)
	}
	used := map[uint32]bool{}
	for _, a := range all {
		if ip, ok := netip.AddrFromSlice(a.IP.To4()); ok && UplinkPool.Contains(ip) {
			used[(ipv4Uint(ip)-ipv4Uint(UplinkPool.Addr()))/4] = true
		}
	}
	slots := uint32(1) << (32 - UplinkPool.Bits() - 2)
	h := fnv.New32a()
	h.Write([]byte(vpcID))
	start := h.Sum32() % slots
	for i := range slots {
		slot := (start + i) % slots
		if used[slot] {
			continue
		}
		base := ipv4Uint(UplinkPool.Addr()) + slot*4
		hostAddr := uint32Addr(base + 1)
		if err := netlink.AddrAdd(hl, &netlink.Addr{IPNet: prefixNet(netip.PrefixFrom(hostAddr, 30))}); err != nil {
			return netip.Addr{}, fmt.Errorf("address uplink %s: %w", hl.Attrs().Name, err)
		}
		return hostAddr, nil
	}
	return netip.Addr{}, fmt.Errorf("no free /30 left in %s for an uplink", UplinkPool)
}

// uplinkAddrOf finds the host end's /30 address.
func uplinkAddrOf(hl netlink.Link) (netip.Addr, bool) {
	addrs, err := dump(func() ([]netlink.Addr, error) { return netlink.AddrList(hl, netlink.FAMILY_V4) })
	if err != nil {
		return netip.Addr{}, false
	}
	for _, a := range addrs {
		ones, _ := a.Mask.Size()
		if ip, ok := netip.AddrFromSlice(a.IP.To4()); ok && ones == 30 && UplinkPool.Contains(ip) {
			return ip, true
		}
	}
	return netip.Addr{}, false
}

// deleteHostUplink deletes the host end of a VPC's uplink if it is there
// and is berth's.
func deleteHostUplink(vpcID string) error {
	name := uplinkHostName(vpcID)
	hl, err := netlink.LinkByName(name)
	if isLinkNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("find uplink %s: %w", name, err)
	}
	if a := hl.Attrs().Alias; a != aliasUplink+vpcID && a != "" {
		return nil // not ours
	}
	if err := netlink.LinkDel(hl); err != nil && !isLinkNotFound(err) {
		return fmt.Errorf("delete uplink %s: %w", name, err)
	}
	return nil
}

// vpcUplinkAddr is the VPC end's address: the source of what the host
// sends into the VPC through sockets opened there (see PublicForwarder).
func vpcUplinkAddr(vpcID string) (netip.Addr, error) {
	h, err := netlinkAt(vpcPath(vpcID))
	if err != nil {
		return netip.Addr{}, fmt.Errorf("VPC %s: %w", vpcID, err)
	}
	defer h.Close()
	l, err := h.LinkByName(uplinkName)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("VPC %s uplink: %w", vpcID, err)
	}
	addrs, err := dump(func() ([]netlink.Addr, error) { return h.AddrList(l, netlink.FAMILY_V4) })
	if err != nil {
		return netip.Addr{}, fmt.Errorf("VPC %s uplink: %w", vpcID, err)
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP.To4()); ok && UplinkPool.Contains(ip) {
			return ip, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("VPC %s uplink has no address", vpcID)
}

// ipForwardSaved keeps the host's net.ipv4.ip_forward from before
// EnableHostEgress, for DisableHostEgress.
var ipForwardSaved = filepath.Join(LockDir, "host-ip_forward.saved")

// EnableHostEgress lets tasks with NAT egress out beyond the host: it sets
// net.ipv4.ip_forward=1 in the host namespace (remembering the old value)
// and installs table ip berth-egress, which masquerades what the VPCs send
// from UplinkPool addresses and forwards nothing from one uplink to
// another. It is idempotent. The agent calls it only when configured to;
// a host firewall with a drop policy on forward still applies.
func EnableHostEgress() error {
	if err := enableEgress(-1, ipForwardSaved); err != nil {
		return fmt.Errorf("enable host egress: %w", err)
	}
	return nil
}

// DisableHostEgress undoes EnableHostEgress: it deletes the table and
// restores ip_forward. Disabling what is not enabled is not an error.
func DisableHostEgress() error {
	if err := disableEgress(-1, ipForwardSaved); err != nil {
		return fmt.Errorf("disable host egress: %w", err)
	}
	return nil
}

// enableEgress is EnableHostEgress for the namespace of fd (-1: the
// calling thread's), so that tests can run it in a namespace of their own.
func enableEgress(fd int, saved string) error {
	err := inNamespaceOrHere(fd, func() error {
		old, err := getSysctl("net/ipv4/ip_forward")
		if err != nil {
			return err
		}
		if _, err := os.Stat(saved); errors.Is(err, os.ErrNotExist) {
			if err := os.MkdirAll(filepath.Dir(saved), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(saved, []byte(old), 0o644); err != nil {
				return err
			}
		}
		return setSysctl("net/ipv4/ip_forward", "1")
	})
	if err != nil {
		return fmt.Errorf("ip_forward: %w", err)
	}
	c, err := nftConnAt(fd)
	if err != nil {
		return err
	}
	defer closeNFT(c)
	t := c.AddTable(&nftables.Table{Family: nftables.TableFamilyIPv4, Name: HostEgressTable})
	policy := nftables.ChainPolicyAccept
	post := c.AddChain(&nftables.Chain{Name: "postrouting", Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource, Policy: &policy})
	fwd := c.AddChain(&nftables.Chain{Name: "forward", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &policy})
	c.FlushChain(post)
	c.FlushChain(fwd)
	// postrouting has no input interface: match the uplinks' sources.
	c.AddRule(&nftables.Rule{Table: t, Chain: post, Exprs: rule(ipAddrIn(ipSrcOffset, UplinkPool),
		ifnamePrefix(expr.MetaKeyOIFNAME, expr.CmpOpNeq, uplinkHostPrefix), []expr.Any{&expr.Masq{}})})
	c.AddRule(&nftables.Rule{Table: t, Chain: fwd, Exprs: rule(ifnamePrefix(expr.MetaKeyIIFNAME, expr.CmpOpEq, uplinkHostPrefix),
		ifnamePrefix(expr.MetaKeyOIFNAME, expr.CmpOpEq, uplinkHostPrefix), verdict(drop()))})
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables table %s: %w", HostEgressTable, err)
	}
	return nil
}

func disableEgress(fd int, saved string) error {
	c, err := nftConnAt(fd)
	if err != nil {
		return err
	}
	defer closeNFT(c)
	exists, err := tableExists(c, nftables.TableFamilyIPv4, HostEgressTable)
	if err != nil {
		return err
	}
	if exists {
		c.DelTable(&nftables.Table{Family: nftables.TableFamilyIPv4, Name: HostEgressTable})
		if err := c.Flush(); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("delete nftables table %s: %w", HostEgressTable, err)
		}
	}
	b, err := os.ReadFile(saved)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	err = inNamespaceOrHere(fd, func() error { return setSysctl("net/ipv4/ip_forward", strings.TrimSpace(string(b))) })
	if err != nil {
		return fmt.Errorf("restore ip_forward: %w", err)
	}
	return os.Remove(saved)
}

// inNamespaceOrHere runs fn in the namespace of fd, or right here for -1.
func inNamespaceOrHere(fd int, fn func() error) error {
	if fd < 0 {
		return fn()
	}
	return inNamespaceFd(fd, fn)
}

func prefixNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func uint32Addr(v uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}
