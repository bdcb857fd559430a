package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/netns"
	"github.com/berthdev/berth/internal/runtime"
)

// HostSandboxes makes task sandboxes on this host: a named network namespace
// ("berth-<task id>") holding the task's ENI and its firewall, a forwarder
// from the ENI's public IP if it has one, and a cgroup ("/berth/<task id>")
// holding the task's CPU quota and memory limit, under which each container
// gets its own cgroup. EC2 tasks may use other network modes instead of
// awsvpc's ENI (netmodes.go): bridge (the namespace is on the agent's
// bridge network, its ports published on the host address), host (no
// namespace) and none (a namespace with lo only).
//
// Each sandbox is recorded in a file under the agent's data dir before any of
// it is made and forgotten after all of it is gone, so that Sweep can remove
// what a crash left behind without touching other agents' sandboxes on the
// same host. A bridge-mode task's record also holds its address and host
// ports, so a restarted agent adopts it with the same ones.
type HostSandboxes struct {
	log *slog.Logger
	dir string
	net HostNetworkConfig

	mu         sync.Mutex                        // also orders address and port allocation
	forwarders map[string]*netns.PublicForwarder // by task id
}

// NewHostSandboxes returns the sandboxes of this host, recorded under dir,
// with the default HostNetworkConfig.
func NewHostSandboxes(dir string, log *slog.Logger) *HostSandboxes {
	return NewHostSandboxesWith(dir, log, HostNetworkConfig{})
}

// NewHostSandboxesWith is NewHostSandboxes with the bridge and host network
// modes configured (zero fields take their defaults).
func NewHostSandboxesWith(dir string, log *slog.Logger, cfg HostNetworkConfig) *HostSandboxes {
	if log == nil {
		log = slog.Default()
	}
	return &HostSandboxes{log: log, dir: dir, net: cfg.withDefaults(dir), forwarders: map[string]*netns.PublicForwarder{}}
}

// Close stops the forwarders (public IPs, host ports) of this process,
// leaving sandboxes and records in place: the agent is going away, and the
// next one adopts its tasks and forwards again.
func (h *HostSandboxes) Close() error {
	h.mu.Lock()
	fs := h.forwarders
	h.forwarders = map[string]*netns.PublicForwarder{}
	h.mu.Unlock()
	var errs []error
	for _, f := range fs {
		errs = append(errs, f.Close())
	}
	return errors.Join(errs...)
}

// sandboxRecord is what Sweep needs to remove a sandbox, and what a
// restarted agent needs to adopt a bridge-mode task as it was.
type sandboxRecord struct {
	TaskID      string        `json:"taskId"`
	ENI         *agentapi.ENI `json:"eni,omitempty"`
	NetworkMode string        `json:"networkMode,omitempty"`
	// Bridge is a bridge-mode task's place on the bridge network.
	Bridge *bridgeRecord `json:"bridge,omitempty"`
	// Bindings are the host ports published (bridge and host modes).
	Bindings []agentapi.NetworkBinding `json:"bindings,omitempty"`
}

type bridgeRecord struct {
	Network string `json:"network"`
	Subnet  string `json:"subnet"`
	Address string `json:"address"`
}

func (h *HostSandboxes) recordPath(taskID string) string {
	return filepath.Join(h.dir, taskID+".json")
}

func (h *HostSandboxes) record(spec agentapi.TaskSpec) error {
	return h.writeRecord(sandboxRecord{TaskID: spec.TaskID, ENI: spec.ENI, NetworkMode: spec.NetworkMode})
}

func (h *HostSandboxes) writeRecord(rec sandboxRecord) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(h.dir, 0o700); err != nil {
		return fmt.Errorf("record sandbox: %w", err)
	}
	// Write and rename: a record is read back on restart (its address and
	// ports), so a crash must not leave half of one.
	tmp := h.recordPath(rec.TaskID) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("record sandbox: %w", err)
	}
	if err := os.Rename(tmp, h.recordPath(rec.TaskID)); err != nil {
		return fmt.Errorf("record sandbox: %w", err)
	}
	return nil
}

// readRecord reads a task's record; ok is false if there is none (or it
// cannot be read).
func (h *HostSandboxes) readRecord(taskID string) (sandboxRecord, bool) {
	var rec sandboxRecord
	b, err := os.ReadFile(h.recordPath(taskID))
	if err != nil || json.Unmarshal(b, &rec) != nil || rec.TaskID != taskID {
		return sandboxRecord{}, false
	}
	return rec, true
}

// records reads every record (for allocation: what is in use).
func (h *HostSandboxes) records() ([]sandboxRecord, error) {
	entries, err := os.ReadDir(h.dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read sandbox records: %w", err)
	}
	var out []sandboxRecord
	for _, e := range entries {
		if id, ok := strings.CutSuffix(e.Name(), ".json"); ok {
			if rec, ok := h.readRecord(id); ok {
				out = append(out, rec)
			}
		}
	}
	return out, nil
}

// Sweep removes every recorded sandbox whose task keep does not keep, then
// every VPC namespace (and bridge network) on the host left without
// interfaces.
func (h *HostSandboxes) Sweep(keep func(taskID string) bool) error {
	entries, err := os.ReadDir(h.dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("sweep sandboxes: %w", err)
	}
	var errs []error
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || keep(id) {
			continue
		}
		rec, ok := h.readRecord(id)
		if !ok {
			rec = sandboxRecord{TaskID: id}
		}
		h.log.Info("removing leftover sandbox", "task", id)
		errs = append(errs, h.Delete(agentapi.TaskSpec{TaskID: id, ENI: rec.ENI, NetworkMode: rec.NetworkMode}))
	}
	errs = append(errs, netns.PruneVPCs())
	return errors.Join(errs...)
}

// SandboxName is the network namespace name of a task.
func SandboxName(taskID string) string { return "berth-" + taskID }

// CgroupPath is the cgroup of a task.
func CgroupPath(taskID string) string { return "/berth/" + taskID }

// Create makes (or finds, after a restart) a task's sandbox.
func (h *HostSandboxes) Create(spec agentapi.TaskSpec, fw *agentapi.Firewall) (SandboxInfo, error) {
	switch spec.NetworkMode {
	case agentapi.NetworkModeBridge:
		return h.createBridge(spec)
	case agentapi.NetworkModeHost:
		return h.createHost(spec)
	case agentapi.NetworkModeNone:
		return h.createNone(spec)
	case "", agentapi.NetworkModeAwsvpc:
	default:
		return SandboxInfo{}, fmt.Errorf("network mode %q is not supported", spec.NetworkMode)
	}
	if err := h.record(spec); err != nil {
		return SandboxInfo{}, err
	}
	sb, err := netns.CreateSandbox(SandboxName(spec.TaskID))
	if err != nil {
		return SandboxInfo{}, fmt.Errorf("network namespace: %w", err)
	}
	if err := h.attach(sb, spec, fw); err != nil {
		_ = h.Delete(spec)
		return SandboxInfo{}, err
	}
	cg, err := h.taskCgroup(spec)
	if err != nil {
		return SandboxInfo{}, err
	}
	return SandboxInfo{NetNS: sb.Path(), Cgroup: cg}, nil
}

// taskCgroup makes the task's cgroup; on failure it deletes the sandbox.
func (h *HostSandboxes) taskCgroup(spec agentapi.TaskSpec) (string, error) {
	if err := runtime.CreateTaskCgroup(CgroupPath(spec.TaskID), spec.CPU, spec.MemoryMiB); err != nil {
		_ = h.Delete(spec)
		return "", fmt.Errorf("task cgroup: %w", err)
	}
	return CgroupPath(spec.TaskID), nil
}

// attach gives the sandbox the task's ENI, its firewall and its public IP.
func (h *HostSandboxes) attach(sb *netns.Sandbox, spec agentapi.TaskSpec, fw *agentapi.Firewall) error {
	if spec.ENI == nil {
		return nil
	}
	cfg, err := eniConfig(spec.ENI)
	if err != nil {
		return err
	}
	if err := netns.AttachENI(sb, cfg); err != nil {
		return fmt.Errorf("attach network interface %s: %w", spec.ENI.ID, err)
	}
	if fw != nil {
		if err := h.applyFirewall(sb, *fw); err != nil {
			return err
		}
	}
	if spec.ENI.PublicIP != "" {
		return h.forwardPublicIP(spec)
	}
	return nil
}

// ApplyFirewall replaces the security-group policy of the task's ENI.
func (h *HostSandboxes) ApplyFirewall(spec agentapi.TaskSpec, fw agentapi.Firewall) error {
	sb, err := netns.OpenSandbox(SandboxName(spec.TaskID))
	if err != nil {
		return fmt.Errorf("firewall of %s: %w", spec.TaskID, err)
	}
	return h.applyFirewall(sb, fw)
}

func (h *HostSandboxes) applyFirewall(sb *netns.Sandbox, fw agentapi.Firewall) error {
	rules, err := firewallRules(fw)
	if err != nil {
		return err
	}
	if err := netns.ApplyFirewall(sb, rules); err != nil {
		return fmt.Errorf("apply firewall of %s: %w", fw.ENIID, err)
	}
	return nil
}

// forwardPublicIP starts forwarding the task's public IP to its ports.
func (h *HostSandboxes) forwardPublicIP(spec agentapi.TaskSpec) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.forwarders[spec.TaskID]; ok {
		return nil
	}
	pub, err := netip.ParseAddr(spec.ENI.PublicIP)
	if err != nil {
		return fmt.Errorf("public IP %q: %w", spec.ENI.PublicIP, err)
	}
	priv, err := netip.ParseAddr(spec.ENI.PrivateIP)
	if err != nil {
		return fmt.Errorf("private IP %q: %w", spec.ENI.PrivateIP, err)
	}
	var ports []netns.Port
	for _, pm := range spec.PortMappings {
		ports = append(ports, netns.Port{Protocol: pm.Protocol, Port: pm.ContainerPort})
	}
	f, err := netns.StartPublicForwarder(netns.ForwarderConfig{VpcID: spec.ENI.VpcID, Public: pub, Private: priv, Ports: ports, Logger: h.log})
	if err != nil {
		return fmt.Errorf("forward public IP %s: %w", pub, err)
	}
	h.forwarders[spec.TaskID] = f
	return nil
}

// Delete removes a task's sandbox; absent parts are not an error.
func (h *HostSandboxes) Delete(spec agentapi.TaskSpec) error {
	h.mu.Lock()
	f := h.forwarders[spec.TaskID]
	delete(h.forwarders, spec.TaskID)
	h.mu.Unlock()
	var errs []error
	if f != nil {
		errs = append(errs, f.Close())
	}
	if spec.ENI != nil {
		errs = append(errs, netns.DetachENI(spec.ENI.VpcID, spec.ENI.ID))
	}
	if rec, ok := h.readRecord(spec.TaskID); ok && rec.Bridge != nil {
		// DeleteSandbox would find the endpoint by eth0's alias too, but
		// not if the sandbox went first.
		errs = append(errs, netns.DetachBridge(rec.Bridge.Network, spec.TaskID))
	}
	errs = append(errs, netns.DeleteSandbox(SandboxName(spec.TaskID)), runtime.DeleteTaskCgroup(CgroupPath(spec.TaskID)))
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := os.Remove(h.recordPath(spec.TaskID)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("forget sandbox: %w", err)
	}
	return nil
}

// eniConfig maps the control plane's ENI onto the data plane's.
func eniConfig(e *agentapi.ENI) (netns.ENIConfig, error) {
	subnet, err := netip.ParsePrefix(e.SubnetCIDR)
	if err != nil {
		return netns.ENIConfig{}, fmt.Errorf("ENI %s: subnet %q: %w", e.ID, e.SubnetCIDR, err)
	}
	gw, err := netip.ParseAddr(e.Gateway)
	if err != nil {
		return netns.ENIConfig{}, fmt.Errorf("ENI %s: gateway %q: %w", e.ID, e.Gateway, err)
	}
	addr, err := netip.ParseAddr(e.PrivateIP)
	if err != nil {
		return netns.ENIConfig{}, fmt.Errorf("ENI %s: address %q: %w", e.ID, e.PrivateIP, err)
	}
	mac, err := net.ParseMAC(e.MAC)
	if err != nil {
		return netns.ENIConfig{}, fmt.Errorf("ENI %s: MAC %q: %w", e.ID, e.MAC, err)
	}
	return netns.ENIConfig{ID: e.ID, VpcID: e.VpcID, SubnetID: e.SubnetID, Subnet: subnet, Gateway: gw,
		Address: addr, MAC: mac, NATEgress: e.NATEgress}, nil
}

// firewallRules maps the control plane's firewall onto the data plane's.
func firewallRules(fw agentapi.Firewall) (netns.Firewall, error) {
	conv := func(in []agentapi.FirewallRule) ([]netns.Rule, error) {
		out := make([]netns.Rule, 0, len(in))
		for _, r := range in {
			nr := netns.Rule{Protocol: r.Protocol, FromPort: r.FromPort, ToPort: r.ToPort}
			for _, c := range r.CIDRs {
				p, err := netip.ParsePrefix(c)
				if err != nil {
					return nil, fmt.Errorf("firewall of %s: CIDR %q: %w", fw.ENIID, c, err)
				}
				nr.CIDRs = append(nr.CIDRs, p)
			}
			out = append(out, nr)
		}
		return out, nil
	}
	in, err := conv(fw.Ingress)
	if err != nil {
		return netns.Firewall{}, err
	}
	eg, err := conv(fw.Egress)
	if err != nil {
		return netns.Firewall{}, err
	}
	return netns.Firewall{Ingress: in, Egress: eg}, nil
}
