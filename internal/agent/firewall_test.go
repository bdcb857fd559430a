package agent

import (
	"context"
	"io"
	"log/slog"
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
}

func (s *fwSandboxes) ApplyFirewall(spec agentapi.TaskSpec, fw agentapi.Firewall) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.applied[spec.ENI.ID] = append(s.applied[spec.ENI.ID], fw.Revision)
	return nil
}

func (s *fwSandboxes) revisions(eni string) []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int64(nil), s.applied[eni]...)
}

func TestFirewallsFollowTheNewestPolicy(t *testing.T) {
	sb := &fwSandboxes{applied: map[string][]int64{}}
	a := New(Config{Node: agentapi.RegisterRequest{NodeID: "n"}, DataDir: t.TempDir(), Sandboxes: sb,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.fw.run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

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
	a.fw.update([]agentapi.Firewall{fw(5)})
	if got := a.fw.latest(spec); got == nil || got.Revision != 5 {
		t.Fatalf("latest = %+v, want revision 5", got)
	}
	a.fw.attached(spec, a.fw.latest(spec))
	// An older or equal policy changes nothing; a newer one is applied.
	a.fw.update([]agentapi.Firewall{fw(4)})
	a.fw.update([]agentapi.Firewall{fw(7)})
	waitFor([]int64{7})
	// A policy that arrived while the sandbox was being made is applied when
	// it is attached.
	spec2 := agentapi.TaskSpec{TaskID: "t2", ENI: &agentapi.ENI{ID: "eni-2"}}
	used := a.fw.latest(spec2) // nil: none yet
	a.fw.update([]agentapi.Firewall{fw(7), {ENIID: "eni-2", Revision: 3}})
	a.fw.attached(spec2, used)
	for deadline := time.Now().Add(5 * time.Second); len(sb.revisions("eni-2")) == 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if got := sb.revisions("eni-2"); len(got) != 1 || got[0] != 3 {
		t.Fatalf("eni-2 applied %v, want [3]", got)
	}
	// After detach nothing more is applied.
	a.fw.detached(spec)
	a.fw.update([]agentapi.Firewall{fw(9), {ENIID: "eni-2", Revision: 3}})
	time.Sleep(50 * time.Millisecond)
	waitFor([]int64{7})
}
