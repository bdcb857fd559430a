package netns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Addresses of the VPC namespace itself: a load balancer's interfaces in
// the VPC. Unlike an ENI, such an address has no sandbox: the load balancer
// runs in the agent's process and opens its sockets in the VPC namespace
// (DialInVPCFrom), so its packets originate in the router itself.
//
// Each address sits, as a /32, on lo of the VPC namespace, labelled
// vpcAddrLabel: the label is the record a restarted agent finds (as ENIs
// are recorded in link aliases), and the subnet's bridge keeps its gateway
// as its only address. The address is local to the router, so
//   - tasks of any subnet reach it through their gateway, and tasks of its
//     own subnet by ARP on their bridge (the router answers ARP for all its
//     local addresses, arp_ignore 0), as they reach MetadataAddr;
//   - its packets leave through the bridge device, not a bridge port: the
//     source check (bridge berth-ports, prerouting on ports) never sees
//     them, and the replies arrive on the target's port with the target's
//     own MAC and address, which it admits;
//   - table inet berth-vpc only restricts the uplink, so traffic between
//     the address and the VPC's subnets is neither dropped nor NATed; the
//     address is in no NAT set and cannot leave the VPC.
//
// A VPC namespace holding such addresses counts them as users: DetachENI
// of its last ENI and PruneVPCs keep it, and RemoveVPCAddress of the last
// address of a VPC without ENIs deletes it.

// vpcAddrLabel labels the VPC addresses on lo (a label starts with the
// link's name and has at most 15 characters).
const vpcAddrLabel = "lo:berth-lb"

// AddVPCAddress gives the VPC namespace the address addr of subnet (whose
// gateway is gateway and whose bridge is named after subnetID), creating
// the namespace and the subnet's bridge as AttachENI does if they are
// missing. It is idempotent. The address keeps the namespace alive until
// RemoveVPCAddress.
func AddVPCAddress(vpcID, subnetID string, subnet netip.Prefix, gateway, addr netip.Addr) error {
	if err := addVPCAddress(vpcID, subnetID, subnet, gateway, addr); err != nil {
		return fmt.Errorf("add %s to VPC %s: %w", addr, vpcID, err)
	}
	return nil
}

func addVPCAddress(vpcID, subnetID string, subnet netip.Prefix, gateway, addr netip.Addr) error {
	// The ENI checks fit: the address is a host address of the subnet.
	cfg := ENIConfig{ID: "eni-addr", VpcID: vpcID, SubnetID: subnetID, Subnet: subnet, Gateway: gateway, Address: addr}
	if err := cfg.validate(); err != nil {
		return err
	}
	lk, err := lockVPC(vpcID)
	if err != nil {
		return err
	}
	v, err := ensureVPC(vpcID)
	if err != nil {
		lk.release(false)
		return err
	}
	err = v.addAddress(subnetID, subnet, gateway, addr)
	if err != nil {
		// Do not leave a VPC namespace nobody uses.
		if n, uerr := v.users(); uerr == nil && n == 0 {
			v.close()
			terr := teardownVPC(vpcID)
			lk.release(terr == nil)
			return errors.Join(err, terr)
		}
	}
	v.close()
	lk.release(false)
	return err
}

func (v *vpcNS) addAddress(subnetID string, subnet netip.Prefix, gateway, addr netip.Addr) error {
	if _, err := v.ensureBridge(subnetID, subnet, gateway); err != nil {
		return err
	}
	lo, err := v.h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("find lo: %w", err)
	}
	na := &netlink.Addr{IPNet: prefixNet(netip.PrefixFrom(addr, 32)), Label: vpcAddrLabel}
	if err := v.h.AddrReplace(lo, na); err != nil {
		return fmt.Errorf("add %s to lo: %w", addr, err)
	}
	return nil
}

// vpcAddrs lists the VPC addresses (those on lo labelled vpcAddrLabel).
func (v *vpcNS) vpcAddrs() ([]netlink.Addr, error) {
	lo, err := v.h.LinkByName("lo")
	if err != nil {
		return nil, fmt.Errorf("find lo: %w", err)
	}
	all, err := v.h.AddrList(lo, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("addresses of lo: %w", err)
	}
	var out []netlink.Addr
	for _, a := range all {
		if a.Label == vpcAddrLabel {
			out = append(out, a)
		}
	}
	return out, nil
}

// users counts what keeps the VPC namespace alive: ENIs and VPC addresses.
func (v *vpcNS) users() (int, error) {
	enis, err := v.enis()
	if err != nil {
		return 0, err
	}
	addrs, err := v.vpcAddrs()
	if err != nil {
		return 0, err
	}
	return len(enis) + len(addrs), nil
}

// VPCAddresses lists the addresses AddVPCAddress gave the VPC (none if it
// has no namespace here).
func VPCAddresses(vpcID string) ([]netip.Addr, error) {
	if err := validID("VPC", vpcID); err != nil {
		return nil, err
	}
	v, err := openVPC(vpcID)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer v.close()
	addrs, err := v.vpcAddrs()
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			out = append(out, ip.Unmap())
		}
	}
	return out, nil
}

// RemoveVPCAddress takes addr off the VPC namespace; when nothing else (no
// ENI, no other address) uses the namespace, it is deleted as DetachENI of
// the last ENI deletes it. Removing an address that is not there is not an
// error.
func RemoveVPCAddress(vpcID string, addr netip.Addr) error {
	if err := removeVPCAddress(vpcID, addr); err != nil {
		return fmt.Errorf("remove %s from VPC %s: %w", addr, vpcID, err)
	}
	return nil
}

func removeVPCAddress(vpcID string, addr netip.Addr) error {
	if err := validID("VPC", vpcID); err != nil {
		return err
	}
	lk, err := lockVPC(vpcID)
	if err != nil {
		return err
	}
	v, err := openVPC(vpcID)
	if errors.Is(err, os.ErrNotExist) {
		err = deleteHostUplink(vpcID)
		lk.release(err == nil)
		return err
	}
	if err != nil {
		lk.release(false)
		return err
	}
	if err := v.removeAddress(addr); err != nil {
		v.close()
		lk.release(false)
		return err
	}
	n, err := v.users()
	v.close()
	if err != nil || n > 0 {
		lk.release(false)
		return err
	}
	err = teardownVPC(vpcID)
	lk.release(err == nil)
	return err
}

func (v *vpcNS) removeAddress(addr netip.Addr) error {
	lo, err := v.h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("find lo: %w", err)
	}
	addrs, err := v.vpcAddrs()
	if err != nil {
		return err
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap() == addr {
			if err := v.h.AddrDel(lo, &a); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
				return fmt.Errorf("remove %s from lo: %w", addr, err)
			}
		}
	}
	return nil
}

// DialInVPCFrom is DialInVPC with the source address local, one of the
// VPC namespace's own addresses (AddVPCAddress): the target sees it as the
// peer. The port is chosen at connect time.
func DialInVPCFrom(ctx context.Context, vpcID, network string, local netip.Addr, address string) (net.Conn, error) {
	if err := validID("VPC", vpcID); err != nil {
		return nil, err
	}
	c, err := dialIn(ctx, vpcPath(vpcID), network, netip.AddrPortFrom(local, 0), address)
	if err != nil {
		if errors.Is(err, unix.EADDRNOTAVAIL) {
			err = fmt.Errorf("%w (%s is not an address of the VPC namespace)", err, local)
		}
		return nil, fmt.Errorf("dial %s from %s in %s: %w", address, local, vpcID, err)
	}
	return c, nil
}
