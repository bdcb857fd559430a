package netns

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func TestTwoSubnetsOneVPC(t *testing.T) {
	requireRoot(t)
	v := newTestVPC(t)
	a := newTask(t, v, v.subnet(1), 10, false)
	b := newTask(t, v, v.subnet(2), 20, false)
	serve(t, b.sb, 8080)
	serve(t, a.sb, 8080)
	mustReach(t, a.sb, b.addr(8080))
	mustReach(t, b.sb, a.addr(8080))

	// What the task sees: eth0 with the MAC and address, routes via the
	// gateway, and the metadata route.
	h, err := a.sb.Netlink()
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	eth0, err := h.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := eth0.Attrs().HardwareAddr.String(), derivedMAC("eni "+a.cfg.ID).String(); got != want {
		t.Errorf("eth0 MAC %s, want %s", got, want)
	}
	addrs, err := h.AddrList(eth0, netlink.FAMILY_V4)
	if err != nil || len(addrs) != 1 || addrs[0].IPNet.String() != netip.PrefixFrom(a.cfg.Address, 24).String() {
		t.Errorf("eth0 addresses %v, %v", addrs, err)
	}
	for _, dst := range []string{"192.0.2.1", MetadataAddr.String()} {
		r, err := h.RouteGet(net.ParseIP(dst))
		if err != nil || len(r) != 1 || !r[0].Gw.Equal(a.cfg.Gateway.AsSlice()) {
			t.Errorf("route to %s: %v, %v", dst, r, err)
		}
	}
}

func TestVPCsAreIsolated(t *testing.T) {
	requireRoot(t)
	v1 := newTestVPC(t)
	v2 := newTestVPC(t)
	v2.octet = v1.octet // the same CIDR
	s := v1.subnet(1)
	x := newTask(t, v1, s, 10, false)
	v2s := v2.subnet(1)
	y := newTask(t, v2, v2s, 10, false) // the same address as x, in the other VPC
	z := newTask(t, v2, v2s, 11, false)
	w := newTask(t, v2, v2.subnet(2), 10, false)
	for _, k := range []task{x, y, z, w} {
		serve(t, k.sb, 8080)
	}
	mustReach(t, y.sb, z.addr(8080))
	mustReach(t, y.sb, w.addr(8080))
	mustNotReach(t, x.sb, z.addr(8080))
	mustNotReach(t, x.sb, w.addr(8080))
	mustNotReach(t, z.sb, netip.AddrPortFrom(s.host(12), 8080).String())
	// x's own address is x, not y.
	c, err := dialFrom(x.sb.path, x.addr(8080), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if line, err := greet(c); err != nil || !strings.HasPrefix(line, "hi "+x.sb.Name+" ") {
		t.Fatalf("x reached %q (%v)", line, err)
	}
}

func TestHostHasNoRouteToVPC(t *testing.T) {
	requireRoot(t)
	v := newTestVPC(t)
	k := newTask(t, v, v.subnet(1), 10, true)
	routes, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range routes {
		if r.Dst == nil {
			continue
		}
		p, ok := netip.AddrFromSlice(r.Dst.IP.To4())
		if !ok {
			continue
		}
		ones, _ := r.Dst.Mask.Size()
		if ones > 0 && netip.PrefixFrom(p, ones).Overlaps(v.cidr()) {
			t.Errorf("host route %v overlaps the VPC's %s", r, v.cidr())
		}
	}
	got, err := netlink.RouteGet(k.cfg.Address.AsSlice())
	if err != nil {
		return // no route at all: fine
	}
	for _, r := range got {
		l, err := netlink.LinkByIndex(r.LinkIndex)
		if err == nil && strings.HasPrefix(l.Attrs().Name, uplinkHostPrefix) {
			t.Errorf("host routes %s via %s", k.cfg.Address, l.Attrs().Name)
		}
	}
}

func TestDetachLastENIRemovesVPC(t *testing.T) {
	requireRoot(t)
	v := newTestVPC(t)
	a := newTestSandbox(t)
	b := newTestSandbox(t)
	ca := eniConfig(t, v, v.subnet(1), 10, true)
	cb := eniConfig(t, v, v.subnet(2), 10, false)
	for _, x := range []struct {
		sb  *Sandbox
		cfg ENIConfig
	}{{a, ca}, {b, cb}} {
		if err := AttachENI(x.sb, x.cfg); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := netlink.LinkByName(uplinkHostName(v.id)); err != nil {
		t.Fatalf("no uplink: %v", err)
	}
	if err := DetachENI(v.id, ca.ID); err != nil {
		t.Fatal(err)
	}
	if ok, _ := isNamespaceMount(vpcPath(v.id)); !ok {
		t.Fatal("VPC namespace gone with an ENI left")
	}
	if got := natSet(t, v.id); len(got) != 0 {
		t.Errorf("nat set after detaching the NAT ENI: %v", got)
	}
	// The detached address fails at once from inside the VPC (no seconds
	// of ARP probing), until an ENI takes it again.
	dialDead := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		c, err := DialInVPC(ctx, v.id, "tcp", netip.AddrPortFrom(ca.Address, 80).String())
		if err == nil {
			c.Close()
		}
		return err
	}
	err := dialDead()
	if !errors.Is(err, unix.EHOSTUNREACH) {
		t.Errorf("dial the detached address: %v, want EHOSTUNREACH at once", err)
	}
	if oe := (*net.OpError)(nil); !errors.As(err, &oe) || oe.Op != "dial" {
		t.Errorf("dial error %#v is not a *net.OpError of a dial", err)
	}
	ca.MAC = net.HardwareAddr{0x02, 0xbe, 0x00, 0x00, 0x00, 0x10} // a new holder's
	if err := AttachENI(a, ca); err != nil {
		t.Fatal(err)
	}
	if err := dialDead(); errors.Is(err, unix.EHOSTUNREACH) {
		t.Errorf("dial the re-attached address: %v, want it routed again", err)
	}
	// Its neighbour entry names the new holder's MAC (no stale one).
	vn, err := openVPC(v.id)
	if err != nil {
		t.Fatal(err)
	}
	neighs, err := vn.h.NeighList(0, netlink.FAMILY_V4)
	vn.close()
	if err != nil {
		t.Fatal(err)
	}
	var macs []string
	for _, n := range neighs {
		if n.IP.Equal(ca.Address.AsSlice()) {
			macs = append(macs, n.HardwareAddr.String())
		}
	}
	if len(macs) != 1 || macs[0] != ca.MAC.String() {
		t.Errorf("neighbour entries of %s: %v, want [%s]", ca.Address, macs, ca.MAC)
	}
	if err := DetachENI(v.id, ca.ID); err != nil {
		t.Fatal(err)
	}
	h, err := a.Netlink()
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if _, err := h.LinkByName("eth0"); !isLinkNotFound(err) {
		t.Errorf("eth0 still in the detached sandbox: %v", err)
	}
	for i := range 2 { // the second is a no-op
		if err := DetachENI(v.id, cb.ID); err != nil {
			t.Fatalf("detach #%d: %v", i+1, err)
		}
	}
	assertVPCGone(t, v.id)
}

// TestDeleteSandboxDetaches deletes a sandbox without DetachENI (as a
// crash cleanup may): its ENI is detached and the emptied VPC deleted.
func TestDeleteSandboxDetaches(t *testing.T) {
	requireRoot(t)
	v := newTestVPC(t)
	sb := newTestSandbox(t)
	cfg := eniConfig(t, v, v.subnet(1), 10, true)
	if err := AttachENI(sb, cfg); err != nil {
		t.Fatal(err)
	}
	if err := DeleteSandbox(sb.Name); err != nil {
		t.Fatal(err)
	}
	assertVPCGone(t, v.id)
}

func TestAttachIsIdempotent(t *testing.T) {
	requireRoot(t)
	v := newTestVPC(t)
	a := newTask(t, v, v.subnet(1), 10, false)
	b := newTask(t, v, v.subnet(1), 11, false)
	serve(t, b.sb, 8080)
	eth0Index := func() int {
		h, err := a.sb.Netlink()
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		l, err := h.LinkByName("eth0")
		if err != nil {
			t.Fatal(err)
		}
		return l.Attrs().Index
	}
	before := eth0Index()
	for range 2 {
		if err := AttachENI(a.sb, a.cfg); err != nil {
			t.Fatal(err)
		}
	}
	if eth0Index() != before {
		t.Error("re-attach made a new eth0")
	}
	// The re-attach kept the firewall that was applied.
	mustReach(t, a.sb, b.addr(8080))

	// A VPC namespace left halfway (no ready mark) is finished; NAT
	// egress changed on re-attach reaches the NAT set.
	vn, err := openVPC(v.id)
	if err != nil {
		t.Fatal(err)
	}
	up, err := vn.h.LinkByName(uplinkName)
	if err != nil {
		t.Fatal(err)
	}
	if err := vn.h.LinkSetAlias(up, ""); err != nil {
		t.Fatal(err)
	}
	vn.close()
	a.cfg.NATEgress = true
	if err := AttachENI(a.sb, a.cfg); err != nil {
		t.Fatal(err)
	}
	if got := natSet(t, v.id); len(got) != 1 || got[0] != a.cfg.Address {
		t.Errorf("nat set %v, want [%s]", got, a.cfg.Address)
	}
	mustReach(t, a.sb, b.addr(8080))

	// A sandbox that lost its eth0 (half a pair in the VPC) gets a new one.
	vn, err = openVPC(v.id)
	if err != nil {
		t.Fatal(err)
	}
	defer vn.close()
	h, err := a.sb.Netlink()
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	eth0, err := h.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.LinkDel(eth0); err != nil {
		t.Fatal(err)
	}
	if err := AttachENI(a.sb, a.cfg); err != nil {
		t.Fatal(err)
	}
	mustReach(t, a.sb, b.addr(8080))
}

func TestConcurrentAttach(t *testing.T) {
	requireRoot(t)
	v := newTestVPC(t)
	const n = 20
	sbs := make([]*Sandbox, n)
	cfgs := make([]ENIConfig, n)
	for i := range n {
		sbs[i] = newTestSandbox(t)
		cfgs[i] = eniConfig(t, v, v.subnet(byte(1+i%2)), byte(10+i), i%2 == 0)
	}
	t.Cleanup(func() {
		for _, c := range cfgs {
			_ = DetachENI(v.id, c.ID)
		}
	})
	var wg sync.WaitGroup
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if errs[i] = AttachENI(sbs[i], cfgs[i]); errs[i] == nil {
				errs[i] = ApplyFirewall(sbs[i], openFirewall)
			}
		}()
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	t.Logf("%d concurrent AttachENI+ApplyFirewall into a new VPC: %v", n, time.Since(t0))
	for i, err := range errs {
		if err != nil {
			t.Errorf("attach %d: %v", i, err)
		}
	}
	if t.Failed() {
		return
	}
	vn, err := openVPC(v.id)
	if err != nil {
		t.Fatal(err)
	}
	enis, err := vn.enis()
	vn.close()
	if err != nil || len(enis) != n {
		t.Fatalf("%d ENIs in the VPC (%v), want %d", len(enis), err, n)
	}
	if got := natSet(t, v.id); len(got) != n/2 {
		t.Errorf("nat set has %d addresses, want %d", len(got), n/2)
	}
	serve(t, sbs[n-1], 8080)
	mustReach(t, sbs[0], netip.AddrPortFrom(cfgs[n-1].Address, 8080).String())

	t0 = time.Now()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = DetachENI(v.id, cfgs[i].ID)
		}()
	}
	wg.Wait()
	t.Logf("%d concurrent DetachENI: %v", n, time.Since(t0))
	for i, err := range errs {
		if err != nil {
			t.Errorf("detach %d: %v", i, err)
		}
	}
	assertVPCGone(t, v.id)
}

// TestLockAcrossProcesses holds a VPC's lock file the way another agent
// process would and checks that AttachENI waits for it.
func TestLockAcrossProcesses(t *testing.T) {
	requireRoot(t)
	v := newTestVPC(t)
	other := &hostLock{key: "vpc-" + v.id, path: LockDir + "/vpc-" + v.id + ".lock"}
	if err := other.flock(); err != nil { // the file lock alone, no mutex
		t.Fatal(err)
	}
	sb := newTestSandbox(t)
	cfg := eniConfig(t, v, v.subnet(1), 10, false)
	t.Cleanup(func() { _ = DetachENI(v.id, cfg.ID) })
	done := make(chan error, 1)
	go func() { done <- AttachENI(sb, cfg) }()
	select {
	case err := <-done:
		t.Fatalf("AttachENI did not wait for the lock: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	other.f.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("AttachENI still waiting after the lock was released")
	}
}

func TestENIConfigValidation(t *testing.T) {
	good := ENIConfig{ID: "eni-1", VpcID: "vpc-1", SubnetID: "subnet-1", Subnet: netip.MustParsePrefix("10.0.1.0/24"),
		Gateway: netip.MustParseAddr("10.0.1.1"), Address: netip.MustParseAddr("10.0.1.5")}
	if err := good.validate(); err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(*ENIConfig){
		"bad id":           func(c *ENIConfig) { c.ID = "eni/../x" },
		"no vpc":           func(c *ENIConfig) { c.VpcID = "" },
		"ipv6 subnet":      func(c *ENIConfig) { c.Subnet = netip.MustParsePrefix("fd00::/64") },
		"unmasked subnet":  func(c *ENIConfig) { c.Subnet = netip.MustParsePrefix("10.0.1.7/24") },
		"gateway outside":  func(c *ENIConfig) { c.Gateway = netip.MustParseAddr("10.0.2.1") },
		"address outside":  func(c *ENIConfig) { c.Address = netip.MustParseAddr("10.0.2.5") },
		"address gateway":  func(c *ENIConfig) { c.Address = c.Gateway },
		"multicast MAC":    func(c *ENIConfig) { c.MAC = net.HardwareAddr{1, 2, 3, 4, 5, 6} },
		"short MAC":        func(c *ENIConfig) { c.MAC = net.HardwareAddr{2, 2, 3} },
		"address is base":  func(c *ENIConfig) { c.Address = c.Subnet.Addr() },
		"subnet too small": func(c *ENIConfig) { c.Subnet = netip.MustParsePrefix("10.0.1.0/31") },
	} {
		c := good
		mod(&c)
		if err := c.validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestNames(t *testing.T) {
	for _, n := range []string{bridgeName("subnet-0123456789abcdef0"), eniLinkName("eni-0123456789abcdef0"), uplinkHostName("vpc-0123456789abcdef0")} {
		if len(n) > 15 {
			t.Errorf("interface name %q is longer than 15", n)
		}
	}
}

// natSet lists the VPC's NAT egress addresses.
func natSet(t testing.TB, vpcID string) []netip.Addr {
	t.Helper()
	vn, err := openVPC(vpcID)
	if err != nil {
		t.Fatal(err)
	}
	defer vn.close()
	c, err := nftConnAt(vn.fd)
	if err != nil {
		t.Fatal(err)
	}
	defer closeNFT(c)
	set, err := c.GetSetByName(&nftables.Table{Family: nftables.TableFamilyINet, Name: vpcTable}, natSetName)
	if err != nil {
		t.Fatal(err)
	}
	elems, err := c.GetSetElements(set)
	if err != nil {
		t.Fatal(err)
	}
	var out []netip.Addr
	for _, e := range elems {
		a, _ := netip.AddrFromSlice(e.Key)
		out = append(out, a)
	}
	return out
}

// TestSourceCheck sends from a raw socket in one task's sandbox (tasks have
// CAP_NET_RAW) with forged source addresses: the VPC drops them, on the
// task's own subnet and routed to another.
func TestSourceCheck(t *testing.T) {
	requireRoot(t)
	v := newTestVPC(t)
	a := newTask(t, v, v.subnet(1), 10, false)
	b := newTask(t, v, v.subnet(2), 10, false)
	c := newTask(t, v, v.subnet(1), 11, false)
	d := newTask(t, v, v.subnet(2), 11, false)
	for _, target := range []task{c, d} {
		pc, err := listenPacketIn(target.sb.path, "udp4", "0.0.0.0:7000")
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		for _, src := range []netip.Addr{a.cfg.Address, b.cfg.Address, v.subnet(1).host(99), target.cfg.Address} {
			if err := sendRawUDP(a.sb.path, src, target.cfg.Address, 7000); err != nil {
				t.Fatal(err)
			}
			_ = pc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			buf := make([]byte, 64)
			_, from, err := pc.ReadFrom(buf)
			got := err == nil
			if want := src == a.cfg.Address; got != want {
				t.Errorf("datagram from %s forged as %s to %s: received %v (from %v), want %v", a.cfg.Address, src, target.cfg.Address, got, from, want)
			}
		}
	}
}

// sendRawUDP sends a UDP datagram with the given source address from a raw
// socket inside the namespace at path.
func sendRawUDP(path string, src, dst netip.Addr, port uint16) error {
	var fd int
	err := inNamespace(path, func() error {
		var err error
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
		return err
	})
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	s, d := src.As4(), dst.As4()
	payload := []byte("forged?")
	pkt := []byte{0x45, 0, 0, 0, 0, 0, 0, 0, 64, unix.IPPROTO_UDP, 0, 0} // length, id and checksum filled in by the kernel
	pkt = append(pkt, s[:]...)
	pkt = append(pkt, d[:]...)
	udpLen := 8 + len(payload)
	pkt = append(pkt, 0x9c, 0x40, byte(port>>8), byte(port), byte(udpLen>>8), byte(udpLen), 0, 0) // no UDP checksum
	pkt = append(pkt, payload...)
	return unix.Sendto(fd, pkt, 0, &unix.SockaddrInet4{Addr: d})
}
