// Package logs owns CloudWatch Logs: the API (awsJson1_1,
// `Logs_20140328.<Op>`, signed as `logs`), the store that keeps log groups,
// streams and events in the server's data dir (store.go, bbolt), the filter
// pattern language (filter.go), the retention controller that deletes
// events older than their group's retention, and the agent endpoint through
// which hosts ship the output of containers using the awslogs log driver
// (agent.go). The AWS API and the agent endpoint write to the same store.
//
// Log groups belong to an account and region; events are ordered by
// timestamp, then ingestion order.
package logs

import (
	"context"
	"log/slog"
	"time"

	"github.com/berthdev/berth/internal/protocol"
)

// TargetPrefix is CloudWatch Logs' X-Amz-Target prefix.
const TargetPrefix = "Logs_20140328"

// Config configures the logs service.
type Config struct {
	Store  *Store
	Logger *slog.Logger
	// ExpiryInterval is how often the retention controller runs (default a
	// minute).
	ExpiryInterval time.Duration
	// Now is the clock (tests may replace it).
	Now func() time.Time
	// Placement says which tasks run on which host: the agent endpoint
	// stores a batch only into a stream of a task placed on the posting
	// node, in that task's account (nil: every batch is refused).
	Placement TaskPlacement
}

// TaskPlacement is what the agent endpoint needs of the control plane that
// places tasks (ECS; the daemon plugs it in, so that this package does not
// import ecs).
type TaskPlacement interface {
	// TaskOnNode returns the account of task taskArn and the streams its
	// awslogs containers write to, if the task is placed on node nodeID
	// and may still ship logs (not stopped, or stopped only a short while
	// ago: its shipper drains after STOPPED); ok is false otherwise.
	TaskOnNode(ctx context.Context, nodeID, taskArn string) (task PlacedTask, ok bool, err error)
}

// PlacedTask is a task as TaskPlacement knows it.
type PlacedTask struct {
	Account string
	Streams []TaskStream
}

// TaskStream is a stream an awslogs container of a task writes to.
type TaskStream struct {
	Region, Group, Stream string
	CreateGroup           bool // the container may create the group
}

// Service implements the CloudWatch Logs API.
type Service struct {
	cfg Config
	st  *Store
	log *slog.Logger
}

// New creates the service.
func New(cfg Config) *Service {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ExpiryInterval <= 0 {
		cfg.ExpiryInterval = time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{cfg: cfg, st: cfg.Store, log: cfg.Logger}
}

// JSONService returns the API's operations.
func (s *Service) JSONService() protocol.JSONService {
	return protocol.JSONService{
		TargetPrefix:      TargetPrefix,
		SigningName:       "logs",
		InternalErrorCode: codeServiceUnavailable,
		Ops: map[string]protocol.JSONHandler{
			"CreateLogGroup":        s.createLogGroup,
			"DescribeLogGroups":     s.describeLogGroups,
			"DeleteLogGroup":        s.deleteLogGroup,
			"PutRetentionPolicy":    s.putRetentionPolicy,
			"DeleteRetentionPolicy": s.deleteRetentionPolicy,
			"CreateLogStream":       s.createLogStream,
			"DescribeLogStreams":    s.describeLogStreams,
			"DeleteLogStream":       s.deleteLogStream,
			"PutLogEvents":          s.putLogEvents,
			"GetLogEvents":          s.getLogEvents,
			"FilterLogEvents":       s.filterLogEvents,
		},
	}
}

// Run runs the retention controller until ctx ends: every ExpiryInterval it
// deletes the events older than their group's retention.
func (s *Service) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.ExpiryInterval)
	defer t.Stop()
	for {
		s.expire()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

func (s *Service) expire() {
	n, err := s.st.Expire(s.cfg.Now(), 10000)
	if err != nil {
		s.log.Warn("retention expiry", "err", err)
		return
	}
	if n > 0 {
		s.log.Debug("expired log events", "events", n)
	}
}

// scopeOf is the caller's account and region.
func scopeOf(ctx context.Context) (Scope, error) {
	id, ok := protocol.IdentityFrom(ctx)
	if !ok || id.AccountID == "" {
		return Scope{}, protocol.NewError(codeAccessDenied, 400, "The request is not authenticated.")
	}
	region := id.Region
	if region == "" {
		region = "us-east-1"
	}
	return Scope{Account: id.AccountID, Region: region}, nil
}

func groupArn(sc Scope, name string) string {
	return "arn:aws:logs:" + sc.Region + ":" + sc.Account + ":log-group:" + name
}

func streamArn(sc Scope, group, stream string) string {
	return groupArn(sc, group) + ":log-stream:" + stream
}
