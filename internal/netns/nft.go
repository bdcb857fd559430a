package netns

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Small builders of nftables expressions, the equivalents of nft's syntax
// (google/nftables only offers the raw expressions). Every rule here is
// IPv4; rules that read IP header fields come after a "meta nfproto ipv4"
// check in their chain.

// nftConnAt opens a lasting nftables connection in the namespace of fd
// (-1: the calling thread's). The caller must release it with closeNFT.
func nftConnAt(fd int) (*nftables.Conn, error) {
	opts := []nftables.ConnOption{nftables.AsLasting()}
	if fd >= 0 {
		opts = append(opts, nftables.WithNetNSFd(fd))
	}
	c, err := nftables.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	return c, nil
}

// closeNFT closes an nftables connection in the background. Closing a
// netfilter netlink socket makes the kernel finish its (global) pending
// nf_tables destroy work first (nft_rcv_nl_event on NETLINK_URELEASE), and
// that work waits for an RCU grace period whenever an earlier transaction
// deleted rules or set elements: 7 to 16 ms here, against well under a
// millisecond for the transaction itself. Nothing waits for the close;
// the socket only keeps its namespace referenced until it is done.
func closeNFT(c *nftables.Conn) {
	go func() { _ = c.CloseLasting() }()
}

// tableExists reports whether the table is there.
func tableExists(c *nftables.Conn, family nftables.TableFamily, name string) (bool, error) {
	_, err := c.ListTableOfFamily(name, family)
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ENOENT) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("list nftables table %s: %w", name, err)
	}
	return true, nil
}

func ifname(name string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return b
}

// ifnameIs matches "iifname name" (key MetaKeyIIFNAME) or "oifname name".
func ifnameIs(key expr.MetaKey, name string) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname(name)},
	}
}

// ifnamePrefix matches "iifname prefix*" (op Eq) or "!= prefix*" (op Neq).
func ifnamePrefix(key expr.MetaKey, op expr.CmpOp, prefix string) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: op, Register: 1, Data: []byte(prefix)},
	}
}

// ctState matches "ct state" with any of the bits.
func ctState(bits uint32) []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(bits), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
	}
}

// isIPv4 matches "meta nfproto ipv4" (op Eq) or "!= ipv4" (op Neq).
func isIPv4(op expr.CmpOp) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: op, Register: 1, Data: []byte{unix.NFPROTO_IPV4}},
	}
}

// l4proto matches "meta l4proto p".
func l4proto(p byte) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{p}},
	}
}

// IPv4 header offsets of the source and destination address.
const (
	ipSrcOffset = 12
	ipDstOffset = 16
)

// ipAddrIn matches the IPv4 address at offset (ipSrcOffset or ipDstOffset)
// against prefix.
func ipAddrIn(offset uint32, p netip.Prefix) []expr.Any {
	load := &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4}
	a := p.Addr().As4()
	if p.Bits() == 32 {
		return []expr.Any{load, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: a[:]}}
	}
	mask := binary.BigEndian.AppendUint32(nil, ^uint32(0)<<(32-p.Bits()))
	return []expr.Any{
		load,
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask, Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: a[:]},
	}
}

// ipAddrInSet matches the IPv4 address at offset against a set.
func ipAddrInSet(offset uint32, s *nftables.Set) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4},
		&expr.Lookup{SourceRegister: 1, SetName: s.Name, SetID: s.ID},
	}
}

// ipAddrIs matches the IPv4 address at offset against one address.
func ipAddrIs(offset uint32, a netip.Addr) []expr.Any {
	return ipAddrIn(offset, netip.PrefixFrom(a, 32))
}

// transport header fields.
const (
	thDportOffset    = 2 // tcp and udp destination port
	thICMPTypeOffset = 0
	thICMPCodeOffset = 1
)

// dportIn matches a tcp or udp destination port in [from, to].
func dportIn(from, to uint16) []expr.Any {
	load := &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: thDportOffset, Len: 2}
	if from == to {
		return []expr.Any{load, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(from)}}
	}
	return []expr.Any{load, &expr.Range{Op: expr.CmpOpEq, Register: 1,
		FromData: binaryutil.BigEndian.PutUint16(from), ToData: binaryutil.BigEndian.PutUint16(to)}}
}

// thByteIs matches one byte of the transport header (icmp type or code).
func thByteIs(offset uint32, v byte) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: offset, Len: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{v}},
	}
}

func accept() expr.Any { return &expr.Verdict{Kind: expr.VerdictAccept} }
func drop() expr.Any   { return &expr.Verdict{Kind: expr.VerdictDrop} }

// rule joins expression groups into one rule's expressions.
func rule(parts ...[]expr.Any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// verdict wraps a single verdict as an expression group.
func verdict(v expr.Any) []expr.Any { return []expr.Any{v} }
