package agentapi

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
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

// LogsContentType is the compact form of a LogsRequest that PutLogs sends
// (JSON costs as much CPU as storing the events): the request without its
// events as one line of JSON, then each event as a uvarint timestamp, a
// uvarint length and the message.
const LogsContentType = "application/vnd.berth.logs-batch"

// EncodeLogsRequest writes r in LogsContentType.
func EncodeLogsRequest(r LogsRequest) ([]byte, error) {
	events := r.Events
	r.Events = nil
	head, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode logs batch: %w", err)
	}
	size := len(head) + 1
	for _, e := range events {
		size += 2*binary.MaxVarintLen64 + len(e.Message)
	}
	b := make([]byte, 0, size)
	b = append(append(b, head...), '\n')
	for _, e := range events {
		b = binary.AppendUvarint(b, uint64(e.Timestamp))
		b = binary.AppendUvarint(b, uint64(len(e.Message)))
		b = append(b, e.Message...)
	}
	return b, nil
}

// DecodeLogsRequest reads a request in LogsContentType.
func DecodeLogsRequest(b []byte) (LogsRequest, error) {
	var r LogsRequest
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return r, errors.New("logs batch: no header line")
	}
	if err := json.Unmarshal(b[:i], &r); err != nil {
		return r, fmt.Errorf("logs batch header: %w", err)
	}
	r.Events = nil
	// Two passes: the first checks the frames and counts them, the second
	// slices every message out of one string, so that a batch of 10,000
	// events costs two allocations rather than 10,000.
	frames := b[i+1:]
	n, err := countLogFrames(frames)
	if err != nil || n == 0 {
		return r, err
	}
	all := string(frames)
	r.Events = make([]LogEvent, 0, n)
	for at := 0; at < len(all); {
		ts, k := binary.Uvarint(frames[at:])
		at += k
		l, k := binary.Uvarint(frames[at:])
		at += k
		r.Events = append(r.Events, LogEvent{Timestamp: int64(ts), Message: all[at : at+int(l)]})
		at += int(l)
	}
	return r, nil
}

// countLogFrames checks the events of a batch (varint timestamp, varint
// length, message) and counts them.
func countLogFrames(rest []byte) (int, error) {
	n := 0
	for len(rest) > 0 {
		ts, k := binary.Uvarint(rest)
		if k <= 0 || ts > math.MaxInt64 {
			return 0, errors.New("logs batch: bad timestamp")
		}
		rest = rest[k:]
		l, k := binary.Uvarint(rest)
		if k <= 0 || l > uint64(len(rest)-k) {
			return 0, errors.New("logs batch: bad message length")
		}
		rest = rest[k+int(l):]
		n++
	}
	return n, nil
}

// ErrLogsRefused is the control plane refusing a batch for good (403): the
// task is not placed on this node (or stopped too long ago), or the stream
// is not one of its own. Retrying cannot help.
var ErrLogsRefused = errors.New("logs batch refused")

// PutLogs ships a batch (or, without events, makes sure the stream exists).
func (c *Client) PutLogs(ctx context.Context, r LogsRequest) (LogsResponse, error) {
	var out LogsResponse
	body, err := EncodeLogsRequest(r)
	if err != nil {
		return out, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.BaseURL+PathLogs, bytes.NewReader(body))
	if err != nil {
		return out, err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	req.Header.Set("Content-Type", LogsContentType)
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return out, fmt.Errorf("POST %s: %w", PathLogs, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return out, fmt.Errorf("POST %s: read reply: %w", PathLogs, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e ErrorBody
		_ = json.Unmarshal(b, &e)
		if resp.StatusCode == http.StatusForbidden {
			return out, fmt.Errorf("POST %s: %s: %w: %s", PathLogs, resp.Status, ErrLogsRefused, e.Error)
		}
		return out, fmt.Errorf("POST %s: %s: %s", PathLogs, resp.Status, e.Error)
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return out, fmt.Errorf("POST %s: decode reply: %w", PathLogs, err)
	}
	return out, nil
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
