package agent

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/netns"
)

// The EC2 launch type's network modes besides awsvpc:
//
//   - bridge: the task's namespace has an eth0 on the agent's bridge network
//     (netns/bridge.go: a namespace of its own holding a Linux bridge, the
//     subnet's gateway, an uplink for NAT egress and the metadata address),
//     with an address this agent allocates; each port mapping is published
//     on the host address at its hostPort, or at a port picked from the
//     dynamic range when that is 0, by a userspace forwarder that dials the
//     task from inside the bridge network. The host has no route to the
//     bridge subnet.
//   - host: no namespace; the containers share the host's, and their ports
//     are the host's (hostPort = containerPort, bound on 0.0.0.0 as ECS
//     reports it).
//   - none: a namespace with lo only; no metadata endpoint, no credentials
//     endpoint, as ECS gives none-mode tasks no network.
//
// Address and host ports are allocated under HostSandboxes.mu from what the
// sandbox records of this agent hold, and written to the task's record
// before anything is made: the records are the allocator's state, so a
// restarted agent neither hands them out twice nor changes an adopted
// task's (Create reads the record back).

// HostNetworkConfig configures the bridge and host network modes.
type HostNetworkConfig struct {
	// HostAddress is the instance's address: bridge-mode tasks' ports are
	// published on it (default 127.0.0.1). Agents sharing a machine should
	// each have their own, or their dynamic ports may collide (a collision
	// makes the second agent pick another port, not fail).
	HostAddress netip.Addr
	// BridgeSubnet is the bridge network's IPv4 block (default
	// netns.DefaultBridgeSubnet, docker's 172.17.0.0/16). It exists only
	// inside the bridge network's namespace.
	BridgeSubnet netip.Prefix
	// BridgeNetwork is the bridge network's id (default
	// netns.BridgeNetworkID of the sandbox records' directory: one per
	// agent, the same after a restart).
	BridgeNetwork string
	// DynamicPortFirst and DynamicPortLast bound the host ports picked
	// for port mappings without one (default 49153–65535, the range ECS
	// falls back to on Linux).
	DynamicPortFirst, DynamicPortLast int
}

func (c HostNetworkConfig) withDefaults(dir string) HostNetworkConfig {
	if !c.HostAddress.IsValid() {
		c.HostAddress = netip.MustParseAddr("127.0.0.1")
	}
	if !c.BridgeSubnet.IsValid() {
		c.BridgeSubnet = netns.DefaultBridgeSubnet
	}
	c.BridgeSubnet = c.BridgeSubnet.Masked()
	if c.BridgeNetwork == "" {
		if abs, err := filepath.Abs(dir); err == nil { // the same whatever the working directory
			dir = abs
		}
		c.BridgeNetwork = netns.BridgeNetworkID(dir)
	}
	if c.DynamicPortFirst <= 0 || c.DynamicPortLast > 65535 || c.DynamicPortLast < c.DynamicPortFirst {
		c.DynamicPortFirst, c.DynamicPortLast = 49153, 65535
	}
	return c
}

// createNone makes a namespace with only lo.
func (h *HostSandboxes) createNone(spec agentapi.TaskSpec) (SandboxInfo, error) {
	if err := h.record(spec); err != nil {
		return SandboxInfo{}, err
	}
	sb, err := netns.CreateSandbox(SandboxName(spec.TaskID))
	if err != nil {
		return SandboxInfo{}, fmt.Errorf("network namespace: %w", err)
	}
	cg, err := h.taskCgroup(spec)
	if err != nil {
		return SandboxInfo{}, err
	}
	return SandboxInfo{NetNS: sb.Path(), Cgroup: cg}, nil
}

// createHost makes only the cgroup; the containers use the host's network.
func (h *HostSandboxes) createHost(spec agentapi.TaskSpec) (SandboxInfo, error) {
	var bindings []agentapi.NetworkBinding
	for _, pm := range spec.PortMappings {
		b := binding(pm, "0.0.0.0")
		b.HostPort = pm.ContainerPort // host mode: the container's port is the host's
		bindings = append(bindings, b)
	}
	if err := h.writeRecord(sandboxRecord{TaskID: spec.TaskID, NetworkMode: spec.NetworkMode, Bindings: bindings}); err != nil {
		return SandboxInfo{}, err
	}
	cg, err := h.taskCgroup(spec)
	if err != nil {
		return SandboxInfo{}, err
	}
	return SandboxInfo{Cgroup: cg, Bindings: bindings}, nil
}

func binding(pm agentapi.PortMapping, bindIP string) agentapi.NetworkBinding {
	proto := strings.ToLower(pm.Protocol)
	if proto == "" {
		proto = "tcp"
	}
	return agentapi.NetworkBinding{ContainerName: pm.ContainerName, BindIP: bindIP, ContainerPort: pm.ContainerPort,
		HostPort: pm.HostPort, Protocol: proto}
}

// createBridge puts the task on the bridge network and publishes its ports.
func (h *HostSandboxes) createBridge(spec agentapi.TaskSpec) (SandboxInfo, error) {
	rec, adopted, err := h.bridgeRecord(spec)
	if err != nil {
		return SandboxInfo{}, err
	}
	subnet, err := netip.ParsePrefix(rec.Bridge.Subnet)
	if err != nil {
		return SandboxInfo{}, fmt.Errorf("bridge subnet %q: %w", rec.Bridge.Subnet, err)
	}
	addr, err := netip.ParseAddr(rec.Bridge.Address)
	if err != nil {
		return SandboxInfo{}, fmt.Errorf("bridge address %q: %w", rec.Bridge.Address, err)
	}
	sb, err := netns.CreateSandbox(SandboxName(spec.TaskID))
	if err != nil {
		return SandboxInfo{}, fmt.Errorf("network namespace: %w", err)
	}
	// A failure deletes what a new task got, but not an adopted task's
	// sandbox: its containers are running in it.
	undo := func() {
		if !adopted {
			_ = h.Delete(spec)
		}
	}
	ep := netns.BridgeEndpoint{Network: rec.Bridge.Network, Subnet: subnet, TaskID: spec.TaskID, Address: addr}
	if err := netns.AttachBridge(sb, ep); err != nil {
		undo()
		return SandboxInfo{}, err
	}
	if err := h.publish(spec, &rec, addr, adopted); err != nil {
		undo()
		return SandboxInfo{}, err
	}
	cg, err := h.taskCgroup(spec)
	if err != nil {
		return SandboxInfo{}, err
	}
	return SandboxInfo{NetNS: sb.Path(), Cgroup: cg, Network: rec.Bridge.Network, Address: rec.Bridge.Address, Bindings: rec.Bindings}, nil
}

// bridgeRecord returns the task's record: the one already written (adopted:
// a restarted agent, or a second Create), or a new one with a free address
// and host ports, written before it returns.
func (h *HostSandboxes) bridgeRecord(spec agentapi.TaskSpec) (sandboxRecord, bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if rec, ok := h.readRecord(spec.TaskID); ok && rec.Bridge != nil {
		return rec, true, nil
	}
	recs, err := h.records()
	if err != nil {
		return sandboxRecord{}, false, err
	}
	addr, err := h.freeAddress(recs)
	if err != nil {
		return sandboxRecord{}, false, err
	}
	bindings, err := h.pickPorts(spec, recs, nil)
	if err != nil {
		return sandboxRecord{}, false, err
	}
	rec := sandboxRecord{TaskID: spec.TaskID, NetworkMode: spec.NetworkMode, Bindings: bindings,
		Bridge: &bridgeRecord{Network: h.net.BridgeNetwork, Subnet: h.net.BridgeSubnet.String(), Address: addr.String()}}
	if err := h.writeRecord(rec); err != nil {
		return sandboxRecord{}, false, err
	}
	return rec, false, nil
}

// freeAddress is the lowest address of the bridge subnet after the gateway
// that no recorded task holds (the broadcast address excluded).
func (h *HostSandboxes) freeAddress(recs []sandboxRecord) (netip.Addr, error) {
	used := map[string]bool{}
	for _, r := range recs {
		if r.Bridge != nil && r.Bridge.Network == h.net.BridgeNetwork {
			used[r.Bridge.Address] = true
		}
	}
	subnet := h.net.BridgeSubnet
	for a := netns.BridgeGateway(subnet).Next(); subnet.Contains(a.Next()); a = a.Next() {
		if !used[a.String()] {
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("bridge network %s: no free address left in %s", h.net.BridgeNetwork, subnet)
}

// pickPorts chooses the host ports of the task's port mappings, in their
// order: a mapping's own hostPort, which no other task of this agent may
// hold, or a free port of the dynamic range, starting at a random one so
// that agents sharing an address seldom race for the same port. avoid are
// ports found taken by someone else.
func (h *HostSandboxes) pickPorts(spec agentapi.TaskSpec, recs []sandboxRecord, avoid map[int]bool) ([]agentapi.NetworkBinding, error) {
	taken := map[int]bool{} // by this agent's other tasks
	for _, r := range recs {
		if r.TaskID == spec.TaskID {
			continue
		}
		for _, b := range r.Bindings {
			taken[b.HostPort] = true
		}
	}
	used := maps.Clone(taken)
	for p := range avoid {
		used[p] = true
	}
	bindIP := h.net.HostAddress.String()
	out := make([]agentapi.NetworkBinding, len(spec.PortMappings))
	for i, pm := range spec.PortMappings { // fixed ones first: a dynamic pick must not take one
		out[i] = binding(pm, bindIP)
		if pm.HostPort != 0 {
			if taken[pm.HostPort] {
				return nil, fmt.Errorf("host port %d is taken by another task on this instance", pm.HostPort)
			}
			used[pm.HostPort] = true
		}
	}
	first, last := h.net.DynamicPortFirst, h.net.DynamicPortLast
	span := last - first + 1
	next := rand.IntN(span)
	for i, pm := range spec.PortMappings {
		if pm.HostPort != 0 {
			continue
		}
		found := false
		for n := range span {
			p := first + (next+n)%span
			if !used[p] {
				out[i].HostPort, used[p], found = p, true, true
				next = (next + n + 1) % span
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("no free host port left in %d-%d", first, last)
		}
	}
	return out, nil
}

// publishAttempts bounds how often a new task's dynamic ports are picked
// again when something else on the host holds one.
const publishAttempts = 8

// publish starts the forwarder of the task's host ports. If one of a new
// task's dynamic ports is taken by something else on the host, it picks
// them again and rewrites the record; an adopted task's ports were
// reported already and stay.
func (h *HostSandboxes) publish(spec agentapi.TaskSpec, rec *sandboxRecord, addr netip.Addr, adopted bool) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.forwarders[spec.TaskID]; ok || len(rec.Bindings) == 0 {
		return nil
	}
	avoid := map[int]bool{}
	for attempt := 1; ; attempt++ {
		var ports []netns.Port
		for _, b := range rec.Bindings {
			ports = append(ports, netns.Port{Protocol: b.Protocol, Port: b.ContainerPort, Listen: b.HostPort})
		}
		f, err := netns.StartPublicForwarder(netns.ForwarderConfig{VpcID: rec.Bridge.Network, Public: h.net.HostAddress,
			Private: addr, Ports: ports, Logger: h.log})
		if err == nil {
			h.forwarders[spec.TaskID] = f
			return nil
		}
		dynamic := false
		for i, pm := range spec.PortMappings {
			if pm.HostPort == 0 && i < len(rec.Bindings) {
				avoid[rec.Bindings[i].HostPort] = true
				dynamic = true
			}
		}
		if adopted || !dynamic || attempt >= publishAttempts || !errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("publish host ports on %s: %w", h.net.HostAddress, err)
		}
		recs, rerr := h.records()
		if rerr != nil {
			return rerr
		}
		if rec.Bindings, err = h.pickPorts(spec, recs, avoid); err != nil {
			return err
		}
		if err := h.writeRecord(*rec); err != nil {
			return err
		}
	}
}
