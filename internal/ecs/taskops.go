package ecs

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"sort"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/protocol"
	"github.com/berthdev/berth/internal/store"
)

// taskID accepts a task id or ARN and returns the id.
func taskID(p string) string { return lastSegment(p) }

func (s *Service) stopTask(ctx context.Context, body []byte) (any, error) {
	sc, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	var in struct {
		Cluster string `json:"cluster"`
		Task    string `json:"task"`
		Reason  string `json:"reason"`
	}
	if err := protocol.Decode(body, &in); err != nil {
		return nil, err
	}
	if in.Task == "" {
		return nil, invalidParam("task is required.")
	}
	if len(in.Reason) > 255 {
		return nil, invalidParam("reason can have up to 255 characters.")
	}
	cluster, err := s.getCluster(ctx, sc, in.Cluster)
	if err != nil {
		return nil, err
	}
	reason := in.Reason
	if reason == "" {
		reason = "Task stopped by user"
	}
	rec, err := s.stopTaskKey(ctx, sc, cluster.ClusterName, taskKey(sc, cluster.ClusterName, taskID(in.Task)), agentapi.StopUserInitiated, reason)
	if errors.Is(err, store.ErrNotFound) {
		return nil, invalidParam("The referenced task was not found.")
	}
	if err != nil {
		return nil, err
	}
	return map[string]any{"task": &rec.Task}, nil
}

// scanTasks is taskIndex.list read from etcd: every task of the cluster.
func (s *Service) scanTasks(ctx context.Context, sc scope, cluster, desired, after string, limit int, match func(*indexedTask) bool) ([]string, bool, error) {
	var arns []string
	err := s.st.List(ctx, store.ScopedPrefix(sc.account, sc.region, "tasks", cluster), func(key string, val []byte) error {
		var r taskRecord
		if err := unmarshalTask(val, &r); err != nil {
			return err
		}
		t := &r.Task
		it := indexedTask{arn: t.TaskArn, family: r.Spec.Family, startedBy: t.StartedBy, launchType: t.LaunchType,
			group: t.Group, instance: lastSegment(t.ContainerInstanceArn)}
		if t.DesiredStatus == desired && t.TaskArn > after && match(&it) {
			arns = append(arns, t.TaskArn)
		}
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	sort.Strings(arns)
	if len(arns) > limit {
		return arns[:limit], true, nil
	}
	return arns, false, nil
}

// stopTaskKey stops the task at key with a stop code and reason: a running
// service task behind load balancers drains first (see deactivateRecord).
func (s *Service) stopTaskKey(ctx context.Context, sc scope, cluster, key, code, reason string) (*taskRecord, error) {
	now := s.cfg.Now()
	drain := s.drainsOnStop(ctx, sc, cluster, key)
	rec, err := store.Mutate(ctx, s.st, key, func(r *taskRecord) ([]clientv3.Op, error) {
		if drain && r.Task.DesiredStatus == agentapi.StatusRunning && r.Task.LastStatus == agentapi.StatusRunning {
			deactivateRecord(r, code, reason, now)
			return nil, nil
		}
		return stopRecord(r, code, reason, now)
	})
	if drain {
		s.wakeServices() // the scheduler deregisters it and stops it once drained
	}
	return rec, err
}

func (s *Service) describeTasks(ctx context.Context, body []byte) (any, error) {
	sc, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	var in struct {
		Cluster string   `json:"cluster"`
		Tasks   []string `json:"tasks"`
		Include []string `json:"include"`
	}
	if err := protocol.Decode(body, &in); err != nil {
		return nil, err
	}
	if len(in.Tasks) == 0 {
		return nil, invalidParam("Tasks cannot be empty.")
	}
	if len(in.Tasks) > 100 {
		return nil, invalidParam("tasks can have at most 100 items.")
	}
	cluster, err := s.getCluster(ctx, sc, in.Cluster)
	if err != nil {
		return nil, err
	}
	withTags := contains(in.Include, "TAGS")
	ops := make([]clientv3.Op, 0, len(in.Tasks))
	for _, t := range in.Tasks {
		ops = append(ops, s.st.OpGet(taskKey(sc, cluster.ClusterName, taskID(t))))
	}
	resp, err := s.st.C.Txn(ctx).Then(ops...).Commit()
	if err != nil {
		return nil, err
	}
	tasks := []json.RawMessage{}
	failures := []Failure{}
	for i, r := range resp.Responses {
		kvs := r.GetResponseRange().Kvs
		if len(kvs) == 0 {
			arn := in.Tasks[i]
			if !strings.HasPrefix(arn, "arn:") {
				arn = sc.arn("task/" + cluster.ClusterName + "/" + arn)
			}
			failures = append(failures, Failure{Arn: arn, Reason: "MISSING"})
			continue
		}
		t, err := describedTask(kvs[0].Value, withTags)
		if err != nil {
			return nil, err
		}
		tasks = append(tasks, t)
	}
	return map[string]any{"tasks": tasks, "failures": failures}, nil
}

// describedTask is the task of a stored record as DescribeTasks answers it:
// the record's task as stored, without decoding it into a Task and encoding
// it again (most of a 100-task call's cost), unless its tags must go.
func describedTask(stored []byte, withTags bool) (json.RawMessage, error) {
	var rec struct {
		Task json.RawMessage `json:"task"`
	}
	// Unmarshal copies what it keeps (RawMessage's UnmarshalJSON copies).
	if err := withTaskJSON(stored, func(b []byte) error { return json.Unmarshal(b, &rec) }); err != nil {
		return nil, err
	}
	if withTags || !bytes.Contains(rec.Task, []byte(`"tags"`)) {
		return rec.Task, nil
	}
	var t Task
	if err := json.Unmarshal(rec.Task, &t); err != nil {
		return nil, err
	}
	t.Tags = nil
	return json.Marshal(&t)
}

type listTasksInput struct {
	listInput
	Cluster           string `json:"cluster"`
	Family            string `json:"family"`
	DesiredStatus     string `json:"desiredStatus"`
	StartedBy         string `json:"startedBy"`
	LaunchType        string `json:"launchType"`
	ServiceName       string `json:"serviceName"`
	ContainerInstance string `json:"containerInstance"`
}

func (s *Service) listTasks(ctx context.Context, body []byte) (any, error) {
	sc, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	var in listTasksInput
	if err := protocol.Decode(body, &in); err != nil {
		return nil, err
	}
	desired := in.DesiredStatus
	if desired == "" {
		desired = agentapi.StatusRunning
	}
	if desired != agentapi.StatusRunning && desired != agentapi.StatusPending && desired != agentapi.StatusStopped {
		return nil, invalidParam("desiredStatus must be one of RUNNING, PENDING, STOPPED.")
	}
	if in.LaunchType != "" && in.LaunchType != "FARGATE" && in.LaunchType != "EC2" && in.LaunchType != "EXTERNAL" {
		return nil, invalidParam("launchType must be one of EC2, FARGATE, EXTERNAL.")
	}
	if in.ServiceName != "" && in.StartedBy != "" {
		return nil, invalidParam("startedBy and serviceName cannot both be specified.")
	}
	cluster, err := s.getCluster(ctx, sc, in.Cluster)
	if err != nil {
		return nil, err
	}
	instance := lastSegment(in.ContainerInstance)
	match := func(t *indexedTask) bool {
		switch {
		case in.Family != "" && t.family != in.Family:
		case in.StartedBy != "" && t.startedBy != in.StartedBy:
		case in.LaunchType != "" && t.launchType != in.LaunchType:
		case in.ServiceName != "" && t.group != "service:"+in.ServiceName:
		case instance != "" && t.instance != instance:
		default:
			return true
		}
		return false
	}
	limit := 100
	if in.MaxResults != nil {
		if *in.MaxResults < 1 || *in.MaxResults > 100 {
			return nil, invalidParam("maxResults must be between 1 and 100.")
		}
		limit = *in.MaxResults
	}
	after := ""
	if in.NextToken != "" {
		b, err := base64.RawURLEncoding.DecodeString(in.NextToken)
		if err != nil {
			return nil, invalidParam("Invalid nextToken.")
		}
		after = string(b)
	}
	pg, more, err := s.tasks.list(ctx, clusterKey(sc, cluster.ClusterName), desired, after, limit, match)
	if errors.Is(err, errIndexBehind) {
		pg, more, err = s.scanTasks(ctx, sc, cluster.ClusterName, desired, after, limit, match)
	}
	if err != nil {
		return nil, err
	}
	next := ""
	if more && len(pg) > 0 {
		next = base64.RawURLEncoding.EncodeToString([]byte(pg[len(pg)-1]))
	}
	if pg == nil {
		pg = []string{}
	}
	return map[string]any{"taskArns": pg, "nextToken": omitEmpty(next)}, nil
}

// drainsOnStop reports whether StopTask of the task at key begins, as ECS
// does, by draining it out of its service's load balancers: it is a running
// service task with targets. A StopTask of a task already deactivating
// stops it at once (stopRecord).
func (s *Service) drainsOnStop(ctx context.Context, sc scope, cluster, key string) bool {
	var r taskRecord
	if _, err := s.st.Get(ctx, key, &r); err != nil || s.cfg.LoadBalancers == nil {
		return false
	}
	name, ok := strings.CutPrefix(r.Task.Group, "service:")
	if !ok || r.Task.LastStatus != agentapi.StatusRunning || r.Task.DesiredStatus != agentapi.StatusRunning {
		return false
	}
	var svc serviceRecord
	if _, err := s.st.Get(ctx, serviceKey(sc, cluster, name), &svc); err != nil {
		return false
	}
	t := &svcTask{Deployment: r.Task.StartedBy, Rec: &r}
	for _, lb := range svc.lbsOf(t) {
		if _, ok := lbTarget(&r, lb); ok {
			return true
		}
	}
	return false
}

// stopRecord sets a task's desired status to STOPPED with a stop code and
// reason (the first ones given stay), and returns the ops that tell its host;
// a task never placed is stopped at once. StopTask and the service scheduler
// both stop tasks through it. A task deactivating behind its load balancers
// (deactivateRecord) is told to stop now, its drain cut short.
func stopRecord(r *taskRecord, code, reason string, now time.Time) ([]clientv3.Op, error) {
	if r.Task.DesiredStatus == agentapi.StatusStopped {
		if r.Deactivating != nil && r.Spec.DesiredStatus != agentapi.StatusStopped {
			r.Task.Version++
			return releaseStop(r, now)
		}
		return nil, nil
	}
	markStopping(r, code, reason)
	return releaseStop(r, now)
}

// markStopping records the control plane's decision to stop a task.
func markStopping(r *taskRecord, code, reason string) {
	r.Task.DesiredStatus = agentapi.StatusStopped
	if r.Task.StopCode == "" {
		r.Task.StopCode = code
		r.Task.StoppedReason = reason
	}
	r.Task.Version++
}

// deactivateRecord begins the stop of a running service task behind load
// balancers, as ECS does: the task shows desiredStatus STOPPED and
// lastStatus DEACTIVATING while its targets drain, and its host keeps
// running it (the spec still says RUNNING) until releaseStop. It returns
// no ops: the caller stores the record.
func deactivateRecord(r *taskRecord, code, reason string, now time.Time) {
	markStopping(r, code, reason)
	r.Task.LastStatus = agentapi.StatusDeactivating
	if r.Task.StoppingAt == nil {
		r.Task.StoppingAt = NewTime(now)
	}
	r.Deactivating = NewTime(now)
}

// releaseStop tells the task's host to stop it (or stops a task never
// placed) and returns the ops that do so.
func releaseStop(r *taskRecord, now time.Time) ([]clientv3.Op, error) {
	r.Spec.DesiredStatus = agentapi.StatusStopped
	r.Spec.StopCode, r.Spec.StoppedReason = r.Task.StopCode, r.Task.StoppedReason
	if r.Node == "" {
		// Never placed: nothing runs anywhere, so it is stopped now.
		r.Task.LastStatus = agentapi.StatusStopped
		r.Task.StoppingAt, r.Task.StoppedAt, r.Task.ExecutionStoppedAt = NewTime(now), NewTime(now), NewTime(now)
		for i := range r.Task.Containers {
			r.Task.Containers[i].LastStatus = agentapi.ContainerStopped
		}
		return nil, nil
	}
	b, err := json.Marshal(r.Spec)
	if err != nil {
		return nil, err
	}
	return []clientv3.Op{store.OpPutBytes(store.Key("assign", r.Node, r.Spec.TaskID), b)}, nil
}
