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
	sc := scope{account: "123456789012", region: "eu-west-1"}
	self := &agentapi.ENI{ID: "eni-self", VpcID: "vpc-1", PrivateIP: "10.0.0.4", SecurityGroups: []string{"sg-web", "sg-mon"}}
	got := computeFirewall(sc, self, groups)
	const client, monSet, empty = "123456789012/eu-west-1/sg-client", "123456789012/eu-west-1/sg-mon", "123456789012/eu-west-1/sg-empty"
	want := agentapi.Firewall{ENIID: "eni-self",
		Ingress: []agentapi.FirewallRule{
			{Protocol: "icmp", FromPort: -1, ToPort: -1, CIDRs: []string{"10.9.0.0/16"}},
			{Protocol: "tcp", FromPort: 22, ToPort: 22, CIDRs: []string{}, Sets: []string{empty}},
			{Protocol: "tcp", FromPort: 80, ToPort: 80, CIDRs: []string{"192.168.0.0/16"}, Sets: []string{client, monSet}},
		},
		Egress: []agentapi.FirewallRule{
			{Protocol: "-1", FromPort: -1, ToPort: -1, CIDRs: []string{"0.0.0.0/0"}},
			{Protocol: "udp", FromPort: 53, ToPort: 53, CIDRs: []string{}, Sets: []string{client}},
		}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("firewall\n got %+v\nwant %+v", got, want)
	}
	if names := agentapi.SetNames([]agentapi.Firewall{got}); !slices.Equal(names, []string{client, empty, monSet}) {
		t.Errorf("set names %v", names)
	}
	// Order of groups does not matter.
	self.SecurityGroups = []string{"sg-mon", "sg-web"}
	if again := computeFirewall(sc, self, groups); !sameFirewall(again, got) {
		t.Errorf("not deterministic: %+v", again)
	}
	// Resolved with the sets' members; a set with none matches nothing.
	sets := []agentapi.AddressSet{{Name: client, Addresses: []string{"10.0.1.7", "10.0.0.9"}}, {Name: monSet, Addresses: []string{"10.0.0.4"}},
		{Name: empty, Addresses: []string{}}}
	wantIn := []agentapi.FirewallRule{
		{Protocol: "icmp", FromPort: -1, ToPort: -1, CIDRs: []string{"10.9.0.0/16"}},
		{Protocol: "tcp", FromPort: 22, ToPort: 22, CIDRs: []string{}},
		{Protocol: "tcp", FromPort: 80, ToPort: 80, CIDRs: []string{"10.0.0.4/32", "10.0.0.9/32", "10.0.1.7/32", "192.168.0.0/16"}},
	}
	if in := agentapi.ResolveSets(got.Ingress, sets); !reflect.DeepEqual(in, wantIn) {
		t.Errorf("resolved ingress\n got %+v\nwant %+v", in, wantIn)
	}
	if got.Ingress[2].Sets == nil {
		t.Error("ResolveSets changed its input")
	}
	// No groups: nothing allowed, empty lists rather than nil.
	none := computeFirewall(sc, &agentapi.ENI{ID: "eni-x"}, groups)
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

// allows reports whether fw, its address sets read from the store now,
// lets cidr in on proto/port.
func allows(fw agentapi.Firewall, proto string, port int, cidr string) bool {
	sets, err := (&Service{st: testStore}).AddressSets(bg, agentapi.SetNames([]agentapi.Firewall{fw}), 0, 0)
	if err != nil {
		panic(err)
	}
	for _, r := range agentapi.ResolveSets(fw.Ingress, sets) {
		if r.Protocol == proto && r.FromPort <= port && port <= r.ToPort && slices.Contains(r.CIDRs, cidr) {
			return true
		}
	}
	return false
}

// TestReconciler: rule changes reach the firewalls of running ENIs well
// within a second; ENIs coming and going change their groups' address sets
// at once, and no firewall.
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

	// A second client appears: it is let in too, by the group's address
	// set; the firewall itself does not change.
	setRev := func() int64 {
		sets, err := e.s.AddressSets(bg, []string{newScope(e.acct, "us-east-1").setName(client)}, 0, 0)
		if err != nil || len(sets) != 1 {
			t.Fatalf("sets %v: %v", sets, err)
		}
		return sets[0].Revision
	}
	before := setRev()
	c2 := e.mustAttach("client-2", []string{sn}, []string{client}, false)
	if !allows(fw, "tcp", 8080, c2.PrivateIP+"/32") {
		t.Error("a new member is not in the group's set")
	}
	added := setRev()
	// It goes away again.
	if err := e.s.ReleaseENI(bg, e.acct, "us-east-1", "client-2"); err != nil {
		t.Fatal(err)
	}
	if allows(fw, "tcp", 8080, c2.PrivateIP+"/32") || !allows(fw, "tcp", 8080, from) {
		t.Error("a released member is still in the group's set, or the other left it")
	}
	if removed := setRev(); !(before < added && added < removed) {
		t.Errorf("set revisions do not grow: %d, %d, %d", before, added, removed)
	}
	if now := waitFirewallNow(t, w); now.Revision != fw.Revision {
		t.Errorf("members coming and going rewrote the firewall: revision %d, then %d", fw.Revision, now.Revision)
	}

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
