package netns

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"
)

func TestCleanup(t *testing.T) {
	requireRoot(t)
	v := newTestVPC(t)
	k := newTask(t, v, v.subnet(1), 10, true)
	bare := newTestSandbox(t)
	ours := func(l Leftover) bool {
		return l.VpcID == v.id || l.Name == k.sb.Name || l.Name == bare.Name
	}
	list := func() []string {
		t.Helper()
		all, err := Leftovers()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, l := range all {
			if ours(l) {
				out = append(out, l.String())
			}
		}
		slices.Sort(out)
		return out
	}
	want := []string{"sandbox " + k.sb.Name, "sandbox " + bare.Name, "uplink " + uplinkHostName(v.id), "vpc " + VPCNamespace(v.id)}
	slices.Sort(want)
	if got := list(); !slices.Equal(got, want) {
		t.Fatalf("leftovers %v, want %v", got, want)
	}
	// Remove only what this test made: other tests and agents may be
	// running on the host.
	if err := Cleanup(func(l Leftover) bool { return !ours(l) }); err != nil {
		t.Fatal(err)
	}
	if got := list(); len(got) != 0 {
		t.Errorf("left after cleanup: %v", got)
	}
	assertVPCGone(t, v.id)
}

func TestHostEgressInNamespace(t *testing.T) {
	requireRoot(t)
	sb := newTestSandbox(t) // stands in for the host namespace
	fd, err := unix.Open(sb.path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	// A new namespace inherits the host's ip_forward (devconf_inherit_init_net
	// 0), which is 1 on a host where berth enabled egress: start from 0.
	if err := inNamespaceFd(fd, func() error { return setSysctl("net/ipv4/ip_forward", "0") }); err != nil {
		t.Fatal(err)
	}
	saved := filepath.Join(t.TempDir(), "ip_forward.saved")
	state := func() (forward string, table bool) {
		t.Helper()
		err := inNamespaceFd(fd, func() error {
			var err error
			forward, err = getSysctl("net/ipv4/ip_forward")
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		c, err := nftConnAt(fd)
		if err != nil {
			t.Fatal(err)
		}
		defer closeNFT(c)
		table, err = tableExists(c, nftables.TableFamilyIPv4, HostEgressTable)
		if err != nil {
			t.Fatal(err)
		}
		return forward, table
	}
	if f, tb := state(); f != "0" || tb {
		t.Fatalf("fresh namespace: ip_forward %s, table %v", f, tb)
	}
	for range 2 {
		if err := enableEgress(fd, saved); err != nil {
			t.Fatal(err)
		}
		if f, tb := state(); f != "1" || !tb {
			t.Fatalf("enabled: ip_forward %s, table %v", f, tb)
		}
	}
	c, err := nftConnAt(fd)
	if err != nil {
		t.Fatal(err)
	}
	rules, err := c.GetRules(&nftables.Table{Family: nftables.TableFamilyIPv4, Name: HostEgressTable}, &nftables.Chain{Name: "postrouting"})
	closeNFT(c)
	if err != nil || len(rules) != 1 {
		t.Errorf("postrouting rules %v, %v; want one (re-enabling must not add more)", rules, err)
	}
	for range 2 {
		if err := disableEgress(fd, saved); err != nil {
			t.Fatal(err)
		}
		if f, tb := state(); f != "0" || tb {
			t.Fatalf("disabled: ip_forward %s, table %v", f, tb)
		}
	}
}

func TestLeftoverString(t *testing.T) {
	l := Leftover{Kind: "vpc", Name: VPCNamespace("vpc-1"), VpcID: "vpc-1"}
	if s := l.String(); !strings.HasPrefix(s, "vpc berth-vpc-") {
		t.Errorf("String() = %q", s)
	}
}

// TestPruneVPC empties a VPC behind its back (its only task's namespace
// deleted without DetachENI) and prunes it; a VPC with an ENI is kept.
// It prunes only its own VPCs: PruneVPCs would touch every VPC on the host.
func TestPruneVPC(t *testing.T) {
	requireRoot(t)
	busy := newTestVPC(t)
	newTask(t, busy, busy.subnet(1), 10, false)
	empty := newTestVPC(t)
	sb := newTestSandbox(t)
	cfg := eniConfig(t, empty, empty.subnet(1), 10, false)
	if err := AttachENI(sb, cfg); err != nil {
		t.Fatal(err)
	}
	if err := deleteNamespace(sb.path); err != nil { // no detach
		t.Fatal(err)
	}
	// The kernel frees the sandbox, and its veth pair, in the background.
	deadline := time.Now().Add(5 * time.Second)
	for {
		v, err := openVPC(empty.id)
		if err != nil {
			t.Fatal(err)
		}
		enis, err := v.enis()
		v.close()
		if err != nil {
			t.Fatal(err)
		}
		if len(enis) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the ENI outlived its sandbox")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, id := range []string{busy.id, empty.id} {
		if err := pruneVPC(id); err != nil {
			t.Fatal(err)
		}
	}
	assertVPCGone(t, empty.id)
	if ok, _ := isNamespaceMount(vpcPath(busy.id)); !ok {
		t.Error("pruned a VPC that has an ENI")
	}
}
