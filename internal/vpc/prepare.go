package vpc

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/store"
)

// PrepareENIs plans the interfaces of several tasks for the caller's own
// transaction: ECS's placement binds a batch of tasks to their hosts in one
// transaction, and with this their interfaces join it, instead of one
// transaction each before it. It is AttachENI without the commit: each
// interface's addresses are reserved, and part holds the writes and the
// conditions (each ENI, lease and firewall absent; the subnets and groups
// as planned) of all of them, with each address set's key written once
// with every address the batch adds to it.
//
// errs[i] is request i's error (one with StopReason when it cannot
// succeed); a request with an error has no part in part. The caller must
// call part.Done with its transaction's outcome. When that transaction
// fails, nothing of it is stored: the caller attaches the interfaces one by
// one (AttachENI), which also finds an ENI that exists already.
func (s *Service) PrepareENIs(ctx context.Context, reqs []agentapi.ENIRequest) (enis []agentapi.ENI, errs []error, part store.TxnPart) {
	enis, errs = make([]agentapi.ENI, len(reqs)), make([]error, len(reqs))
	t := &txn{}
	type prepared struct {
		sc   scope
		eni  agentapi.ENI
		node string
	}
	var done []prepared
	added := map[string][]string{} // set key → the addresses the batch adds
	for i, r := range reqs {
		if r.AttachmentID == "" || r.Node == "" || len(dedupe(r.Subnets)) == 0 {
			errs[i] = fmt.Errorf("attach eni: attachment id, node and subnets are required (got %q, %q, %v)", r.AttachmentID, r.Node, r.Subnets)
			continue
		}
		sc := newScope(r.Account, r.Region)
		if err := s.ensureDefaults(ctx, sc); err != nil {
			errs[i] = err
			continue
		}
		plan, err := s.cachedPlan(ctx, sc, r.Subnets, r.Groups)
		if err != nil {
			errs[i] = fmt.Errorf("attach eni %s: %w", r.AttachmentID, err)
			continue
		}
		cand, eni, err := s.pickAddresses(ctx, sc, plan, r.AttachmentID, r.AssignPublicIP, 0)
		if err != nil {
			errs[i] = fmt.Errorf("attach eni %s: %w", r.AttachmentID, err)
			continue
		}
		for _, key := range s.attachOps(t, sc, plan, cand, eni, r.Node) {
			added[key] = append(added[key], eni.PrivateIP)
		}
		enis[i] = eni
		done = append(done, prepared{sc: sc, eni: eni, node: r.Node})
	}
	for _, key := range slices.Sorted(maps.Keys(added)) {
		if addrs := added[key]; len(addrs) == 1 {
			t.put(key, agentapi.AddressSetChange{Add: addrs[0]})
		} else {
			t.put(key, agentapi.AddressSetChange{Added: addrs})
		}
	}
	if t.err != nil {
		for _, p := range done {
			s.settleENI(p.sc, p.eni, false, false)
		}
		for i := range errs {
			if errs[i] == nil {
				errs[i] = t.err
			}
		}
		return enis, errs, store.TxnPart{Done: func(bool) {}}
	}
	part = store.TxnPart{Cmps: t.cmps, Ops: t.ops, Done: func(committed bool) {
		for _, p := range done {
			// A failed transaction took no address; which of the
			// conditions failed, the one-by-one attach that follows finds.
			s.settleENI(p.sc, p.eni, committed, committed)
			if committed {
				s.logAttached(p.sc, p.eni, p.node)
			}
		}
		if !committed {
			for _, p := range done {
				s.forgetPlans(p.sc)
			}
		}
	}}
	return enis, errs, part
}
