package daemon

import (
	"context"

	"github.com/berthdev/berth/internal/ecs"
	"github.com/berthdev/berth/internal/logs"
)

// logPlacement lets the logs agent endpoint check, through ECS, that a
// shipped batch comes from the host its task is placed on, without either
// package importing the other.
type logPlacement struct{ e *ecs.Service }

func (p logPlacement) TaskOnNode(ctx context.Context, nodeID, taskArn string) (logs.PlacedTask, bool, error) {
	tl, ok, err := p.e.TaskLogStreams(ctx, nodeID, taskArn)
	if !ok || err != nil {
		return logs.PlacedTask{}, false, err
	}
	t := logs.PlacedTask{Account: tl.Account}
	for _, st := range tl.Streams {
		t.Streams = append(t.Streams, logs.TaskStream(st))
	}
	return t, true, nil
}
