package agentapi

import (
	"context"
	"net/http"
)

// The awslogs log driver: the agent ships the output of containers whose
// logConfiguration names it to the control plane's CloudWatch Logs store.

// Log drivers and awslogs options (ECS's names).
const (
	LogDriverAWSLogs = "awslogs"

	AWSLogsGroup            = "awslogs-group"
	AWSLogsRegion           = "awslogs-region"
	AWSLogsStreamPrefix     = "awslogs-stream-prefix"
	AWSLogsCreateGroup      = "awslogs-create-group"
	AWSLogsDatetimeFormat   = "awslogs-datetime-format"
	AWSLogsMultilinePattern = "awslogs-multiline-pattern"
	LogsMode                = "mode"            // blocking (default) | non-blocking
	LogsMaxBufferSize       = "max-buffer-size" // non-blocking only; e.g. 1m (default), 25m
)

// LogConfiguration is a container's log driver and its options.
type LogConfiguration struct {
	LogDriver string            `json:"logDriver"`
	Options   map[string]string `json:"options,omitempty"`
}

// PathLogs is where an agent ships container output (POST, a LogsRequest).
// A request without events only makes sure the stream exists (and the group,
// with CreateGroup): the agent asks before it starts the container.
const PathLogs = PathPrefix + "logs"

// LogsRequest is a batch of a container's output for one log stream.
type LogsRequest struct {
	NodeID      string `json:"nodeId"`
	TaskArn     string `json:"taskArn"`
	Account     string `json:"account"`
	Region      string `json:"region"`
	Group       string `json:"group"`
	Stream      string `json:"stream"`
	CreateGroup bool   `json:"createGroup,omitempty"`
	// End is where the batch ends in the container's output (bytes): a
	// retried batch that ends at or before what the stream already holds
	// is acknowledged without being stored twice.
	End    int64      `json:"end,omitempty"`
	Events []LogEvent `json:"events,omitempty"`
}

// LogEvent is one event: milliseconds since the epoch and the message.
type LogEvent struct {
	Timestamp int64  `json:"timestamp"`
	Message   string `json:"message"`
}

// LogsErrorGroupNotFound is the error a LogsRequest gets (HTTP 404) when
// its group does not exist and may not be created.
const LogsErrorGroupNotFound = "ResourceNotFoundException: The specified log group does not exist."

// LogsResponse acknowledges a batch. Offset is the End of the last batch
// the stream holds from its container: a restarted agent resumes there.
type LogsResponse struct {
	Offset int64 `json:"offset"`
}

// PutLogs ships a batch (or, without events, makes sure the stream exists).
func (c *Client) PutLogs(ctx context.Context, r LogsRequest) (LogsResponse, error) {
	var out LogsResponse
	err := c.do(ctx, http.MethodPost, PathLogs, r, &out)
	return out, err
}

// AWSLogsStream is the stream an awslogs container's output goes to:
// prefix/container/task-id, as on Fargate (container/task-id without a
// prefix).
func AWSLogsStream(prefix, container, taskID string) string {
	if prefix == "" {
		return container + "/" + taskID
	}
	return prefix + "/" + container + "/" + taskID
}
