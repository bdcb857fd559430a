package ecs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
	s.dropPendingKeys(ctx)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		start := time.Now()
		if err := s.placePending(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("placement pass failed", "err", err)
		}
		// A pass reads every host and placed task, so its cost grows with
		// the cluster, not with what it places: resting as long as it took
		// (capped) lets tasks gather for the next pass and leaves the
		// agents' reports and the API at least half the CPU. A pass of a
		// small cluster takes about a millisecond, so launches barely wait.
		if !sleepCtx(ctx, min(time.Since(start), 500*time.Millisecond)) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-s.place:
		case <-tick.C:
		}
	}
}

// dropPendingKeys deletes the pending keys (pending/<task-id>) berth kept
// before the task index became placement's queue: nothing reads them now.
func (s *Service) dropPendingKeys(ctx context.Context) {
	resp, err := s.st.C.Delete(ctx, store.Prefix("pending"), clientv3.WithPrefix())
	if err != nil {
		s.log.Warn("delete the old pending keys", "err", err)
		return
	}
	if resp.Deleted > 0 {
		s.log.Info("deleted the pending keys of an older berth", "keys", resp.Deleted)
	}
}

// snapshotNodes reads the registered hosts and what is placed on them, by
// pool (see poolKey). A DRAINING container instance takes no new task.
func (s *Service) snapshotNodes(ctx context.Context) (map[string][]scheduler.Node, error) {
	pools, _, err := s.snapshot(ctx)
	return pools, err
}

// snapshot is snapshotNodes and the capacity provider of each user's
// instance that joined one.
func (s *Service) snapshot(ctx context.Context) (map[string][]scheduler.Node, map[string]string, error) {
	nodes, err := s.hosts.records(ctx, 2*time.Second)
	if err != nil {
		if nodes, err = s.listHosts(ctx); err != nil {
			return nil, nil, err
		}
	}
	providerOf := map[string]string{}
	type at struct {
		pool string
		i    int
	}
	idx := map[string]at{}
	out := map[string][]scheduler.Node{}
	for _, n := range nodes {
		pool := ""
		sn := scheduler.Node{ID: n.NodeID, AZs: n.AvailabilityZones, CPU: n.CPU, MemoryMiB: n.MemoryMiB}
		if n.Pool == agentapi.PoolEC2 {
			if n.Owner == nil {
				continue
			}
			var inst instanceRecord
			if _, err := s.st.Get(ctx, instanceKey(n.Owner.scope(), n.Owner.Cluster, n.Owner.InstanceID), &inst); err != nil {
				continue
			}
			pool, sn = n.Owner.poolKey(), inst.schedulerNode()
			if p := inst.Instance.CapacityProviderName; p != "" {
				providerOf[n.NodeID] = p
			}
		}
		idx[n.NodeID] = at{pool, len(out[pool])}
		out[pool] = append(out[pool], sn)
	}
	var placed []*scheduler.Node
	for pool := range out {
		for i := range out[pool] {
			placed = append(placed, &out[pool][i])
		}
	}
	err = s.usage.fill(ctx, placed, 2*time.Second)
	if errors.Is(err, errIndexBehind) {
		err = s.sumAssigned(ctx, func(node string) *scheduler.Node {
			if a, ok := idx[node]; ok {
				return &out[a.pool][a.i]
			}
			return nil
		})
	}
	return out, providerOf, err
}

// listHosts reads every registered host's record from etcd: the fallback
// of readers of the host index when it is behind.
func (s *Service) listHosts(ctx context.Context) ([]*nodeRecord, error) {
	return store.ListJSON[*nodeRecord](ctx, s.st, store.Prefix("nodes"))
}

// sumAssigned adds what every assign key holds to its node (those nodeOf
// knows): placement's fallback when its usage index is behind.
func (s *Service) sumAssigned(ctx context.Context, nodeOf func(string) *scheduler.Node) error {
	return s.st.List(ctx, store.Prefix("assign"), func(key string, val []byte) error {
		node, ok := assignNode(key)
		if !ok {
			return nil
		}
		n := nodeOf(node)
		if n == nil {
			return nil
		}
		var spec assignedUsage
		if err := json.Unmarshal(val, &spec); err != nil {
			return nil
		}
		n.UsedCPU += spec.CPU
		n.UsedMemoryMiB += spec.MemoryMiB
		n.RunningTasks++
		if spec.Group != "" {
			if n.Groups == nil {
				n.Groups = map[string]int{}
			}
			n.Groups[spec.Group]++
		}
		for _, pm := range spec.PortMappings {
			if pm.HostPort != 0 {
				n.UsedPorts = append(n.UsedPorts, scheduler.HostPort{Protocol: pm.Protocol, Port: pm.HostPort})
			}
		}
		if spec.AvailabilityZone != "" {
			if n.Placed == nil {
				n.Placed = map[string]int{}
			}
			n.Placed[spec.AvailabilityZone]++
		}
		return nil
	})
}

// poolKey names the capacity a task may use: "" for berth's own (FARGATE),
// "ec2/<account>/<region>/<cluster>" for its cluster's container instances.
func (r *taskRecord) poolKey() string {
	if r.Task.LaunchType != compatEC2 {
		return ""
	}
	sc, cluster, _, ok := parseTaskArn(r.Task.TaskArn)
	if !ok {
		return "-"
	}
	return ec2Pool(sc, cluster)
}

func ec2Pool(sc scope, cluster string) string {
	return "ec2/" + sc.account + "/" + sc.region + "/" + cluster
}

func (o *nodeOwner) poolKey() string { return ec2Pool(o.scope(), o.Cluster) }

// placePending runs one scheduling pass over every pending task: those the
// task index holds without a host (see taskIndex.pendingArns).
func (s *Service) placePending(ctx context.Context) error {
	pendingArns, err := s.tasks.pendingArns(ctx)
	if err != nil {
		return err
	}
	if len(pendingArns) == 0 {
		return nil
	}
	s.placeMu.Lock()
	defer s.placeMu.Unlock()
	nodes, providerOf, err := s.snapshot(ctx)
	if err != nil {
		return err
	}
	// By pool, and for a user's capacity provider, by provider within it.
	read := s.readPending(ctx, pendingArns)
	reqs := map[string][]scheduler.Request{}
	for _, arn := range pendingArns {
		pt, ok := read[arn]
		if !ok || pt.rec.Node != "" || pt.rec.Task.DesiredStatus == agentapi.StatusStopped {
			continue // placed or stopped since the index showed it
		}
		r := pt.rec
		pool := r.poolKey()
		if p := r.Task.CapacityProviderName; p != "" && !isFargateProvider(p) {
			pool += "|" + p
		}
		reqs[pool] = append(reqs[pool], r.schedulerRequest())
	}
	for pool, rs := range reqs {
		candidates := nodes[pool]
		if base, provider, ok := strings.Cut(pool, "|"); ok {
			candidates = nil
			for _, n := range nodes[base] {
				if providerOf[n.ID] == provider {
					candidates = append(candidates, n)
				}
			}
		}
		plan := scheduler.Place(candidates, rs)
		s.commitPlan(ctx, plan.Placements, read)
	}
	return nil
}

// allowedAZs are the zones a task may run in: those of its subnets, or any
// zone for a task without a VPC network.
func (r *taskRecord) allowedAZs() []string {
	if r.Awsvpc == nil {
		return nil
	}
	return r.Awsvpc.zones()
}

// commitPlacement binds a task to a host: an awsvpc task first gets its
// network interface in a subnet of the chosen zone; then the task record gets
// its node, zone and interface and the host's assign key gets the spec, in
// one transaction conditioned on the task being unchanged since it was
// read. Allocating the interface is idempotent, so a crash between the two
// steps only repeats the first.
func (s *Service) commitPlacement(ctx context.Context, p scheduler.Placement, read *taskRecord) error {
	key, _ := taskKeyFromArn(p.TaskID)
	var eni *agentapi.ENI
	if read != nil && read.Awsvpc != nil && s.cfg.Networks != nil {
		if read.Task.DesiredStatus == agentapi.StatusStopped {
			s.releaseENI(ctx, read)
			return nil
		}
		a, err := s.cfg.Networks.AttachENI(ctx, read.Spec.Account, read.Spec.Region, read.eniAttachmentID(), p.NodeID,
			read.Awsvpc.subnetsIn(p.AZ), read.Awsvpc.Groups, read.Awsvpc.AssignPublicIP)
		if reason, ok := failureReason(err); ok {
			return s.failToStart(ctx, key, reason)
		}
		if err != nil {
			return fmt.Errorf("attach network interface: %w", err)
		}
		eni = &a
	}
	var released bool
	instance := ""
	if read != nil && read.Task.LaunchType == compatEC2 {
		instance = s.instanceOfNode(ctx, p.NodeID)
	}
	_, err := store.Mutate(ctx, s.st, key, func(r *taskRecord) ([]clientv3.Op, error) {
		if r.Node != "" || r.Task.DesiredStatus == agentapi.StatusStopped {
			released = r.Node == "" && eni != nil
			return nil, nil
		}
		assign, err := bindTask(r, p, instance, eni)
		if err != nil {
			return nil, err
		}
		return []clientv3.Op{assign}, nil
	})
	if err == nil && released {
		// Stopped while its interface was being made: free it now.
		s.releaseENI(ctx, read)
	}
	return err
}

// failToStart stops a task that cannot start before it reaches a host (its
// subnets have no free address), as ECS does: STOPPED with TaskFailedToStart.
func (s *Service) failToStart(ctx context.Context, key, reason string) error {
	now := s.cfg.Now()
	_, err := store.Mutate(ctx, s.st, key, func(r *taskRecord) ([]clientv3.Op, error) {
		if r.Node != "" || r.Task.LastStatus == agentapi.StatusStopped {
			return nil, nil
		}
		t := &r.Task
		t.DesiredStatus, t.LastStatus = agentapi.StatusStopped, agentapi.StatusStopped
		r.Spec.DesiredStatus = agentapi.StatusStopped
		if t.StopCode == "" {
			t.StopCode, t.StoppedReason = agentapi.StopTaskFailedToStart, reason
		}
		t.StoppingAt, t.StoppedAt, t.ExecutionStoppedAt = NewTime(now), NewTime(now), NewTime(now)
		for i := range t.Containers {
			t.Containers[i].LastStatus = agentapi.ContainerStopped
		}
		for i := range t.Attachments {
			t.Attachments[i].Status = "DELETED"
		}
		if r.Awsvpc != nil {
			r.Awsvpc.Released = true // nothing was allocated
		}
		t.Version++
		return nil, nil
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
	var stale, unreleased, unmetered []string
	var revoke []*taskRecord
	err := s.eachStoppedTask(ctx, func(key string, val []byte) error {
		var r taskRecord
		if err := unmarshalTask(val, &r); err != nil {
			return nil
		}
		if r.Task.LastStatus != agentapi.StatusStopped {
			return nil
		}
		if r.Awsvpc != nil && !r.Awsvpc.Released {
			unreleased = append(unreleased, key)
		}
		if r.Spec.TaskRoleArn != "" {
			revoke = append(revoke, &r) // a revocation a crash interrupted
		}
		metered := r.Metered || s.cfg.Meter == nil
		if !metered {
			unmetered = append(unmetered, key)
		}
		// A stopped task stays until it is metered.
		if metered && r.Task.StoppedAt != nil && r.Task.StoppedAt.Before(cutoff) {
			stale = append(stale, key)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range unreleased {
		s.markReleased(ctx, k)
	}
	for _, r := range revoke {
		s.revokeCredentials(ctx, r)
	}
	for _, k := range unmetered {
		s.meterStopped(ctx, k)
	}
	for _, k := range stale {
		if err := s.st.Delete(ctx, k); err != nil {
			return err
		}
	}
	return nil
}

// markReleased frees the interface of the stopped task at key (left over by
// a server that stopped between recording STOPPED and freeing it) and
// records that it is free.
func (s *Service) markReleased(ctx context.Context, key string) {
	var r taskRecord
	if _, err := s.st.Get(ctx, key, &r); err != nil || !s.releaseENI(ctx, &r) {
		return
	}
	_, err := store.Mutate(ctx, s.st, key, func(r *taskRecord) ([]clientv3.Op, error) {
		if r.Awsvpc != nil {
			r.Awsvpc.Released = true
		}
		return nil, nil
	})
	if err != nil {
		s.log.Warn("record released network interface", "key", key, "err", err)
	}
}
