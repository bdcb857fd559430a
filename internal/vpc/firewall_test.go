package vpc

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/agentapi"
)

func TestComputeFirewall(t *testing.T) {
	web := &groupRecord{ID: "sg-web", VpcID: "vpc-1", Rules: []ruleRecord{
		{Protocol: "tcp", FromPort: 80, ToPort: 80, SourceGroup: "sg-client"},
		{Protocol: "tcp", FromPort: 80, ToPort: 80, CIDR: "192.168.0.0/16"},
		{Protocol: "tcp", FromPort: 22, ToPort: 22, SourceGroup: "sg-empty"},
		{Egress: true, Protocol: "-1", FromPort: -1, ToPort: -1, CIDR: "0.0.0.0/0"},
	}}
	mon := &groupRecord{ID: "sg-mon", VpcID: "vpc-1", Rules: []ruleRecord{
		{Protocol: "icmp", FromPort: -1, ToPort: -1, CIDR: "10.9.0.0/16"},
		{Protocol: "tcp", FromPort: 80, ToPort: 80, SourceGroup: "sg-mon"},
		{Egress: true, Protocol: "udp", FromPort: 53, ToPort: 53, SourceGroup: "sg-client"},
	}}
	groups := map[string]*groupRecord{"sg-web": web, "sg-mon": mon}
	self := &agentapi.ENI{ID: "eni-self", VpcID: "vpc-1", PrivateIP: "10.0.0.4", SecurityGroups: []string{"sg-web", "sg-mon"}}
	enis := []*agentapi.ENI{
		self,
		{ID: "eni-c1", VpcID: "vpc-1", PrivateIP: "10.0.0.9", SecurityGroups: []string{"sg-client"}},
		{ID: "eni-c2", VpcID: "vpc-1", PrivateIP: "10.0.1.7", SecurityGroups: []string{"sg-x", "sg-client"}},
		{ID: "eni-far", VpcID: "vpc-2", PrivateIP: "10.0.0.5", SecurityGroups: []string{"sg-client"}}, // another VPC
	}
	got := computeFirewall(self, groups, enis)
	want := agentapi.Firewall{ENIID: "eni-self",
		Ingress: []agentapi.FirewallRule{
			{Protocol: "icmp", FromPort: -1, ToPort: -1, CIDRs: []string{"10.9.0.0/16"}},
			{Protocol: "tcp", FromPort: 80, ToPort: 80, CIDRs: []string{"10.0.0.4/32", "10.0.0.9/32", "10.0.1.7/32", "192.168.0.0/16"}},
		},
		Egress: []agentapi.FirewallRule{
			{Protocol: "-1", FromPort: -1, ToPort: -1, CIDRs: []string{"0.0.0.0/0"}},
			{Protocol: "udp", FromPort: 53, ToPort: 53, CIDRs: []string{"10.0.0.9/32", "10.0.1.7/32"}},
		}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("firewall\n got %+v\nwant %+v", got, want)
	}
	// Order of groups and ENIs does not matter.
	slices.Reverse(enis)
	self.SecurityGroups = []string{"sg-mon", "sg-web"}
	if again := computeFirewall(self, groups, enis); !sameFirewall(again, got) {
		t.Errorf("not deterministic: %+v", again)
	}
	// No groups: nothing allowed, empty lists rather than nil.
	none := computeFirewall(&agentapi.ENI{ID: "eni-x"}, groups, enis)
	if none.Ingress == nil || none.Egress == nil || len(none.Ingress)+len(none.Egress) != 0 {
		t.Errorf("no groups: %+v", none)
	}
}

// waitFirewall polls the firewall of eni on node until cond holds, for at
// most a second, and returns it and how long it took.
func waitFirewall(t *testing.T, node, eniID string, cond func(agentapi.Firewall) bool) (agentapi.Firewall, time.Duration) {
	t.Helper()
	start := time.Now()
	var fw agentapi.Firewall
	for time.Since(start) < time.Second {
		fw = agentapi.Firewall{}
		if _, err := testStore.Get(bg, FirewallKey(node, eniID), &fw); err == nil && cond(fw) {
			return fw, time.Since(start)
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("firewall of %s not as expected within 1s: %+v", eniID, fw)
	return fw, 0
}

func allows(fw agentapi.Firewall, proto string, port int, cidr string) bool {
	for _, r := range fw.Ingress {
		if r.Protocol == proto && r.FromPort <= port && port <= r.ToPort && slices.Contains(r.CIDRs, cidr) {
			return true
		}
	}
	return false
}

// TestReconciler: rule changes and ENIs coming and going reach the
// firewalls of running ENIs well within a second.
func TestReconciler(t *testing.T) {
	e := newEnv(t)
	e.run()
	second := newEnv(t) // another replica's reconciler on the same store
	second.run()
	v := e.createVpc("10.0.0.0/16")
	sn := e.createSubnet(v, "10.0.0.0/24", "")
	web := e.createGroup(v, "web")
	client := e.createGroup(v, "client")
	w := e.mustAttach("web", []string{sn}, []string{web}, false)
	c := e.mustAttach("client", []string{sn}, []string{client}, false)
	from := c.PrivateIP + "/32"
	if fw := waitFirewallNow(t, w); allows(fw, "tcp", 8080, from) {
		t.Fatalf("allowed before authorize: %+v", fw)
	}
	var revs []int64
	ok[*authorizeResult](e, "AuthorizeSecurityGroupIngress", "GroupId", web, "IpPermissions.1.IpProtocol", "tcp",
		"IpPermissions.1.FromPort", "8080", "IpPermissions.1.ToPort", "8080", "IpPermissions.1.Groups.1.GroupId", client)
	fw, took := waitFirewall(t, "node-1", w.ID, func(fw agentapi.Firewall) bool { return allows(fw, "tcp", 8080, from) })
	t.Logf("authorize reached the firewall in %v", took)
	revs = append(revs, fw.Revision)

	// A second client appears: it is let in too.
	c2 := e.mustAttach("client-2", []string{sn}, []string{client}, false)
	fw, took = waitFirewall(t, "node-1", w.ID, func(fw agentapi.Firewall) bool { return allows(fw, "tcp", 8080, c2.PrivateIP+"/32") })
	t.Logf("a new member reached the firewall in %v", took)
	revs = append(revs, fw.Revision)

	// It goes away again.
	if err := e.s.ReleaseENI(bg, e.acct, "us-east-1", "client-2"); err != nil {
		t.Fatal(err)
	}
	fw, _ = waitFirewall(t, "node-1", w.ID, func(fw agentapi.Firewall) bool {
		return !allows(fw, "tcp", 8080, c2.PrivateIP+"/32") && allows(fw, "tcp", 8080, from)
	})
	revs = append(revs, fw.Revision)

	ok[*returnXML](e, "RevokeSecurityGroupIngress", "GroupId", web, "IpPermissions.1.IpProtocol", "tcp",
		"IpPermissions.1.FromPort", "8080", "IpPermissions.1.ToPort", "8080", "IpPermissions.1.Groups.1.GroupId", client)
	fw, took = waitFirewall(t, "node-1", w.ID, func(fw agentapi.Firewall) bool { return !allows(fw, "tcp", 8080, from) })
	t.Logf("revoke reached the firewall in %v", took)
	revs = append(revs, fw.Revision)
	for i := 1; i < len(revs); i++ {
		if revs[i] <= revs[i-1] {
			t.Errorf("revisions do not grow: %v", revs)
		}
	}
	// The client's own firewall never changed: nothing it depends on did.
	cfw := waitFirewallNow(t, c)
	if len(cfw.Ingress) != 0 {
		t.Errorf("client firewall %+v", cfw)
	}
}

func waitFirewallNow(t *testing.T, eni agentapi.ENI) agentapi.Firewall {
	t.Helper()
	fw, _ := waitFirewall(t, "node-1", eni.ID, func(agentapi.Firewall) bool { return true })
	return fw
}

// TestReconcilerFullPass: a reconciler that starts after changes (a
// restart) brings stale firewalls up to date and removes orphaned ones.
func TestReconcilerFullPass(t *testing.T) {
	e := newEnv(t)
	v := e.createVpc("10.0.0.0/16")
	sn := e.createSubnet(v, "10.0.0.0/24", "")
	web := e.createGroup(v, "web")
	w := e.mustAttach("web", []string{sn}, []string{web}, false)
	ok[*authorizeResult](e, "AuthorizeSecurityGroupIngress", "GroupId", web, "IpProtocol", "tcp", "FromPort", "443", "ToPort", "443", "CidrIp", "0.0.0.0/0")
	orphan := FirewallKey("node-9", "eni-0123456789abcdef0")
	if err := testStore.Put(bg, orphan, agentapi.Firewall{ENIID: "eni-0123456789abcdef0"}); err != nil {
		t.Fatal(err)
	}
	if fw := waitFirewallNow(t, w); allows(fw, "tcp", 443, "0.0.0.0/0") {
		t.Fatal("no reconciler runs, yet the firewall changed")
	}
	e.run()
	waitFirewall(t, "node-1", w.ID, func(fw agentapi.Firewall) bool { return allows(fw, "tcp", 443, "0.0.0.0/0") })
	deadline := time.Now().Add(time.Second)
	for {
		var fw agentapi.Firewall
		if _, err := testStore.Get(bg, orphan, &fw); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("orphaned firewall not removed")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
