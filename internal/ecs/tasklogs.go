package ecs

// Which task's logs a host may ship: the logs service asks, for every batch
// an agent posts (agentapi.PathLogs), whether the task is placed on the
// posting node, and which streams its awslogs containers write to, so that
// a host can write only into the streams of the tasks it runs, in their
// accounts. The daemon plugs TaskLogStreams into logs.Config.Placement.

import (
	"context"
	"errors"
	"time"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/store"
)

// LogsAfterStop is how long after a task stopped its host may still ship
// its output. A shipper drains its container's output while the task is
// deprovisioned (up to 15 s) and goes on in the background if it is still
// behind when the task is STOPPED; ten minutes lets a shipper that is far
// behind (hundreds of MB at the ingest rate of a busy host) finish, and is
// well inside StoppedRetention, after which the task is gone anyway.
const LogsAfterStop = 10 * time.Minute

// TaskLogStream is a stream an awslogs container of a task writes to.
type TaskLogStream struct {
	Region, Group, Stream string
	CreateGroup           bool // awslogs-create-group is true
}

// TaskLogs is a task's account and the streams of its awslogs containers.
type TaskLogs struct {
	Account string
	Streams []TaskLogStream
}

// TaskLogStreams returns the account and log streams of task taskArn if it
// is placed on node nodeID and is not STOPPED, or stopped less than
// LogsAfterStop ago; ok is false otherwise (no such task, another node,
// stopped too long ago).
func (s *Service) TaskLogStreams(ctx context.Context, nodeID, taskArn string) (TaskLogs, bool, error) {
	key, ok := taskKeyFromArn(taskArn)
	if !ok || nodeID == "" {
		return TaskLogs{}, false, nil
	}
	var rec taskRecord
	_, err := s.st.Get(ctx, key, &rec)
	if errors.Is(err, store.ErrNotFound) {
		return TaskLogs{}, false, nil
	}
	if err != nil {
		return TaskLogs{}, false, err
	}
	if rec.Node != nodeID || rec.Spec.TaskArn != taskArn {
		return TaskLogs{}, false, nil
	}
	if rec.Task.LastStatus == agentapi.StatusStopped &&
		(rec.Task.StoppedAt == nil || s.cfg.Now().Sub(rec.Task.StoppedAt.Time) > LogsAfterStop) {
		return TaskLogs{}, false, nil
	}
	return taskLogStreams(rec.Spec), true, nil
}

// taskLogStreams lists the streams the agent ships a task's awslogs
// containers to (agent.parseShipConfig names them the same way).
func taskLogStreams(spec agentapi.TaskSpec) TaskLogs {
	tl := TaskLogs{Account: spec.Account}
	for _, cs := range spec.Containers {
		lc := cs.LogConfiguration
		if lc == nil || lc.LogDriver != agentapi.LogDriverAWSLogs {
			continue
		}
		st := TaskLogStream{Region: spec.Region, Group: lc.Options[agentapi.AWSLogsGroup],
			Stream:      agentapi.AWSLogsStream(lc.Options[agentapi.AWSLogsStreamPrefix], cs.Name, spec.TaskID),
			CreateGroup: lc.Options[agentapi.AWSLogsCreateGroup] == "true"}
		if r := lc.Options[agentapi.AWSLogsRegion]; r != "" {
			st.Region = r
		}
		tl.Streams = append(tl.Streams, st)
	}
	return tl
}
