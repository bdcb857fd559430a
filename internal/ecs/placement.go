package ecs

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/scheduler"
	"github.com/berthdev/berth/internal/store"
)

func (s *Service) wakePlacement() {
	select {
	case s.place <- struct{}{}:
	default:
	}
}

// runPlacement places pending tasks whenever RunTask or a new host wakes it,
// and once a second in case another server replica accepted the task.
func (s *Service) runPlacement(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		if err := s.placePending(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("placement pass failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-s.place:
		case <-tick.C:
		}
	}
}

// snapshotNodes reads the registered hosts and what is placed on them.
func (s *Service) snapshotNodes(ctx context.Context) ([]scheduler.Node, error) {
	nodes, err := store.ListJSON[agentapi.Node](ctx, s.st, store.Prefix("nodes"))
	if err != nil {
		return nil, err
	}
	idx := map[string]int{}
	out := make([]scheduler.Node, 0, len(nodes))
	for _, n := range nodes {
		idx[n.NodeID] = len(out)
		out = append(out, scheduler.Node{ID: n.NodeID, AZs: n.AvailabilityZones, CPU: n.CPU, MemoryMiB: n.MemoryMiB})
	}
	err = s.st.List(ctx, store.Prefix("assign"), func(key string, val []byte) error {
		node := strings.SplitN(strings.TrimPrefix(key, store.Prefix("assign")), "/", 2)[0]
		i, ok := idx[node]
		if !ok {
			return nil
		}
		var spec agentapi.TaskSpec
		if err := json.Unmarshal(val, &spec); err != nil {
			return nil
		}
		out[i].UsedCPU += spec.CPU
		out[i].UsedMemoryMiB += spec.MemoryMiB
		return nil
	})
	return out, err
}

// placePending runs one scheduling pass over every pending task.
func (s *Service) placePending(ctx context.Context) error {
	var pendingArns []string
	if err := s.st.List(ctx, store.Prefix("pending"), func(_ string, val []byte) error {
		pendingArns = append(pendingArns, string(val))
		return nil
	}); err != nil {
		return err
	}
	if len(pendingArns) == 0 {
		return nil
	}
	nodes, err := s.snapshotNodes(ctx)
	if err != nil {
		return err
	}
	reqs := make([]scheduler.Request, 0, len(pendingArns))
	for _, arn := range pendingArns {
		key, ok := taskKeyFromArn(arn)
		if !ok {
			continue
		}
		var r taskRecord
		if _, err := s.st.Get(ctx, key, &r); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				_ = s.st.Delete(ctx, store.Key("pending", lastSegment(arn)))
			}
			continue
		}
		reqs = append(reqs, scheduler.Request{ID: arn, CPU: r.Spec.CPU, MemoryMiB: r.Spec.MemoryMiB, AZs: r.allowedAZs()})
	}
	plan := scheduler.Place(nodes, reqs)
	for _, p := range plan.Placements {
		if err := s.commitPlacement(ctx, p); err != nil {
			s.log.Warn("commit placement", "task", p.TaskID, "err", err)
		}
	}
	return nil
}

// allowedAZs are the zones a task may run in. Subnets map to zones once VPCs
// exist; until then any zone will do.
func (r *taskRecord) allowedAZs() []string { return nil }

// commitPlacement binds a task to a host: the task record gets its node and
// zone, the host's assign key gets the spec, the pending key goes, all in one
// transaction conditioned on the task being unchanged since it was read.
func (s *Service) commitPlacement(ctx context.Context, p scheduler.Placement) error {
	key, _ := taskKeyFromArn(p.TaskID)
	_, err := store.Mutate(ctx, s.st, key, func(r *taskRecord) ([]clientv3.Op, error) {
		pending := clientv3.OpDelete(store.Key("pending", r.Spec.TaskID))
		if r.Node != "" || r.Task.DesiredStatus == agentapi.StatusStopped {
			return []clientv3.Op{pending}, nil
		}
		r.Node = p.NodeID
		r.Task.AvailabilityZone = p.AZ
		r.Task.Version++
		b, err := json.Marshal(r.Spec)
		if err != nil {
			return nil, err
		}
		return []clientv3.Op{pending, clientv3.OpPut(store.Key("assign", p.NodeID, r.Spec.TaskID), string(b))}, nil
	})
	return err
}

// runPurge deletes stopped tasks once their retention has passed.
func (s *Service) runPurge(ctx context.Context) {
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if err := s.purgeStopped(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("purge stopped tasks", "err", err)
		}
	}
}

func (s *Service) purgeStopped(ctx context.Context) error {
	cutoff := s.cfg.Now().Add(-s.cfg.StoppedRetention)
	var stale []string
	err := s.st.List(ctx, store.Prefix("acct"), func(key string, val []byte) error {
		if !strings.Contains(key, "/tasks/") {
			return nil
		}
		var r taskRecord
		if err := unmarshalTask(val, &r); err != nil {
			return nil
		}
		if r.Task.LastStatus == agentapi.StatusStopped && r.Task.StoppedAt != nil && r.Task.StoppedAt.Before(cutoff) {
			stale = append(stale, key)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range stale {
		if err := s.st.Delete(ctx, k); err != nil {
			return err
		}
	}
	return nil
}
