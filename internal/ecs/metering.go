package ecs

import (
	"context"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/store"
)

// Meter records the usage of a stopped task (the billing service, through
// the daemon's adapter). It must be idempotent: ECS calls it when a task
// reaches STOPPED and again from the purge controller until a call has
// succeeded and the task record says so (taskRecord.Metered), so a crash in
// between, a repeated report or a second replica may call it twice.
type Meter interface {
	MeterTask(ctx context.Context, t StoppedTask) error
}

// StoppedTask is what billing needs to know of a stopped task.
type StoppedTask struct {
	Account, Region, TaskID, TaskArn string
	Cluster, Group, Family           string
	LaunchType, CapacityProvider     string
	Architecture                     string
	CPU, MemoryMiB, EphemeralGiB     int
	// The task's timestamps (nil when it never got there).
	CreatedAt, PullStartedAt, StartedAt, StoppedAt *time.Time
	Tags                                           map[string]string
}

func stoppedTask(r *taskRecord) StoppedTask {
	t := &r.Task
	st := StoppedTask{Account: r.Spec.Account, Region: r.Spec.Region, TaskID: r.Spec.TaskID, TaskArn: t.TaskArn,
		Cluster: lastSegment(t.ClusterArn), Group: t.Group, Family: r.Spec.Family, LaunchType: t.LaunchType,
		CapacityProvider: t.CapacityProviderName,
		CPU:              r.Spec.CPU, MemoryMiB: r.Spec.MemoryMiB,
		CreatedAt: timeOf(t.CreatedAt), PullStartedAt: timeOf(t.PullStartedAt), StartedAt: timeOf(t.StartedAt), StoppedAt: timeOf(t.StoppedAt)}
	if t.EphemeralStorage != nil {
		st.EphemeralGiB = t.EphemeralStorage.SizeInGiB
	}
	if len(t.Tags) > 0 {
		st.Tags = make(map[string]string, len(t.Tags))
		for _, tag := range t.Tags {
			st.Tags[tag.Key] = tag.Value
		}
	}
	return st
}

func timeOf(t *Time) *time.Time {
	if t == nil {
		return nil
	}
	v := t.Time
	return &v
}

// meterStopped meters the stopped task at key and records that it is
// metered; a failure is logged and left to the purge controller's next pass.
func (s *Service) meterStopped(ctx context.Context, key string) bool {
	if s.cfg.Meter == nil {
		return true
	}
	var r taskRecord
	if _, err := s.st.Get(ctx, key, &r); err != nil || r.Task.LastStatus != agentapi.StatusStopped {
		return false
	}
	if r.Metered {
		return true
	}
	if err := s.cfg.Meter.MeterTask(ctx, stoppedTask(&r)); err != nil {
		s.log.Warn("meter stopped task", "task", r.Spec.TaskID, "err", err)
		return false
	}
	_, err := store.Mutate(ctx, s.st, key, func(r *taskRecord) ([]clientv3.Op, error) {
		r.Metered = true
		return nil, nil
	})
	if err != nil {
		s.log.Warn("record metered task", "key", key, "err", err)
		return false
	}
	return true
}
