package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/lbproxy"
	"github.com/berthdev/berth/internal/netns"
)

// healthServer records target-health reports; nothing else is called.
type healthServer struct {
	ControlPlane
	mu      sync.Mutex
	reports []agentapi.TargetHealthReport
}

func (s *healthServer) TargetHealth(_ context.Context, r agentapi.TargetHealthReport) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reports = append(s.reports, r)
	return nil
}

func (s *healthServer) last() (agentapi.TargetHealthReport, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.reports) == 0 {
		return agentapi.TargetHealthReport{}, false
	}
	return s.reports[len(s.reports)-1], true
}

func testHex(t *testing.T, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func waitFor(t *testing.T, what string, cond func() error) {
	t.Helper()
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if err = cond(); err == nil {
			return
		}
	}
	t.Fatalf("%s: %v", what, err)
}

// A real engine through a real VPC: a task serves HTTP in subnet A, the
// load balancer has its ENI in subnet B and listens on a loopback address
// of its own; a GET from the host through it reaches the task, which sees
// the load balancer's ENI address as the client. Without an ingress rule
// the connection is reset. Removed, it stops listening and releases its
// address (and with it the VPC namespace); the hosts block follows.
func TestLoadBalancerThroughVPC(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	vpc := "vpc-" + testHex(t, 9)[:17]
	octet := testHex(t, 1)
	var o byte
	fmt.Sscanf(octet, "%02x", &o)
	subA := netip.MustParsePrefix(fmt.Sprintf("10.%d.1.0/24", o))
	subB := netip.MustParsePrefix(fmt.Sprintf("10.%d.2.0/24", o))
	taskIP := netip.MustParseAddr(fmt.Sprintf("10.%d.1.10", o))
	lbIP := netip.MustParseAddr(fmt.Sprintf("10.%d.2.50", o))

	// The task.
	sbName := "berth-lbtest-" + testHex(t, 4)
	sb, err := netns.CreateSandbox(sbName)
	if err != nil {
		t.Fatal(err)
	}
	eniID := "eni-" + testHex(t, 9)[:17]
	t.Cleanup(func() {
		_ = netns.DetachENI(vpc, eniID)
		_ = netns.DeleteSandbox(sbName)
		_ = netns.RemoveVPCAddress(vpc, lbIP) // in case the test failed halfway
	})
	cfg := netns.ENIConfig{ID: eniID, VpcID: vpc, SubnetID: "subnet-a-" + vpc[4:], Subnet: subA,
		Gateway: subA.Addr().Next(), Address: taskIP}
	if err := netns.AttachENI(sb, cfg); err != nil {
		t.Fatal(err)
	}
	anywhere := []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}
	if err := netns.ApplyFirewall(sb, netns.Firewall{Ingress: []netns.Rule{{Protocol: "-1", CIDRs: anywhere}},
		Egress: []netns.Rule{{Protocol: "-1", CIDRs: anywhere}}}); err != nil {
		t.Fatal(err)
	}
	var ln net.Listener
	if err := netns.RunIn(sb.Path(), func() error {
		var err error
		ln, err = net.Listen("tcp4", "0.0.0.0:8080")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from the task to %s", r.RemoteAddr)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })

	// The load balancer's address and a free port on it.
	pub := fmt.Sprintf("127.103.%d.%d", o, 2+int(o)%250) // apart from berth dev's pools
	probe, err := net.Listen("tcp", pub+":0")
	if err != nil {
		t.Fatal(err)
	}
	port := probe.Addr().(*net.TCPAddr).Port
	probe.Close()
	lbARN := "arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/app/t/" + testHex(t, 8)
	tgARN := "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/t/" + testHex(t, 8)
	spec := agentapi.LoadBalancerSpec{
		ARN: lbARN, VpcID: vpc, DNSName: "t-" + testHex(t, 4) + ".elb.localhost", PublicAddress: pub,
		ENIs: []agentapi.LoadBalancerENI{{ID: "eni-" + testHex(t, 9)[:17], SubnetID: "subnet-b-" + vpc[4:],
			SubnetCIDR: subB.String(), Gateway: subB.Addr().Next().String(), PrivateIP: lbIP.String()}},
		Ingress: []agentapi.FirewallRule{{Protocol: "tcp", FromPort: port, ToPort: port, CIDRs: []string{"0.0.0.0/0"}}},
		Proxy: lbproxy.LoadBalancer{ARN: lbARN, Type: "application",
			Listeners: []lbproxy.Listener{{ARN: lbARN + "/listener", Protocol: "HTTP", Port: port,
				DefaultActions: []lbproxy.Action{{Type: lbproxy.ActionForward, Forward: &lbproxy.ForwardConfig{
					TargetGroups: []lbproxy.WeightedTargetGroup{{ARN: tgARN}}}}}}},
			TargetGroups: []lbproxy.TargetGroup{{ARN: tgARN, Protocol: "HTTP", Port: 8080,
				Targets: []lbproxy.Target{{ID: taskIP.String()}},
				HealthCheck: lbproxy.HealthCheck{Enabled: true, Interval: 100 * time.Millisecond,
					Timeout: 100 * time.Millisecond, HealthyThreshold: 2, UnhealthyThreshold: 2}}}},
		Revision: 1,
	}

	hosts := filepath.Join(t.TempDir(), "hosts")
	orig := "127.0.0.1 localhost\n"
	if err := os.WriteFile(hosts, []byte(orig), 0o644); err != nil {
		t.Fatal(err)
	}
	hs := &healthServer{}
	a := New(Config{Node: agentapi.RegisterRequest{NodeID: "lbtest"}, Server: hs, HostsFile: hosts,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); a.lbs.run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	a.lbs.update([]agentapi.LoadBalancerSpec{spec})

	url := fmt.Sprintf("http://%s:%d/", pub, port)
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	get := func() (string, error) {
		resp, err := client.Get(url)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return "", err
		}
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("%s: %s", resp.Status, b)
		}
		return string(b), nil
	}
	var body string
	waitFor(t, "GET through the load balancer", func() error {
		var err error
		body, err = get()
		return err
	})
	if !strings.Contains(body, " to "+lbIP.String()+":") {
		t.Fatalf("body %q: the task did not see %s as the client", body, lbIP)
	}
	waitFor(t, "hosts block", func() error {
		b, _ := os.ReadFile(hosts)
		if !strings.Contains(string(b), pub+" "+spec.DNSName+"\n") {
			return fmt.Errorf("hosts file:\n%s", b)
		}
		return nil
	})
	waitFor(t, "healthy report", func() error {
		r, ok := hs.last()
		if !ok || r.LoadBalancerARN != lbARN || r.NodeID != "lbtest" {
			return fmt.Errorf("last report %+v", r)
		}
		if st := r.TargetGroups[tgARN]; len(st) != 1 || st[0].ID != taskIP.String() || st[0].State != lbproxy.StateHealthy {
			return fmt.Errorf("statuses %+v", st)
		}
		return nil
	})

	// No ingress rule: connections are reset.
	spec.Ingress, spec.Revision = nil, 2
	a.lbs.update([]agentapi.LoadBalancerSpec{spec})
	waitFor(t, "refusal without ingress", func() error {
		if b, err := get(); err == nil {
			return fmt.Errorf("GET answered %q", b)
		}
		return nil
	})
	// A rule for another port does not admit either; one for all traffic does.
	spec.Ingress = []agentapi.FirewallRule{{Protocol: "tcp", FromPort: port + 1, ToPort: port + 1, CIDRs: []string{"0.0.0.0/0"}},
		{Protocol: "-1", CIDRs: []string{"10.0.0.0/8"}}}
	spec.Revision = 3
	a.lbs.update([]agentapi.LoadBalancerSpec{spec})
	time.Sleep(200 * time.Millisecond)
	if b, err := get(); err == nil {
		t.Fatalf("GET without a rule open to the internet answered %q", b)
	}
	spec.Ingress = []agentapi.FirewallRule{{Protocol: "-1", CIDRs: []string{"0.0.0.0/0"}}}
	spec.Revision = 4
	a.lbs.update([]agentapi.LoadBalancerSpec{spec})
	waitFor(t, "GET with an all-traffic rule", func() error { _, err := get(); return err })

	// Removed: not listening, address released, VPC kept by the task.
	a.lbs.update(nil)
	waitFor(t, "address released", func() error {
		addrs, err := netns.VPCAddresses(vpc)
		if err != nil || len(addrs) > 0 {
			return fmt.Errorf("VPC addresses %v, %v", addrs, err)
		}
		return nil
	})
	if b, err := get(); err == nil {
		t.Fatalf("removed load balancer answered %q", b)
	}
	waitFor(t, "hosts block removed", func() error {
		if b, _ := os.ReadFile(hosts); string(b) != orig {
			return fmt.Errorf("hosts file:\n%s", b)
		}
		return nil
	})

	// Back, then the agent stops: everything is released.
	spec.Revision = 5
	a.lbs.update([]agentapi.LoadBalancerSpec{spec})
	waitFor(t, "GET after re-adding", func() error { _, err := get(); return err })
	cancel()
	<-done
	if b, _ := os.ReadFile(hosts); string(b) != orig {
		t.Errorf("hosts file after stop:\n%s", b)
	}
	if addrs, err := netns.VPCAddresses(vpc); err != nil || len(addrs) > 0 {
		t.Errorf("VPC addresses after stop: %v, %v", addrs, err)
	}
}

func TestAdmitsHost(t *testing.T) {
	open := []string{"0.0.0.0/0"}
	for _, c := range []struct {
		rules []agentapi.FirewallRule
		want  bool
	}{
		{nil, false},
		{[]agentapi.FirewallRule{{Protocol: "tcp", FromPort: 80, ToPort: 80, CIDRs: open}}, true},
		{[]agentapi.FirewallRule{{Protocol: "tcp", FromPort: 70, ToPort: 79, CIDRs: open}}, false},
		{[]agentapi.FirewallRule{{Protocol: "udp", FromPort: 80, ToPort: 80, CIDRs: open}}, false},
		{[]agentapi.FirewallRule{{Protocol: "-1", CIDRs: open}}, true},
		{[]agentapi.FirewallRule{{Protocol: "tcp", FromPort: 80, ToPort: 80, CIDRs: []string{"10.0.0.0/8", "127.0.0.1/32"}}}, false},
	} {
		if got := admitsHost(c.rules, 80); got != c.want {
			t.Errorf("admitsHost(%+v) = %v, want %v", c.rules, got, c.want)
		}
	}
}

// fakeLBNetwork dials on the host and records address changes.
type fakeLBNetwork struct {
	mu      sync.Mutex
	added   map[string]bool // "vpc addr"
	removed []string
}

func (f *fakeLBNetwork) AddVPCAddress(vpcID, _ string, _ netip.Prefix, _, addr netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.added[vpcID+" "+addr.String()] = true
	return nil
}

func (f *fakeLBNetwork) RemoveVPCAddress(vpcID string, addr netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.added, vpcID+" "+addr.String())
	f.removed = append(f.removed, vpcID+" "+addr.String())
	return nil
}

func (f *fakeLBNetwork) DialInVPCFrom(ctx context.Context, _, network string, _ netip.Addr, address string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, address)
}

func (f *fakeLBNetwork) state() (map[string]bool, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := map[string]bool{}
	for k := range f.added {
		m[k] = true
	}
	return m, slices.Clone(f.removed)
}

// The runner with a fake network: addresses follow the specs, a crashed
// agent's recorded addresses are released, and a stop releases the rest.
func TestLoadBalancerRunnerAddresses(t *testing.T) {
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }))
	defer target.Close()
	tp := target.Listener.Addr().(*net.TCPAddr)
	dir := t.TempDir()
	// What a crashed agent left.
	if err := os.WriteFile(filepath.Join(dir, "load-balancers.json"), []byte(`[{"vpcId":"vpc-old","address":"10.9.9.9"}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	fn := &fakeLBNetwork{added: map[string]bool{}}
	hs := &healthServer{}
	a := New(Config{Node: agentapi.RegisterRequest{NodeID: "n"}, DataDir: dir, Server: hs, LBNetwork: fn,
		HostsFile: filepath.Join(dir, "hosts"), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); a.lbs.run(ctx) }()
	defer func() { cancel(); <-done }()

	tgARN := "tg-1"
	spec := agentapi.LoadBalancerSpec{ARN: "lb-1", VpcID: "vpc-1", PublicAddress: "127.0.0.1", DNSName: "lb-1.test",
		ENIs:    []agentapi.LoadBalancerENI{{ID: "eni-1", SubnetID: "s", SubnetCIDR: "10.1.2.0/24", Gateway: "10.1.2.1", PrivateIP: "10.1.2.7"}},
		Ingress: []agentapi.FirewallRule{{Protocol: "-1", CIDRs: []string{"0.0.0.0/0"}}},
		Proxy: lbproxy.LoadBalancer{ARN: "lb-1", Type: "application",
			Listeners: []lbproxy.Listener{{ARN: "l-1", Protocol: "HTTP", DefaultActions: []lbproxy.Action{{Type: lbproxy.ActionForward,
				Forward: &lbproxy.ForwardConfig{TargetGroups: []lbproxy.WeightedTargetGroup{{ARN: tgARN}}}}}}},
			TargetGroups: []lbproxy.TargetGroup{{ARN: tgARN, Protocol: "HTTP", Port: tp.Port, Targets: []lbproxy.Target{{ID: "127.0.0.1"}}}}},
		Revision: 1}
	a.lbs.update([]agentapi.LoadBalancerSpec{spec})
	waitFor(t, "addresses", func() error {
		added, removed := fn.state()
		if !added["vpc-1 10.1.2.7"] || len(added) != 1 || !slices.Contains(removed, "vpc-old 10.9.9.9") {
			return fmt.Errorf("added %v, removed %v", added, removed)
		}
		return nil
	})
	waitFor(t, "initial report", func() error {
		if r, ok := hs.last(); !ok || len(r.TargetGroups[tgARN]) != 1 {
			return fmt.Errorf("report %+v", r)
		}
		return nil
	})
	b, err := os.ReadFile(filepath.Join(dir, "load-balancers.json"))
	if err != nil || !strings.Contains(string(b), "10.1.2.7") || strings.Contains(string(b), "10.9.9.9") {
		t.Fatalf("record %s, %v", b, err)
	}
	cancel()
	<-done
	if added, _ := fn.state(); len(added) != 0 {
		t.Fatalf("addresses after stop: %v", added)
	}
}
