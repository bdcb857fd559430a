package netns

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
)

// publicAddr is a random loopback address, 127.102.x.y (apart from the
// pools berth dev hands out, which tests running beside these use).
func publicAddr(t testing.TB) netip.Addr {
	b := make([]byte, 2)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return netip.AddrFrom4([4]byte{127, 102, b[0], b[1] | 1})
}

func startForwarder(t testing.TB, cfg ForwarderConfig) *PublicForwarder {
	t.Helper()
	f, err := StartPublicForwarder(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// hostGreeting connects from the host and returns the server's greeting.
func hostGreeting(addr string) (string, net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", nil, err
	}
	line, err := greet(c)
	if err != nil {
		c.Close()
		return "", nil, err
	}
	return line, c, nil
}

func TestPublicForwarderTCP(t *testing.T) {
	requireRoot(t)
	v := newTestVPC(t)
	b := newTask(t, v, v.subnet(1), 10, false, Firewall{Ingress: []Rule{{Protocol: "tcp", FromPort: 8080, ToPort: 8080, CIDRs: []netip.Prefix{v.cidr()}}}})
	serve(t, b.sb, 8080)
	pub := publicAddr(t)
	f := startForwarder(t, ForwarderConfig{VpcID: v.id, Public: pub, Private: b.cfg.Address, Ports: []Port{{Protocol: "tcp", Port: 8080}}, DialTimeout: 300 * time.Millisecond})
	addr := netip.AddrPortFrom(pub, 8080).String()

	// A rule for the VPC's own CIDR does not admit the host.
	if line, c, err := hostGreeting(addr); err == nil {
		c.Close()
		t.Fatalf("host got through with a VPC-CIDR rule: %q", line)
	}
	// The uplink address does, and so does 0.0.0.0/0.
	src, err := vpcUplinkAddr(v.id)
	if err != nil {
		t.Fatal(err)
	}
	for _, cidrs := range [][]netip.Prefix{{netip.PrefixFrom(src, 32)}, anywhere} {
		if err := ApplyFirewall(b.sb, Firewall{Ingress: []Rule{{Protocol: "tcp", FromPort: 8080, ToPort: 8080, CIDRs: cidrs}}}); err != nil {
			t.Fatal(err)
		}
		line, c, err := hostGreeting(addr)
		if err != nil {
			t.Fatalf("host through the forwarder with %v: %v", cidrs, err)
		}
		if want := "from " + src.String() + ":"; !strings.Contains(line, want) {
			t.Errorf("greeting %q, want the source %s", line, src)
		}
		// Half-close: the server sees EOF after our data, echoes it and
		// closes; we read the echo and then EOF.
		if _, err := io.WriteString(c, "half"); err != nil {
			t.Fatal(err)
		}
		if err := c.(*net.TCPConn).CloseWrite(); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		rest, err := io.ReadAll(c)
		c.Close()
		if err != nil || string(rest) != "half" {
			t.Errorf("after half-close read %q, %v", rest, err)
		}
	}

	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatal("forwarder still listening after Close")
	}
}

func TestPublicForwarderUDP(t *testing.T) {
	requireRoot(t)
	v := newTestVPC(t)
	b := newTask(t, v, v.subnet(1), 10, false, Firewall{Ingress: []Rule{{Protocol: "udp", FromPort: 5353, ToPort: 5353, CIDRs: anywhere}}})
	pc, err := listenPacketIn(b.sb.path, "udp4", "0.0.0.0:5353")
	if err != nil {
		t.Fatal(err)
	}
	udpEcho(t, pc)
	pub := publicAddr(t)
	f := startForwarder(t, ForwarderConfig{VpcID: v.id, Public: pub, Private: b.cfg.Address,
		Ports: []Port{{Protocol: "udp", Port: 5353}}, UDPIdleTimeout: 200 * time.Millisecond})
	c, err := net.Dial("udp", netip.AddrPortFrom(pub, 5353).String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// UDP may lose a datagram (a loaded host, a neighbour being resolved):
	// like any UDP client, send the first one again if no answer comes.
	var err1 error
	for range 3 {
		if err1 = echo(c, "ping"); err1 == nil {
			break
		}
	}
	if err1 != nil {
		t.Fatalf("datagram 0 (3 tries): %v", err1)
	}
	if err := echo(c, "ping"); err != nil {
		t.Fatalf("datagram 1: %v", err)
	}
	sessions := func() int {
		f.mu.Lock()
		defer f.mu.Unlock()
		return len(f.open) - 1 // minus the listener
	}
	if n := sessions(); n != 1 {
		t.Errorf("%d sessions, want 1", n)
	}
	deadline := time.Now().Add(2 * time.Second)
	for sessions() != 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := sessions(); n != 0 {
		t.Errorf("%d sessions after the idle timeout", n)
	}
	if err := echo(c, "again"); err != nil {
		t.Fatalf("after the idle timeout: %v", err)
	}
}

func TestNATEgress(t *testing.T) {
	requireRoot(t)
	v := newTestVPC(t)
	n := newTask(t, v, v.subnet(1), 10, true)
	p := newTask(t, v, v.subnet(2), 10, false)
	hl, err := netlink.LinkByName(uplinkHostName(v.id))
	if err != nil {
		t.Fatal(err)
	}
	hostAddr, ok := uplinkAddrOf(hl)
	if !ok {
		t.Fatal("host end of the uplink has no address")
	}
	l, err := net.Listen("tcp", netip.AddrPortFrom(hostAddr, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	serveOn(t, l, "host")
	target := l.Addr().String()
	c, err := dialFrom(n.sb.path, target, time.Second)
	if err != nil {
		t.Fatalf("NAT egress task cannot reach the host: %v", err)
	}
	line, err := greet(c)
	c.Close()
	if err != nil {
		t.Fatal(err)
	}
	if want := "from " + hostAddr.Next().String() + ":"; !strings.Contains(line, want) {
		t.Errorf("host saw %q, want masquerading to %s", line, hostAddr.Next())
	}
	mustNotReach(t, p.sb, target)

	// Turning NAT egress on by attaching again takes effect.
	p.cfg.NATEgress = true
	if err := AttachENI(p.sb, p.cfg); err != nil {
		t.Fatal(err)
	}
	mustReach(t, p.sb, target)
}

func TestDialAndListenInVPC(t *testing.T) {
	requireRoot(t)
	v := newTestVPC(t)
	b := newTask(t, v, v.subnet(1), 10, false, Firewall{Ingress: []Rule{{Protocol: "tcp", FromPort: 8080, ToPort: 8080, CIDRs: []netip.Prefix{v.cidr()}}}})
	serve(t, b.sb, 8080)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c, err := DialInVPC(ctx, v.id, "tcp", b.addr(8080))
	if err != nil {
		t.Fatal(err)
	}
	line, err := greet(c)
	c.Close()
	if err != nil || !strings.Contains(line, "from "+v.subnet(1).gw.String()+":") {
		t.Errorf("greeting %q, %v; want it from the gateway", line, err)
	}

	// A firewalled port: the dial waits and gives up at the deadline.
	short, cancel2 := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel2()
	if _, err := DialInVPC(short, v.id, "tcp", b.addr(9090)); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("dial to a dropped port: %v, want deadline exceeded", err)
	}
	if _, err := DialInVPC(ctx, "vpc-nothere", "tcp", b.addr(8080)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dial in a VPC without namespace: %v", err)
	}

	l, err := ListenInVPC(v.id, "tcp", netip.AddrPortFrom(MetadataAddr, 80).String())
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan error, 1)
	go func() {
		_, err := l.Accept()
		accepted <- err
	}()
	// The VPC goes away with its last ENI, and its listeners with it.
	if err := DetachENI(v.id, b.cfg.ID); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-accepted:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("accept after the VPC went: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("listener still open after the VPC was deleted")
	}
	assertVPCGone(t, v.id)
	if _, err := ListenInVPC(v.id, "tcp", "127.0.0.1:0"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("listen in a deleted VPC: %v", err)
	}
}
