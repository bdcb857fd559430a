package netns

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
)

// Leftover is one piece of berth's network state on the host.
type Leftover struct {
	// Kind is "vpc" (a VPC namespace), "bridge" (an agent's bridge
	// network, a VPC namespace too: see bridge.go), "sandbox" (a task's namespace),
	// "uplink" (the host end of a VPC's uplink) or "nftables" (a table of
	// berth's in the host namespace).
	Kind string
	// Name is the namespace's or interface's name, or the table as
	// "<family> <name>".
	Name string
	// VpcID is the VPC (or bridge network) of a vpc, bridge or uplink.
	VpcID string
}

func (l Leftover) String() string { return l.Kind + " " + l.Name }

// Leftovers lists berth's network state on the host: every namespace under
// RunDir named "berth-…" (VPCs "berth-vpc-…", bridge networks
// "berth-vpc-bridge-…", the rest task sandboxes),
// every uplink and table ip berth-egress.
func Leftovers() ([]Leftover, error) {
	var out []Leftover
	entries, err := os.ReadDir(RunDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("leftovers: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		switch {
		case strings.HasPrefix(name, VPCNamespacePrefix):
			id := strings.TrimPrefix(name, VPCNamespacePrefix)
			kind := "vpc"
			if IsBridgeNetwork(id) {
				kind = "bridge"
			}
			out = append(out, Leftover{Kind: kind, Name: name, VpcID: id})
		case strings.HasPrefix(name, "berth-"):
			out = append(out, Leftover{Kind: "sandbox", Name: name})
		}
	}
	links, err := dump(netlink.LinkList)
	if err != nil {
		return nil, fmt.Errorf("leftovers: list links: %w", err)
	}
	for _, l := range links {
		a := l.Attrs()
		if strings.HasPrefix(a.Name, uplinkHostPrefix) && strings.HasPrefix(a.Alias, aliasUplink) && l.Type() == "veth" {
			out = append(out, Leftover{Kind: "uplink", Name: a.Name, VpcID: strings.TrimPrefix(a.Alias, aliasUplink)})
		}
	}
	c, err := nftConnAt(-1)
	if err != nil {
		return nil, fmt.Errorf("leftovers: %w", err)
	}
	defer closeNFT(c)
	ok, err := tableExists(c, nftables.TableFamilyIPv4, HostEgressTable)
	if err != nil {
		return nil, fmt.Errorf("leftovers: %w", err)
	}
	if ok {
		out = append(out, Leftover{Kind: "nftables", Name: "ip " + HostEgressTable})
	}
	return out, nil
}

// CleanupAll removes everything Leftovers lists: what a crashed agent left
// behind. It must run before the agent starts tasks, and removes the
// sandboxes of tasks still running too (their network is cut).
func CleanupAll() error { return Cleanup(nil) }

// Cleanup removes the leftovers that keep (nil: none) does not keep: VPCs
// and bridge networks first (under their locks, as DetachENI deletes them), then uplinks whose
// namespace is gone, sandboxes, and the host egress table (restoring
// ip_forward, as DisableHostEgress).
func Cleanup(keep func(Leftover) bool) error {
	all, err := Leftovers()
	if err != nil {
		return err
	}
	order := map[string]int{"vpc": 0, "bridge": 0, "uplink": 1, "sandbox": 2, "nftables": 3}
	sort.SliceStable(all, func(i, j int) bool { return order[all[i].Kind] < order[all[j].Kind] })
	var errs []error
	for _, l := range all {
		if keep != nil && keep(l) {
			continue
		}
		var err error
		switch l.Kind {
		case "vpc", "bridge":
			err = removeVPC(l.VpcID)
		case "uplink":
			err = deleteHostUplink(l.VpcID)
		case "sandbox":
			err = DeleteSandbox(l.Name)
		case "nftables":
			err = DisableHostEgress()
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", l, err))
		}
	}
	return errors.Join(errs...)
}

// removeVPC deletes a VPC namespace whatever ENIs it still has (their
// sandboxes lose eth0).
func removeVPC(vpcID string) error {
	if err := validID("VPC", vpcID); err != nil {
		return err
	}
	lk, err := lockVPC(vpcID)
	if err != nil {
		return err
	}
	err = teardownVPC(vpcID)
	lk.release(err == nil)
	return err
}

// PruneVPCs deletes every VPC namespace on the host that has no ENI and no
// VPC address (AddVPCAddress) left,
// e.g. because its tasks' sandboxes were deleted while no agent was
// running, each under its lock, as DetachENI of its last ENI does. A VPC
// namespace some process is attaching to is never empty under the lock.
func PruneVPCs() error {
	entries, err := os.ReadDir(RunDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("prune VPCs: %w", err)
	}
	var errs []error
	for _, e := range entries {
		if id, ok := strings.CutPrefix(e.Name(), VPCNamespacePrefix); ok && validID("VPC", id) == nil {
			if err := pruneVPC(id); err != nil {
				errs = append(errs, fmt.Errorf("prune %s: %w", id, err))
			}
		}
	}
	return errors.Join(errs...)
}

// pruneVPC deletes the VPC's namespace if it has no ENI and no address.
func pruneVPC(vpcID string) error {
	lk, err := lockVPC(vpcID)
	if err != nil {
		return err
	}
	v, err := openVPC(vpcID)
	if errors.Is(err, os.ErrNotExist) {
		err = deleteHostUplink(vpcID)
		lk.release(err == nil)
		return err
	}
	if err != nil {
		lk.release(false)
		return err
	}
	n, err := v.users()
	v.close()
	if err != nil || n > 0 {
		lk.release(false)
		return err
	}
	err = teardownVPC(vpcID)
	lk.release(err == nil)
	return err
}
