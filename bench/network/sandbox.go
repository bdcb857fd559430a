package network

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/berthdev/berth/internal/netns"
	"github.com/berthdev/berth/internal/runtime"
)

// The benchmark's VPC: 10.199.0.0/16 (VPCs are namespaces of their own, so
// it may overlap anything), subnets 10.199.<n>.0/24 with the gateway at .1.
var vpcCIDR = netip.MustParsePrefix("10.199.0.0/16")

// Task size of the cgroups, as the launches' task definition: 256 CPU
// units, 512 MiB.
const (
	taskCPU       = 256
	taskMemoryMiB = 512
)

type subnet struct {
	id     string
	prefix netip.Prefix
	gw     netip.Addr
}

// task is a long-lived sandbox with an ENI and the default group's policy.
type task struct {
	sb  *netns.Sandbox
	cfg netns.ENIConfig
}

// benchVPC is the benchmark's VPC on this host: subnets 1 and 2, and three
// long-lived tasks that keep its namespace there (every timed ENI is a
// later task of the VPC, as most are) and that the streams run between:
// tasks[0] and tasks[2] in subnet 1, tasks[1] in subnet 2.
type benchVPC struct {
	o       *owned
	id      string
	subnets map[byte]subnet
	tasks   []task
}

func newBenchVPC(o *owned) (*benchVPC, error) {
	v := &benchVPC{o: o, id: o.vpcID, subnets: map[byte]subnet{}}
	for _, n := range []byte{1, 2} {
		s, err := randHex(17)
		if err != nil {
			return nil, err
		}
		p := netip.PrefixFrom(v.host(n, 0), 24)
		v.subnets[n] = subnet{id: "subnet-" + s, prefix: p, gw: p.Addr().Next()}
	}
	for _, at := range []struct{ subnet, host byte }{{1, 10}, {2, 10}, {1, 11}} {
		k, err := v.newTask(at.subnet, at.host)
		if err != nil {
			return nil, err
		}
		v.tasks = append(v.tasks, k)
	}
	for _, k := range v.tasks {
		if err := netns.ApplyFirewall(k.sb, v.policy(k.cfg.Address)); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// host is 10.199.<subnet>.<h>.
func (v *benchVPC) host(subnet, h byte) netip.Addr {
	a := vpcCIDR.Addr().As4()
	a[2], a[3] = subnet, h
	return netip.AddrFrom4(a)
}

// policy is the firewall of an ENI at self in the VPC's default security
// group, as the control plane resolves it: all traffic in from the group's
// members (the long-lived tasks and self, each a /32), all traffic out.
func (v *benchVPC) policy(self netip.Addr) netns.Firewall {
	members := []netip.Prefix{netip.PrefixFrom(self, 32)}
	for _, k := range v.tasks {
		if k.cfg.Address != self {
			members = append(members, netip.PrefixFrom(k.cfg.Address, 32))
		}
	}
	return netns.Firewall{
		Ingress: []netns.Rule{{Protocol: "-1", FromPort: -1, ToPort: -1, CIDRs: members}},
		Egress:  []netns.Rule{{Protocol: "-1", FromPort: -1, ToPort: -1, CIDRs: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}}},
	}
}

// eniConfig is a fresh ENI at 10.199.<subnet>.<h>.
func (v *benchVPC) eniConfig(subnet, h byte) (netns.ENIConfig, error) {
	id, err := v.o.newENIID()
	if err != nil {
		return netns.ENIConfig{}, err
	}
	s := v.subnets[subnet]
	return netns.ENIConfig{ID: id, VpcID: v.id, SubnetID: s.id, Subnet: s.prefix, Gateway: s.gw, Address: v.host(subnet, h)}, nil
}

// newTask makes a long-lived sandbox with an ENI (its firewall comes later).
func (v *benchVPC) newTask(subnet, h byte) (task, error) {
	name, err := v.o.newSandboxName()
	if err != nil {
		return task{}, err
	}
	sb, err := netns.CreateSandbox(name)
	if err != nil {
		return task{}, err
	}
	cfg, err := v.eniConfig(subnet, h)
	if err != nil {
		return task{}, err
	}
	if err := netns.AttachENI(sb, cfg); err != nil {
		return task{}, err
	}
	return task{sb: sb, cfg: cfg}, nil
}

// sandboxSample is one timed sandbox. Without networking, eni and firewall
// are zero.
type sandboxSample struct {
	total    time.Duration
	sandbox  time.Duration // netns.CreateSandbox: namespace, lo up
	eni      time.Duration // netns.AttachENI: base firewall, veth pair on the bridge, address, routes, both ends up
	firewall time.Duration // netns.ApplyFirewall: the default group's policy
	cgroup   time.Duration // runtime.CreateTaskCgroup
	// teardown is the untimed-in-total removal, as the agent's at the task's
	// end: DetachENI, DeleteSandbox, DeleteTaskCgroup.
	teardown time.Duration
}

// withNetwork times what the agent's sandbox step does for an awsvpc task
// (agent.HostSandboxes.Create): the namespace, the ENI in subnet 2, the
// firewall, the task cgroup; then removes it all and pauses.
func (v *benchVPC) withNetwork(i int, pause time.Duration) (sandboxSample, error) {
	var s sandboxSample
	name, err := v.o.newSandboxName()
	if err != nil {
		return s, err
	}
	cfg, err := v.eniConfig(2, byte(20+i%200))
	if err != nil {
		return s, err
	}
	fw := v.policy(cfg.Address)
	cg := v.o.cgParent + "/" + name

	t0 := time.Now()
	sb, err := netns.CreateSandbox(name)
	if err != nil {
		return s, err
	}
	t1 := time.Now()
	if err := netns.AttachENI(sb, cfg); err != nil {
		return s, err
	}
	t2 := time.Now()
	if err := netns.ApplyFirewall(sb, fw); err != nil {
		return s, err
	}
	t3 := time.Now()
	if err := runtime.CreateTaskCgroup(cg, taskCPU, taskMemoryMiB); err != nil {
		return s, err
	}
	t4 := time.Now()
	s = sandboxSample{total: t4.Sub(t0), sandbox: t1.Sub(t0), eni: t2.Sub(t1), firewall: t3.Sub(t2), cgroup: t4.Sub(t3)}

	if err := netns.DetachENI(cfg.VpcID, cfg.ID); err != nil {
		return s, err
	}
	v.o.eniDetached(cfg.ID)
	if err := v.remove(name, cg); err != nil {
		return s, err
	}
	s.teardown = time.Since(t4)
	time.Sleep(pause)
	return s, nil
}

// withoutNetwork times the same sandbox without networking: the namespace
// (with lo up) and the task cgroup; then removes them and pauses.
func (v *benchVPC) withoutNetwork(_ int, pause time.Duration) (sandboxSample, error) {
	var s sandboxSample
	name, err := v.o.newSandboxName()
	if err != nil {
		return s, err
	}
	cg := v.o.cgParent + "/" + name

	t0 := time.Now()
	if _, err := netns.CreateSandbox(name); err != nil {
		return s, err
	}
	t1 := time.Now()
	if err := runtime.CreateTaskCgroup(cg, taskCPU, taskMemoryMiB); err != nil {
		return s, err
	}
	t2 := time.Now()
	s = sandboxSample{total: t2.Sub(t0), sandbox: t1.Sub(t0), cgroup: t2.Sub(t1)}

	if err := v.remove(name, cg); err != nil {
		return s, err
	}
	s.teardown = time.Since(t2)
	time.Sleep(pause)
	return s, nil
}

// remove deletes a timed sandbox and its cgroup.
func (v *benchVPC) remove(name, cg string) error {
	if err := netns.DeleteSandbox(name); err != nil {
		return err
	}
	v.o.sandboxDeleted(name)
	if err := runtime.DeleteTaskCgroup(cg); err != nil {
		return fmt.Errorf("sandbox %s: %w", name, err)
	}
	return nil
}
