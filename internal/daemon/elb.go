package daemon

import (
	"context"
	"errors"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/ecs"
	"github.com/berthdev/berth/internal/elb"
	"github.com/berthdev/berth/internal/protocol"
	"github.com/berthdev/berth/internal/store"
)

// nodeLister lists the registered agent nodes (nodes/<node-id>), where
// load balancers are placed.
func nodeLister(st *store.Store) func(ctx context.Context) ([]string, error) {
	return func(ctx context.Context) ([]string, error) {
		nodes, err := store.ListJSON[agentapi.Node](ctx, st, store.Prefix("nodes"))
		if err != nil {
			return nil, err
		}
		out := make([]string, 0, len(nodes))
		for _, n := range nodes {
			// Load balancers run on berth's own capacity, never on a
			// user's container instance.
			if n.Pool == agentapi.PoolEC2 {
				continue
			}
			out = append(out, n.NodeID)
		}
		return out, nil
	}
}

// lbAdapter is ECS's view of the load balancer control plane
// (ecs.LoadBalancers) over *elb.Service.
type lbAdapter struct{ s *elb.Service }

func elbTargets(ts []ecs.LBTarget) []elb.Target {
	out := make([]elb.Target, len(ts))
	for i, t := range ts {
		out[i] = elb.Target{ID: t.ID, Port: t.Port}
	}
	return out
}

func (a lbAdapter) RegisterTargets(ctx context.Context, account, region, tgArn string, targets []ecs.LBTarget) error {
	return a.s.RegisterTargets(ctx, account, region, tgArn, elbTargets(targets))
}

func (a lbAdapter) DeregisterTargets(ctx context.Context, account, region, tgArn string, targets []ecs.LBTarget) error {
	return a.s.DeregisterTargets(ctx, account, region, tgArn, elbTargets(targets))
}

func (a lbAdapter) TargetHealth(ctx context.Context, account, region, tgArn string, targets []ecs.LBTarget) (map[ecs.LBTarget]string, error) {
	hs, err := a.s.TargetHealth(ctx, account, region, tgArn)
	if err != nil {
		return nil, err
	}
	want := make(map[ecs.LBTarget]bool, len(targets))
	for _, t := range targets {
		want[t] = true
	}
	out := map[ecs.LBTarget]string{}
	for _, h := range hs {
		if k := (ecs.LBTarget{ID: h.ID, Port: h.Port}); want[k] {
			out[k] = h.State
		}
	}
	return out, nil
}

func (a lbAdapter) TargetGroupType(ctx context.Context, account, region, tgArn string) (string, error) {
	info, err := a.s.TargetGroup(ctx, account, region, tgArn)
	var pe *protocol.Error
	switch {
	case err == nil:
		return info.TargetType, nil
	case errors.As(err, &pe) && (pe.Code == "TargetGroupNotFound" || pe.Code == "ValidationError"):
		// Absent, or not a target group ARN at all: ECS says it cannot
		// find it either way.
		return "", nil
	default:
		return "", err
	}
}

// instanceResolver is elb.Instances over ECS's container instances; ECS is
// made after ELB (it registers targets through it), so it is bound late.
type instanceResolver struct{ ecs *ecs.Service }

func (r *instanceResolver) InstanceAddress(ctx context.Context, account, region, id string) (string, error) {
	if r.ecs == nil {
		return "", errors.New("container instances are not available yet")
	}
	return r.ecs.InstanceAddress(ctx, account, region, id)
}
