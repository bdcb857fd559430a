package ecs

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/store"
)

// FARGATE_SPOT interruption. Spot capacity is berth's own capacity marked
// interruptible: the operator reclaims a host's Spot tasks (`berth admin
// spot-interrupt HOST`, the agent protocol's spot-interrupt call with the
// join token), or berth reclaims one Spot task every
// Config.SpotReclaimInterval to simulate the market. An interrupted task is
// stopped as StopTask stops it, with stopCode SpotInterruption: behind a
// load balancer it drains first; its containers get SIGTERM and their
// stopTimeout (ECS allows up to 120 s: Fargate Spot's two-minute warning)
// before SIGKILL; services replace it per their capacity provider strategy.

const spotReason = "Your Spot Task was interrupted."

// interruptSpot interrupts the running FARGATE_SPOT tasks placed on node
// ("" for any node, at most max of them; max <= 0 for all).
func (s *Service) interruptSpot(ctx context.Context, node string, max int) ([]string, error) {
	prefix := store.Prefix("assign")
	if node != "" {
		prefix = store.Prefix("assign", node)
	}
	var arns []string
	if err := s.st.List(ctx, prefix, func(_ string, val []byte) error {
		var spec agentapi.TaskSpec
		if json.Unmarshal(val, &spec) == nil && spec.CapacityProviderName == providerFargateSpot && spec.DesiredStatus == agentapi.StatusRunning {
			arns = append(arns, spec.TaskArn)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	rand.Shuffle(len(arns), func(i, j int) { arns[i], arns[j] = arns[j], arns[i] })
	if max > 0 && len(arns) > max {
		arns = arns[:max]
	}
	var done []string
	for _, arn := range arns {
		sc, cluster, id, ok := parseTaskArn(arn)
		if !ok {
			continue
		}
		if _, err := s.stopTaskKey(ctx, sc, cluster, taskKey(sc, cluster, id), agentapi.StopSpotInterruption, spotReason); err != nil {
			s.log.Warn("interrupt spot task", "task", arn, "err", err)
			continue
		}
		s.log.Info("spot task interrupted", "task", arn, "node", node)
		done = append(done, arn)
	}
	return done, nil
}

// agentSpotInterrupt serves the operator's call (berth's own token only).
func (s *Service) agentSpotInterrupt(w http.ResponseWriter, r *http.Request) {
	if !callerOf(r.Context()).platform {
		agentError(w, http.StatusForbidden, "only the operator (the join token) may reclaim Spot capacity")
		return
	}
	var req agentapi.SpotInterruptRequest
	if err := decodeAgent(r, &req); err != nil || strings.TrimSpace(req.NodeID) == "" {
		agentError(w, http.StatusBadRequest, "a spot-interrupt request needs a nodeId")
		return
	}
	var n nodeRecord
	if _, err := s.st.Get(r.Context(), store.Key("nodes", req.NodeID), &n); err != nil || n.Pool == agentapi.PoolEC2 {
		agentError(w, http.StatusNotFound, "no host "+req.NodeID+" of berth's own capacity is registered")
		return
	}
	arns, err := s.interruptSpot(r.Context(), req.NodeID, 0)
	if err != nil {
		agentError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	if arns == nil {
		arns = []string{}
	}
	agentReply(w, agentapi.SpotInterruptResponse{TaskArns: arns})
}

// runSpotReclaim interrupts one Spot task every interval.
func (s *Service) runSpotReclaim(ctx context.Context, every time.Duration) {
	if every <= 0 {
		return
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if _, err := s.interruptSpot(ctx, "", 1); err != nil && ctx.Err() == nil {
			s.log.Warn("simulated spot reclaim", "err", err)
		}
	}
}
