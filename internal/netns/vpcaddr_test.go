package netns

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

func addTestVPCAddress(t *testing.T, v testVPC, s testSubnet, host byte) {
	t.Helper()
	a := s.host(host)
	if err := AddVPCAddress(v.id, s.id, s.prefix, s.gw, a); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := RemoveVPCAddress(v.id, a); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
}

// A load balancer's address in subnet B reaches a task in subnet A, which
// sees that address as the peer; tasks of both subnets reach a listener on
// it.
func TestVPCAddressDialFrom(t *testing.T) {
	v := newTestVPC(t)
	sa, sb := v.subnet(1), v.subnet(2)
	k := newTask(t, v, sa, 10, false)
	serve(t, k.sb, 8080)
	other := newTask(t, v, sb, 11, false)
	lb := sb.host(50)
	addTestVPCAddress(t, v, sb, 50)
	// Idempotent.
	if err := AddVPCAddress(v.id, sb.id, sb.prefix, sb.gw, lb); err != nil {
		t.Fatal(err)
	}
	var line string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		c, err := DialInVPCFrom(ctx, v.id, "tcp", lb, k.addr(8080))
		cancel()
		if err == nil {
			line, err = greet(c)
			c.Close()
		}
		if err == nil || time.Now().After(deadline) {
			if err != nil {
				t.Fatalf("dial from %s: %v", lb, err)
			}
			break
		}
	}
	if !strings.Contains(line, " from "+lb.String()+":") {
		t.Fatalf("greeting %q: peer is not %s", line, lb)
	}
	// Not an address of the VPC: refused at bind.
	if c, err := DialInVPCFrom(context.Background(), v.id, "tcp", sb.host(99), k.addr(8080)); err == nil {
		c.Close()
		t.Fatal("dial from a foreign address succeeded")
	}
	// Listening on the address: both subnets reach it.
	l, err := ListenInVPC(v.id, "tcp4", lb.String()+":9000")
	if err != nil {
		t.Fatal(err)
	}
	serveOn(t, l, "lb")
	mustReach(t, k.sb, lb.String()+":9000")
	mustReach(t, other.sb, lb.String()+":9000")
	addrs, err := VPCAddresses(v.id)
	if err != nil || !slices.Contains(addrs, lb) {
		t.Fatalf("VPCAddresses = %v, %v; want %s", addrs, err, lb)
	}
}

// The VPC namespace outlives its last ENI while it holds an address, and
// goes with the address.
func TestVPCAddressKeepsVPC(t *testing.T) {
	v := newTestVPC(t)
	sa, sb := v.subnet(1), v.subnet(2)
	k := newTask(t, v, sa, 10, false)
	lb := sb.host(50)
	if err := AddVPCAddress(v.id, sb.id, sb.prefix, sb.gw, lb); err != nil {
		t.Fatal(err)
	}
	removed := false
	t.Cleanup(func() {
		if !removed {
			_ = RemoveVPCAddress(v.id, lb)
		}
	})
	if err := DetachENI(v.id, k.cfg.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(vpcPath(v.id)); err != nil {
		t.Fatalf("VPC namespace gone with its last ENI while it holds %s: %v", lb, err)
	}
	if err := pruneVPC(v.id); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(vpcPath(v.id)); err != nil {
		t.Fatalf("VPC namespace pruned while it holds %s: %v", lb, err)
	}
	removed = true
	if err := RemoveVPCAddress(v.id, lb); err != nil {
		t.Fatal(err)
	}
	assertVPCGone(t, v.id)
	// Removing again is not an error.
	if err := RemoveVPCAddress(v.id, lb); err != nil {
		t.Fatal(err)
	}
	// An address alone makes the namespace; pruning leaves it.
	if err := AddVPCAddress(v.id, sb.id, sb.prefix, sb.gw, lb); err != nil {
		t.Fatal(err)
	}
	if err := pruneVPC(v.id); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(vpcPath(v.id)); err != nil {
		t.Fatalf("VPC namespace of an address pruned: %v", err)
	}
	if err := RemoveVPCAddress(v.id, lb); err != nil {
		t.Fatal(err)
	}
	assertVPCGone(t, v.id)
}
