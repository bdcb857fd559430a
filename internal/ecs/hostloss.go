package ecs

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/store"
)

// Host loss. A host's registration (nodes/<node>) lives under an etcd lease
// its agent renews; when the agent stops heartbeating the lease expires and
// the registration goes (container instances show agentConnected=false).
// After HostLossGrace more, its tasks are STOPPED as lost (the same
// transaction an agent's STOPPED report makes, so interfaces, credentials
// and metering follow) and services replace them elsewhere. A host that
// comes back finds those tasks gone from its list and stops their
// containers: nothing already replaced is resurrected.

// stopCodeHostLost is the stop code of tasks of a lost host. ECS has no
// code of its own for this (its message is "Host EC2 (instance …)
// stopped/terminated"); TerminationNotice is the closest of its codes.
const stopCodeHostLost = agentapi.StopTerminationNotice

// runHostLoss checks every second for hosts with tasks whose registration
// has been gone for longer than the grace period. When a host went missing
// is known only to this process: a restarted server starts the grace over,
// which errs on the side of not stopping tasks.
func (s *Service) runHostLoss(ctx context.Context) {
	hc := &hostCheck{missing: map[string]time.Time{}, known: map[string]bool{}}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if err := s.checkHosts(ctx, hc); err != nil && ctx.Err() == nil {
			s.log.Warn("host loss check", "err", err)
		}
	}
}

// hostCheck is what the host-loss controller remembers between passes:
// hosts seen registered, hosts seen missing (and since when), and when it
// last read every assigned task's key.
type hostCheck struct {
	known    map[string]bool
	missing  map[string]time.Time
	lastFull time.Time
}

// fullCheckEvery is how often the controller reads every assign key (a
// host lost while this server was down is found then); in between it
// checks only hosts it saw registered, which is cheap with many tasks.
const fullCheckEvery = 30 * time.Second

func (s *Service) checkHosts(ctx context.Context, hc *hostCheck) error {
	live, err := s.hosts.ids(ctx, 2*time.Second)
	if err != nil {
		live = map[string]bool{}
		if err := s.st.ListKeys(ctx, store.Prefix("nodes"), func(key string) error {
			live[strings.TrimPrefix(key, store.Prefix("nodes"))] = true
			return nil
		}); err != nil {
			return err
		}
	}
	now := s.cfg.Now()
	// Candidates: hosts not registered now that have tasks, from
	// placement's usage index (a task placed a moment ago on a host already
	// gone is found by the next check), else from etcd.
	withTasks := map[string]bool{}
	if placed, ok := s.usage.nodesWithTasks(); ok {
		for node := range placed {
			if !live[node] {
				withTasks[node] = true
			}
		}
	} else if now.Sub(hc.lastFull) >= fullCheckEvery {
		if err := s.st.ListKeys(ctx, store.Prefix("assign"), func(key string) error {
			node, _, _ := strings.Cut(strings.TrimPrefix(key, store.Prefix("assign")), "/")
			if !live[node] {
				withTasks[node] = true
			}
			return nil
		}); err != nil {
			return err
		}
		hc.lastFull = now
	} else {
		check := func(node string) error {
			if live[node] || withTasks[node] {
				return nil
			}
			resp, err := s.st.C.Get(ctx, store.Prefix("assign", node), clientv3.WithPrefix(), clientv3.WithCountOnly())
			if err == nil && resp.Count > 0 {
				withTasks[node] = true
			}
			return err
		}
		for node := range hc.known {
			if err := check(node); err != nil {
				return err
			}
		}
		for node := range hc.missing {
			if err := check(node); err != nil {
				return err
			}
		}
	}
	for node := range live {
		hc.known[node] = true
	}
	for node := range hc.missing {
		if live[node] || !withTasks[node] {
			delete(hc.missing, node)
		}
	}
	for node := range withTasks {
		since, ok := hc.missing[node]
		if !ok {
			hc.missing[node] = now
			s.log.Warn("host stopped heartbeating", "node", node)
			continue
		}
		if now.Sub(since) >= s.cfg.HostLossGrace {
			reason := "Host EC2 (instance " + node + ") is lost: its agent stopped heartbeating at about " +
				since.Add(-s.cfg.NodeTTL).UTC().Format(time.RFC3339) + "."
			s.stopTasksOnNode(ctx, node, reason)
			delete(hc.missing, node)
			delete(hc.known, node)
		}
	}
	return nil
}

// stopTasksOnNode marks every task placed on node STOPPED, as the node's
// agent would report it, without the agent.
func (s *Service) stopTasksOnNode(ctx context.Context, node, reason string) {
	var arns []string
	_ = s.st.List(ctx, store.Prefix("assign", node), func(_ string, val []byte) error {
		var spec agentapi.TaskSpec
		if json.Unmarshal(val, &spec) == nil {
			arns = append(arns, spec.TaskArn)
		}
		return nil
	})
	for _, arn := range arns {
		key, ok := taskKeyFromArn(arn)
		if !ok {
			continue
		}
		now := s.cfg.Now()
		applied := false
		rec, err := store.Mutate(ctx, s.st, key, func(rec *taskRecord) ([]clientv3.Op, error) {
			del := clientv3.OpDelete(store.Key("assign", node, lastSegment(arn)))
			if rec.Node != node || rec.Task.LastStatus == agentapi.StatusStopped {
				return []clientv3.Op{del}, nil
			}
			rep := agentapi.StateReport{NodeID: node, TaskArn: arn, Seq: max(rec.ReportSeq+1, now.UnixNano()),
				Status: agentapi.StatusStopped, StopCode: stopCodeHostLost, StoppedReason: reason}
			for _, c := range rec.Task.Containers {
				cs := agentapi.ContainerState{Name: c.Name, Status: agentapi.ContainerStopped}
				if c.LastStatus != agentapi.ContainerStopped {
					cs.Reason = "The host was lost."
				}
				rep.Containers = append(rep.Containers, cs)
			}
			rec.Spec.DesiredStatus = agentapi.StatusStopped
			rec.Task.DesiredStatus = agentapi.StatusStopped
			applied = applyReport(rec, &rep, now)
			return []clientv3.Op{del}, nil
		})
		if err != nil {
			s.log.Warn("stop task of a lost host", "task", arn, "err", err)
			continue
		}
		if applied {
			s.log.Warn("task stopped: host lost", "task", arn, "node", node, "reason", reason)
			s.reportApplied(ctx, key, rec, true, now)
		}
	}
}
