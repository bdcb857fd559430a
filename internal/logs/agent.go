package logs

import (
	"context"
	"encoding/json"
	"errors"
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
// awslogs containers. Agents present the join token, which tokenValid
// checks.
func (s *Service) AgentHandler(tokenValid func(ctx context.Context, token string) bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || tokenValid == nil || !tokenValid(r.Context(), token) {
			agentError(w, http.StatusUnauthorized, "invalid agent token")
			return
		}
		if r.URL.Path != agentapi.PathLogs || r.Method != http.MethodPost {
			agentError(w, http.StatusNotFound, "no such agent call: "+r.Method+" "+r.URL.Path)
			return
		}
		b, err := io.ReadAll(io.LimitReader(r.Body, maxAgentBody+1))
		if err != nil || len(b) > maxAgentBody {
			agentError(w, http.StatusBadRequest, "unreadable or too large logs batch")
			return
		}
		var req agentapi.LogsRequest
		if r.Header.Get("Content-Type") == agentapi.LogsContentType {
			req, err = agentapi.DecodeLogsRequest(b)
		} else {
			err = json.Unmarshal(b, &req)
		}
		if err != nil {
			agentError(w, http.StatusBadRequest, "decode logs batch: "+err.Error())
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
