package ecs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/store"
)

// The service scheduler. Each pass over a service reads the service record
// and its tasks, decides (decide, a function of that snapshot alone) what to
// launch and what to stop, and commits the decision, the new tasks, the stops
// and the service's new counts in one etcd transaction conditioned on the
// service record and every stopped task being unchanged since they were read.
// Two schedulers (two server replicas) racing on one service therefore never
// both act on the same snapshot: the loser reads again and decides anew.

// maxLaunchesPerPass and maxStopsPerPass keep one pass's transaction well
// under etcd's limit of operations per transaction.
const (
	maxLaunchesPerPass = 10
	maxStopsPerPass    = 10
)

func (s *Service) wakeServices() {
	select {
	case s.svcWake <- struct{}{}:
	default:
	}
}

// runServices reconciles every service when an API call or a task report
// wakes it, and once a second.
func (s *Service) runServices(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		if err := s.reconcileServices(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("service scheduler pass failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-s.svcWake:
		case <-tick.C:
		}
	}
}

func (s *Service) reconcileServices(ctx context.Context) error {
	var keys []string
	if err := s.st.List(ctx, store.Prefix("services"), func(key string, _ []byte) error {
		keys = append(keys, key)
		return nil
	}); err != nil {
		return err
	}
	for _, k := range keys {
		parts := strings.Split(strings.TrimPrefix(k, store.Prefix("services")), "/")
		if len(parts) != 4 {
			continue
		}
		sc := scope{account: parts[0], region: parts[1]}
		if err := s.reconcileService(ctx, sc, parts[2], parts[3]); err != nil && ctx.Err() == nil {
			s.log.Warn("service scheduler", "service", parts[3], "cluster", parts[2], "err", err)
		}
	}
	return nil
}

// reconcileService runs passes until one commits or has nothing to do.
func (s *Service) reconcileService(ctx context.Context, sc scope, cluster, name string) error {
	for attempt := 0; attempt < 10; attempt++ {
		err := s.servicePass(ctx, sc, cluster, name)
		if !errors.Is(err, store.ErrConflict) {
			return err
		}
	}
	return fmt.Errorf("service %s: %w", name, store.ErrConflict)
}

// svcTask is one task of a service as a pass sees it.
type svcTask struct {
	ID         string
	Deployment string
	Rec        *taskRecord // nil: the task record is gone (purged)
	Rev        int64
	Healthy    bool // RUNNING, its containers' health check and its targets healthy
	Unhealthy  bool // known unhealthy, to be replaced
	// OnDraining: the task runs on a DRAINING container instance; it is
	// replaced like a task of an old deployment (new tasks elsewhere
	// first, within the deployment bounds).
	OnDraining bool
}

func (t *svcTask) live() bool {
	return t.Rec != nil && t.Rec.Task.LastStatus != agentapi.StatusStopped
}

func (t *svcTask) stopping() bool {
	return t.live() && t.Rec.Task.DesiredStatus == agentapi.StatusStopped
}

func (t *svcTask) running() bool {
	return t.live() && t.Rec.Task.LastStatus == agentapi.StatusRunning
}

// stopOrder is a task the pass stops.
type stopOrder struct {
	task   *svcTask
	reason string
}

// passPlan is what decide wants done.
type passPlan struct {
	launch int // tasks of the PRIMARY to start
	stops  []stopOrder
	forget []string // tasks seen STOPPED: their index entries go
}

// taskFailed reports whether a stopped task counts as a failed task of its
// deployment (the circuit breaker's count): it failed to start, never
// started, or its essential container exited before the rollout completed.
func taskFailed(t *Task, d *deploymentRecord) bool {
	switch t.StopCode {
	case agentapi.StopTaskFailedToStart:
		return true
	case agentapi.StopUserInitiated, agentapi.StopServiceSchedulerInitiated:
		return false
	}
	if t.StartedAt == nil {
		return true
	}
	return t.StopCode == agentapi.StopEssentialContainerExited && d != nil && d.RolloutState == rolloutInProgress
}

// decide is one pass of the scheduler over a snapshot of a service and its
// tasks. It updates rec (counts, deployments, events but the launch event)
// and returns what to launch and stop; it reads no clock but now.
func decide(rec *serviceRecord, tasks []*svcTask, now time.Time, backoff time.Duration) passPlan {
	var plan passPlan
	name := rec.Service.ServiceName
	deps := map[string]*deploymentRecord{}
	for i := range rec.Deployments {
		deps[rec.Deployments[i].ID] = &rec.Deployments[i]
	}
	stopped := map[string]bool{}
	stop := func(t *svcTask, reason string) {
		if !stopped[t.ID] {
			stopped[t.ID] = true
			plan.stops = append(plan.stops, stopOrder{t, reason})
		}
	}
	// 1. Account for stopped tasks; replace unhealthy and orphaned ones.
	for _, t := range tasks {
		d := deps[t.Deployment]
		if !t.live() {
			plan.forget = append(plan.forget, t.ID)
			if t.Rec != nil && d != nil && taskFailed(&t.Rec.Task, d) {
				d.FailedTasks++
				d.Failures++
				d.BackoffUntil = now.Add(launchBackoff(backoff, d.Failures))
				d.UpdatedAt = NewTime(now)
			}
			continue
		}
		if t.running() && d != nil && !t.stopping() {
			d.Failures = 0
		}
		switch {
		case t.stopping():
		case d == nil:
			stop(t, "Task is not part of a deployment of the service.")
		case t.Unhealthy:
			stop(t, "Task failed container health checks")
			rec.addEvent(evUnhealthy(name, t.ID), now)
		}
	}
	// 2. The circuit breaker.
	p := rec.primary()
	if cb := rec.breaker(); p != nil && cb != nil && p.RolloutState == rolloutInProgress && p.FailedTasks >= breakerThreshold(p.DesiredCount) {
		p.transition(evBreaker, now)
		p.RolloutStateReason = "ECS deployment circuit breaker: tasks failed to start."
		rec.addEvent(evDeploymentFailed(name, p.ID), now)
		if st := rec.Stable; cb.Rollback && st != nil && st.TaskDefinition != p.TaskDefinition {
			d := newDeployment(st.TaskDefinition, st.LaunchType, st.PlatformVersion, st.NetworkConfiguration, st.Awsvpc, rec.Service.DesiredCount, now)
			d.CapacityProviderStrategy = st.CapacityProviderStrategy
			if st.LoadBalancers != nil {
				d.LoadBalancers, rec.Service.LoadBalancers = st.LoadBalancers, slices.Clone(st.LoadBalancers)
			}
			rec.addEvent(evRollingBack(name, st.ID), now)
			rec.startDeployment(d, now)
			deps[d.ID] = &rec.Deployments[0]
			for i := range rec.Deployments {
				deps[rec.Deployments[i].ID] = &rec.Deployments[i]
			}
			p = rec.primary()
		}
	}
	desired := rec.Service.DesiredCount
	minHealthy, maxTotal := rec.bounds()
	// Live tasks, minus those this pass stops.
	keep := func(t *svcTask) bool { return t.live() && !t.stopping() && !stopped[t.ID] }
	total, healthy := 0, 0
	var primaryTasks, oldTasks []*svcTask
	for _, t := range tasks {
		if !t.live() {
			continue
		}
		total++
		if !keep(t) {
			continue
		}
		if t.Healthy {
			healthy++
		}
		if p != nil && t.Deployment == p.ID && !t.OnDraining {
			primaryTasks = append(primaryTasks, t)
		} else {
			oldTasks = append(oldTasks, t)
		}
	}
	// Unhealthy (pending) tasks go first, then the newest.
	order := func(ts []*svcTask) {
		slices.SortStableFunc(ts, func(a, b *svcTask) int {
			if a.Healthy != b.Healthy {
				if a.Healthy {
					return 1
				}
				return -1
			}
			return strings.Compare(b.ID, a.ID)
		})
	}
	order(primaryTasks)
	order(oldTasks)
	budget := maxStopsPerPass - len(plan.stops)
	stopN := func(ts []*svcTask, n int, reason string, limitHealthy bool) {
		for _, t := range ts {
			if n <= 0 || budget <= 0 {
				return
			}
			if t.Healthy && limitHealthy {
				if healthy <= minHealthy {
					return
				}
			}
			if t.Healthy {
				healthy--
			}
			stop(t, reason)
			n--
			budget--
		}
	}
	// 3. Launch for the PRIMARY, within maximumPercent.
	if p != nil && rec.Service.Status == svcActive && p.RolloutState != rolloutFailed && !now.Before(p.BackoffUntil) {
		need := desired - len(primaryTasks)
		room := maxTotal - total
		plan.launch = max(0, min(need, room, maxLaunchesPerPass))
	}
	// 4. Stop: a scaled-down PRIMARY's extra tasks, then the old deployments'
	// tasks while minimumHealthyPercent stays healthy (all of them when draining).
	if p != nil && len(primaryTasks) > desired {
		stopN(primaryTasks, len(primaryTasks)-desired, "Scaling activity initiated by (deployment "+p.ID+")", false)
	}
	switch {
	case p == nil:
		stopN(oldTasks, len(oldTasks), "Scaling activity initiated by (service "+name+")", false)
	case p.RolloutState != rolloutFailed:
		stopN(oldTasks, len(oldTasks), "Scaling activity initiated by (deployment "+p.ID+")", true)
	}
	// 5. Counts, retired deployments, rollout and steady state.
	var failedLeft []string // ids
	for i := range rec.Deployments {
		d := &rec.Deployments[i]
		d.RunningCount, d.PendingCount = 0, 0
		liveN := 0
		for _, t := range tasks {
			if t.Deployment != d.ID || !t.live() {
				continue
			}
			liveN++
			switch {
			case t.running():
				d.RunningCount++
			case !t.stopping() && !stopped[t.ID]:
				d.PendingCount++
			}
		}
		switch {
		case d == p:
			d.PendingCount += plan.launch
			d.DesiredCount = desired
		case liveN == 0 && d.RolloutState == rolloutFailed && p != nil:
			// A failed deployment stays in view (rolloutState FAILED) until
			// the rollback that replaced it is steady.
			d.DesiredCount = 0
			failedLeft = append(failedLeft, d.ID)
		default:
			d.DesiredCount = 0
			if liveN == 0 {
				d.transition(evDrained, now)
			}
		}
	}
	rec.Deployments = slices.DeleteFunc(rec.Deployments, func(d deploymentRecord) bool { return d.Status == depInactive })
	rec.Service.RunningCount, rec.Service.PendingCount = 0, 0
	for _, d := range rec.Deployments {
		rec.Service.RunningCount += d.RunningCount
		rec.Service.PendingCount += d.PendingCount
	}
	p = rec.primary() // the slice moved: earlier pointers into it are stale
	steady := p != nil && len(rec.Deployments) == 1+len(failedLeft) && p.RunningCount == desired && p.PendingCount == 0 && healthy >= desired
	if steady && len(failedLeft) > 0 {
		for i := range rec.Deployments {
			if slices.Contains(failedLeft, rec.Deployments[i].ID) {
				rec.Deployments[i].transition(evDrained, now)
			}
		}
		rec.Deployments = slices.DeleteFunc(rec.Deployments, func(d deploymentRecord) bool { return d.Status == depInactive })
		p = rec.primary()
	}
	if steady && p.transition(evSteady, now) {
		p.RolloutStateReason = "ECS deployment " + p.ID + " completed."
		stable := *p
		rec.Stable = &stable
		rec.addEvent(evDeploymentCompleted(name, p.ID), now)
	}
	if steady && !rec.Steady {
		rec.addEvent(evSteadyState(name), now)
	}
	rec.Steady = steady
	if rec.Service.Status == svcDraining && len(rec.Deployments) == 0 {
		rec.Service.Status = svcInactive
		rec.InactiveAt = now
	}
	return plan
}

// servicePass runs one pass over a service and commits it.
func (s *Service) servicePass(ctx context.Context, sc scope, cluster, name string) error {
	key := serviceKey(sc, cluster, name)
	var rec serviceRecord
	rev, err := s.st.Get(ctx, key, &rec)
	if errors.Is(err, store.ErrNotFound) {
		return s.st.Delete(ctx, serviceIndexKey(sc, cluster, name))
	}
	if err != nil {
		return err
	}
	now := s.cfg.Now()
	if rec.Service.Status == svcInactive {
		if now.Sub(rec.InactiveAt) > s.cfg.StoppedRetention {
			_, err := s.st.C.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).
				Then(clientv3.OpDelete(key), clientv3.OpDelete(serviceIndexKey(sc, cluster, name))).Commit()
			return err
		}
		return nil
	}
	before, _ := json.Marshal(rec)
	tasks, err := s.serviceTasks(ctx, sc, cluster, name)
	if err != nil {
		return err
	}
	s.assessHealth(ctx, &rec, tasks, now)
	s.markDraining(ctx, &rec, tasks)
	plan := decide(&rec, tasks, now, s.cfg.ServiceBackoff)
	var cmps []clientv3.Cmp
	var ops []clientv3.Op
	byID := make(map[string]*svcTask, len(tasks))
	for _, t := range tasks {
		byID[t.ID] = t
	}
	for _, id := range plan.forget {
		// A task that stopped on its own leaves its target groups too (its
		// address may be handed to another task next).
		if t := byID[id]; t != nil && (t.Rec == nil || t.Rec.Deactivating == nil) {
			s.deregisterTargets(ctx, &rec, t)
		}
		ops = append(ops, clientv3.OpDelete(serviceTaskKey(sc, cluster, name, id)))
	}
	// Tasks whose targets have drained are told to stop.
	for _, t := range tasks {
		if !s.deactivated(ctx, &rec, t, now) {
			continue
		}
		extra, err := releaseStop(t.Rec, now)
		if err != nil {
			return err
		}
		b, err := encodeTask(t.Rec)
		if err != nil {
			return err
		}
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(taskKey(sc, cluster, t.ID)), "=", t.Rev))
		ops = append(ops, store.OpPutBytes(taskKey(sc, cluster, t.ID), b))
		ops = append(ops, extra...)
	}
	var stoppedIDs []string
	for _, o := range plan.stops {
		s.deregisterTargets(ctx, &rec, o.task)
		r := o.task.Rec
		var extra []clientv3.Op
		var err error
		if s.drainsFirst(&rec, o.task) {
			deactivateRecord(r, agentapi.StopServiceSchedulerInitiated, o.reason, now)
		} else if extra, err = stopRecord(r, agentapi.StopServiceSchedulerInitiated, o.reason, now); err != nil {
			return err
		}
		b, err := encodeTask(r)
		if err != nil {
			return err
		}
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(taskKey(sc, cluster, o.task.ID)), "=", o.task.Rev))
		ops = append(ops, store.OpPutBytes(taskKey(sc, cluster, o.task.ID), b))
		ops = append(ops, extra...)
		stoppedIDs = append(stoppedIDs, o.task.ID)
	}
	if len(stoppedIDs) > 0 {
		rec.addEvent(evStopped(name, stoppedIDs), now)
	}
	if plan.launch > 0 {
		if n := s.serviceLaunches(rec.scope(), rec.Deployments[0].LaunchType, plan.launch); n < plan.launch {
			// Over the launch rate: launch fewer now, more next pass.
			rec.Deployments[0].PendingCount -= plan.launch - n
			rec.Service.PendingCount -= plan.launch - n
			plan.launch = n
		}
	}
	if plan.launch > 0 {
		launched, lops, err := s.launchServiceTasks(ctx, &rec, plan.launch, providerCounts(tasks), now)
		if err != nil {
			s.log.Warn("service launch", "service", name, "err", err)
			rec.Deployments[0].PendingCount -= plan.launch
			rec.Service.PendingCount -= plan.launch
			if msg, ok := evLaunchFailed(name, err); ok && (len(rec.Service.Events) == 0 || rec.Service.Events[0].Message != msg) {
				rec.addEvent(msg, now)
			}
		} else {
			ops = append(ops, lops...)
			rec.addEvent(evStarted(name, launched), now)
		}
	}
	after, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if len(ops) == 0 && string(before) == string(after) {
		return nil
	}
	cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(key), "=", rev))
	ops = append(ops, store.OpPutBytes(key, after))
	resp, err := s.st.C.Txn(ctx).If(cmps...).Then(ops...).Commit()
	if err != nil {
		return fmt.Errorf("commit service pass: %w", err)
	}
	if !resp.Succeeded {
		return store.ErrConflict
	}
	if plan.launch > 0 {
		s.wakePlacement()
	}
	return nil
}

// serviceTasks reads the service's task index and the tasks it names.
func (s *Service) serviceTasks(ctx context.Context, sc scope, cluster, name string) ([]*svcTask, error) {
	var tasks []*svcTask
	prefix := serviceTasksPrefix(sc, cluster, name)
	err := s.st.List(ctx, prefix, func(key string, val []byte) error {
		var e serviceTaskEntry
		if err := json.Unmarshal(val, &e); err != nil {
			return nil
		}
		tasks = append(tasks, &svcTask{ID: strings.TrimPrefix(key, prefix), Deployment: e.Deployment})
		return nil
	})
	if err != nil {
		return nil, err
	}
	for start := 0; start < len(tasks); start += 100 {
		batch := tasks[start:min(start+100, len(tasks))]
		ops := make([]clientv3.Op, 0, len(batch))
		for _, t := range batch {
			ops = append(ops, s.st.OpGet(taskKey(sc, cluster, t.ID)))
		}
		resp, err := s.st.C.Txn(ctx).Then(ops...).Commit()
		if err != nil {
			return nil, err
		}
		for i, rr := range resp.Responses {
			kvs := rr.GetResponseRange().Kvs
			if len(kvs) == 0 {
				continue
			}
			var r taskRecord
			if err := unmarshalTask(kvs[0].Value, &r); err != nil {
				return nil, err
			}
			batch[i].Rec, batch[i].Rev = &r, kvs[0].ModRevision
		}
	}
	return tasks, nil
}

// launchServiceTasks makes n tasks of the PRIMARY deployment through the
// same path as RunTask, and the ops that store them with their index entries.
//
// running counts the service's live tasks by capacity provider, which a
// capacity provider strategy's split takes into account.
func (s *Service) launchServiceTasks(ctx context.Context, rec *serviceRecord, n int, running map[string]int, now time.Time) ([]string, []clientv3.Op, error) {
	sc, d := rec.scope(), &rec.Deployments[0]
	cluster, err := s.getCluster(ctx, sc, rec.Cluster)
	if err != nil {
		return nil, nil, err
	}
	td, _, err := s.getTaskDef(ctx, sc, d.TaskDefinition)
	if err != nil {
		return nil, nil, err
	}
	if err := s.checkTaskRole(ctx, sc, cluster, taskRole(td, nil)); err != nil {
		return nil, nil, err
	}
	in := runTaskInput{StartedBy: d.ID, Group: "service:" + rec.Service.ServiceName,
		PlacementStrategy: rec.Service.PlacementStrategy, PlacementConstraints: rec.Service.PlacementConstraints}
	if in.providers, err = splitProviders(d.CapacityProviderStrategy, n, running); err != nil {
		return nil, nil, err
	}
	switch rec.Service.PropagateTags {
	case "SERVICE":
		in.Tags = rec.Service.Tags
	case "TASK_DEFINITION":
		in.PropagateTags = "TASK_DEFINITION"
	}
	if rec.Service.EnableECSManagedTags {
		in.Tags = mergeTags(in.Tags, []Tag{{Key: "aws:ecs:clusterName", Value: rec.Cluster}, {Key: "aws:ecs:serviceName", Value: rec.Service.ServiceName}})
	}
	var vpc *AwsVpcConfiguration
	if d.NetworkConfiguration != nil {
		vpc = d.NetworkConfiguration.AwsvpcConfiguration
	}
	recs, ops, err := s.newTasks(sc, cluster, td, &in, TaskOverride{ContainerOverrides: []ContainerOverride{}}, d.LaunchType, vpc, d.Awsvpc, n, now)
	if err != nil {
		return nil, nil, err
	}
	entry, _ := json.Marshal(serviceTaskEntry{Deployment: d.ID})
	ids := make([]string, 0, n)
	for _, r := range recs {
		ids = append(ids, r.Spec.TaskID)
		ops = append(ops, store.OpPutBytes(serviceTaskKey(sc, rec.Cluster, rec.Service.ServiceName, r.Spec.TaskID), entry))
	}
	return ids, ops, nil
}

// assessHealth marks each task healthy (it counts toward
// minimumHealthyPercent) or unhealthy (it is replaced). A task is healthy
// when RUNNING, its health check (if any) says HEALTHY and, for a service
// behind load balancers, every target group says healthy; a target found
// unhealthy after the grace period makes it unhealthy.
func (s *Service) assessHealth(ctx context.Context, rec *serviceRecord, tasks []*svcTask, now time.Time) {
	lbs := s.cfg.LoadBalancers
	grace := time.Duration(deref(rec.Service.HealthCheckGracePeriodSeconds, 0)) * time.Second
	for _, t := range tasks {
		if !t.running() || t.stopping() {
			continue
		}
		hs := t.Rec.Task.HealthStatus
		t.Healthy = hs != agentapi.HealthUnknown && hs != agentapi.HealthUnhealthy
		started := t.Rec.Task.StartedAt
		inGrace := started == nil || now.Sub(started.Time) < grace
		t.Unhealthy = hs == agentapi.HealthUnhealthy && !inGrace
		if lbs == nil || !t.Healthy {
			continue
		}
		for _, lb := range rec.lbsOf(t) {
			target, ok := lbTarget(t.Rec, lb)
			if !ok {
				t.Healthy = false
				continue
			}
			sc := rec.scope()
			if err := lbs.RegisterTargets(ctx, sc.account, sc.region, lb.TargetGroupArn, []LBTarget{target}); err != nil {
				s.log.Warn("register target", "task", t.ID, "targetGroup", lb.TargetGroupArn, "err", err)
				t.Healthy = false
				continue
			}
			h, err := lbs.TargetHealth(ctx, sc.account, sc.region, lb.TargetGroupArn, []LBTarget{target})
			if err != nil || h[target] != "healthy" {
				t.Healthy = false
			}
			if err == nil && h[target] == "unhealthy" && !inGrace {
				t.Unhealthy = true
			}
		}
	}
}

// providerCounts counts live tasks not being stopped by capacity provider.
func providerCounts(tasks []*svcTask) map[string]int {
	out := map[string]int{}
	for _, t := range tasks {
		if t.live() && !t.stopping() && t.Rec.Task.CapacityProviderName != "" {
			out[t.Rec.Task.CapacityProviderName]++
		}
	}
	return out
}

// markDraining marks the tasks of an EC2 service that run on DRAINING
// container instances.
func (s *Service) markDraining(ctx context.Context, rec *serviceRecord, tasks []*svcTask) {
	if rec.Service.LaunchType != compatEC2 {
		return
	}
	insts, err := s.listInstances(ctx, rec.scope(), rec.Cluster)
	if err != nil {
		return
	}
	draining := map[string]bool{}
	for _, in := range insts {
		if in.Instance.Status == instanceDraining {
			draining[in.NodeID] = true
		}
	}
	for _, t := range tasks {
		t.OnDraining = t.live() && draining[t.Rec.Node]
	}
}

// maxDeactivation bounds how long a task waits for its targets to drain:
// ELBv2's longest deregistration delay (3600 s) and a minute to spare.
const maxDeactivation = 3660 * time.Second

// drainsFirst reports whether stopping t begins with draining it out of
// the service's load balancers: it runs and has targets in them.
func (s *Service) drainsFirst(rec *serviceRecord, t *svcTask) bool {
	if s.cfg.LoadBalancers == nil || !t.running() {
		return false
	}
	for _, lb := range rec.lbsOf(t) {
		if _, ok := lbTarget(t.Rec, lb); ok {
			return true
		}
	}
	return false
}

// deactivated reports whether t, deactivating, may now stop: none of its
// targets is draining any more (the load balancers finished, or the
// deregistration delay passed), or maxDeactivation has passed.
func (s *Service) deactivated(ctx context.Context, rec *serviceRecord, t *svcTask, now time.Time) bool {
	if !t.live() || t.Rec.Deactivating == nil || t.Rec.Spec.DesiredStatus == agentapi.StatusStopped {
		return false
	}
	if now.Sub(t.Rec.Deactivating.Time) > maxDeactivation || s.cfg.LoadBalancers == nil {
		return true
	}
	sc := rec.scope()
	for _, lb := range rec.lbsOf(t) {
		target, ok := lbTarget(t.Rec, lb)
		if !ok {
			continue
		}
		h, err := s.cfg.LoadBalancers.TargetHealth(ctx, sc.account, sc.region, lb.TargetGroupArn, []LBTarget{target})
		if err != nil {
			if tt, xerr := s.cfg.LoadBalancers.TargetGroupType(ctx, sc.account, sc.region, lb.TargetGroupArn); xerr == nil && tt == "" {
				continue // the group was deleted: nothing left to drain
			}
			s.log.Warn("target health", "task", t.ID, "targetGroup", lb.TargetGroupArn, "err", err)
			return false
		}
		switch h[target] {
		case "draining":
			return false
		case "": // drained and gone
		default:
			// Still registered: a StopTask deactivated it. Deregister now;
			// a later pass waits for the drain.
			if err := s.cfg.LoadBalancers.DeregisterTargets(ctx, sc.account, sc.region, lb.TargetGroupArn, []LBTarget{target}); err != nil {
				s.log.Warn("deregister target", "task", t.ID, "targetGroup", lb.TargetGroupArn, "err", err)
			}
			return false
		}
	}
	return true
}

// lbTarget is a task's target in a load balancer: its address and the container port.
//
// An awsvpc task is an ip target (its ENI's address, the container port);
// a bridge or host task is an instance target (its container instance,
// the host port the container port is published on), once its host has
// reported the binding.
func lbTarget(r *taskRecord, lb ServiceLoadBalancer) (LBTarget, bool) {
	if lb.ContainerPort == nil {
		return LBTarget{}, false
	}
	switch r.Spec.NetworkMode {
	case networkBridge, networkHost:
		if r.Node == "" {
			return LBTarget{}, false
		}
		for _, c := range r.Task.Containers {
			if c.Name != lb.ContainerName {
				continue
			}
			for _, b := range c.NetworkBindings {
				if b.ContainerPort == *lb.ContainerPort && b.HostPort != 0 {
					return LBTarget{ID: r.Node, Port: b.HostPort}, true
				}
			}
		}
		return LBTarget{}, false
	}
	if r.Spec.ENI == nil || r.Spec.ENI.PrivateIP == "" {
		return LBTarget{}, false
	}
	return LBTarget{ID: r.Spec.ENI.PrivateIP, Port: *lb.ContainerPort}, true
}

// deregisterTargets takes a task out of its target groups before it stops.
// Errors are logged: deregistration is idempotent and the load balancer
// drops targets that stop answering.
func (s *Service) deregisterTargets(ctx context.Context, rec *serviceRecord, t *svcTask) {
	if s.cfg.LoadBalancers == nil || t.Rec == nil {
		return
	}
	sc := rec.scope()
	for _, lb := range rec.lbsOf(t) {
		if target, ok := lbTarget(t.Rec, lb); ok {
			if err := s.cfg.LoadBalancers.DeregisterTargets(ctx, sc.account, sc.region, lb.TargetGroupArn, []LBTarget{target}); err != nil {
				s.log.Warn("deregister target", "task", t.ID, "targetGroup", lb.TargetGroupArn, "err", err)
			}
		}
	}
}
