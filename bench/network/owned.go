package network

import (
	"errors"
	"fmt"
	"sync"

	"github.com/berthdev/berth/internal/netns"
	"github.com/berthdev/berth/internal/runtime"
)

// owned records everything the benchmark makes on the host, before it makes
// it, so that cleanup removes exactly that, whatever else runs here: one
// VPC (its namespace and uplink), sandboxes, ENIs and one cgroup parent.
type owned struct {
	vpcID    string
	cgParent string // every task cgroup of the benchmark lives below it

	mu        sync.Mutex
	sandboxes map[string]bool // made and not yet deleted
	enis      map[string]bool // attached (or being attached) and not yet detached
	ever      map[string]bool // every sandbox name ever used, for the final check
}

func newOwned() (*owned, error) {
	vpc, err := randHex(17)
	if err != nil {
		return nil, err
	}
	cg, err := randHex(8)
	if err != nil {
		return nil, err
	}
	return &owned{vpcID: "vpc-" + vpc, cgParent: "/berth-bench-network-" + cg,
		sandboxes: map[string]bool{}, enis: map[string]bool{}, ever: map[string]bool{}}, nil
}

// newSandboxName returns a fresh sandbox name, recorded as the
// benchmark's.
func (o *owned) newSandboxName() (string, error) {
	s, err := randHex(12)
	if err != nil {
		return "", err
	}
	name := "berth-bench-" + s
	o.mu.Lock()
	o.sandboxes[name], o.ever[name] = true, true
	o.mu.Unlock()
	return name, nil
}

// newENIID returns a fresh ENI id, recorded as the benchmark's.
func (o *owned) newENIID() (string, error) {
	s, err := randHex(17)
	if err != nil {
		return "", err
	}
	id := "eni-" + s
	o.mu.Lock()
	o.enis[id] = true
	o.mu.Unlock()
	return id, nil
}

func (o *owned) sandboxDeleted(name string) {
	o.mu.Lock()
	delete(o.sandboxes, name)
	o.mu.Unlock()
}

func (o *owned) eniDetached(id string) {
	o.mu.Lock()
	delete(o.enis, id)
	o.mu.Unlock()
}

// mine reports whether a leftover is the benchmark's.
func (o *owned) mine(l netns.Leftover) bool {
	switch l.Kind {
	case "vpc", "uplink":
		return l.VpcID == o.vpcID
	case "sandbox":
		o.mu.Lock()
		defer o.mu.Unlock()
		return o.ever[l.Name]
	}
	return false
}

// cleanup removes what the benchmark made and is still there: its ENIs
// (the last one takes the VPC namespace with it), its sandboxes, then
// anything of its VPC or sandboxes a failure left behind (netns.Cleanup
// restricted to them), and the cgroup parent; then it checks that none of
// it is left.
func (o *owned) cleanup() error {
	o.mu.Lock()
	var enis, sandboxes []string
	for id := range o.enis {
		enis = append(enis, id)
	}
	for name := range o.sandboxes {
		sandboxes = append(sandboxes, name)
	}
	o.mu.Unlock()
	var errs []error
	for _, id := range enis {
		if err := netns.DetachENI(o.vpcID, id); err != nil {
			errs = append(errs, err)
		} else {
			o.eniDetached(id)
		}
	}
	for _, name := range sandboxes {
		if err := netns.DeleteSandbox(name); err != nil {
			errs = append(errs, err)
		} else {
			o.sandboxDeleted(name)
		}
	}
	if err := netns.Cleanup(func(l netns.Leftover) bool { return !o.mine(l) }); err != nil {
		errs = append(errs, fmt.Errorf("remove the benchmark's leftovers: %w", err))
	}
	if err := runtime.DeleteTaskCgroup(o.cgParent); err != nil {
		errs = append(errs, err)
	}
	left, err := netns.Leftovers()
	if err != nil {
		errs = append(errs, err)
	}
	for _, l := range left {
		if o.mine(l) {
			errs = append(errs, fmt.Errorf("still there after cleanup: %s", l))
		}
	}
	return errors.Join(errs...)
}
