package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/lbproxy"
	"github.com/berthdev/berth/internal/netns"
)

// Load balancers placed on this node. Each runs in its own proxy engine
// (internal/lbproxy) in the agent's process:
//
//   - it listens in the host namespace on its PublicAddress (in dev a
//     loopback address of its own, 127.101.x.y, which needs no setup), and
//     its DNSName resolves to that address on the host (hosts.go);
//   - its listeners admit a connection only if the load balancer's security
//     groups (LoadBalancerSpec.Ingress) do: a rule of protocol tcp or -1
//     whose port range holds the listener's port and one of whose CIDRs is
//     0.0.0.0/0. A client on the host counts as the internet, any address,
//     as for a task's public IP (netns.PublicForwarder): only a rule open to
//     the whole internet is sure to admit it. Other connections are reset
//     at once;
//   - its ENI addresses are addresses of the VPC's namespace
//     (netns.AddVPCAddress), and it dials targets from inside that
//     namespace with the address of the target's subnet as the source
//     (any of them if none matches: the VPC routes between subnets), so the
//     targets' security groups see the load balancer as the source.
//
// One worker (run) applies the newest specs, so that starting proxies never
// delays the poll loop's task hand-off; another (reportLoop) sends target
// health to the control plane, coalesced per load balancer and retried.
// A load balancer no longer listed stops listening at once, lets its
// in-flight requests and target drains finish (up to its longest
// deregistration delay), then closes and releases its addresses. When the
// agent stops, every load balancer closes, its addresses are released and
// the hosts block removed.
//
// The VPC addresses the agent holds are recorded in DataDir/load-balancers.json:
// an agent that crashed leaves them behind (they keep their VPC namespaces
// alive), and the next one releases those its first specs do not use.

// LBNetwork is how load balancers reach their VPCs; the default is the
// host's (internal/netns).
type LBNetwork interface {
	AddVPCAddress(vpcID, subnetID string, subnet netip.Prefix, gateway, addr netip.Addr) error
	RemoveVPCAddress(vpcID string, addr netip.Addr) error
	DialInVPCFrom(ctx context.Context, vpcID, network string, local netip.Addr, address string) (net.Conn, error)
}

type hostLBNetwork struct{}

func (hostLBNetwork) AddVPCAddress(vpcID, subnetID string, subnet netip.Prefix, gw, addr netip.Addr) error {
	return netns.AddVPCAddress(vpcID, subnetID, subnet, gw, addr)
}

func (hostLBNetwork) RemoveVPCAddress(vpcID string, addr netip.Addr) error {
	return netns.RemoveVPCAddress(vpcID, addr)
}

func (hostLBNetwork) DialInVPCFrom(ctx context.Context, vpcID, network string, local netip.Addr, address string) (net.Conn, error) {
	return netns.DialInVPCFrom(ctx, vpcID, network, local, address)
}

// lbRetry is how soon a failed step (an address, an Apply, a report) is
// tried again.
const lbRetry = 2 * time.Second

// maxDrain bounds how long a removed load balancer drains.
const maxDrain = 5 * time.Minute

type vpcAddr struct {
	vpc  string
	addr netip.Addr
}

// lbSource is one ENI of a load balancer: its subnet and address.
type lbSource struct {
	subnet netip.Prefix
	addr   netip.Addr
}

// runningLB is a load balancer with its engine.
type runningLB struct {
	spec    agentapi.LoadBalancerSpec // last applied
	vpcID   string
	eng     *lbproxy.Engine
	srcs    atomic.Pointer[[]lbSource]
	ingress atomic.Pointer[[]agentapi.FirewallRule]
	// instances are the addresses of instance targets (container
	// instances, reached from the host, not inside the VPC).
	instances atomic.Pointer[map[netip.Addr]bool]
}

type lbRunner struct {
	a     *Agent
	net   LBNetwork
	hosts string
	kick  chan struct{} // wakes run
	rep   chan struct{} // wakes reportLoop

	mu       sync.Mutex
	want     []agentapi.LoadBalancerSpec
	known    bool                  // a poll has set want
	running  map[string]*runningLB // by ARN; written by run only
	draining map[*runningLB]bool
	dirty    map[string]bool // ARNs whose health is to be reported

	// Owned by run.
	added map[vpcAddr]bool
	wg    sync.WaitGroup // drains
}

func newLBRunner(a *Agent) *lbRunner {
	n := a.cfg.LBNetwork
	if n == nil {
		n = hostLBNetwork{}
	}
	hosts := a.cfg.HostsFile
	if hosts == "" {
		hosts = "/etc/hosts"
	}
	return &lbRunner{a: a, net: n, hosts: hosts, kick: make(chan struct{}, 1), rep: make(chan struct{}, 1),
		running: map[string]*runningLB{}, draining: map[*runningLB]bool{}, dirty: map[string]bool{}, added: map[vpcAddr]bool{}}
}

func wake(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// update records the load balancers of one poll; run applies them.
func (r *lbRunner) update(specs []agentapi.LoadBalancerSpec) {
	r.mu.Lock()
	r.want, r.known = specs, true
	r.mu.Unlock()
	wake(r.kick)
}

// run applies the newest specs until ctx ends, then stops everything.
func (r *lbRunner) run(ctx context.Context) {
	node := r.a.cfg.Node.NodeID
	r.loadAdded()
	if err := writeHostsBlock(r.hosts, node, nil); err != nil {
		r.a.log.Warn("remove stale load balancer names", "err", err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { r.reportLoop(ctx) })
	defer func() {
		r.shutdown()
		wg.Wait()
	}()
	retry := time.NewTimer(0)
	<-retry.C
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.kick:
		case <-retry.C:
		}
		if !r.sync(ctx) {
			retry.Reset(lbRetry)
		}
	}
}

// sync makes the running load balancers those wanted; it reports whether
// everything succeeded.
func (r *lbRunner) sync(ctx context.Context) bool {
	r.mu.Lock()
	want, known := r.want, r.known
	r.mu.Unlock()
	if !known {
		return true
	}
	ok := true
	listed := map[string]bool{}
	for _, spec := range want {
		listed[spec.ARN] = true
		if err := r.ensure(spec); err != nil {
			r.a.log.Warn("run load balancer", "lb", spec.ARN, "err", err)
			ok = false
		}
	}
	r.mu.Lock()
	var gone []*runningLB
	for arn, rl := range r.running {
		if !listed[arn] {
			gone = append(gone, rl)
			delete(r.running, arn)
			r.draining[rl] = true
		}
	}
	r.mu.Unlock()
	for _, rl := range gone {
		r.a.log.Info("load balancer removed, draining", "lb", rl.spec.ARN)
		_ = rl.eng.Apply(nil) // stop listening; target groups drain
		r.wg.Go(func() { r.drain(ctx, rl) })
	}
	return r.releaseAddresses() && r.writeHosts() && ok
}

// ensure runs spec: its addresses in the VPC, its engine with its config.
func (r *lbRunner) ensure(spec agentapi.LoadBalancerSpec) error {
	r.mu.Lock()
	rl := r.running[spec.ARN]
	r.mu.Unlock()
	if rl != nil && rl.spec.Revision == spec.Revision && rl.spec.Revision != 0 {
		return nil
	}
	srcs, err := lbSources(spec)
	if err != nil {
		return err
	}
	for _, s := range spec.ENIs {
		a := vpcAddr{spec.VpcID, netip.MustParseAddr(s.PrivateIP)}
		if r.added[a] {
			continue
		}
		subnet, gw := netip.MustParsePrefix(s.SubnetCIDR), netip.MustParseAddr(s.Gateway) // checked by lbSources
		if err := r.net.AddVPCAddress(spec.VpcID, s.SubnetID, subnet.Masked(), gw, a.addr); err != nil {
			return err
		}
		r.added[a] = true
		r.saveAdded()
	}
	if rl != nil && rl.vpcID != spec.VpcID {
		// Moved to another VPC (not something ELBv2 does): start afresh.
		r.mu.Lock()
		delete(r.running, spec.ARN)
		r.mu.Unlock()
		_ = rl.eng.Close()
		rl = nil
	}
	fresh := rl == nil
	if fresh {
		rl = r.newRunningLB(spec)
	}
	rl.srcs.Store(&srcs)
	instances := map[netip.Addr]bool{}
	for _, tg := range spec.Proxy.TargetGroups {
		for _, t := range tg.Targets {
			if a, err := netip.ParseAddr(t.Address); err == nil {
				instances[a] = true
			}
		}
	}
	rl.instances.Store(&instances)
	ingress := slices.Clone(spec.Ingress)
	rl.ingress.Store(&ingress)
	proxy := spec.Proxy
	proxy.Addresses = []string{spec.PublicAddress}
	if err := rl.eng.Apply([]lbproxy.LoadBalancer{proxy}); err != nil {
		if fresh {
			_ = rl.eng.Close()
		}
		return err
	}
	rl.spec = spec
	r.mu.Lock()
	r.running[spec.ARN] = rl
	r.mu.Unlock()
	if fresh {
		r.a.log.Info("load balancer started", "lb", spec.ARN, "address", spec.PublicAddress, "dns", spec.DNSName)
		r.healthChanged(spec.ARN) // its initial states
	}
	return nil
}

// lbSources parses the load balancer's ENIs.
func lbSources(spec agentapi.LoadBalancerSpec) ([]lbSource, error) {
	if _, err := netip.ParseAddr(spec.PublicAddress); err != nil {
		return nil, fmt.Errorf("public address %q: %w", spec.PublicAddress, err)
	}
	var out []lbSource
	for _, e := range spec.ENIs {
		p, err := netip.ParsePrefix(e.SubnetCIDR)
		if err != nil {
			return nil, fmt.Errorf("ENI %s: subnet %q: %w", e.ID, e.SubnetCIDR, err)
		}
		if _, err := netip.ParseAddr(e.Gateway); err != nil {
			return nil, fmt.Errorf("ENI %s: gateway %q: %w", e.ID, e.Gateway, err)
		}
		a, err := netip.ParseAddr(e.PrivateIP)
		if err != nil {
			return nil, fmt.Errorf("ENI %s: address %q: %w", e.ID, e.PrivateIP, err)
		}
		out = append(out, lbSource{subnet: p.Masked(), addr: a})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no network interface in VPC %s", spec.VpcID)
	}
	return out, nil
}

func (r *lbRunner) newRunningLB(spec agentapi.LoadBalancerSpec) *runningLB {
	rl := &runningLB{vpcID: spec.VpcID}
	arn := spec.ARN
	rl.eng = lbproxy.New(lbproxy.Options{
		Logger: r.a.log.With("lb", arn),
		Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return nil, fmt.Errorf("target %q: %w", address, err)
			}
			if m := rl.instances.Load(); m != nil && (*m)[ap.Addr()] {
				var d net.Dialer // a container instance: its host ports, from the host
				return d.DialContext(ctx, network, address)
			}
			return r.net.DialInVPCFrom(ctx, rl.vpcID, network, rl.source(ap.Addr()), address)
		},
		Listen: func(ctx context.Context, network, address string) (net.Listener, error) {
			var lc net.ListenConfig
			l, err := lc.Listen(ctx, network, address)
			if err != nil {
				return nil, err
			}
			port := 0
			if ta, ok := l.Addr().(*net.TCPAddr); ok {
				port = ta.Port
			}
			return &ingressListener{Listener: l, rl: rl, port: port}, nil
		},
		OnHealthChange: func(string, []lbproxy.TargetStatus) { r.healthChanged(arn) },
	})
	return rl
}

// source is the address the load balancer dials target from: its ENI in
// the target's subnet, else its first.
func (rl *runningLB) source(target netip.Addr) netip.Addr {
	srcs := *rl.srcs.Load()
	for _, s := range srcs {
		if s.subnet.Contains(target) {
			return s.addr
		}
	}
	return srcs[0].addr
}

// ingressListener resets the connections the load balancer's security
// groups do not admit.
type ingressListener struct {
	net.Listener
	rl   *runningLB
	port int
}

func (l *ingressListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if admitsHost(*l.rl.ingress.Load(), l.port) {
			return c, nil
		}
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // a reset, as for a refused connection
		}
		_ = c.Close()
	}
}

// admitsHost reports whether ingress admits a client on the host (which
// counts as any internet address) on the TCP port.
func admitsHost(ingress []agentapi.FirewallRule, port int) bool {
	for _, r := range ingress {
		switch r.Protocol {
		case "-1":
		case "tcp", "6":
			if r.FromPort != -1 && (port < r.FromPort || port > r.ToPort) {
				continue
			}
		default:
			continue
		}
		for _, c := range r.CIDRs {
			if p, err := netip.ParsePrefix(c); err == nil && p.Bits() == 0 {
				return true
			}
		}
	}
	return false
}

// drain closes a removed load balancer when its targets have drained, or
// at once when the agent stops.
func (r *lbRunner) drain(ctx context.Context, rl *runningLB) {
	var d time.Duration
	for _, tg := range rl.spec.Proxy.TargetGroups {
		d = max(d, tg.DeregistrationDelay)
	}
	t := time.NewTimer(min(d, maxDrain))
	select {
	case <-ctx.Done():
	case <-t.C:
	}
	t.Stop()
	_ = rl.eng.Close()
	r.mu.Lock()
	delete(r.draining, rl)
	r.mu.Unlock()
	wake(r.kick) // release its addresses
}

// releaseAddresses removes the VPC addresses no running or draining load
// balancer uses.
func (r *lbRunner) releaseAddresses() bool {
	used := map[vpcAddr]bool{}
	r.mu.Lock()
	lbs := make([]*runningLB, 0, len(r.running)+len(r.draining))
	for _, rl := range r.running {
		lbs = append(lbs, rl)
	}
	for rl := range r.draining {
		lbs = append(lbs, rl)
	}
	for _, rl := range lbs {
		for _, e := range rl.spec.ENIs {
			if a, err := netip.ParseAddr(e.PrivateIP); err == nil {
				used[vpcAddr{rl.vpcID, a}] = true
			}
		}
	}
	r.mu.Unlock()
	ok := true
	for a := range r.added {
		if used[a] {
			continue
		}
		if err := r.net.RemoveVPCAddress(a.vpc, a.addr); err != nil {
			r.a.log.Warn("release load balancer address", "vpc", a.vpc, "address", a.addr, "err", err)
			ok = false
			continue
		}
		delete(r.added, a)
		r.saveAdded()
	}
	return ok
}

// writeHosts makes the hosts block name the running load balancers.
func (r *lbRunner) writeHosts() bool {
	var lines []string
	r.mu.Lock()
	for _, rl := range r.running {
		if rl.spec.DNSName != "" {
			lines = append(lines, rl.spec.PublicAddress+" "+rl.spec.DNSName)
		}
	}
	r.mu.Unlock()
	slices.Sort(lines)
	if err := writeHostsBlock(r.hosts, r.a.cfg.Node.NodeID, lines); err != nil {
		r.a.log.Warn("load balancer names", "err", err)
		return false
	}
	return true
}

// shutdown closes every load balancer, releases their addresses and
// removes the hosts block. Drains see the agent's context ended.
func (r *lbRunner) shutdown() {
	r.mu.Lock()
	running := r.running
	r.running = map[string]*runningLB{}
	r.mu.Unlock()
	for _, rl := range running {
		_ = rl.eng.Close()
	}
	r.wg.Wait()
	r.releaseAddresses()
	if err := writeHostsBlock(r.hosts, r.a.cfg.Node.NodeID, nil); err != nil {
		r.a.log.Warn("remove load balancer names", "err", err)
	}
}

// healthChanged queues a report of the load balancer's target health.
func (r *lbRunner) healthChanged(arn string) {
	r.mu.Lock()
	r.dirty[arn] = true
	r.mu.Unlock()
	wake(r.rep)
}

// reportLoop sends queued health reports until ctx ends.
func (r *lbRunner) reportLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.rep:
		}
		for {
			r.mu.Lock()
			dirty := r.dirty
			r.dirty = map[string]bool{}
			r.mu.Unlock()
			if len(dirty) == 0 {
				break
			}
			failed := false
			for arn := range dirty {
				r.mu.Lock()
				rl := r.running[arn]
				r.mu.Unlock()
				if rl == nil {
					continue
				}
				rep := agentapi.TargetHealthReport{NodeID: r.a.cfg.Node.NodeID, LoadBalancerARN: arn, TargetGroups: rl.eng.TargetHealth()}
				cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				err := r.a.cfg.Server.TargetHealth(cctx, rep)
				cancel()
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					r.a.log.Warn("report target health", "lb", arn, "err", err)
					failed = true
					r.mu.Lock()
					r.dirty[arn] = true
					r.mu.Unlock()
				}
			}
			if failed && !sleep(ctx, lbRetry) {
				return
			}
		}
	}
}

// addedRecord is one VPC address in the record file.
type addedRecord struct {
	VpcID   string `json:"vpcId"`
	Address string `json:"address"`
}

func (r *lbRunner) recordPath() string {
	if r.a.cfg.DataDir == "" {
		return ""
	}
	return filepath.Join(r.a.cfg.DataDir, "load-balancers.json")
}

// loadAdded adopts the addresses a previous agent recorded.
func (r *lbRunner) loadAdded() {
	path := r.recordPath()
	if path == "" {
		return
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	var recs []addedRecord
	if err == nil {
		err = json.Unmarshal(b, &recs)
	}
	if err != nil {
		r.a.log.Warn("read load balancer addresses", "err", err)
		return
	}
	for _, rec := range recs {
		if a, err := netip.ParseAddr(rec.Address); err == nil {
			r.added[vpcAddr{rec.VpcID, a}] = true
		}
	}
}

// saveAdded records the addresses held.
func (r *lbRunner) saveAdded() {
	path := r.recordPath()
	if path == "" {
		return
	}
	recs := make([]addedRecord, 0, len(r.added))
	for a := range r.added {
		recs = append(recs, addedRecord{VpcID: a.vpc, Address: a.addr.String()})
	}
	slices.SortFunc(recs, func(x, y addedRecord) int {
		return strings.Compare(x.VpcID+" "+x.Address, y.VpcID+" "+y.Address)
	})
	b, _ := json.Marshal(recs)
	err := os.MkdirAll(filepath.Dir(path), 0o700)
	if err == nil {
		tmp := path + ".tmp"
		if err = os.WriteFile(tmp, b, 0o600); err == nil {
			err = os.Rename(tmp, path)
		}
	}
	if err != nil {
		r.a.log.Warn("record load balancer addresses", "err", err)
	}
}
