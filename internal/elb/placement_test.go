package elb

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/lbproxy"
	"github.com/berthdev/berth/internal/store"
)

// Placement tests run on an etcd of their own: a placement pass walks every
// account of its store.

// fakeENIs hands out one ENI per attachment, idempotently.
type fakeENIs struct {
	mu       sync.Mutex
	n        int
	enis     map[string]agentapi.ENI
	nodes    map[string]string
	released []string
}

func newFakeENIs() *fakeENIs {
	return &fakeENIs{enis: map[string]agentapi.ENI{}, nodes: map[string]string{}}
}

func (f *fakeENIs) AttachENI(_ context.Context, _, _, attachmentID, node string, subnets, groups []string, _ bool) (agentapi.ENI, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if e, ok := f.enis[attachmentID]; ok {
		return e, nil
	}
	f.n++
	cidr := fakeSubnets[subnets[0]][2]
	pfx := netip.MustParsePrefix(cidr)
	ip := pfx.Addr()
	for i := 0; i < 3+f.n; i++ {
		ip = ip.Next()
	}
	e := agentapi.ENI{AttachmentID: attachmentID, ID: fmt.Sprintf("eni-%04d", f.n), SubnetID: subnets[0], SubnetCIDR: cidr,
		Gateway: pfx.Addr().Next().String(), PrivateIP: ip.String(), SecurityGroups: groups}
	f.enis[attachmentID], f.nodes[attachmentID] = e, node
	return e, nil
}

func (f *fakeENIs) ReleaseENI(_ context.Context, _, _, attachmentID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.enis[attachmentID]; ok {
		delete(f.enis, attachmentID)
		f.released = append(f.released, attachmentID)
	}
	return nil
}

func (f *fakeENIs) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.enis)
}

type fakeIngress struct{}

func (fakeIngress) GroupIngress(_ context.Context, _, _ string, groups []string) ([]agentapi.FirewallRule, error) {
	return []agentapi.FirewallRule{{Protocol: "tcp", FromPort: 80, ToPort: 80, CIDRs: []string{"0.0.0.0/0"}},
		{Protocol: "tcp", FromPort: 8080, ToPort: 8080, CIDRs: []string{"10.9.9.9/32", strings.Join(groups, ",")}}}, nil
}

type fakeNodes struct {
	mu    sync.Mutex
	nodes []string
}

func (n *fakeNodes) list(context.Context) ([]string, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.nodes...), nil
}

func (n *fakeNodes) set(ids ...string) {
	n.mu.Lock()
	n.nodes = ids
	n.mu.Unlock()
}

type placeEnv struct {
	*env
	st    *store.Store
	enis  *fakeENIs
	nodes *fakeNodes
}

func startStore(t *testing.T) *store.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e, err := store.StartEmbedded(ctx, t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return store.New(e.Client)
}

func newPlaceEnv(t *testing.T, pool string) *placeEnv {
	t.Helper()
	pe := &placeEnv{st: startStore(t), enis: newFakeENIs(), nodes: &fakeNodes{}}
	pe.nodes.set("node-a", "node-b")
	pe.env = &env{t: t, clock: &clock{}}
	pe.clock.ns.Store(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano())
	pe.s = pe.newService(pool)
	pe.acct = newAccount()
	pe.ctx = callerCtx(pe.acct, "us-east-1")
	return pe
}

func (pe *placeEnv) newService(pool string) *Service {
	pe.t.Helper()
	cfg := Config{Store: pe.st, Networks: fakeNet{}, Now: pe.clock.now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Nodes: pe.nodes.list, ENIs: pe.enis, Firewall: fakeIngress{}, ReconcileInterval: 100 * time.Millisecond}
	if pool != "" {
		cfg.PublicPool = netip.MustParsePrefix(pool)
	}
	s, err := New(cfg)
	if err != nil {
		pe.t.Fatal(err)
	}
	return s
}

func (pe *placeEnv) place(s *Service) {
	pe.t.Helper()
	if err := s.Place(context.Background()); err != nil {
		pe.t.Fatal(err)
	}
}

// specs returns every stored spec by key.
func (pe *placeEnv) specs() map[string]agentapi.LoadBalancerSpec {
	pe.t.Helper()
	resp, err := pe.st.C.Get(context.Background(), store.Prefix("lbs"), clientv3.WithPrefix())
	if err != nil {
		pe.t.Fatal(err)
	}
	out := map[string]agentapi.LoadBalancerSpec{}
	for _, kv := range resp.Kvs {
		var s agentapi.LoadBalancerSpec
		if err := json.Unmarshal(kv.Value, &s); err != nil {
			pe.t.Fatal(err)
		}
		out[strings.TrimPrefix(string(kv.Key), store.Prefix("lbs"))] = s
	}
	return out
}

func (pe *placeEnv) leases() map[string]addrLease {
	pe.t.Helper()
	resp, err := pe.st.C.Get(context.Background(), store.Prefix("lbaddr"), clientv3.WithPrefix())
	if err != nil {
		pe.t.Fatal(err)
	}
	out := map[string]addrLease{}
	for _, kv := range resp.Kvs {
		var l addrLease
		_ = json.Unmarshal(kv.Value, &l)
		out[strings.TrimPrefix(string(kv.Key), store.Prefix("lbaddr"))] = l
	}
	return out
}

func lbIDOf(arn string) string { return arn[strings.LastIndex(arn, "/")+1:] }

// specOf returns the only spec of a load balancer and its node.
func (pe *placeEnv) specOf(arn string) (string, agentapi.LoadBalancerSpec, bool) {
	pe.t.Helper()
	var node string
	var spec agentapi.LoadBalancerSpec
	n := 0
	for k, s := range pe.specs() {
		nd, id, _ := strings.Cut(k, "/")
		if id == lbIDOf(arn) {
			node, spec = nd, s
			n++
		}
	}
	if n > 1 {
		pe.t.Fatalf("%d specs of %s", n, arn)
	}
	return node, spec, n == 1
}

func TestPlacement(t *testing.T) {
	pe := newPlaceEnv(t, "")
	e := pe.env
	lb := ok[*loadBalancersResult](e, "CreateLoadBalancer", "Name", "web", "Subnets.member.1", "subnet-a1",
		"Subnets.member.2", "subnet-a2", "SecurityGroups.member.1", "sg-aweb").LoadBalancers[0]
	a := e.createTG("a", "HTTP", "vpc-a", "HealthCheckIntervalSeconds", "10", "HealthCheckPath", "/health")
	b := e.createTG("b", "HTTP", "vpc-a")
	l := e.createListener(lb.LoadBalancerArn, "HTTP", "80", a.TargetGroupArn)
	ok[*rulesResult](e, "CreateRule", "ListenerArn", l.ListenerArn, "Priority", "10",
		"Conditions.member.1.Field", "path-pattern", "Conditions.member.1.PathPatternConfig.Values.member.1", "/api/*",
		"Actions.member.1.Type", "forward",
		"Actions.member.1.ForwardConfig.TargetGroups.member.1.TargetGroupArn", a.TargetGroupArn,
		"Actions.member.1.ForwardConfig.TargetGroups.member.1.Weight", "1",
		"Actions.member.1.ForwardConfig.TargetGroups.member.2.TargetGroupArn", b.TargetGroupArn,
		"Actions.member.1.ForwardConfig.TargetGroups.member.2.Weight", "3")
	ok[*rulesResult](e, "CreateRule", "ListenerArn", l.ListenerArn, "Priority", "20",
		"Conditions.member.1.Field", "source-ip", "Conditions.member.1.SourceIpConfig.Values.member.1", "10.0.0.0/8",
		"Actions.member.1.Type", "fixed-response", "Actions.member.1.FixedResponseConfig.StatusCode", "403")
	e.do("RegisterTargets", "TargetGroupArn", a.TargetGroupArn, "Targets.member.1.Id", "10.0.1.10", "Targets.member.1.Port", "8080")
	e.do("ModifyTargetGroupAttributes", "TargetGroupArn", a.TargetGroupArn,
		"Attributes.member.1.Key", "deregistration_delay.timeout_seconds", "Attributes.member.1.Value", "5",
		"Attributes.member.2.Key", "load_balancing.algorithm.type", "Attributes.member.2.Value", "least_outstanding_requests")

	pe.clock.advance(2 * time.Second)
	if st := ok[*loadBalancersResult](e, "DescribeLoadBalancers").LoadBalancers[0].State.Code; st != "provisioning" {
		t.Errorf("state before placement %s", st)
	}
	pe.place(pe.s)
	node, spec, found := pe.specOf(lb.LoadBalancerArn)
	if !found {
		t.Fatalf("no spec: %v", pe.specs())
	}
	if d := ok[*loadBalancersResult](e, "DescribeLoadBalancers").LoadBalancers[0]; d.State.Code != "active" || d.DNSName != lb.DNSName {
		t.Errorf("after placement %+v", d)
	}
	if node != "node-a" || spec.ARN != lb.LoadBalancerArn || spec.Account != e.acct || spec.Region != "us-east-1" ||
		spec.VpcID != "vpc-a" || spec.DNSName != lb.DNSName || spec.PublicAddress != "127.101.0.2" || spec.Revision <= 0 {
		t.Errorf("spec on %s: %+v", node, spec)
	}
	if len(spec.ENIs) != 2 || spec.ENIs[0].SubnetID != "subnet-a1" || spec.ENIs[1].SubnetID != "subnet-a2" ||
		spec.ENIs[0].PrivateIP == "" || spec.ENIs[0].Gateway != "10.0.1.1" || spec.ENIs[0].SubnetCIDR != "10.0.1.0/24" {
		t.Errorf("enis %+v", spec.ENIs)
	}
	if pe.enis.count() != 2 || pe.enis.nodes["elb-"+lbIDOf(lb.LoadBalancerArn)+"-subnet-a1"] != "node-a" ||
		pe.enis.enis["elb-"+lbIDOf(lb.LoadBalancerArn)+"-subnet-a1"].SecurityGroups[0] != "sg-aweb" {
		t.Errorf("fake enis %+v %+v", pe.enis.enis, pe.enis.nodes)
	}
	if len(spec.Ingress) != 2 || spec.Ingress[1].CIDRs[1] != "sg-aweb" {
		t.Errorf("ingress %+v", spec.Ingress)
	}
	p := spec.Proxy
	if p.ARN != lb.LoadBalancerArn || p.Type != lbproxy.TypeApplication || p.IdleTimeout != 60*time.Second || len(p.Listeners) != 1 {
		t.Fatalf("proxy %+v", p)
	}
	pl := p.Listeners[0]
	if pl.ARN != l.ListenerArn || pl.Port != 80 || pl.Protocol != "HTTP" || len(pl.DefaultActions) != 1 ||
		pl.DefaultActions[0].Forward.TargetGroups[0].ARN != a.TargetGroupArn || len(pl.Rules) != 2 {
		t.Fatalf("listener %+v", pl)
	}
	r0, r1 := pl.Rules[0], pl.Rules[1]
	if r0.Priority != 10 || r0.Conditions[0].Field != "path-pattern" || r0.Conditions[0].Values[0] != "/api/*" ||
		len(r0.Actions[0].Forward.TargetGroups) != 2 || r0.Actions[0].Forward.TargetGroups[1].Weight != 3 {
		t.Errorf("rule 10 %+v", r0)
	}
	if r1.Priority != 20 || r1.Conditions[0].SourceIP[0] != "10.0.0.0/8" || r1.Actions[0].FixedResponse.StatusCode != "403" {
		t.Errorf("rule 20 %+v", r1)
	}
	if len(p.TargetGroups) != 2 {
		t.Fatalf("target groups %+v", p.TargetGroups)
	}
	for _, tg := range p.TargetGroups {
		if tg.ARN != a.TargetGroupArn {
			continue
		}
		if len(tg.Targets) != 1 || tg.Targets[0].ID != "10.0.1.10" || tg.Targets[0].Port != 8080 ||
			tg.DeregistrationDelay != 5*time.Second || tg.Algorithm != "least_outstanding_requests" ||
			tg.HealthCheck.Interval != 10*time.Second || tg.HealthCheck.Path != "/health" || !tg.HealthCheck.Enabled {
			t.Errorf("target group a %+v", tg)
		}
	}
	// A second pass changes nothing.
	pe.place(pe.s)
	if _, again, _ := pe.specOf(lb.LoadBalancerArn); again.Revision != spec.Revision {
		t.Errorf("idle pass rewrote the spec: %d → %d", spec.Revision, again.Revision)
	}
	// A second load balancer goes to the other node.
	lb2 := e.createALB("two")
	pe.place(pe.s)
	if n2, s2, ok := pe.specOf(lb2.LoadBalancerArn); !ok || n2 != "node-b" || s2.PublicAddress != "127.101.0.3" {
		t.Errorf("second lb on %s: %+v", n2, s2)
	}
	// A vanished node's load balancers move, interfaces and all.
	pe.nodes.set("node-b", "node-c")
	pe.place(pe.s)
	n3, s3, _ := pe.specOf(lb.LoadBalancerArn)
	if n3 != "node-c" || s3.PublicAddress != spec.PublicAddress || s3.Revision <= spec.Revision ||
		pe.enis.nodes["elb-"+lbIDOf(lb.LoadBalancerArn)+"-subnet-a1"] != "node-c" {
		t.Errorf("moved to %s: %+v", n3, s3)
	}
	if len(pe.specs()) != 2 {
		t.Errorf("specs %v", pe.specs())
	}

	// Target health from the node running it reaches DescribeTargetHealth;
	// from another node it is refused.
	rep := agentapi.TargetHealthReport{NodeID: "node-c", LoadBalancerARN: lb.LoadBalancerArn,
		TargetGroups: map[string][]lbproxy.TargetStatus{a.TargetGroupArn: {{ID: "10.0.1.10", Port: 8080, State: "healthy"}}}}
	if err := pe.s.ReportTargetHealth(context.Background(), rep); err != nil {
		t.Fatal(err)
	}
	if h, _ := pe.s.TargetHealth(context.Background(), e.acct, "us-east-1", a.TargetGroupArn); len(h) != 1 || h[0].State != "healthy" {
		t.Errorf("health %+v", h)
	}
	rep.NodeID = "node-b"
	if err := pe.s.ReportTargetHealth(context.Background(), rep); err == nil {
		t.Error("report from the wrong node accepted")
	}
	rep.NodeID = "node-c"

	// A deregistered target drains while the data plane still lists it,
	// and is gone (before its 5 s delay) once a report no longer does.
	if err := pe.s.DeregisterTargets(context.Background(), e.acct, "us-east-1", a.TargetGroupArn, []Target{{ID: "10.0.1.10", Port: 8080}}); err != nil {
		t.Fatal(err)
	}
	rep.TargetGroups[a.TargetGroupArn][0].State = "draining"
	if err := pe.s.ReportTargetHealth(context.Background(), rep); err != nil {
		t.Fatal(err)
	}
	if h, _ := pe.s.TargetHealth(context.Background(), e.acct, "us-east-1", a.TargetGroupArn); len(h) != 1 || h[0].State != "draining" {
		t.Errorf("health while draining %+v", h)
	}
	rep.TargetGroups[a.TargetGroupArn] = nil
	if err := pe.s.ReportTargetHealth(context.Background(), rep); err != nil {
		t.Fatal(err)
	}
	if h, _ := pe.s.TargetHealth(context.Background(), e.acct, "us-east-1", a.TargetGroupArn); len(h) != 0 {
		t.Errorf("health once drained %+v", h)
	}

	// Deletion releases everything.
	e.do("DeleteLoadBalancer", "LoadBalancerArn", lb.LoadBalancerArn)
	pe.place(pe.s)
	if _, _, found := pe.specOf(lb.LoadBalancerArn); found {
		t.Error("spec of a deleted load balancer remains")
	}
	if _, ok := pe.leases()[spec.PublicAddress]; ok || len(pe.leases()) != 1 {
		t.Errorf("leases %v", pe.leases())
	}
	if pe.enis.count() != 2 {
		t.Errorf("enis left %v", pe.enis.enis)
	}
}

// TestPlacementReacts: with Run going, API changes reach the spec within a
// second, at a higher revision.
func TestPlacementReacts(t *testing.T) {
	pe := newPlaceEnv(t, "")
	e := pe.env
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = pe.s.Run(ctx) }()
	defer func() { cancel(); <-done }()

	lb := e.createALB("web")
	a := e.createTG("a", "HTTP", "vpc-a")
	l := e.createListener(lb.LoadBalancerArn, "HTTP", "80", a.TargetGroupArn)
	wait := func(what string, after int64, cond func(agentapi.LoadBalancerSpec) bool) agentapi.LoadBalancerSpec {
		t.Helper()
		start := time.Now()
		for time.Since(start) < time.Second {
			if _, s, ok := pe.specOf(lb.LoadBalancerArn); ok && s.Revision > after && cond(s) {
				t.Logf("%s reached the spec in %v", what, time.Since(start))
				return s
			}
			time.Sleep(10 * time.Millisecond)
		}
		_, s, _ := pe.specOf(lb.LoadBalancerArn)
		t.Fatalf("%s: spec not updated within 1s: %+v", what, s)
		return s
	}
	s := wait("listener", 0, func(s agentapi.LoadBalancerSpec) bool { return len(s.Proxy.Listeners) == 1 })
	r := ok[*rulesResult](e, "CreateRule", "ListenerArn", l.ListenerArn, "Priority", "10",
		"Conditions.member.1.Field", "path-pattern", "Conditions.member.1.PathPatternConfig.Values.member.1", "/a/*",
		"Actions.member.1.Type", "forward", "Actions.member.1.TargetGroupArn", a.TargetGroupArn).Rules[0]
	s = wait("rule", s.Revision, func(s agentapi.LoadBalancerSpec) bool { return len(s.Proxy.Listeners[0].Rules) == 1 })
	e.do("ModifyRule", "RuleArn", r.RuleArn,
		"Conditions.member.1.Field", "path-pattern", "Conditions.member.1.PathPatternConfig.Values.member.1", "/b/*")
	s = wait("modified rule", s.Revision, func(s agentapi.LoadBalancerSpec) bool {
		return s.Proxy.Listeners[0].Rules[0].Conditions[0].Values[0] == "/b/*"
	})
	if err := pe.s.RegisterTargets(context.Background(), e.acct, "us-east-1", a.TargetGroupArn, []Target{{ID: "10.0.1.7", Port: 80}}); err != nil {
		t.Fatal(err)
	}
	s = wait("target", s.Revision, func(s agentapi.LoadBalancerSpec) bool { return len(s.Proxy.TargetGroups[0].Targets) == 1 })
	e.do("DeregisterTargets", "TargetGroupArn", a.TargetGroupArn, "Targets.member.1.Id", "10.0.1.7", "Targets.member.1.Port", "80")
	wait("deregistered target", s.Revision, func(s agentapi.LoadBalancerSpec) bool { return len(s.Proxy.TargetGroups[0].Targets) == 0 })
	e.do("DeleteLoadBalancer", "LoadBalancerArn", lb.LoadBalancerArn)
	start := time.Now()
	for {
		if _, _, found := pe.specOf(lb.LoadBalancerArn); !found && len(pe.leases()) == 0 && pe.enis.count() == 0 {
			break
		}
		if time.Since(start) > time.Second {
			t.Fatalf("deletion not reconciled: specs %v leases %v", pe.specs(), pe.leases())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestPlacementReplicas: two reconcilers on one store agree on nodes,
// addresses and specs, and the pool never hands an address out twice.
func TestPlacementReplicas(t *testing.T) {
	pe := newPlaceEnv(t, "127.102.0.0/27")
	e := pe.env
	other := pe.newService("127.102.0.0/27")
	const n = 12
	var arns []string
	for i := 0; i < n; i++ {
		arns = append(arns, e.createALB(fmt.Sprintf("lb-%d", i)).LoadBalancerArn)
	}
	for round := 0; round < 3; round++ {
		var wg sync.WaitGroup
		for _, s := range []*Service{pe.s, other} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = s.Place(context.Background()) // lost races are retried by the next pass
			}()
		}
		wg.Wait()
	}
	pe.place(pe.s)
	pe.place(other)
	leases := pe.leases()
	if len(leases) != n {
		t.Errorf("%d leases for %d load balancers: %v", len(leases), n, leases)
	}
	seen := map[string]bool{}
	perNode := map[string]int{}
	for _, arn := range arns {
		node, s, ok := pe.specOf(arn)
		if !ok {
			t.Fatalf("no spec of %s", arn)
		}
		perNode[node]++
		if seen[s.PublicAddress] {
			t.Errorf("address %s handed out twice", s.PublicAddress)
		}
		seen[s.PublicAddress] = true
		a := netip.MustParseAddr(s.PublicAddress)
		if !netip.MustParsePrefix("127.102.0.0/27").Contains(a) || s.PublicAddress == "127.102.0.0" || s.PublicAddress == "127.102.0.1" {
			t.Errorf("address %s outside the pool's usable range", a)
		}
		if l := leases[s.PublicAddress]; l.LBID != lbIDOf(arn) {
			t.Errorf("lease of %s: %+v", s.PublicAddress, l)
		}
		if len(s.ENIs) != 2 {
			t.Errorf("enis of %s: %+v", arn, s.ENIs)
		}
	}
	if perNode["node-a"]+perNode["node-b"] != n || perNode["node-a"] < 4 || perNode["node-b"] < 4 {
		t.Errorf("spread %v", perNode)
	}
	if pe.enis.count() != 2*n {
		t.Errorf("%d enis", pe.enis.count())
	}
	// The stored placements are what the specs say.
	pe.clock.advance(2 * time.Second)
	d := ok[*loadBalancersResult](e, "DescribeLoadBalancers")
	for _, x := range d.LoadBalancers {
		if x.State.Code != "active" {
			t.Errorf("%s %s", x.LoadBalancerName, x.State.Code)
		}
	}
	// A full pool: the next load balancer waits, nothing is leased twice.
	for i := n; i < 31; i++ {
		e.createALB(fmt.Sprintf("lb-%d", i))
	}
	_ = pe.s.Place(context.Background())
	if got := len(pe.leases()); got != 30 {
		t.Errorf("%d leases from a pool of 30", got)
	}
}

// TestTouchesELB: what wakes a placement pass. A task's record never does;
// a scope's ELB state always does; its security groups, their members and
// its container instances do only where it has load balancers.
func TestTouchesELB(t *testing.T) {
	s := &Service{}
	ev := func(key string) []*clientv3.Event {
		return []*clientv3.Event{{Kv: &mvccpb.KeyValue{Key: []byte(key)}}}
	}
	task := store.Scoped("111111111111", "us-east-1", "tasks", "default", "abc")
	lb := store.Scoped("111111111111", "us-east-1", "elb", "cfg", "lb", "0123")
	member := store.Scoped("111111111111", "us-east-1", "vpc", "sg-members", "sg-1", "att")
	other := store.Scoped("222222222222", "us-east-1", "vpc", "sg-members", "sg-1", "att")
	instance := store.Scoped("111111111111", "us-east-1", "instances", "default", "i-1")
	for _, c := range []struct {
		key        string
		before, lb bool // before any pass; after a pass that found a load balancer in 111111111111/us-east-1
	}{
		{task, false, false},
		{lb, true, true},
		{member, true, true},
		{other, true, false},
		{instance, true, true},
		{store.Key("nodes", "n1"), false, false},
	} {
		s.lbScopes.Store(nil)
		if got := s.touchesELB(ev(c.key)); got != c.before {
			t.Errorf("before a pass, %s: %v", c.key, got)
		}
		s.lbScopes.Store(&map[string]bool{"111111111111/us-east-1": true})
		if got := s.touchesELB(ev(c.key)); got != c.lb {
			t.Errorf("with load balancers in one scope, %s: %v", c.key, got)
		}
	}
}
