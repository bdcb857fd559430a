package vpc

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/protocol"
)

var bg = context.Background()

func (e *env) attach(attachment string, subnets, groups []string, public bool) (agentapi.ENI, error) {
	return e.s.AttachENI(bg, e.acct, "us-east-1", attachment, "node-1", subnets, groups, public)
}

func (e *env) mustAttach(attachment string, subnets, groups []string, public bool) agentapi.ENI {
	e.t.Helper()
	eni, err := e.attach(attachment, subnets, groups, public)
	if err != nil {
		e.t.Fatalf("attach %s: %v", attachment, err)
	}
	return eni
}

func stopReason(err error) (string, bool) {
	var sr interface{ StopReason() string }
	if errors.As(err, &sr) {
		return sr.StopReason(), true
	}
	return "", false
}

func TestAttachENI(t *testing.T) {
	e := newEnv(t)
	v := e.createVpc("10.0.0.0/16")
	sn := e.createSubnet(v, "10.0.1.0/24", "us-east-1b")
	web := e.createGroup(v, "web")
	eni := e.mustAttach("att-1", []string{sn}, []string{web}, false)
	mac := regexp.MustCompile(`^0e(:[0-9a-f]{2}){5}$`)
	if !validID(eni.ID, "eni") || eni.AttachmentID != "att-1" || eni.VpcID != v || eni.VpcCIDR != "10.0.0.0/16" ||
		eni.SubnetID != sn || eni.SubnetCIDR != "10.0.1.0/24" || eni.Gateway != "10.0.1.1" || eni.PrivateIP != "10.0.1.4" ||
		!mac.MatchString(eni.MAC) || eni.PublicIP != "" || eni.NATEgress || eni.AvailabilityZone != "us-east-1b" ||
		eni.PrivateDNSName != "ip-10-0-1-4.ec2.internal" || len(eni.SecurityGroups) != 1 || eni.SecurityGroups[0] != web {
		t.Errorf("eni %+v", eni)
	}
	// Idempotent by attachment.
	if again := e.mustAttach("att-1", []string{sn}, []string{web}, false); again.ID != eni.ID || again.PrivateIP != eni.PrivateIP {
		t.Errorf("second attach: %+v", again)
	}
	// No groups: the VPC's default group.
	def := e.mustAttach("att-2", []string{sn}, nil, false)
	if def.PrivateIP != "10.0.1.5" || len(def.SecurityGroups) != 1 || def.SecurityGroups[0] != e.defaultGroup(v) {
		t.Errorf("eni with default group %+v", def)
	}
	if got := e.subnet(sn).AvailableIPAddressCount; got != 251-2 {
		t.Errorf("AvailableIpAddressCount %d, want 249", got)
	}

	// DescribeNetworkInterfaces.
	r := ok[*describeENIsResult](e, "DescribeNetworkInterfaces", "NetworkInterfaceId.1", eni.ID)
	if len(r.NetworkInterfaces) != 1 {
		t.Fatalf("%d enis", len(r.NetworkInterfaces))
	}
	x := r.NetworkInterfaces[0]
	if x.NetworkInterfaceID != eni.ID || x.SubnetID != sn || x.VpcID != v || x.AvailabilityZone != "us-east-1b" ||
		x.Description != "arn:aws:ecs:us-east-1:"+e.acct+":attachment/att-1" || x.InterfaceType != "interface" ||
		x.MacAddress != eni.MAC || x.PrivateIPAddress != "10.0.1.4" || x.PrivateDNSName != "ip-10-0-1-4.ec2.internal" ||
		x.Status != "in-use" || !x.RequesterManaged || x.OwnerID != e.acct || len(x.GroupSet) != 1 ||
		x.GroupSet[0] != (groupIdentXML{web, "web"}) || x.Association != nil || len(x.PrivateIPAddressesSet) != 1 ||
		!x.PrivateIPAddressesSet[0].Primary || x.Attachment.Status != "attached" || !strings.HasPrefix(x.Attachment.AttachmentID, "eni-attach-") {
		t.Errorf("described %+v", x)
	}
	for _, tt := range []struct {
		kv   []string
		want int
	}{
		{nil, 2},
		{[]string{"Filter.1.Name", "private-ip-address", "Filter.1.Value.1", "10.0.1.5"}, 1},
		{[]string{"Filter.1.Name", "addresses.private-ip-address", "Filter.1.Value.1", "10.0.1.*"}, 2},
		{[]string{"Filter.1.Name", "description", "Filter.1.Value.1", "*attachment/att-1"}, 1},
		{[]string{"Filter.1.Name", "group-id", "Filter.1.Value.1", web}, 1},
		{[]string{"Filter.1.Name", "group-name", "Filter.1.Value.1", "default"}, 1},
		{[]string{"Filter.1.Name", "subnet-id", "Filter.1.Value.1", sn}, 2},
		{[]string{"Filter.1.Name", "vpc-id", "Filter.1.Value.1", "vpc-00000000"}, 0},
		{[]string{"Filter.1.Name", "network-interface-id", "Filter.1.Value.1", def.ID}, 1},
		{[]string{"Filter.1.Name", "status", "Filter.1.Value.1", "in-use"}, 2},
	} {
		if got := len(ok[*describeENIsResult](e, "DescribeNetworkInterfaces", tt.kv...).NetworkInterfaces); got != tt.want {
			t.Errorf("DescribeNetworkInterfaces %v: %d, want %d", tt.kv, got, tt.want)
		}
	}
	e.fails(codeENINotFound, "DescribeNetworkInterfaces", "NetworkInterfaceId.1", "eni-0123456789abcdef0")
	e.fails(codeENIMalformed, "DescribeNetworkInterfaces", "NetworkInterfaceId.1", "eni-x")
	ok[*returnXML](e, "CreateTags", "ResourceId.1", eni.ID, "Tag.1.Key", "task", "Tag.1.Value", "web")
	if got := ok[*describeENIsResult](e, "DescribeNetworkInterfaces", "Filter.1.Name", "tag:task", "Filter.1.Value.1", "web").NetworkInterfaces; len(got) != 1 || got[0].TagSet[0].Value != "web" {
		t.Errorf("tagged eni: %+v", got)
	}
	// Another account sees none of them.
	if got := okAs[*describeENIsResult](e, callerCtx(newAccount(), "us-east-1"), "DescribeNetworkInterfaces").NetworkInterfaces; len(got) != 0 {
		t.Errorf("other account sees %d enis", len(got))
	}

	// Its firewall is stored for the node's agent.
	var fw agentapi.Firewall
	if _, err := testStore.Get(bg, FirewallKey("node-1", eni.ID), &fw); err != nil {
		t.Fatal(err)
	}
	if fw.ENIID != eni.ID || len(fw.Ingress) != 0 || len(fw.Egress) != 1 || fw.Egress[0].CIDRs[0] != "0.0.0.0/0" || fw.Revision == 0 {
		t.Errorf("firewall %+v", fw)
	}

	// Release frees the address, the firewall and the record; twice is fine.
	for i := 0; i < 2; i++ {
		if err := e.s.ReleaseENI(bg, e.acct, "us-east-1", "att-1"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := testStore.Get(bg, FirewallKey("node-1", eni.ID), &fw); err == nil {
		t.Error("firewall survives release")
	}
	e.fails(codeENINotFound, "DescribeNetworkInterfaces", "NetworkInterfaceId.1", eni.ID)
	if got := e.subnet(sn).AvailableIPAddressCount; got != 250 {
		t.Errorf("AvailableIpAddressCount %d after release, want 250", got)
	}
	// The freed address is quarantined while others are free: the next
	// lowest is handed out.
	if again := e.mustAttach("att-3", []string{sn}, nil, false); again.PrivateIP != "10.0.1.6" {
		t.Errorf("after release got %s, want 10.0.1.6 (10.0.1.4 freed a moment ago, 10.0.1.5 leased)", again.PrivateIP)
	}
}

func TestAttachENIPublicIP(t *testing.T) {
	pool := newPool(30) // .0 network, .1 first: two addresses
	e := newEnvWith(t, Config{PublicIPPool: pool})
	def, _ := e.defaultVpc()
	subnets := ok[*describeSubnetsResult](e, "DescribeSubnets", "Filter.1.Name", "vpc-id", "Filter.1.Value.1", def).Subnets
	v := e.createVpc("10.0.0.0/16")
	private := e.createSubnet(v, "10.0.0.0/24", "")
	base := pool.Addr().As4()
	var want []string
	for _, last := range []byte{2, 3} {
		want = append(want, netip.AddrFrom4([4]byte{base[0], base[1], base[2], last}).String())
	}
	a := e.mustAttach("pub-1", []string{private}, nil, true)
	b := e.mustAttach("pub-2", []string{subnets[0].SubnetID}, nil, false)
	if a.PublicIP != want[0] || !a.NATEgress {
		t.Errorf("public eni %+v", a)
	}
	if b.PublicIP != "" || !b.NATEgress {
		t.Errorf("eni in a default (public) subnet: %+v", b)
	}
	if x := ok[*describeENIsResult](e, "DescribeNetworkInterfaces", "Filter.1.Name", "association.public-ip", "Filter.1.Value.1", a.PublicIP).NetworkInterfaces; len(x) != 1 || x[0].Association == nil || x[0].Association.PublicIP != a.PublicIP {
		t.Errorf("association %+v", x)
	}
	e.mustAttach("pub-3", []string{private}, nil, true)
	_, err := e.attach("pub-4", []string{private}, nil, true)
	reason, stop := stopReason(err)
	if !stop || !strings.Contains(reason, "public") || !strings.Contains(reason, pool.String()) {
		t.Errorf("pool exhausted: %v", err)
	}
	if err := e.s.ReleaseENI(bg, e.acct, "us-east-1", "pub-1"); err != nil {
		t.Fatal(err)
	}
	if c := e.mustAttach("pub-4", []string{private}, nil, true); c.PublicIP != want[0] {
		t.Errorf("released public ip not reused: %+v", c)
	}
	// Outside us-east-1 the DNS name is regional.
	eu := e.s
	eni, err := eu.AttachENI(bg, e.acct, "eu-west-1", "eu-1", "node-1", euDefaultSubnet(t, e), nil, false)
	if err != nil || eni.PrivateDNSName != "ip-172-31-0-4.eu-west-1.compute.internal" {
		t.Errorf("eu-west-1 eni %+v, %v", eni, err)
	}
}

func euDefaultSubnet(t *testing.T, e *env) []string {
	ctx := callerCtx(e.acct, "eu-west-1")
	r := okAs[*describeSubnetsResult](e, ctx, "DescribeSubnets", "Filter.1.Name", "availability-zone", "Filter.1.Value.1", "eu-west-1a")
	return []string{r.Subnets[0].SubnetID}
}

// TestAttachENIExhaustion races more attachers than a /26 has addresses:
// every address is handed out once, and each excess attacher fails with a
// stop reason that names the exhausted subnet.
func TestAttachENIExhaustion(t *testing.T) {
	e := newEnv(t)
	v := e.createVpc("10.0.0.0/16")
	sn := e.createSubnet(v, "10.0.0.0/26", "")
	const attachers = 75
	usable := 64 - 5
	type result struct {
		eni agentapi.ENI
		err error
	}
	results := make([]result, attachers)
	var wg sync.WaitGroup
	for i := range attachers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			eni, err := e.s.AttachENI(bg, e.acct, "us-east-1", fmt.Sprintf("task-%d", i), fmt.Sprintf("node-%d", i%3), []string{sn}, nil, false)
			results[i] = result{eni, err}
		}()
	}
	wg.Wait()
	seen := map[string]bool{}
	failed := 0
	for i, r := range results {
		if r.err != nil {
			reason, stop := stopReason(r.err)
			if !stop || reason != "ResourceInitializationError: unable to assign an IP address: subnet "+sn+" (10.0.0.0/26) has no free addresses" {
				t.Errorf("attacher %d: %v", i, r.err)
			}
			failed++
			continue
		}
		ip := netip.MustParseAddr(r.eni.PrivateIP)
		if seen[r.eni.PrivateIP] {
			t.Errorf("address %s handed out twice", ip)
		}
		seen[r.eni.PrivateIP] = true
		if b := ip.As4()[3]; b < 4 || b > 62 {
			t.Errorf("reserved address %s handed out", ip)
		}
	}
	if len(seen) != usable || failed != attachers-usable {
		t.Errorf("%d attached, %d failed; want %d and %d", len(seen), failed, usable, attachers-usable)
	}
	if got := e.subnet(sn).AvailableIPAddressCount; got != 0 {
		t.Errorf("AvailableIpAddressCount %d, want 0", got)
	}
	// A second candidate subnet takes the overflow.
	other := e.createSubnet(v, "10.0.1.0/28", "")
	if eni := e.mustAttach("overflow", []string{sn, other}, nil, false); eni.SubnetID != other || eni.PrivateIP != "10.0.1.4" {
		t.Errorf("overflow eni %+v", eni)
	}
	// Freed addresses are handed out again.
	for _, i := range []int{3, 7} {
		if results[i].err == nil {
			if err := e.s.ReleaseENI(bg, e.acct, "us-east-1", fmt.Sprintf("task-%d", i)); err != nil {
				t.Fatal(err)
			}
			again := e.mustAttach(fmt.Sprintf("again-%d", i), []string{sn}, nil, false)
			if again.PrivateIP != results[i].eni.PrivateIP {
				t.Errorf("freed %s, got %s", results[i].eni.PrivateIP, again.PrivateIP)
			}
		}
	}
	_, err := e.attach("none", []string{sn}, nil, false)
	if _, stop := stopReason(err); !stop {
		t.Errorf("full again: %v", err)
	}
	_, err = e.attach("none", []string{sn, other}, nil, false)
	if reason, _ := stopReason(err); reason != "" && !strings.Contains(reason, "subnets "+sn) {
		// other still has room: this must succeed.
		t.Errorf("two subnets: %v", err)
	}
}

func TestAttachENIGone(t *testing.T) {
	e := newEnv(t)
	v := e.createVpc("10.0.0.0/16")
	sn := e.createSubnet(v, "10.0.0.0/24", "")
	g := e.createGroup(v, "g")
	ok[*returnXML](e, "DeleteSecurityGroup", "GroupId", g)
	if _, err := e.attach("a", []string{sn}, []string{g}, false); !strings.Contains(fmt.Sprint(stopReason(err)), "security group "+g+" does not exist") {
		t.Errorf("deleted group: %v", err)
	}
	ok[*returnXML](e, "DeleteSubnet", "SubnetId", sn)
	if _, err := e.attach("a", []string{sn}, nil, false); !strings.Contains(fmt.Sprint(stopReason(err)), "subnet "+sn+" does not exist") {
		t.Errorf("deleted subnet: %v", err)
	}
	if _, err := e.attach("", []string{sn}, nil, false); err == nil {
		t.Error("no attachment id accepted")
	} else if _, stop := stopReason(err); stop {
		t.Error("a programming error is no stop reason")
	}
}

// TestDependencies: a subnet, group or VPC in use by a task cannot be
// deleted, and trying changes nothing.
func TestDependencies(t *testing.T) {
	e := newEnv(t)
	v := e.createVpc("10.0.0.0/16")
	sn := e.createSubnet(v, "10.0.0.0/24", "")
	g := e.createGroup(v, "web")
	e.mustAttach("task", []string{sn}, []string{g}, false)
	e.fails(codeDependencyViolation, "DeleteSubnet", "SubnetId", sn)
	e.fails(codeDependencyViolation, "DeleteSecurityGroup", "GroupId", g)
	e.fails(codeDependencyViolation, "DeleteVpc", "VpcId", v)
	e.subnet(sn)
	e.group(g)
	e.vpc(v)
	if err := e.s.ReleaseENI(bg, e.acct, "us-east-1", "task"); err != nil {
		t.Fatal(err)
	}
	ok[*returnXML](e, "DeleteSubnet", "SubnetId", sn)
	ok[*returnXML](e, "DeleteSecurityGroup", "GroupId", g)
	ok[*returnXML](e, "DeleteVpc", "VpcId", v)
}

// TestDeleteSubnetRace deletes a subnet while ENIs are attached into it:
// either the delete fails, or no ENI was made in the deleted subnet.
func TestDeleteSubnetRace(t *testing.T) {
	e := newEnv(t)
	v := e.createVpc("10.0.0.0/16")
	for round := 0; round < 5; round++ {
		sn := e.createSubnet(v, fmt.Sprintf("10.0.%d.0/24", round), "")
		var wg sync.WaitGroup
		var attached []agentapi.ENI
		var mu sync.Mutex
		for i := 0; i < 5; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if eni, err := e.attach(fmt.Sprintf("r%d-%d", round, i), []string{sn}, nil, false); err == nil {
					mu.Lock()
					attached = append(attached, eni)
					mu.Unlock()
				}
			}()
		}
		_, delErr := e.call("DeleteSubnet", "SubnetId", sn)
		wg.Wait()
		if delErr == nil && len(attached) > 0 {
			t.Fatalf("round %d: subnet deleted with %d enis in it", round, len(attached))
		}
		if delErr != nil && code(delErr) != codeDependencyViolation {
			t.Fatalf("round %d: %v", round, delErr)
		}
	}
}

func TestResolveAwsvpc(t *testing.T) {
	e := newEnv(t)
	v := e.createVpc("10.0.0.0/16")
	a := e.createSubnet(v, "10.0.1.0/24", "us-east-1a")
	b := e.createSubnet(v, "10.0.2.0/24", "us-east-1c")
	g := e.createGroup(v, "web")
	w := e.createVpc("10.1.0.0/16")
	c := e.createSubnet(w, "10.1.0.0/24", "")
	h := e.createGroup(w, "other")
	vpcID, azs, groups, err := e.s.ResolveAwsvpc(bg, e.acct, "us-east-1", []string{a, b}, []string{g})
	if err != nil || vpcID != v || azs[a] != "us-east-1a" || azs[b] != "us-east-1c" || len(groups) != 1 || groups[0] != g {
		t.Errorf("resolve: %s %v %v %v", vpcID, azs, groups, err)
	}
	if _, _, groups, err := e.s.ResolveAwsvpc(bg, e.acct, "us-east-1", []string{a}, nil); err != nil || groups[0] != e.defaultGroup(v) {
		t.Errorf("default group: %v %v", groups, err)
	}
	missing := "subnet-0123456789abcdef0"
	for _, tt := range []struct {
		name            string
		subnets, groups []string
		want            string
	}{
		{"no subnets", nil, nil, "subnets can not be empty."},
		{"missing subnet", []string{a, missing}, nil, "Error retrieving subnet information for [" + missing + "]: The subnet ID '" + missing + "' does not exist (ErrorCode: InvalidSubnetID.NotFound)"},
		{"malformed subnet", []string{"subnet-1"}, nil, "Error retrieving subnet information for [subnet-1]: The subnet ID 'subnet-1' is malformed (ErrorCode: InvalidSubnetID.Malformed)"},
		{"two vpcs", []string{a, c}, nil, "Subnets can not be in different VPCs: " + a + " is in " + v + " but " + c + " is in " + w + ". Give subnets of one VPC."},
		{"missing group", []string{a}, []string{"sg-0123456789abcdef0"}, "Error retrieving security group information for [sg-0123456789abcdef0]: The security group 'sg-0123456789abcdef0' does not exist (ErrorCode: InvalidGroup.NotFound)"},
		{"group of other vpc", []string{a}, []string{h}, "Security group " + h + " and subnet " + a + " belong to different networks"},
		{"too many groups", []string{a}, []string{"sg-1", "sg-2", "sg-3", "sg-4", "sg-5", "sg-6"}, "securityGroups can have at most 5 items."},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, _, err := e.s.ResolveAwsvpc(bg, e.acct, "us-east-1", tt.subnets, tt.groups)
			var pe *protocol.Error
			if !errors.As(err, &pe) || pe.Code != "InvalidParameterException" || !strings.HasPrefix(pe.Message, tt.want) {
				t.Errorf("got %v, want InvalidParameterException: %s", err, tt.want)
			}
		})
	}
}

// BenchmarkAttachRelease measures what an awsvpc task's network costs the
// control plane: AttachENI and ReleaseENI on the embedded etcd.
func BenchmarkAttachRelease(b *testing.B) {
	e := newEnv(b)
	v := e.createVpc("10.0.0.0/16")
	sn := e.createSubnet(v, "10.0.0.0/20", "")
	g := e.createGroup(v, "web")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		id := fmt.Sprintf("bench-%d", i)
		if _, err := e.s.AttachENI(bg, e.acct, "us-east-1", id, "node-1", []string{sn}, []string{g}, false); err != nil {
			b.Fatal(err)
		}
		if err := e.s.ReleaseENI(bg, e.acct, "us-east-1", id); err != nil {
			b.Fatal(err)
		}
	}
}

// TestAttachENIReplicas: two services on one store (two server replicas)
// hand out each address once, and an address one of them frees is handed
// out by the other, whose copy of the leases did not see it freed.
func TestAttachENIReplicas(t *testing.T) {
	e := newEnv(t)
	other, err := New(Config{Store: testStore, PublicIPPool: e.s.cfg.PublicIPPool})
	if err != nil {
		t.Fatal(err)
	}
	v := e.createVpc("10.0.0.0/16")
	sn := e.createSubnet(v, "10.0.0.0/28", "") // 11 usable: .4 to .14
	replicas := []*Service{e.s, other}
	seen := map[string]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range 11 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("task-%d", i)
			eni, err := replicas[i%2].AttachENI(bg, e.acct, "us-east-1", id, "node-1", []string{sn}, nil, true)
			if err != nil {
				t.Errorf("%s: %v", id, err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for _, a := range []string{eni.PrivateIP, eni.PublicIP} {
				if prev, dup := seen[a]; dup {
					t.Errorf("%s handed out to %s and %s", a, prev, id)
				}
				seen[a] = id
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	// Full for both; then the other replica frees one, and this one (whose
	// copy says full) finds it.
	for _, r := range replicas {
		if _, err := r.AttachENI(bg, e.acct, "us-east-1", "extra", "node-1", []string{sn}, nil, false); err == nil {
			t.Fatal("attached into a full subnet")
		} else if _, stop := stopReason(err); !stop {
			t.Fatalf("full subnet: %v", err)
		}
	}
	var freed agentapi.ENI
	for _, id := range []string{"task-0", "task-1", "task-2"} {
		rec, _, _, err := get[eniRecord](bg, testStore, newScope(e.acct, "us-east-1").eniKey(id))
		if err != nil || rec == nil {
			t.Fatalf("%s: %v", id, err)
		}
		if err := other.ReleaseENI(bg, e.acct, "us-east-1", id); err != nil {
			t.Fatal(err)
		}
		freed = rec.ENI
		again, err := e.s.AttachENI(bg, e.acct, "us-east-1", "again-"+id, "node-1", []string{sn}, nil, true)
		if err != nil {
			t.Fatalf("after %s was freed: %v", id, err)
		}
		// The public pool has room elsewhere: only the full subnet must
		// give back what was freed.
		if again.PrivateIP != freed.PrivateIP {
			t.Errorf("freed %s, got %s", freed.PrivateIP, again.PrivateIP)
		}
	}
}
