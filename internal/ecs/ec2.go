package ecs

import (
	"context"
	"fmt"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/scheduler"
	"github.com/berthdev/berth/internal/store"
)

// The EC2 launch type: tasks placed on the container instances of their
// cluster (instances.go) rather than on berth's own capacity. RunTask places
// them at once, so that a task no instance can take is in RunTask's
// failures with ECS's reason, as ECS does; the placement controller takes
// the same lock, so the two never plan on the same snapshot.

// PlacementStrategy is ECS's placementStrategy element.
type PlacementStrategy struct {
	Type  string `json:"type"`
	Field string `json:"field,omitempty"`
}

// PlacementConstraint is ECS's placementConstraints element.
type PlacementConstraint struct {
	Type       string `json:"type"`
	Expression string `json:"expression,omitempty"`
}

// taskPlacement is how an EC2 task is to be placed.
type taskPlacement struct {
	Strategy    []PlacementStrategy   `json:"strategy,omitempty"`
	Constraints []PlacementConstraint `json:"constraints,omitempty"`
}

// validatePlacement checks placement strategies and constraints as ECS
// does (the scheduler owns the rules and the query language).
func validatePlacement(strats []PlacementStrategy, cons []PlacementConstraint) error {
	if err := scheduler.ValidatePlacement(schedStrategies(strats), schedConstraints(cons)); err != nil {
		return invalidParam("%s", err.Error())
	}
	return nil
}

func schedStrategies(in []PlacementStrategy) []scheduler.Strategy {
	out := make([]scheduler.Strategy, len(in))
	for i, st := range in {
		out[i] = scheduler.Strategy{Type: st.Type, Field: st.Field}
	}
	return out
}

func schedConstraints(in []PlacementConstraint) []scheduler.Constraint {
	out := make([]scheduler.Constraint, len(in))
	for i, c := range in {
		out[i] = scheduler.Constraint{Type: c.Type, Expression: c.Expression}
	}
	return out
}

// ec2Size is an EC2 task's reservation: the task-level size where the
// definition has one, else the sum of its containers' (memory, or
// memoryReservation when that is all a container has).
func ec2Size(td *TaskDefinition, cpu, mem int) (int, int) {
	if cpu == 0 {
		for _, c := range td.ContainerDefinitions {
			cpu += c.Cpu
		}
	}
	if mem == 0 {
		for _, c := range td.ContainerDefinitions {
			switch {
			case c.Memory != nil:
				mem += *c.Memory
			case c.MemoryReservation != nil:
				mem += *c.MemoryReservation
			}
		}
	}
	return cpu, mem
}

// runEC2 places count new tasks on the cluster's container instances and
// stores the ones that fit; the others are failures.
//
// targets, for StartTask, are the container instances to start one task on
// each; nil lets the scheduler choose.
func (s *Service) runEC2(ctx context.Context, sc scope, cluster *Cluster, td *TaskDefinition, in *runTaskInput,
	o TaskOverride, vpc *AwsVpcConfiguration, plan *awsvpcPlan, count int, targets []*instanceRecord) ([]*Task, []Failure, error) {
	insts, err := s.listInstances(ctx, sc, cluster.ClusterName)
	if err != nil {
		return nil, nil, err
	}
	if len(insts) == 0 {
		return nil, nil, invalidParam("No Container Instances were found in your cluster.")
	}
	recs, _, err := s.newTasks(sc, cluster, td, in, o, compatEC2, vpc, plan, count, s.cfg.Now())
	if err != nil {
		return nil, nil, err
	}
	s.placeMu.Lock()
	defer s.placeMu.Unlock()
	nodes, err := s.snapshotNodes(ctx)
	if err != nil {
		return nil, nil, err
	}
	byArn := map[string]*taskRecord{}
	reqs := make([]scheduler.Request, 0, len(recs))
	for _, r := range recs {
		byArn[r.Task.TaskArn] = r
		reqs = append(reqs, r.schedulerRequest())
	}
	pool := nodes[ec2Pool(sc, cluster.ClusterName)]
	var pl scheduler.Plan
	if targets == nil {
		pl = scheduler.Place(pool, reqs)
	} else {
		// One task on each named instance, checked against its resources.
		for i, t := range targets {
			var on []scheduler.Node
			for _, n := range pool {
				if n.ID == t.NodeID {
					on = append(on, n)
				}
			}
			one := scheduler.Place(on, reqs[i:i+1])
			pl.Placements = append(pl.Placements, one.Placements...)
			for _, u := range one.Unplaced {
				pl.Unplaced = append(pl.Unplaced, scheduler.Unplaced{TaskID: u.TaskID, Reason: u.Reason})
			}
		}
	}
	failures := []Failure{}
	for _, u := range pl.Unplaced {
		arn := cluster.ClusterArn
		if u.NodeID != "" {
			arn = s.instanceOfNode(ctx, u.NodeID)
		}
		failures = append(failures, Failure{Arn: arn, Reason: u.Reason})
	}
	var ops []clientv3.Op
	for _, p := range pl.Placements {
		r := byArn[p.TaskID]
		b, err := encodeTask(r)
		if err != nil {
			return nil, nil, err
		}
		ops = append(ops, store.OpPutBytes(taskKey(sc, cluster.ClusterName, r.Spec.TaskID), b))
	}
	if len(ops) > 0 {
		if _, err := s.st.C.Txn(ctx).Then(ops...).Commit(); err != nil {
			return nil, nil, fmt.Errorf("store tasks: %w", err)
		}
	}
	tasks := make([]*Task, 0, len(pl.Placements))
	for _, p := range pl.Placements {
		if err := s.commitPlacement(ctx, p, byArn[p.TaskID]); err != nil {
			// Still pending: the placement controller tries again.
			s.log.Warn("commit placement", "task", p.TaskID, "err", err)
		}
		var r taskRecord
		if _, err := s.st.Get(ctx, taskKey(sc, cluster.ClusterName, byArn[p.TaskID].Spec.TaskID), &r); err == nil {
			tasks = append(tasks, &r.Task)
		}
	}
	return tasks, failures, nil
}

// schedulerRequest is what the scheduler needs of a task.
func (r *taskRecord) schedulerRequest() scheduler.Request {
	req := scheduler.Request{ID: r.Task.TaskArn, CPU: r.Spec.CPU, MemoryMiB: r.Spec.MemoryMiB, AZs: r.allowedAZs()}
	if r.Task.LaunchType != compatEC2 {
		return req
	}
	req.LaunchType, req.Group = scheduler.LaunchTypeEC2, r.Task.Group
	for _, pm := range r.Spec.PortMappings {
		if pm.HostPort != 0 {
			req.Ports = append(req.Ports, scheduler.HostPort{Protocol: pm.Protocol, Port: pm.HostPort})
		}
	}
	if p := r.Placement; p != nil {
		req.Strategy, req.Constraints = schedStrategies(p.Strategy), schedConstraints(p.Constraints)
	}
	if len(req.Strategy) == 0 && strings.HasPrefix(r.Task.Group, "service:") {
		req.Strategy = scheduler.ServiceDefaultStrategy()
	}
	return req
}

// instanceOfNode is the container instance ARN of a user's host ("" for
// berth's own).
func (s *Service) instanceOfNode(ctx context.Context, node string) string {
	var o nodeOwner
	if _, err := s.st.Get(ctx, store.Key("nodeowners", node), &o); err != nil {
		return ""
	}
	return o.scope().arn("container-instance/" + o.Cluster + "/" + o.InstanceID)
}

// specNetworking fills the spec's network mode and, for bridge and host
// tasks, the host ports of its port mappings.
func specNetworking(spec *agentapi.TaskSpec, td *TaskDefinition, launchType string) {
	spec.LaunchType = launchType
	spec.NetworkMode = td.NetworkMode
	if td.NetworkMode != networkBridge && td.NetworkMode != networkHost {
		return
	}
	spec.PortMappings = spec.PortMappings[:0]
	for _, c := range td.ContainerDefinitions {
		for _, pm := range c.PortMappings {
			if pm.ContainerPort == nil {
				continue
			}
			m := agentapi.PortMapping{ContainerPort: *pm.ContainerPort, Protocol: protoOf(pm.Protocol), ContainerName: c.Name}
			if pm.HostPort != nil {
				m.HostPort = *pm.HostPort
			}
			if td.NetworkMode == networkHost {
				m.HostPort = m.ContainerPort
			}
			spec.PortMappings = append(spec.PortMappings, m)
		}
	}
}

type startTaskInput struct {
	runTaskInput
	ContainerInstances []string `json:"containerInstances"`
}

// startTask starts a task on each named container instance (ECS's
// StartTask): no scheduler, only the instances' resources are checked.
func (s *Service) startTask(ctx context.Context, body []byte) (any, error) {
	sc, in, err := request[startTaskInput](ctx, body)
	if err != nil {
		return nil, err
	}
	if len(in.ContainerInstances) == 0 || len(in.ContainerInstances) > 10 {
		return nil, invalidParam("containerInstances must name between 1 and 10 container instances.")
	}
	if err := validateTags(in.Tags); err != nil {
		return nil, err
	}
	cluster, err := s.getCluster(ctx, sc, in.Cluster)
	if err != nil {
		return nil, err
	}
	td, err := s.runnableTaskDef(ctx, sc, cluster, in.TaskDefinition, in.Overrides)
	if err != nil {
		return nil, err
	}
	if !contains(td.Compatibilities, compatEC2) {
		return nil, invalidParam("Task definition does not support launch_type EC2.")
	}
	if td.NetworkMode != networkAwsvpc && in.NetworkConfiguration != nil {
		return nil, invalidParam("Network Configuration is not valid for the given networkMode of this task definition.")
	}
	vpc, err := awsvpcConfig(td, in.NetworkConfiguration)
	if err != nil {
		return nil, err
	}
	overrides, err := resolveOverrides(td, in.Overrides, compatEC2)
	if err != nil {
		return nil, err
	}
	targets := make([]*instanceRecord, 0, len(in.ContainerInstances))
	failures := []Failure{}
	for _, ref := range in.ContainerInstances {
		r, _, err := s.getInstance(ctx, sc, cluster, ref)
		if err != nil {
			failures = append(failures, Failure{Arn: instanceArnOf(sc, cluster, ref), Reason: "MISSING"})
			continue
		}
		targets = append(targets, r)
	}
	tasks := []*Task{}
	if len(targets) > 0 {
		plan, err := s.resolveAwsvpc(ctx, sc, vpc)
		if err != nil {
			return nil, err
		}
		placed, fails, err := s.runEC2(ctx, sc, cluster, td, &in.runTaskInput, overrides, vpc, plan, len(targets), targets)
		if err != nil {
			return nil, err
		}
		tasks, failures = append(tasks, placed...), append(failures, fails...)
		s.wakePlacement()
	}
	return map[string]any{"tasks": tasks, "failures": failures}, nil
}
