package agent

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/agentapi"
)

// fwSandboxes records the policies applied to each ENI.
type fwSandboxes struct {
	fakeSandboxes
	mu      sync.Mutex
	applied map[string][]int64
	last    map[string]agentapi.Firewall
}

func (s *fwSandboxes) ApplyFirewall(spec agentapi.TaskSpec, fw agentapi.Firewall) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.applied[spec.ENI.ID] = append(s.applied[spec.ENI.ID], fw.Revision)
	if s.last == nil {
		s.last = map[string]agentapi.Firewall{}
	}
	s.last[spec.ENI.ID] = fw
	return nil
}

func (s *fwSandboxes) lastApplied(eni string) agentapi.Firewall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last[eni]
}

func (s *fwSandboxes) revisions(eni string) []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int64(nil), s.applied[eni]...)
}

// runFirewalls returns an agent whose firewall worker runs until the test
// ends, and the sandboxes that record what it applies.
func runFirewalls(t *testing.T) (*Agent, *fwSandboxes) {
	t.Helper()
	sb := &fwSandboxes{applied: map[string][]int64{}}
	a := New(Config{Node: agentapi.RegisterRequest{NodeID: "n"}, DataDir: t.TempDir(), Sandboxes: sb,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.fw.run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return a, sb
}

func TestFirewallsFollowTheNewestPolicy(t *testing.T) {
	a, sb := runFirewalls(t)

	spec := agentapi.TaskSpec{TaskID: "t1", ENI: &agentapi.ENI{ID: "eni-1"}}
	fw := func(rev int64) agentapi.Firewall { return agentapi.Firewall{ENIID: "eni-1", Revision: rev} }
	waitFor := func(want []int64) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if got := sb.revisions("eni-1"); len(got) == len(want) {
				for i := range want {
					if got[i] != want[i] {
						t.Fatalf("applied %v, want %v", got, want)
					}
				}
				return
			}
		}
		t.Fatalf("applied %v, want %v", sb.revisions("eni-1"), want)
	}

	// Before the sandbox exists, a policy is only remembered: Create gets it.
	a.fw.update([]agentapi.Firewall{fw(5)}, nil)
	if got := a.fw.latest(spec); got == nil || got.Revision != 5 {
		t.Fatalf("latest = %+v, want revision 5", got)
	}
	a.fw.attached(spec, a.fw.latest(spec))
	// An older or equal policy changes nothing; a newer one is applied.
	a.fw.update([]agentapi.Firewall{fw(4)}, nil)
	a.fw.update([]agentapi.Firewall{fw(7)}, nil)
	waitFor([]int64{7})
	// A policy that arrived while the sandbox was being made is applied when
	// it is attached.
	spec2 := agentapi.TaskSpec{TaskID: "t2", ENI: &agentapi.ENI{ID: "eni-2"}}
	used := a.fw.latest(spec2) // nil: none yet
	a.fw.update([]agentapi.Firewall{fw(7), {ENIID: "eni-2", Revision: 3}}, nil)
	a.fw.attached(spec2, used)
	for deadline := time.Now().Add(5 * time.Second); len(sb.revisions("eni-2")) == 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if got := sb.revisions("eni-2"); len(got) != 1 || got[0] != 3 {
		t.Fatalf("eni-2 applied %v, want [3]", got)
	}
	// After detach nothing more is applied.
	a.fw.detached(spec)
	a.fw.update([]agentapi.Firewall{fw(9), {ENIID: "eni-2", Revision: 3}}, nil)
	time.Sleep(50 * time.Millisecond)
	waitFor([]int64{7})
}

// TestFirewallsFollowAddressSets: a change of a set re-applies the policy
// of each ENI that names it, with the set's addresses, and of no other.
func TestFirewallsFollowAddressSets(t *testing.T) {
	a, sb := runFirewalls(t)

	const web = "123456789012/us-east-1/sg-web"
	named := agentapi.Firewall{ENIID: "eni-1", Revision: 10, Ingress: []agentapi.FirewallRule{
		{Protocol: "tcp", FromPort: 80, ToPort: 80, CIDRs: []string{"192.168.0.0/16"}, Sets: []string{web}}}}
	plain := agentapi.Firewall{ENIID: "eni-2", Revision: 10, Ingress: []agentapi.FirewallRule{
		{Protocol: "tcp", FromPort: 22, ToPort: 22, CIDRs: []string{"10.0.0.0/8"}}}}
	set := func(rev int64, addrs ...string) []agentapi.AddressSet {
		return []agentapi.AddressSet{{Name: web, Revision: rev, Addresses: addrs}}
	}
	fws := []agentapi.Firewall{named, plain}
	a.fw.update(fws, set(12, "10.0.0.4"))
	for _, id := range []string{"eni-1", "eni-2"} {
		spec := agentapi.TaskSpec{TaskID: id, ENI: &agentapi.ENI{ID: id}}
		a.fw.attached(spec, a.fw.latest(spec))
	}
	if got := a.fw.latest(agentapi.TaskSpec{ENI: &agentapi.ENI{ID: "eni-1"}}); got.Revision != 12 ||
		!slices.Equal(got.Ingress[0].CIDRs, []string{"10.0.0.4/32", "192.168.0.0/16"}) {
		t.Fatalf("resolved policy %+v", got)
	}
	a.fw.update(fws, set(15, "10.0.0.4", "10.0.0.9"))
	deadline := time.Now().Add(5 * time.Second)
	for len(sb.revisions("eni-1")) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := sb.lastApplied("eni-1"); got.Revision != 15 || !slices.Equal(got.Ingress[0].CIDRs, []string{"10.0.0.4/32", "10.0.0.9/32", "192.168.0.0/16"}) ||
		got.Ingress[0].Sets != nil {
		t.Errorf("applied %+v", got)
	}
	// An older set changes nothing; eni-2 names no set and is never re-applied.
	a.fw.update(fws, set(14, "10.0.0.4"))
	time.Sleep(50 * time.Millisecond)
	if got := sb.revisions("eni-1"); !slices.Equal(got, []int64{15}) {
		t.Errorf("eni-1 applied %v, want [15]", got)
	}
	if got := sb.revisions("eni-2"); len(got) != 0 {
		t.Errorf("eni-2 applied %v, want none", got)
	}
}
