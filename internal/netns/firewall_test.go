package netns

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func prefixes(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

func TestCompileRules(t *testing.T) {
	rng := func(lo, hi string) ipRange {
		return ipRange{ipv4Uint(netip.MustParseAddr(lo)), ipv4Uint(netip.MustParseAddr(hi))}
	}
	got, err := compileRules([]Rule{
		{Protocol: "tcp", FromPort: 80, ToPort: 80, CIDRs: prefixes("10.0.1.0/24", "10.0.0.7/24")},
		{Protocol: "udp", FromPort: 53, ToPort: 53, CIDRs: nil}, // an empty source group
		{Protocol: "6", FromPort: 80, ToPort: 80, CIDRs: prefixes("10.0.0.128/25", "192.168.1.1/32", "fd00::/8")},
		{Protocol: "ICMP", FromPort: -1, ToPort: 3, CIDRs: prefixes("0.0.0.0/0", "10.0.0.0/8")},
		{Protocol: "-1", CIDRs: prefixes("255.255.255.0/24", "255.255.254.0/24")},
		{Protocol: "tcp", FromPort: -1, ToPort: -1, CIDRs: prefixes("10.0.0.0/8")},
		{Protocol: "47", FromPort: 5, ToPort: 1, CIDRs: prefixes("10.0.0.0/8")},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []plannedRule{
		{protoMatch{unix.IPPROTO_TCP, 80, 80}, []ipRange{rng("10.0.0.0", "10.0.1.255"), rng("192.168.1.1", "192.168.1.1")}},
		{protoMatch{unix.IPPROTO_ICMP, -1, -1}, []ipRange{rng("0.0.0.0", "255.255.255.255")}},
		{protoMatch{-1, 0, 0}, []ipRange{rng("255.255.254.0", "255.255.255.255")}},
		{protoMatch{unix.IPPROTO_TCP, 0, 65535}, []ipRange{rng("10.0.0.0", "10.255.255.255")}},
		{protoMatch{47, 0, 0}, []ipRange{rng("10.0.0.0", "10.255.255.255")}},
	}
	if !slices.EqualFunc(got, want, func(a, b plannedRule) bool { return a.proto == b.proto && slices.Equal(a.peers, b.peers) }) {
		t.Errorf("compiled\n%v\nwant\n%v", got, want)
	}
	for _, bad := range []Rule{
		{Protocol: "sctp"},
		{Protocol: "300"},
		{Protocol: "tcp", FromPort: 90, ToPort: 80},
		{Protocol: "udp", FromPort: 0, ToPort: 70000},
		{Protocol: "icmp", FromPort: 256, ToPort: 0},
		{Protocol: "tcp", FromPort: 80, ToPort: 80, CIDRs: []netip.Prefix{{}}},
	} {
		if _, err := compileRules([]Rule{bad}); err == nil {
			t.Errorf("accepted %+v", bad)
		}
	}
}

func TestMergeRanges(t *testing.T) {
	got := mergeRanges([]ipRange{{10, 20}, {21, 30}, {5, 8}, {40, 50}, {45, 47}, {^uint32(0) - 1, ^uint32(0)}, {^uint32(0), ^uint32(0)}})
	want := []ipRange{{5, 8}, {10, 30}, {40, 50}, {^uint32(0) - 1, ^uint32(0)}}
	if !slices.Equal(got, want) {
		t.Errorf("merged %v, want %v", got, want)
	}
}

func TestFirewallIngress(t *testing.T) {
	requireRoot(t)
	v := newTestVPC(t)
	a := newTask(t, v, v.subnet(1), 10, false)
	b := newTask(t, v, v.subnet(2), 10, false, Firewall{})
	serve(t, b.sb, 8080)
	serve(t, b.sb, 9090)
	aHost := []netip.Prefix{netip.PrefixFrom(a.cfg.Address, 32)}

	// Denied by default.
	mustNotReach(t, a.sb, b.addr(8080))

	apply := func(fw Firewall) {
		t.Helper()
		if err := ApplyFirewall(b.sb, fw); err != nil {
			t.Fatal(err)
		}
	}
	apply(Firewall{Ingress: []Rule{{Protocol: "tcp", FromPort: 8080, ToPort: 8080, CIDRs: aHost}}})
	mustReach(t, a.sb, b.addr(8080))
	mustNotReach(t, a.sb, b.addr(9090))

	// A rule for someone else admits nobody else; the change is immediate.
	apply(Firewall{Ingress: []Rule{{Protocol: "tcp", FromPort: 8080, ToPort: 8080, CIDRs: prefixes("10.0.0.0/8", "192.0.2.0/24")}}})
	if a.cfg.Address.As4()[0] != 10 {
		t.Fatal("test VPCs are in 10/8")
	}
	mustReach(t, a.sb, b.addr(8080)) // a is in 10/8
	apply(Firewall{Ingress: []Rule{{Protocol: "tcp", FromPort: 8080, ToPort: 8080, CIDRs: prefixes("192.0.2.0/24")}}})
	mustNotReach(t, a.sb, b.addr(8080))

	// A large group: a set of 500 members, a among them; a port range.
	members := []netip.Prefix{}
	for i := range 500 {
		members = append(members, netip.PrefixFrom(netip.AddrFrom4([4]byte{172, 16, byte(i >> 8), byte(i)}), 32))
	}
	members = append(members, aHost...)
	apply(Firewall{Ingress: []Rule{{Protocol: "tcp", FromPort: 8000, ToPort: 8100, CIDRs: members}}})
	mustReach(t, a.sb, b.addr(8080))
	mustNotReach(t, a.sb, b.addr(9090))
	apply(Firewall{Ingress: []Rule{{Protocol: "tcp", FromPort: 8000, ToPort: 8100, CIDRs: members[:500]}}})
	mustNotReach(t, a.sb, b.addr(8080))

	// An established flow outlives a revoke; new ones do not get in.
	apply(Firewall{Ingress: []Rule{{Protocol: "-1", CIDRs: aHost}}})
	c, err := dialFrom(a.sb.path, b.addr(9090), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := greet(c); err != nil {
		t.Fatal(err)
	}
	apply(Firewall{})
	if err := echo(c, "still here"); err != nil {
		t.Fatalf("established flow after revoke: %v", err)
	}
	mustNotReach(t, a.sb, b.addr(9090))
}

func TestFirewallEgress(t *testing.T) {
	requireRoot(t)
	v := newTestVPC(t)
	a := newTask(t, v, v.subnet(1), 10, false, Firewall{})
	b := newTask(t, v, v.subnet(1), 11, false)
	serve(t, b.sb, 8080)
	serve(t, b.sb, 9090)
	mustNotReach(t, a.sb, b.addr(8080))
	egress := func(rules ...Rule) {
		t.Helper()
		if err := ApplyFirewall(a.sb, Firewall{Egress: rules}); err != nil {
			t.Fatal(err)
		}
	}
	egress(Rule{Protocol: "tcp", FromPort: 8080, ToPort: 8080, CIDRs: []netip.Prefix{netip.PrefixFrom(b.cfg.Address, 32)}})
	mustReach(t, a.sb, b.addr(8080))
	mustNotReach(t, a.sb, b.addr(9090))
	egress(Rule{Protocol: "udp", FromPort: 0, ToPort: 65535, CIDRs: anywhere})
	mustNotReach(t, a.sb, b.addr(8080))
	egress(Rule{Protocol: "-1", CIDRs: []netip.Prefix{v.subnet(1).prefix}})
	mustReach(t, a.sb, b.addr(9090))
}

func TestFirewallUDP(t *testing.T) {
	requireRoot(t)
	v := newTestVPC(t)
	a := newTask(t, v, v.subnet(1), 10, false)
	b := newTask(t, v, v.subnet(1), 11, false, Firewall{})
	pc, err := listenPacketIn(b.sb.path, "udp4", "0.0.0.0:5353")
	if err != nil {
		t.Fatal(err)
	}
	udpEcho(t, pc)
	if err := udpRoundTrip(a.sb.path, b.addr(5353)); err == nil {
		t.Fatal("udp got in without a rule")
	}
	if err := ApplyFirewall(b.sb, Firewall{Ingress: []Rule{{Protocol: "udp", FromPort: 5353, ToPort: 5353, CIDRs: anywhere}}}); err != nil {
		t.Fatal(err)
	}
	if err := udpRoundTrip(a.sb.path, b.addr(5353)); err != nil {
		t.Fatal(err)
	}
}

func TestFirewallICMP(t *testing.T) {
	requireRoot(t)
	v := newTestVPC(t)
	a := newTask(t, v, v.subnet(1), 10, false)
	b := newTask(t, v, v.subnet(2), 11, false, Firewall{})
	for _, c := range []struct {
		rule Rule
		ok   bool
	}{
		{Rule{Protocol: "tcp", FromPort: 0, ToPort: 65535, CIDRs: anywhere}, false},
		{Rule{Protocol: "icmp", FromPort: 0, ToPort: -1, CIDRs: anywhere}, false}, // echo reply only
		{Rule{Protocol: "icmp", FromPort: 8, ToPort: -1, CIDRs: anywhere}, true},  // echo request
		{Rule{Protocol: "icmp", FromPort: 8, ToPort: 1, CIDRs: anywhere}, false},  // wrong code
		{Rule{Protocol: "icmp", FromPort: 8, ToPort: 0, CIDRs: anywhere}, true},
		{Rule{Protocol: "icmp", FromPort: -1, ToPort: -1, CIDRs: anywhere}, true},
		{Rule{Protocol: "-1", CIDRs: []netip.Prefix{netip.PrefixFrom(a.cfg.Address, 32)}}, true},
	} {
		if err := ApplyFirewall(b.sb, Firewall{Ingress: []Rule{c.rule}}); err != nil {
			t.Fatal(err)
		}
		if err := ping(a.sb.path, b.cfg.Address); (err == nil) != c.ok {
			t.Errorf("ping with ingress %+v: %v, want success %v", c.rule, err, c.ok)
		}
	}
	// Egress icmp: b may ping a only with a rule.
	if err := ApplyFirewall(b.sb, Firewall{}); err != nil {
		t.Fatal(err)
	}
	if err := ping(b.sb.path, a.cfg.Address); err == nil {
		t.Error("ping went out without an egress rule")
	}
	if err := ApplyFirewall(b.sb, Firewall{Egress: []Rule{{Protocol: "icmp", FromPort: 8, ToPort: -1, CIDRs: anywhere}}}); err != nil {
		t.Fatal(err)
	}
	if err := ping(b.sb.path, a.cfg.Address); err != nil {
		t.Errorf("ping with an egress rule: %v", err)
	}
}

// TestBaseFirewall checks the policy a sandbox has between AttachENI and
// its first ApplyFirewall: nothing in, nothing out but the metadata address.
func TestBaseFirewall(t *testing.T) {
	requireRoot(t)
	v := newTestVPC(t)
	a := newTask(t, v, v.subnet(1), 10, false)
	sb := newTestSandbox(t)
	cfg := eniConfig(t, v, v.subnet(1), 11, false)
	if err := AttachENI(sb, cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = DetachENI(v.id, cfg.ID) })
	serve(t, sb, 8080)
	serve(t, a.sb, 8080)
	mustNotReach(t, a.sb, netip.AddrPortFrom(cfg.Address, 8080).String())
	mustNotReach(t, sb, a.addr(8080))

	md, err := ListenInVPC(v.id, "tcp", netip.AddrPortFrom(MetadataAddr, 80).String())
	if err != nil {
		t.Fatal(err)
	}
	serveOn(t, md, "metadata")
	other, err := ListenInVPC(v.id, "tcp", netip.AddrPortFrom(MetadataAddr, 81).String())
	if err != nil {
		t.Fatal(err)
	}
	serveOn(t, other, "metadata")
	mustReach(t, sb, netip.AddrPortFrom(MetadataAddr, 80).String())
	mustNotReach(t, sb, netip.AddrPortFrom(MetadataAddr, 81).String())
}

// udpEcho serves pc until the test ends.
func udpEcho(t testing.TB, pc net.PacketConn) {
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo(buf[:n], from)
		}
	}()
}

// udpRoundTrip sends a datagram from inside the namespace at path and
// waits for its echo.
func udpRoundTrip(path, addr string) error {
	c, err := dialIn(context.Background(), path, "udp", netip.AddrPort{}, addr)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(400 * time.Millisecond))
	if _, err := c.Write([]byte("datagram")); err != nil {
		return err
	}
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	if err != nil {
		return err
	}
	if string(buf[:n]) != "datagram" {
		return fmt.Errorf("echo %q", buf[:n])
	}
	return nil
}

// ping sends an ICMP echo request from a raw socket inside the namespace at
// path and waits for the reply.
func ping(path string, dst netip.Addr) error {
	var c net.PacketConn
	err := inNamespace(path, func() error {
		var err error
		c, err = net.ListenPacket("ip4:icmp", "0.0.0.0")
		return err
	})
	if err != nil {
		return err
	}
	defer c.Close()
	id := make([]byte, 2)
	_, _ = rand.Read(id)
	msg := []byte{8, 0, 0, 0, id[0], id[1], 0, 1, 'b', 'e', 'r', 't', 'h'}
	sum := icmpChecksum(msg)
	msg[2], msg[3] = byte(sum>>8), byte(sum)
	if _, err := c.WriteTo(msg, &net.IPAddr{IP: dst.AsSlice()}); err != nil {
		return fmt.Errorf("send echo request: %w", err)
	}
	_ = c.SetReadDeadline(time.Now().Add(400 * time.Millisecond))
	buf := make([]byte, 1500)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			return err
		}
		if ip, ok := from.(*net.IPAddr); ok && ip.IP.Equal(dst.AsSlice()) && n >= 8 && buf[0] == 0 && buf[4] == id[0] && buf[5] == id[1] {
			return nil
		}
	}
}

func icmpChecksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}
