package logs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/berthdev/berth/internal/agentapi"
)

// maxAgentBody bounds an agent's batch on the wire (a batch holds at most
// 10,000 events and 1 MiB of messages; JSON escaping can more than double
// that).
const maxAgentBody = 8 << 20

// AgentHandler serves agentapi.PathLogs: hosts shipping the output of
// awslogs containers. Agents present a token, which caller checks: it
// returns whether the token is valid and the one node it may act for (""
// for the platform's join token, which may act for any). A batch is stored
// only if it comes from that node and names a task placed on it and one of
// that task's streams, in its account (Config.Placement): otherwise 403, and
// nothing is stored or created.
func (s *Service) AgentHandler(caller func(ctx context.Context, token string) (node string, ok bool)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		var node string
		if ok && caller != nil {
			node, ok = caller(r.Context(), token)
		}
		if !ok || caller == nil {
			agentError(w, http.StatusUnauthorized, "invalid agent token")
			return
		}
		if r.URL.Path != agentapi.PathLogs || r.Method != http.MethodPost {
			agentError(w, http.StatusNotFound, "no such agent call: "+r.Method+" "+r.URL.Path)
			return
		}
		buf, err := readBody(r)
		if err != nil || len(*buf) > maxAgentBody {
			agentError(w, http.StatusBadRequest, "unreadable or too large logs batch")
			return
		}
		var req agentapi.LogsRequest
		if r.Header.Get("Content-Type") == agentapi.LogsContentType {
			req, err = agentapi.DecodeLogsRequest(*buf)
		} else {
			err = json.Unmarshal(*buf, &req)
		}
		putBuf(buf) // the request's strings are copies
		if err != nil {
			agentError(w, http.StatusBadRequest, "decode logs batch: "+err.Error())
			return
		}
		if node != "" && req.NodeID != node {
			agentError(w, http.StatusForbidden, "this host may not act as node "+req.NodeID)
			return
		}
		if status, err := s.agentAllowed(r.Context(), req); err != nil {
			if status != http.StatusForbidden {
				s.log.Warn("check shipped logs' task", "task", req.TaskArn, "node", req.NodeID, "err", err)
			}
			agentError(w, status, err.Error())
			return
		}
		offset, status, err := s.agentPut(req)
		if err != nil {
			if status == http.StatusInternalServerError {
				s.log.Error("store shipped logs", "task", req.TaskArn, "group", req.Group, "stream", req.Stream, "err", err)
			}
			agentError(w, status, err.Error())
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(agentapi.LogsResponse{Offset: offset})
	})
}

// readBody reads a request's body of at most maxAgentBody (+1, to tell a
// body too large) into a pooled buffer: in one read of its length when it
// is known, as it is from agents (io.ReadAll would grow and copy a batch's
// MiB a dozen times). Give the buffer back with putBuf.
func readBody(r *http.Request) (*[]byte, error) {
	if n := r.ContentLength; n > 0 && n <= maxAgentBody {
		p := getBuf(int(n))
		*p = (*p)[:n]
		if _, err := io.ReadFull(r.Body, *p); err != nil {
			putBuf(p)
			return nil, err
		}
		return p, nil
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, maxAgentBody+1))
	return &b, err
}

// agentAllowed checks that req's task is placed on req's node and that req
// names one of the task's streams, in the task's account: a host ships only
// the output of the tasks it runs. The status is 403 for a batch refused,
// 503 if the control plane cannot say.
func (s *Service) agentAllowed(ctx context.Context, req agentapi.LogsRequest) (int, error) {
	if s.cfg.Placement == nil {
		return http.StatusForbidden, errors.New("this server takes no shipped logs: it does not know where tasks run")
	}
	task, ok, err := s.cfg.Placement.TaskOnNode(ctx, req.NodeID, req.TaskArn)
	if err != nil {
		return http.StatusServiceUnavailable, fmt.Errorf("look up task %s: %w", req.TaskArn, err)
	}
	if !ok {
		return http.StatusForbidden, fmt.Errorf("task %s is not placed on node %s (or stopped too long ago)", req.TaskArn, req.NodeID)
	}
	if req.Account != task.Account {
		return http.StatusForbidden, fmt.Errorf("task %s belongs to another account than %s", req.TaskArn, req.Account)
	}
	for _, st := range task.Streams {
		if st.Region == req.Region && st.Group == req.Group && st.Stream == req.Stream && (st.CreateGroup || !req.CreateGroup) {
			return http.StatusOK, nil
		}
	}
	return http.StatusForbidden, fmt.Errorf("task %s does not log to stream %s of group %s in %s", req.TaskArn, req.Stream, req.Group, req.Region)
}

// agentPut stores one shipped batch, creating the stream (and the group,
// when asked) as the awslogs driver does.
func (s *Service) agentPut(req agentapi.LogsRequest) (int64, int, error) {
	if req.Account == "" || req.Region == "" {
		return 0, http.StatusBadRequest, errors.New("a logs batch needs an account and a region")
	}
	if err := checkGroupName("awslogs-group", req.Group); err != nil {
		return 0, http.StatusBadRequest, err
	}
	if err := checkStreamName("logStreamName", req.Stream); err != nil {
		return 0, http.StatusBadRequest, err
	}
	if len(req.Events) > maxBatchEvents {
		return 0, http.StatusBadRequest, errors.New("a logs batch holds at most 10000 events")
	}
	sc := Scope{Account: req.Account, Region: req.Region}
	now := s.cfg.Now()
	events := make([]Event, 0, len(req.Events))
	for _, e := range req.Events {
		if e.Message == "" || e.Timestamp < 0 {
			continue
		}
		events = append(events, Event{Timestamp: e.Timestamp, Message: e.Message})
	}
	if len(events) == 0 && req.End == 0 {
		offset, err := s.st.EnsureStream(sc, req.Group, req.Stream, req.CreateGroup, now)
		if errors.Is(err, ErrGroupNotFound) {
			return 0, http.StatusNotFound, errGroupMissing
		} else if err != nil {
			return 0, http.StatusInternalServerError, err
		}
		return offset, http.StatusOK, nil
	}
	_, err := s.st.Append(sc, req.Group, req.Stream, events, now, PutOptions{AgentOffset: req.End})
	if errors.Is(err, ErrStreamNotFound) || errors.Is(err, ErrGroupNotFound) {
		if _, err = s.st.EnsureStream(sc, req.Group, req.Stream, req.CreateGroup, now); err == nil {
			_, err = s.st.Append(sc, req.Group, req.Stream, events, now, PutOptions{AgentOffset: req.End})
		}
	}
	switch {
	case errors.Is(err, ErrGroupNotFound):
		return 0, http.StatusNotFound, errGroupMissing
	case err != nil:
		return 0, http.StatusInternalServerError, err
	}
	return req.End, http.StatusOK, nil
}

func agentError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(agentapi.ErrorBody{Error: msg})
}

// errGroupMissing carries AWS's text for a missing log group, which the
// agent shows verbatim in the task's stopped reason.
//
//lint:ignore ST1005 AWS's message, verbatim
var errGroupMissing = errors.New(agentapi.LogsErrorGroupNotFound)
