package ecs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/protocol"
	"github.com/berthdev/berth/internal/store"
)

// BerthTargetPrefix is the awsJson target prefix of berth's own operations,
// those AWS has no API for. They are signed and authorised like ECS calls.
const BerthTargetPrefix = "Berth_20261125"

// BerthService returns berth's own operations.
func (s *Service) BerthService() protocol.JSONService {
	return protocol.JSONService{
		TargetPrefix:      BerthTargetPrefix,
		SigningName:       "ecs",
		InternalErrorCode: codeServer,
		Ops:               map[string]protocol.JSONHandler{"GetContainerLogs": s.getContainerLogs},
	}
}

// ContainerLogsInput asks for a piece of a container's stdout and stderr.
type ContainerLogsInput struct {
	Cluster   string `json:"cluster"`
	Task      string `json:"task"`
	Container string `json:"container"`
	Offset    int64  `json:"offset"`
	Limit     int64  `json:"limit"`
}

// ContainerLogsOutput is that piece, and where the next one starts.
type ContainerLogsOutput struct {
	Data        string `json:"data"`
	NextOffset  int64  `json:"nextOffset"`
	TaskStopped bool   `json:"taskStopped"`
}

func (s *Service) getContainerLogs(ctx context.Context, body []byte) (any, error) {
	sc, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	var in ContainerLogsInput
	if err := protocol.Decode(body, &in); err != nil {
		return nil, err
	}
	if in.Task == "" || in.Container == "" {
		return nil, invalidParam("task and container are required.")
	}
	cluster, err := s.getCluster(ctx, sc, in.Cluster)
	if err != nil {
		return nil, err
	}
	var rec taskRecord
	if _, err := s.st.Get(ctx, taskKey(sc, cluster.ClusterName, taskID(in.Task)), &rec); errors.Is(err, store.ErrNotFound) {
		return nil, invalidParam("The referenced task was not found.")
	} else if err != nil {
		return nil, err
	}
	out := &ContainerLogsOutput{NextOffset: in.Offset, TaskStopped: rec.Task.LastStatus == agentapi.StatusStopped}
	if rec.Node == "" {
		return out, nil
	}
	var node nodeRecord
	if _, err := s.st.Get(ctx, store.Key("nodes", rec.Node), &node); err != nil {
		return nil, protocol.NewError(codeServer, 500, "The host of task %s is not connected; its logs cannot be read now.", rec.Spec.TaskID)
	}
	q := url.Values{"task": {rec.Spec.TaskID}, "container": {in.Container},
		"offset": {strconv.FormatInt(in.Offset, 10)}, "limit": {strconv.FormatInt(in.Limit, 10)}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, node.Address+"/logs?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	if node.CallbackToken != "" {
		req.Header.Set("Authorization", "Bearer "+node.CallbackToken)
	} else if s.cfg.AgentToken != nil {
		tok, err := s.cfg.AgentToken(ctx)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("read logs from host %s: %w", rec.Node, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 2<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("read logs from host %s: %s %v", rec.Node, resp.Status, err)
	}
	out.Data = string(b)
	out.NextOffset, _ = strconv.ParseInt(resp.Header.Get("X-Berth-Next-Offset"), 10, 64)
	return out, nil
}
