package daemon

import (
	"context"

	"github.com/berthdev/berth/internal/billing"
	"github.com/berthdev/berth/internal/ecs"
)

// meterAdapter lets ECS meter stopped tasks through billing without either
// importing the other.
type meterAdapter struct{ b *billing.Service }

func (m meterAdapter) MeterTask(ctx context.Context, t ecs.StoppedTask) error {
	_, err := m.b.Record(ctx, billing.Task(t))
	return err
}
