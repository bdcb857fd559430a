package ecs

// Task IAM roles: a task definition's taskRoleArn (or the run's override)
// must name a role of the task's account that ecs-tasks.amazonaws.com may
// assume, else RunTask fails with ECS's ClientException. A task placed on a
// node gets temporary credentials for that role through the agent protocol
// (agentapi.PathTaskCredentials) while it is not STOPPED; when it stops,
// they are revoked at once (agentReport, and the purge controller as a
// safety net).

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/protocol"
	"github.com/berthdev/berth/internal/store"
)

// TaskRoles is what ECS needs of IAM and of the credentials store for task
// roles; daemon plugs in an adapter over *iam.Service and
// *accounts.Accounts.
type TaskRoles interface {
	// AssumeRole returns the ARN of the role roleRef names (an ARN or a
	// role name) if ecs-tasks.amazonaws.com may assume it for a task of
	// account in clusterArn; otherwise an error wrapping
	// ErrRoleNotAssumable.
	AssumeRole(ctx context.Context, account, roleRef, clusterArn string) (string, error)
	// Credentials returns the task's current credentials for roleArn: the
	// same set while it has more than 15 minutes left, else a new one.
	Credentials(ctx context.Context, account, roleArn, taskArn, taskID string) (agentapi.TaskCredentials, error)
	// Revoke ends every set of the task's credentials at once.
	Revoke(ctx context.Context, taskID string) error
}

// ErrRoleNotAssumable: the role does not exist in the task's account, or
// its trust policy does not let ecs-tasks.amazonaws.com assume it.
var ErrRoleNotAssumable = errors.New("role cannot be assumed")

func errRoleNotAssumable(role string) error {
	return clientErr("ECS was unable to assume the role '%s' that was provided for this task. Please verify that the role being passed "+
		"has the proper trust relationship and permissions and that your IAM user has permissions to pass this role.", role)
}

// evLaunchFailed is ECS's service event for a launch refused before any
// task exists (a role ECS cannot assume): "(service web) failed to launch a
// task with (error ECS was unable to assume the role …)." ok is false for an
// internal failure, which is only logged.
func evLaunchFailed(svc string, err error) (string, bool) {
	var pe *protocol.Error
	if !errors.As(err, &pe) {
		return "", false
	}
	return fmt.Sprintf("(service %s) failed to launch a task with (error %s).", svc, pe.Message), true
}

// taskRole is the role a task of td runs with: the run's override, else
// the definition's.
func taskRole(td *TaskDefinition, o *TaskOverride) string {
	if o != nil {
		return cmp.Or(o.TaskRoleArn, td.TaskRoleArn)
	}
	return td.TaskRoleArn
}

// checkTaskRole refuses a run whose task role ECS could not assume, as
// RunTask does (ClientException).
func (s *Service) checkTaskRole(ctx context.Context, sc scope, cluster *Cluster, role string) error {
	if role == "" || s.cfg.TaskRoles == nil {
		return nil
	}
	_, err := s.cfg.TaskRoles.AssumeRole(ctx, sc.account, role, cluster.ClusterArn)
	if errors.Is(err, ErrRoleNotAssumable) {
		return errRoleNotAssumable(role)
	}
	return err
}

// agentTaskCredentials answers a host's ask for the credentials of a task
// placed on it: 404 unless the task is there, has a role and is not
// STOPPED; 403 if the role can no longer be assumed (deleted, or its trust
// policy changed).
func (s *Service) agentTaskCredentials(w http.ResponseWriter, r *http.Request) {
	var req agentapi.TaskCredentialsRequest
	if err := decodeAgent(r, &req); err != nil || req.NodeID == "" || req.TaskArn == "" {
		agentError(w, http.StatusBadRequest, "a task-credentials request needs a nodeId and a taskArn")
		return
	}
	if !mayAct(w, r, req.NodeID) {
		return
	}
	ctx := r.Context()
	key, ok := taskKeyFromArn(req.TaskArn)
	if !ok || s.cfg.TaskRoles == nil {
		agentError(w, http.StatusNotFound, "no credentials for task "+req.TaskArn)
		return
	}
	live := func() (*taskRecord, bool, error) {
		var rec taskRecord
		_, err := s.st.Get(ctx, key, &rec)
		if errors.Is(err, store.ErrNotFound) {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, err
		}
		ok := rec.Node == req.NodeID && rec.Spec.TaskRoleArn != "" && rec.Task.LastStatus != agentapi.StatusStopped
		return &rec, ok, nil
	}
	rec, ok, err := live()
	if err != nil {
		agentError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	if !ok {
		agentError(w, http.StatusNotFound, "no credentials for task "+req.TaskArn+" on node "+req.NodeID)
		return
	}
	roleArn, err := s.cfg.TaskRoles.AssumeRole(ctx, rec.Spec.Account, rec.Spec.TaskRoleArn, rec.Task.ClusterArn)
	if errors.Is(err, ErrRoleNotAssumable) {
		agentError(w, http.StatusForbidden, errRoleNotAssumable(rec.Spec.TaskRoleArn).Error())
		return
	}
	if err != nil {
		agentError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	creds, err := s.cfg.TaskRoles.Credentials(ctx, rec.Spec.Account, roleArn, rec.Task.TaskArn, rec.Spec.TaskID)
	if err != nil {
		agentError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	// The task may have stopped while the set was minted, after its
	// revocation listed the task's sets: look again, revoke if so. (The
	// stop is recorded before the revocation lists, and this read follows
	// the mint, so one of the two sees the other.)
	if _, ok, err := live(); err != nil || !ok {
		s.revokeCredentials(ctx, rec)
		agentError(w, http.StatusNotFound, "task "+req.TaskArn+" stopped")
		return
	}
	agentReply(w, creds)
}

// revokeCredentials ends the credentials of a stopped task (a no-op for a
// task without a role). A failure is logged; the purge controller retries.
func (s *Service) revokeCredentials(ctx context.Context, rec *taskRecord) {
	if rec == nil || rec.Spec.TaskRoleArn == "" || s.cfg.TaskRoles == nil {
		return
	}
	if err := s.cfg.TaskRoles.Revoke(ctx, rec.Spec.TaskID); err != nil {
		s.log.Warn("revoke task credentials", "task", rec.Task.TaskArn, "err", err)
	}
}
