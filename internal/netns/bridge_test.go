package netns

import (
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
)

// newTestBridge returns a fresh bridge network id whose namespace is
// removed at the end of the test (and checked to be gone).
func newTestBridge(t *testing.T) string {
	t.Helper()
	id := BridgeNetworkID("test " + randHex(t, 16))
	t.Cleanup(func() {
		if err := removeVPC(id); err != nil {
			t.Errorf("cleanup bridge network %s: %v", id, err)
		}
		assertVPCGone(t, id)
	})
	return id
}

// bridgeTask makes a sandbox on the bridge network at .host of the
// default subnet.
func bridgeTask(t *testing.T, network string, host byte) (*Sandbox, BridgeEndpoint) {
	t.Helper()
	sb := newTestSandbox(t)
	a := DefaultBridgeSubnet.Addr().As4()
	a[3] = host
	e := BridgeEndpoint{Network: network, Subnet: DefaultBridgeSubnet, TaskID: strings.TrimPrefix(sb.Name, "berth-"), Address: netip.AddrFrom4(a)}
	if err := AttachBridge(sb, e); err != nil {
		t.Fatal(err)
	}
	if err := AttachBridge(sb, e); err != nil { // a restarted agent attaches again
		t.Fatalf("attach again: %v", err)
	}
	return sb, e
}

func TestBridgeNetwork(t *testing.T) {
	requireRoot(t)
	network := newTestBridge(t)
	a, ea := bridgeTask(t, network, 2)
	b, eb := bridgeTask(t, network, 3)
	serve(t, a, 8080)
	serve(t, b, 8080)

	t.Run("tasks reach each other", func(t *testing.T) {
		mustReach(t, a, netip.AddrPortFrom(eb.Address, 8080).String())
		mustReach(t, b, netip.AddrPortFrom(ea.Address, 8080).String())
	})

	t.Run("egress through the uplink", func(t *testing.T) {
		nat := natSet(t, network)
		for _, e := range []BridgeEndpoint{ea, eb} {
			if !slices.Contains(nat, e.Address) {
				t.Errorf("NAT egress set %v lacks %s", nat, e.Address)
			}
		}
		h, err := a.Netlink()
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		routes, err := h.RouteList(nil, netlink.FAMILY_V4)
		if err != nil {
			t.Fatal(err)
		}
		gw := BridgeGateway(DefaultBridgeSubnet)
		var def bool
		for _, r := range routes {
			if (r.Dst == nil || r.Dst.IP.IsUnspecified()) && net.IP.Equal(r.Gw, gw.AsSlice()) {
				def = true
			}
		}
		if !def {
			t.Errorf("no default route via %s in the task: %v", gw, routes)
		}
		hl, err := netlink.LinkByName(uplinkHostName(network))
		if err != nil {
			t.Fatalf("no uplink on the host: %v", err)
		}
		// Out through the uplink, masqueraded to its bridge-side address.
		hostAddr, ok := uplinkAddrOf(hl)
		if !ok {
			t.Fatal("host end of the uplink has no address")
		}
		l, err := net.Listen("tcp", netip.AddrPortFrom(hostAddr, 0).String())
		if err != nil {
			t.Fatal(err)
		}
		serveOn(t, l, "host")
		c, err := dialFrom(a.path, l.Addr().String(), time.Second)
		if err != nil {
			t.Fatalf("bridge task cannot reach the host's end of the uplink: %v", err)
		}
		line, err := greet(c)
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
		if want := "from " + hostAddr.Next().String() + ":"; !strings.Contains(line, want) {
			t.Errorf("host saw %q, want masquerading to %s", line, hostAddr.Next())
		}
	})

	t.Run("host ports", func(t *testing.T) {
		pub := publicAddr(t)
		// Both tasks listen on 8080; the host publishes them on two ports.
		fa := startForwarder(t, ForwarderConfig{VpcID: network, Public: pub, Private: ea.Address,
			Ports: []Port{{Protocol: "tcp", Port: 8080, Listen: 49153}}, DialTimeout: time.Second})
		fb := startForwarder(t, ForwarderConfig{VpcID: network, Public: pub, Private: eb.Address,
			Ports: []Port{{Protocol: "tcp", Port: 8080, Listen: 49154}}, DialTimeout: time.Second})
		_, _ = fa, fb
		for port, sb := range map[uint16]*Sandbox{49153: a, 49154: b} {
			line, c, err := hostGreeting(netip.AddrPortFrom(pub, port).String())
			if err != nil {
				t.Fatalf("host port %d: %v", port, err)
			}
			if err := echo(c, "ping"); err != nil {
				t.Error(err)
			}
			c.Close()
			if !strings.HasPrefix(line, "hi "+sb.Name+" ") {
				t.Errorf("host port %d answered %q, want %s", port, line, sb.Name)
			}
		}
		// UDP too.
		pc, err := listenPacketIn(a.path, "udp4", "0.0.0.0:5353")
		if err != nil {
			t.Fatal(err)
		}
		udpEcho(t, pc)
		startForwarder(t, ForwarderConfig{VpcID: network, Public: pub, Private: ea.Address,
			Ports: []Port{{Protocol: "udp", Port: 5353, Listen: 49155}}})
		uc, err := net.Dial("udp", netip.AddrPortFrom(pub, 49155).String())
		if err != nil {
			t.Fatal(err)
		}
		defer uc.Close()
		var uerr error
		for range 3 { // a datagram may be lost: resend, as UDP clients do
			if uerr = echo(uc, "ping"); uerr == nil {
				break
			}
		}
		if uerr != nil {
			t.Errorf("UDP host port: %v", uerr)
		}
		// The container port itself is not open on the host address.
		if c, err := net.DialTimeout("tcp", netip.AddrPortFrom(pub, 8080).String(), 300*time.Millisecond); err == nil {
			c.Close()
			t.Error("container port 8080 is open on the host address")
		}
	})

	t.Run("leftovers name it", func(t *testing.T) {
		all, err := Leftovers()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(all, Leftover{Kind: "bridge", Name: VPCNamespace(network), VpcID: network}) {
			t.Errorf("leftovers %v lack bridge network %s", all, network)
		}
	})

	t.Run("last task detached removes the network", func(t *testing.T) {
		if err := DetachBridge(network, ea.TaskID); err != nil {
			t.Fatal(err)
		}
		if ok, _ := isNamespaceMount(vpcPath(network)); !ok {
			t.Fatal("network gone with a task left on it")
		}
		if err := DeleteSandbox(b.Name); err != nil { // detaches too
			t.Fatal(err)
		}
		assertVPCGone(t, network)
	})
}

func TestBridgeNetworkID(t *testing.T) {
	a, b := BridgeNetworkID("/var/lib/berth/a"), BridgeNetworkID("/var/lib/berth/b")
	if a == b || a != BridgeNetworkID("/var/lib/berth/a") {
		t.Errorf("ids %q and %q: want stable and distinct", a, b)
	}
	if !IsBridgeNetwork(a) || IsBridgeNetwork("vpc-0123") || validID("VPC", a) != nil {
		t.Errorf("id %q is not a valid bridge network id", a)
	}
	if gw := BridgeGateway(netip.MustParsePrefix("172.17.0.0/16")); gw != netip.MustParseAddr("172.17.0.1") {
		t.Errorf("gateway %s", gw)
	}
}
