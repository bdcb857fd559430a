package vpc

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"
)

// Address arithmetic: CIDR blocks, AWS's reserved addresses, picking free
// addresses, and the names and MACs derived from them.

// Block sizes AWS allows for VPCs and subnets.
const (
	minBlockBits = 16
	maxBlockBits = 28
)

// reservedPerSubnet is how many addresses of every subnet are never leased:
// the network address, +1 (router), +2 (DNS), +3 (reserved) and broadcast.
const reservedPerSubnet = 5

// parseIPv4Prefix parses an IPv4 CIDR block ("10.0.0.0/16"). canonical is
// false when it has host bits set or is not written the canonical way.
func parseIPv4Prefix(s string) (p netip.Prefix, canonical bool, err error) {
	p, err = netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, false, err
	}
	if !p.Addr().Is4() {
		return netip.Prefix{}, false, fmt.Errorf("%q is not an IPv4 block", s)
	}
	return p, p.Masked() == p && p.String() == s, nil
}

// reservedVpcRanges may not hold a VPC: "this network", loopback (berth's
// public pool lives there), link-local (the task metadata address) and
// multicast and above.
var reservedVpcRanges = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("224.0.0.0/3"),
}

func u32(a netip.Addr) uint32 { b := a.As4(); return binary.BigEndian.Uint32(b[:]) }

func addrOf(n uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], n)
	return netip.AddrFrom4(b)
}

// size is the number of addresses in p.
func size(p netip.Prefix) int { return 1 << (32 - p.Bits()) }

// usableCount is the number of addresses of subnet p that can be leased.
func usableCount(p netip.Prefix) int { return max(size(p)-reservedPerSubnet, 0) }

// gateway is the subnet's router address, base+1.
func gateway(p netip.Prefix) netip.Addr { return addrOf(u32(p.Masked().Addr()) + 1) }

// subnetRange is the leasable addresses of subnet p as numbers: from
// base+4 to the one before broadcast. ok is false when there are none.
func subnetRange(p netip.Prefix) (first, last uint32, ok bool) {
	if usableCount(p) <= 0 {
		return 0, 0, false
	}
	base := u32(p.Masked().Addr())
	return base + 4, base + uint32(size(p)) - 2, true
}

// poolRange is the public pool's leasable addresses: every address but the
// network address and the first.
func poolRange(pool netip.Prefix) (first, last uint32) {
	base := u32(pool.Masked().Addr())
	return base + 2, base + uint32(size(pool)) - 1
}

// privateDNSName is EC2's name for a private address: ip-10-0-0-4.ec2.internal
// in us-east-1, ip-10-0-0-4.<region>.compute.internal elsewhere.
func privateDNSName(region string, ip netip.Addr) string {
	host := "ip-" + strings.ReplaceAll(ip.String(), ".", "-")
	if region == "us-east-1" {
		return host + ".ec2.internal"
	}
	return host + "." + region + ".compute.internal"
}

// macFor derives an ENI's MAC from its id: 0e (locally administered,
// unicast) and five bytes of the id's hash.
func macFor(eniID string) string {
	h := sha256.Sum256([]byte(eniID))
	return fmt.Sprintf("0e:%02x:%02x:%02x:%02x:%02x", h[0], h[1], h[2], h[3], h[4])
}

// eniAttachmentID derives the EC2 attachment id (eni-attach-…) of an ENI.
func eniAttachmentID(eniID string) string {
	h := sha256.Sum256([]byte("attach/" + eniID))
	return fmt.Sprintf("eni-attach-%x", h[:9])[:len("eni-attach-")+17]
}
