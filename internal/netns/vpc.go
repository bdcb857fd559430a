package netns

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// A VPC's namespace is its router: one bridge per subnet holding the
// subnet's gateway address, the VPC ends of its ENIs on those bridges, an
// uplink to the host (uplink.go) and the metadata address on lo.

// VPCNamespacePrefix starts the name of every VPC namespace under RunDir:
// "berth-vpc-<vpc id>".
const VPCNamespacePrefix = "berth-vpc-"

// MetadataAddr is the task metadata and credentials address. It sits on
// lo of every VPC namespace; tasks reach it through their gateway.
var MetadataAddr = netip.MustParseAddr("169.254.170.2")

// Interface aliases (IFLA_IFALIAS) mark berth's links and carry what the
// kernel must remember for a restarted agent.
const (
	aliasBridge = "berth-subnet " // + subnet id
	aliasENI    = "berth-eni "    // + ENI id, address, MAC, and " nat" for NAT egress
	aliasUplink = "berth-uplink " // + vpc id; the VPC side adds readyMark
	readyMark   = " ready"        // the VPC namespace is fully set up
)

// VPCNamespace returns the name of a VPC's namespace under RunDir.
func VPCNamespace(vpcID string) string { return VPCNamespacePrefix + vpcID }

func vpcPath(vpcID string) string { return filepath.Join(RunDir, VPCNamespace(vpcID)) }

// bridgeName is a subnet's bridge in its VPC namespace: "br" and 12 hex
// digits of a hash of the subnet id (interface names have 15 characters;
// the alias carries the whole id and catches a collision).
func bridgeName(subnetID string) string { return "br" + shortHash(subnetID, 12) }

// eniLinkName is the VPC end of an ENI: "eni" and 12 hex digits of a hash
// of the ENI id.
func eniLinkName(eniID string) string { return "eni" + shortHash(eniID, 12) }

func shortHash(s string, n int) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:n]
}

// validID accepts the ids of VPCs, subnets and ENIs: they become parts of
// file and namespace names.
func validID(kind, id string) error {
	if id == "" || len(id) > 128 {
		return fmt.Errorf("invalid %s id %q", kind, id)
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf("invalid %s id %q", kind, id)
		}
	}
	return nil
}

// vpcNS is an open VPC namespace. Everything that changes it runs under
// the VPC's lock.
type vpcNS struct {
	id   string
	path string
	fd   int             // the namespace, for peers and nftables
	h    *netlink.Handle // netlink inside the namespace
}

func (v *vpcNS) close() {
	v.h.Close()
	unix.Close(v.fd)
}

// openVPC opens an existing VPC namespace; the error wraps os.ErrNotExist
// if there is none.
func openVPC(vpcID string) (*vpcNS, error) {
	path := vpcPath(vpcID)
	mounted, err := isNamespaceMount(path)
	if err != nil {
		return nil, err
	}
	if !mounted {
		return nil, fmt.Errorf("%s is not a network namespace: %w", path, os.ErrNotExist)
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	var h *netlink.Handle
	err = inNamespaceFd(fd, func() error {
		var err error
		h, err = netlink.NewHandle(unix.NETLINK_ROUTE)
		return err
	})
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("netlink in %s: %w", path, err)
	}
	return &vpcNS{id: vpcID, path: path, fd: fd, h: h}, nil
}

// ensureVPC opens the VPC namespace, creating and setting it up as needed.
// A namespace whose uplink carries the ready mark was set up completely
// (the mark is written last), so the common case costs one lookup; any
// other state, e.g. left by a crash halfway, is finished idempotently.
// The caller holds the VPC lock.
func ensureVPC(vpcID string) (*vpcNS, error) {
	v, err := openVPC(vpcID)
	switch {
	case err == nil:
		if l, err := v.h.LinkByName(uplinkName); err == nil && l.Attrs().Alias == aliasUplink+vpcID+readyMark {
			return v, nil
		}
	case errors.Is(err, os.ErrNotExist):
		if _, err := CreateSandbox(VPCNamespace(vpcID)); err != nil {
			return nil, err
		}
		if v, err = openVPC(vpcID); err != nil {
			return nil, err
		}
	default:
		return nil, err
	}
	if err := v.setup(); err != nil {
		v.close()
		return nil, fmt.Errorf("set up VPC namespace: %w", err)
	}
	return v, nil
}

// setup makes the namespace a router; every step is idempotent.
func (v *vpcNS) setup() error {
	lo, err := v.h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("find lo: %w", err)
	}
	if err := v.h.LinkSetUp(lo); err != nil {
		return fmt.Errorf("set lo up: %w", err)
	}
	err = inNamespaceFd(v.fd, func() error {
		if err := setSysctl("net/ipv4/ip_forward", "1"); err != nil {
			return err
		}
		// Bridged frames need no netfilter here (security groups live in the
		// sandboxes); where br_netfilter is loaded its switch is per
		// namespace. Best effort: without br_netfilter there is no such file.
		_ = setSysctl("net/bridge/bridge-nf-call-iptables", "0")
		return nil
	})
	if err != nil {
		return fmt.Errorf("sysctl: %w", err)
	}
	md := &netlink.Addr{IPNet: &net.IPNet{IP: MetadataAddr.AsSlice(), Mask: net.CIDRMask(32, 32)}, Scope: unix.RT_SCOPE_HOST}
	if err := v.h.AddrReplace(lo, md); err != nil {
		return fmt.Errorf("add %s to lo: %w", MetadataAddr, err)
	}
	up, err := v.ensureUplink()
	if err != nil {
		return err
	}
	if err := v.syncTables(true); err != nil {
		return err
	}
	if err := v.h.LinkSetAlias(up, aliasUplink+v.id+readyMark); err != nil {
		return fmt.Errorf("mark uplink ready: %w", err)
	}
	return nil
}

// ensureBridge makes the subnet's bridge, up and holding the gateway
// address, and returns its index. The bridge gets a fixed MAC (derived from
// the subnet id) so that it does not change as ports come and go and the
// tasks' ARP caches stay right.
func (v *vpcNS) ensureBridge(subnetID string, subnet netip.Prefix, gw netip.Addr) (int, error) {
	name := bridgeName(subnetID)
	alias := aliasBridge + subnetID
	l, err := v.h.LinkByName(name)
	if err != nil && !isLinkNotFound(err) {
		return 0, fmt.Errorf("find bridge %s: %w", name, err)
	}
	if l == nil {
		br := &netlink.Bridge{LinkAttrs: netlink.NewLinkAttrs()}
		br.Name = name
		br.HardwareAddr = derivedMAC("bridge " + subnetID)
		br.Flags = net.FlagUp
		if err := v.h.LinkAdd(br); err != nil {
			return 0, fmt.Errorf("add bridge %s: %w", name, err)
		}
		l = br
	}
	switch l.Attrs().Alias {
	case alias:
	case "": // created, then interrupted before the alias
		if err := v.h.LinkSetAlias(l, alias); err != nil {
			return 0, fmt.Errorf("name bridge %s: %w", name, err)
		}
	default:
		return 0, fmt.Errorf("bridge %s for %s belongs to %q", name, subnetID, l.Attrs().Alias)
	}
	if l.Attrs().Flags&net.FlagUp == 0 {
		if err := v.h.LinkSetUp(l); err != nil {
			return 0, fmt.Errorf("set bridge %s up: %w", name, err)
		}
	}
	gwAddr := &netlink.Addr{IPNet: &net.IPNet{IP: gw.AsSlice(), Mask: net.CIDRMask(subnet.Bits(), 32)}}
	if err := v.h.AddrReplace(l, gwAddr); err != nil {
		return 0, fmt.Errorf("add gateway %s to bridge %s: %w", gw, name, err)
	}
	return l.Attrs().Index, nil
}

// eniRecord is what the VPC end of an ENI records in its alias:
// "berth-eni <id> <address> <MAC>[ nat]".
type eniRecord struct {
	id   string
	addr netip.Addr
	mac  net.HardwareAddr
	nat  bool
}

func (r eniRecord) alias() string {
	s := aliasENI + r.id + " " + r.addr.String() + " " + r.mac.String()
	if r.nat {
		s += " nat"
	}
	return s
}

func parseENIAlias(alias string) (eniRecord, bool) {
	if !strings.HasPrefix(alias, aliasENI) {
		return eniRecord{}, false
	}
	f := strings.Fields(strings.TrimPrefix(alias, aliasENI))
	if len(f) < 3 {
		return eniRecord{}, false
	}
	a, err := netip.ParseAddr(f[1])
	if err != nil {
		return eniRecord{}, false
	}
	mac, err := net.ParseMAC(f[2])
	if err != nil || len(mac) != 6 {
		return eniRecord{}, false
	}
	return eniRecord{id: f[0], addr: a, mac: mac, nat: len(f) > 3 && f[3] == "nat"}, true
}

// eniLink is the VPC end of an ENI and what its alias records. An alias
// this version cannot read (valid false) still counts as an ENI, so the
// VPC is never deleted under it, but is in none of the VPC's sets.
type eniLink struct {
	link netlink.Link
	eniRecord
	valid bool
}

// sandboxAlias marks the task end of an ENI, eth0 in the sandbox:
// "berth-eni <eni id> <vpc id>", so that DeleteSandbox can detach it.
func sandboxAlias(eniID, vpcID string) string { return aliasENI + eniID + " " + vpcID }

// sandboxENI reads which ENI the sandbox at path has, if any.
func sandboxENI(path string) (vpcID, eniID string, ok bool) {
	if mounted, err := isNamespaceMount(path); err != nil || !mounted {
		return "", "", false
	}
	h, err := netlinkAt(path)
	if err != nil {
		return "", "", false
	}
	defer h.Close()
	l, err := h.LinkByName(eniName)
	if err != nil {
		return "", "", false
	}
	f := strings.Fields(strings.TrimPrefix(l.Attrs().Alias, aliasENI))
	if !strings.HasPrefix(l.Attrs().Alias, aliasENI) || len(f) != 2 || validID("ENI", f[0]) != nil || validID("VPC", f[1]) != nil {
		return "", "", false
	}
	return f[1], f[0], true
}

// enis lists the ENIs attached to the VPC.
func (v *vpcNS) enis() ([]eniLink, error) {
	links, err := dump(v.h.LinkList)
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	var out []eniLink
	for _, l := range links {
		alias := l.Attrs().Alias
		if r, ok := parseENIAlias(alias); ok {
			out = append(out, eniLink{link: l, eniRecord: r, valid: true})
		} else if strings.HasPrefix(alias, aliasENI) {
			out = append(out, eniLink{link: l})
		}
	}
	return out, nil
}

// teardownVPC deletes the VPC namespace: listeners opened in it by this
// process are closed, the uplink deleted (so the host side goes at once,
// not when the kernel gets round to freeing the namespace) and the
// namespace unmounted; bridges, ENI ends and nftables go with it. The
// caller holds the VPC lock. Deleting a VPC that is not there is not an
// error.
func teardownVPC(vpcID string) error {
	closeVPCListeners(vpcID)
	errUp := deleteHostUplink(vpcID)
	errNS := deleteNamespace(vpcPath(vpcID))
	if err := errors.Join(errUp, errNS); err != nil {
		return fmt.Errorf("delete VPC namespace of %s: %w", vpcID, err)
	}
	return nil
}

// derivedMAC is a locally administered unicast MAC derived from s.
func derivedMAC(s string) net.HardwareAddr {
	sum := sha256.Sum256([]byte(s))
	mac := net.HardwareAddr(sum[:6])
	mac[0] = mac[0]&0xfe | 0x02
	return mac
}

func isLinkNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf)
}
