package netns

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
)

// Helpers for tests that build VPCs and sandboxes. Every name has a random
// part; t.Cleanup removes what a test made even when it fails, and nothing
// else. Packets go only to loopback or into namespaces the test made.

func randHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, (n+1)/2)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)[:n]
}

// testVPC is a VPC made by a test: a random id and a random 10.x.0.0/16.
type testVPC struct {
	id    string
	octet byte // second octet of its CIDR
}

// newTestVPC returns a fresh VPC id whose namespace and uplink are removed
// at the end of the test (checked to be gone).
func newTestVPC(t testing.TB) testVPC {
	t.Helper()
	b := make([]byte, 1)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	v := testVPC{id: "vpc-" + randHex(t, 17), octet: b[0]}
	t.Cleanup(func() {
		if err := removeVPC(v.id); err != nil {
			t.Errorf("cleanup VPC %s: %v", v.id, err)
		}
	})
	return v
}

// subnet returns the VPC's subnet 10.<octet>.<n>.0/24 with id and gateway.
func (v testVPC) subnet(n byte) testSubnet {
	p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, v.octet, n, 0}), 24)
	return testSubnet{id: fmt.Sprintf("subnet-%s-%d", v.id[4:], n), prefix: p, gw: p.Addr().Next()}
}

func (v testVPC) cidr() netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, v.octet, 0, 0}), 16)
}

type testSubnet struct {
	id     string
	prefix netip.Prefix
	gw     netip.Addr
}

// host returns the subnet's address with last octet n.
func (s testSubnet) host(n byte) netip.Addr {
	a := s.prefix.Addr().As4()
	a[3] = n
	return netip.AddrFrom4(a)
}

func newTestSandbox(t testing.TB) *Sandbox {
	t.Helper()
	name := "berth-test-" + randHex(t, 8)
	sb, err := CreateSandbox(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := DeleteSandbox(name); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return sb
}

func eniConfig(t testing.TB, v testVPC, s testSubnet, host byte, nat bool) ENIConfig {
	return ENIConfig{ID: "eni-" + randHex(t, 17), VpcID: v.id, SubnetID: s.id, Subnet: s.prefix,
		Gateway: s.gw, Address: s.host(host), NATEgress: nat}
}

// task is a sandbox with an ENI.
type task struct {
	sb  *Sandbox
	cfg ENIConfig
}

func (k task) addr(port uint16) string { return netip.AddrPortFrom(k.cfg.Address, port).String() }

// newTask makes a sandbox and attaches an ENI in subnet s of v; its
// firewall admits everything unless fw is given.
func newTask(t testing.TB, v testVPC, s testSubnet, host byte, nat bool, fw ...Firewall) task {
	t.Helper()
	sb := newTestSandbox(t)
	cfg := eniConfig(t, v, s, host, nat)
	if err := AttachENI(sb, cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := DetachENI(cfg.VpcID, cfg.ID); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	policy := openFirewall
	if len(fw) > 0 {
		policy = fw[0]
	}
	if err := ApplyFirewall(sb, policy); err != nil {
		t.Fatal(err)
	}
	return task{sb: sb, cfg: cfg}
}

var anywhere = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}

// openFirewall admits everything in and out.
var openFirewall = Firewall{
	Ingress: []Rule{{Protocol: "-1", CIDRs: anywhere}},
	Egress:  []Rule{{Protocol: "-1", CIDRs: anywhere}},
}

// serve runs a TCP server in the sandbox on port: it greets each client
// with "hi <name>\n" and then echoes.
func serve(t testing.TB, sb *Sandbox, port uint16) {
	t.Helper()
	l, err := listenIn(sb.path, "tcp4", fmt.Sprintf("0.0.0.0:%d", port))
	if err != nil {
		t.Fatalf("listen in %s: %v", sb.Name, err)
	}
	serveOn(t, l, sb.Name)
}

func serveOn(t testing.TB, l net.Listener, name string) {
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				fmt.Fprintf(c, "hi %s from %s\n", name, c.RemoteAddr())
				_, _ = io.Copy(c, c)
			}()
		}
	}()
}

// dialFrom connects from inside the sandbox (path) to addr.
func dialFrom(path, addr string, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return dialIn(ctx, path, "tcp", netip.AddrPort{}, addr)
}

// greet reads the server's greeting.
func greet(c net.Conn) (string, error) {
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	_ = c.SetReadDeadline(time.Time{})
	return strings.TrimSpace(line), err
}

// reach reports whether a client in the sandbox at path gets the greeting
// of the server at addr.
func reach(path, addr string) error {
	c, err := dialFrom(path, addr, 400*time.Millisecond)
	if err != nil {
		return err
	}
	defer c.Close()
	if line, err := greet(c); err != nil || !strings.HasPrefix(line, "hi ") {
		return fmt.Errorf("greeting %q: %v", line, err)
	}
	return nil
}

// mustReach retries for a few seconds: on a loaded host (the e2e tests run
// beside these) a first SYN can be lost and TCP resends it only after 1 s.
func mustReach(t testing.TB, from *Sandbox, addr string) {
	t.Helper()
	var err error
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if err = reach(from.path, addr); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("%s cannot reach %s: %v", from.Name, addr, err)
	}
}

func mustNotReach(t testing.TB, from *Sandbox, addr string) {
	t.Helper()
	if err := reach(from.path, addr); err == nil {
		t.Fatalf("%s reaches %s", from.Name, addr)
	}
}

// echo writes msg on c and reads it back.
func echo(c net.Conn, msg string) error {
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, msg); err != nil {
		return err
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	if string(buf) != msg {
		return fmt.Errorf("echo %q, want %q", buf, msg)
	}
	return nil
}

// assertVPCGone checks that nothing of the VPC is left on the host.
func assertVPCGone(t testing.TB, vpcID string) {
	t.Helper()
	if _, err := os.Stat(vpcPath(vpcID)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("VPC namespace %s still there: %v", vpcPath(vpcID), err)
	}
	if _, err := netlink.LinkByName(uplinkHostName(vpcID)); !isLinkNotFound(err) {
		t.Errorf("uplink %s still there: %v", uplinkHostName(vpcID), err)
	}
	if _, err := os.Stat(LockDir + "/vpc-" + vpcID + ".lock"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lock file of %s still there: %v", vpcID, err)
	}
}
