package ecs

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	mvccpb "go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/store"
)

// nodeRecord is a registered host with the lease that keeps it alive.
type nodeRecord struct {
	agentapi.Node
	LeaseID int64 `json:"leaseId"`
	// Owner is the account and cluster of a user's host (nil: berth's own
	// capacity).
	Owner *nodeOwner `json:"owner,omitempty"`
}

func agentError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(agentapi.ErrorBody{Error: msg})
}

// agentReply answers v as JSON, with its length: the agent reads a reply
// of known length into one buffer, and a long poll's reply of many specs
// goes out in one write rather than in chunks.
func agentReply(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		agentError(w, http.StatusInternalServerError, "encode reply: "+err.Error())
		return
	}
	b = append(b, '\n')
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	_, _ = w.Write(b)
}

func (s *Service) serveAgent(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == agentapi.PathJoin && r.Method == http.MethodPost {
		s.agentJoin(w, r) // signed by the user, not a token
		return
	}
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	caller, valid := s.authenticateAgent(r.Context(), token)
	if !ok || !valid {
		agentError(w, http.StatusUnauthorized, "invalid agent token")
		return
	}
	r = r.WithContext(context.WithValue(r.Context(), callerKey{}, caller))
	switch {
	case r.URL.Path == agentapi.PathRegister && r.Method == http.MethodPost,
		r.URL.Path == agentapi.PathHeartbeat && r.Method == http.MethodPost:
		s.agentRegister(w, r, r.URL.Path == agentapi.PathHeartbeat)
	case r.URL.Path == agentapi.PathTasks && r.Method == http.MethodGet:
		s.agentTasks(w, r)
	case r.URL.Path == agentapi.PathReport && r.Method == http.MethodPost:
		s.agentReport(w, r)
	case r.URL.Path == agentapi.PathRegistry && r.Method == http.MethodPost:
		s.agentRegistryAuth(w, r)
	case r.URL.Path == agentapi.PathTargetHealth && r.Method == http.MethodPost:
		s.agentTargetHealth(w, r)
	case r.URL.Path == agentapi.PathSpotInterrupt && r.Method == http.MethodPost:
		s.agentSpotInterrupt(w, r)
	case r.URL.Path == agentapi.PathTaskCredentials && r.Method == http.MethodPost:
		s.agentTaskCredentials(w, r)
	default:
		agentError(w, http.StatusNotFound, "no such agent call: "+r.Method+" "+r.URL.Path)
	}
}

func decodeAgent(r *http.Request, v any) error {
	b, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// agentRegister records a host under a lease; a heartbeat renews the lease,
// registering again if the lease has already run out.
func (s *Service) agentRegister(w http.ResponseWriter, r *http.Request, heartbeat bool) {
	var req agentapi.RegisterRequest
	if err := decodeAgent(r, &req); err != nil || req.NodeID == "" {
		agentError(w, http.StatusBadRequest, "a register request needs a nodeId")
		return
	}
	if !mayAct(w, r, req.NodeID) {
		return
	}
	ctx := r.Context()
	caller := callerOf(ctx)
	req.Pool = agentapi.PoolFargate
	if !caller.platform {
		req.Pool = agentapi.PoolEC2
		if len(req.AvailabilityZones) > 1 {
			req.AvailabilityZones = req.AvailabilityZones[:1] // an instance is in one zone
		}
	}
	key := store.Key("nodes", req.NodeID)
	if heartbeat && s.renewLease(ctx, req.NodeID) {
		agentReply(w, struct{}{})
		return
	}
	ttl := int64(s.cfg.NodeTTL / time.Second)
	lease, err := s.st.C.Grant(ctx, ttl)
	if err != nil {
		agentError(w, http.StatusServiceUnavailable, "grant lease: "+err.Error())
		return
	}
	n := nodeRecord{Node: agentapi.Node{RegisterRequest: req, RegisteredAt: s.cfg.Now().UTC()}, LeaseID: int64(lease.ID)}
	if !caller.platform {
		n.Owner = &caller.owner
	}
	if err := s.st.Put(ctx, key, n, clientv3.WithLease(lease.ID)); err != nil {
		agentError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	s.log.Info("host registered", "node", req.NodeID, "azs", req.AvailabilityZones, "cpu", req.CPU, "memoryMiB", req.MemoryMiB)
	s.wakePlacement()
	agentReply(w, agentapi.RegisterResponse{HeartbeatSeconds: int(ttl / 4)})
}

// renewLease renews the lease of node's registration, as a heartbeat does;
// false if it has none (it ran out: the host must register again). The key
// names its lease, which the host index knows: no read is needed.
func (s *Service) renewLease(ctx context.Context, node string) bool {
	lease, ok := s.hosts.lease(node)
	if !ok {
		if resp, err := s.st.C.Get(ctx, store.Key("nodes", node), clientv3.WithKeysOnly()); err == nil && len(resp.Kvs) > 0 {
			lease, ok = resp.Kvs[0].Lease, resp.Kvs[0].Lease != 0
		}
	}
	if !ok {
		return false
	}
	_, err := s.st.C.KeepAliveOnce(ctx, clientv3.LeaseID(lease))
	return err == nil
}

// agentTasks answers with every task placed on a node; given a revision it
// first waits (up to wait) for a change after it: a long poll on the node's
// assign prefix.
func (s *Service) agentTasks(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	node := q.Get("node")
	if node == "" {
		agentError(w, http.StatusBadRequest, "node is required")
		return
	}
	if !mayAct(w, r, node) {
		return
	}
	since, _ := strconv.ParseInt(q.Get("since"), 10, 64)
	wait, err := time.ParseDuration(q.Get("wait"))
	if err != nil || wait <= 0 || wait > time.Minute {
		wait = 30 * time.Second
	}
	if since > 0 {
		s.hub.wait(r.Context(), node, since, wait)
		if r.Context().Err() != nil {
			return
		}
	}
	// A delta sends only the specs that changed after since, with the ids of
	// all (or, asked to keep, word that none left): the agent has the rest
	// from its earlier polls.
	delta := q.Get("delta") == "1" && since > 0
	form := pollForm{since: since, delta: delta, fwDelta: delta && q.Get("fwdelta") == "1", keep: delta && q.Get("keep") == "1"}
	read, err := s.readNode(r.Context(), node, form)
	if err != nil {
		agentError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	firewalls, sets, err := s.pollFirewalls(r.Context(), node, read, since, delta)
	if err != nil {
		agentError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	var lbs []agentapi.LoadBalancerSpec
	for _, kv := range read.lbs {
		var lb agentapi.LoadBalancerSpec
		if json.Unmarshal(kv.Value, &lb) == nil {
			lbs = append(lbs, lb)
		}
	}
	// A poll may carry the host's heartbeat (agentapi.Beats): the lease is
	// renewed as the poll answers, after its wait, so that the host counts
	// its lease from the answer.
	renewed := q.Get("beat") == "1" && s.renewLease(r.Context(), node)
	// The specs go out as stored: decoding and encoding every spec of the
	// node on every wake was most of a poll's cost.
	out := tasksReply{Revision: read.rev, Tasks: make([]json.RawMessage, 0, len(read.tasks)), Known: []agentapi.KnownState{},
		Firewalls: firewalls, AddressSets: sets, LoadBalancers: lbs, Delta: delta, Present: read.present, PresentSame: read.presentSame,
		FirewallsDelta: read.fwDelta, FirewallsPresent: read.fwPresent, FirewallsPresentSame: read.fwPresentSame, LeaseRenewed: renewed}
	var gets []clientv3.Op
	for _, kv := range read.tasks {
		out.Tasks = append(out.Tasks, kv.Value)
		// The agent resumes from a known status only for a task it has not
		// seen: one whose assign key changed after its last poll's revision
		// (a restarted agent asks from 0). Reading only those keeps a poll
		// from reading every task record of its node each time it wakes.
		// A delta's client saw every task up to since, and one placed after
		// it cannot have been reported by this host yet: it needs none.
		if kv.ModRevision <= since || delta {
			continue
		}
		var spec struct {
			TaskArn string `json:"taskArn"`
		}
		if json.Unmarshal(kv.Value, &spec) != nil {
			continue
		}
		if key, ok := taskKeyFromArn(spec.TaskArn); ok {
			gets = append(gets, s.st.OpGet(key))
		}
	}
	for lo := 0; lo < len(gets); lo += batchReads { // etcd caps a transaction's ops
		tr, err := s.st.C.Txn(r.Context()).Then(gets[lo:min(lo+batchReads, len(gets))]...).Commit()
		if err != nil {
			agentError(w, http.StatusServiceUnavailable, err.Error())
			return
		}
		for _, rr := range tr.Responses {
			for _, kv := range rr.GetResponseRange().Kvs {
				var rec taskRecord
				if unmarshalTask(kv.Value, &rec) == nil {
					out.Known = append(out.Known, agentapi.KnownState{TaskArn: rec.Task.TaskArn, LastStatus: rec.knownStatus()})
				}
			}
		}
	}
	agentReply(w, out)
}

// pollForm is what a poll asked for (see agentapi.TasksResponse).
type pollForm struct {
	since   int64
	delta   bool // only the specs changed after since
	fwDelta bool // only the firewalls changed after since (with delta)
	keep    bool // the ids of all may be left out when none left (with delta)
}

// nodeRead is what a poll of a node answers, read at one revision.
type nodeRead struct {
	rev   int64
	tasks []*mvccpb.KeyValue // the assign keys' values (a delta: only those changed after since)
	// A delta: every task's id, in order, unless presentSame (no task left
	// the node after since, and the poll may keep its own).
	present        []string
	presentSame    bool
	firewalls, lbs []*mvccpb.KeyValue
	// fwDelta: firewalls are only those changed after since, fwNames the
	// address sets each names, and fwPresent every firewall's ENI (unless
	// fwPresentSame, as presentSame). fwSets are the sets every firewall of
	// the node names, fwHeld those an unchanged firewall names.
	fwDelta        bool
	fwNames        [][]string
	fwPresent      []string
	fwPresentSame  bool
	fwSets, fwHeld []string
}

// readNode reads what a poll of node answers. A delta takes the node's
// tasks and their revisions from placement's usage index, once it has
// applied every change the hub woke the poll for, and reads only the
// changed specs; without the index it reads the node's keys from etcd. A
// firewall delta likewise reads only the firewalls that changed, from the
// firewall key index.
func (s *Service) readNode(ctx context.Context, node string, form pollForm) (nodeRead, error) {
	since, delta := form.since, form.delta
	prefix, fwPrefix, lbPrefix := store.Prefix("assign", node), store.Prefix("fw", node), store.Prefix("lbs", node)
	if delta {
		d, ok := s.usage.nodeTasks(ctx, node, since, max(since, s.hub.lastRev(node)), form.keep, 2*time.Second)
		if ok {
			read := nodeRead{rev: d.rev, present: d.all, presentSame: d.same && form.keep}
			ops := []clientv3.Op{s.st.OpGet(lbPrefix, clientv3.WithPrefix(), clientv3.WithRev(d.rev))}
			if form.fwDelta {
				read.fwDelta = s.deltaFirewalls(ctx, node, since, d.rev, form.keep, &read)
			}
			if !read.fwDelta {
				ops = append(ops, s.st.OpGet(fwPrefix, clientv3.WithPrefix(), clientv3.WithRev(d.rev)))
			}
			// The changed specs in the same read, when they fit in it
			// (a poll usually brings one or two).
			heads := len(ops)
			together := len(d.changed) <= batchReads-heads
			if together {
				for _, k := range d.changed {
					ops = append(ops, s.st.OpGet(prefix+k.id, clientv3.WithRev(d.rev)))
				}
			}
			snap, err := s.st.C.Txn(ctx).Then(ops...).Commit()
			if err != nil {
				return nodeRead{}, err
			}
			read.lbs = snap.Responses[0].GetResponseRange().Kvs
			if !read.fwDelta {
				read.firewalls = snap.Responses[1].GetResponseRange().Kvs
			}
			if together {
				read.tasks = make([]*mvccpb.KeyValue, 0, len(d.changed))
				for _, rr := range snap.Responses[heads:] {
					read.tasks = append(read.tasks, rr.GetResponseRange().Kvs...)
				}
				return read, nil
			}
			keys := make([]*mvccpb.KeyValue, len(d.changed))
			for i, k := range d.changed {
				keys[i] = &mvccpb.KeyValue{Key: []byte(prefix + k.id)}
			}
			read.tasks, err = s.valuesAt(ctx, keys, d.rev)
			return read, err
		}
	}
	assignOpts := []clientv3.OpOption{clientv3.WithPrefix()}
	if delta {
		assignOpts = append(assignOpts, clientv3.WithKeysOnly())
	}
	// One read of the three prefixes, at one revision.
	snap, err := s.st.C.Txn(ctx).Then(
		s.st.OpGet(prefix, assignOpts...), s.st.OpGet(fwPrefix, clientv3.WithPrefix()),
		s.st.OpGet(lbPrefix, clientv3.WithPrefix())).Commit()
	if err != nil {
		return nodeRead{}, err
	}
	read := nodeRead{rev: snap.Header.Revision, tasks: snap.Responses[0].GetResponseRange().Kvs,
		firewalls: snap.Responses[1].GetResponseRange().Kvs, lbs: snap.Responses[2].GetResponseRange().Kvs}
	if !delta {
		return read, nil
	}
	read.present = make([]string, 0, len(read.tasks))
	var changed []*mvccpb.KeyValue
	for _, kv := range read.tasks {
		read.present = append(read.present, strings.TrimPrefix(string(kv.Key), prefix))
		if kv.ModRevision > since {
			changed = append(changed, kv)
		}
	}
	read.tasks, err = s.valuesAt(ctx, changed, read.rev)
	return read, err
}

// valuesAt reads the values of kvs (keys with their revisions) as of rev,
// in transactions of at most batchReads gets.
func (s *Service) valuesAt(ctx context.Context, kvs []*mvccpb.KeyValue, rev int64) ([]*mvccpb.KeyValue, error) {
	out := make([]*mvccpb.KeyValue, 0, len(kvs))
	for lo := 0; lo < len(kvs); lo += batchReads {
		var ops []clientv3.Op
		for _, kv := range kvs[lo:min(lo+batchReads, len(kvs))] {
			ops = append(ops, s.st.OpGet(string(kv.Key), clientv3.WithRev(rev)))
		}
		tr, err := s.st.C.Txn(ctx).Then(ops...).Commit()
		if err != nil {
			return nil, err
		}
		for _, rr := range tr.Responses {
			out = append(out, rr.GetResponseRange().Kvs...)
		}
	}
	return out, nil
}

// tasksReply is agentapi.TasksResponse on the wire with the task specs as
// stored (each written by json.Marshal of an agentapi.TaskSpec).
type tasksReply struct {
	Revision             int64                       `json:"revision"`
	Tasks                []json.RawMessage           `json:"tasks"`
	Delta                bool                        `json:"delta,omitempty"`
	Present              []string                    `json:"present,omitempty"`
	PresentSame          bool                        `json:"presentSame,omitempty"`
	Known                []agentapi.KnownState       `json:"known"`
	Firewalls            []json.RawMessage           `json:"firewalls,omitempty"`
	FirewallsDelta       bool                        `json:"firewallsDelta,omitempty"`
	FirewallsPresent     []string                    `json:"firewallsPresent,omitempty"`
	FirewallsPresentSame bool                        `json:"firewallsPresentSame,omitempty"`
	AddressSets          []agentapi.AddressSet       `json:"addressSets,omitempty"`
	LoadBalancers        []agentapi.LoadBalancerSpec `json:"loadBalancers,omitempty"`
	LeaseRenewed         bool                        `json:"leaseRenewed,omitempty"`
}

// knownStatus is the last status the task's host reached, as it resumes
// from: a task the control plane is deactivating is still RUNNING there.
func (r *taskRecord) knownStatus() string {
	if r.Deactivating != nil && r.Task.LastStatus == agentapi.StatusDeactivating && r.Spec.DesiredStatus != agentapi.StatusStopped {
		return agentapi.StatusRunning
	}
	return r.Task.LastStatus
}

var (
	errStaleReport = errors.New("stale report")
	errNotOnNode   = errors.New("task is not placed on node")
)

// agentReport applies one state report of a task.
func (s *Service) agentReport(w http.ResponseWriter, r *http.Request) {
	var rep agentapi.StateReport
	if err := decodeAgent(r, &rep); err != nil || !agentapi.ValidTaskStatus(rep.Status) {
		agentError(w, http.StatusBadRequest, "a report needs a taskArn and a task status")
		return
	}
	key, ok := taskKeyFromArn(rep.TaskArn)
	if !ok {
		agentError(w, http.StatusBadRequest, "bad task ARN "+rep.TaskArn)
		return
	}
	if !mayAct(w, r, rep.NodeID) {
		return
	}
	now := s.cfg.Now()
	rec, wasRunning, err := s.applyAgentReport(r.Context(), key, rep, now)
	if r.Context().Err() != nil {
		return
	}
	if err == nil {
		s.reportApplied(r.Context(), key, rec, wasRunning, now)
	}
	switch {
	case err == nil, errors.Is(err, errStaleReport):
		agentReply(w, struct{}{})
	case errors.Is(err, store.ErrNotFound):
		agentError(w, http.StatusNotFound, "no such task "+rep.TaskArn)
	case errors.Is(err, errNotOnNode):
		agentError(w, http.StatusConflict, err.Error())
	default:
		// The store is slow or busy (etcd's "too many requests", a timeout,
		// a record changed by others 50 times over): the agent tries again.
		agentError(w, http.StatusServiceUnavailable, err.Error())
	}
}

// reportApplied does what follows a report the task record took: the
// launch metric, and for a STOPPED task releasing its interface, revoking
// its credentials and metering it; a service task wakes the service
// scheduler.
func (s *Service) reportApplied(ctx context.Context, key string, rec *taskRecord, wasRunning bool, now time.Time) {
	if rec.Task.LastStatus == agentapi.StatusRunning && !wasRunning {
		s.metrics.launched(rec.Task.CreatedAt, now)
	}
	if rec.Task.LastStatus == agentapi.StatusStopped {
		if rec.Awsvpc != nil && !rec.Awsvpc.Released {
			s.markReleased(ctx, key)
		}
		s.revokeCredentials(ctx, rec)
		if !rec.Metered {
			s.meterStopped(ctx, key)
		}
	}
	if strings.HasPrefix(rec.Task.Group, "service:") {
		s.wakeServices()
	}
}

// applyReport moves a task forward by one agent report. It returns false,
// changing nothing, for a report older than the last one applied or one that
// would move the task backwards.
func applyReport(rec *taskRecord, rep *agentapi.StateReport, now time.Time) bool {
	t := &rec.Task
	if rep.Seq <= rec.ReportSeq || agentapi.TaskStatusRank(rep.Status) < agentapi.TaskStatusRank(t.LastStatus) {
		return false
	}
	rec.ReportSeq = rep.Seq
	// Copies of what it changes in place: the record may share them with
	// an answer already given (recordCache, commitReports).
	t.Attachments, t.Containers = slices.Clone(t.Attachments), slices.Clone(t.Containers)
	t.LastStatus = rep.Status
	t.Version++
	setOnce := func(dst **Time, src *time.Time) {
		if *dst == nil && src != nil {
			*dst = NewTime(*src)
		}
	}
	setOnce(&t.PullStartedAt, rep.PullStartedAt)
	setOnce(&t.PullStoppedAt, rep.PullStoppedAt)
	setOnce(&t.StartedAt, rep.StartedAt)
	setOnce(&t.StoppingAt, rep.StoppingAt)
	setOnce(&t.ExecutionStoppedAt, rep.ExecutionStoppedAt)
	if rep.HealthStatus != "" {
		t.HealthStatus = rep.HealthStatus
	}
	if t.StopCode == "" && rep.StopCode != "" {
		t.StopCode, t.StoppedReason = rep.StopCode, rep.StoppedReason
	}
	rank := agentapi.TaskStatusRank(rep.Status)
	if rank >= agentapi.TaskStatusRank(agentapi.StatusRunning) && t.Connectivity == "" {
		t.Connectivity, t.ConnectivityAt = "CONNECTED", NewTime(now)
	}
	if rank >= agentapi.TaskStatusRank(agentapi.StatusDeactivating) {
		t.DesiredStatus = agentapi.StatusStopped
		if t.StoppingAt == nil {
			t.StoppingAt = NewTime(now)
		}
	}
	for i := range t.Attachments {
		switch {
		case rep.Status == agentapi.StatusStopped:
			t.Attachments[i].Status = "DELETED"
		case rank >= agentapi.TaskStatusRank(agentapi.StatusDeprovisioning):
			t.Attachments[i].Status = "DELETING"
		case rank >= agentapi.TaskStatusRank(agentapi.StatusPending):
			t.Attachments[i].Status = "ATTACHED"
		}
	}
	if rep.Status == agentapi.StatusStopped && t.StoppedAt == nil {
		t.StoppedAt = NewTime(now)
		if t.ExecutionStoppedAt == nil {
			t.ExecutionStoppedAt = NewTime(now)
		}
	}
	if len(rep.NetworkBindings) > 0 {
		for i := range t.Containers {
			c := &t.Containers[i]
			c.NetworkBindings = c.NetworkBindings[:0:0] // appends go to a new array
			for _, b := range rep.NetworkBindings {
				if b.ContainerName == c.Name {
					c.NetworkBindings = append(c.NetworkBindings, NetworkBinding{BindIP: b.BindIP, ContainerPort: b.ContainerPort, HostPort: b.HostPort, Protocol: b.Protocol})
				}
			}
		}
	}
	for _, cs := range rep.Containers {
		for i := range t.Containers {
			c := &t.Containers[i]
			if c.Name != cs.Name {
				continue
			}
			if cs.Status != "" {
				c.LastStatus = cs.Status
			}
			if cs.RuntimeID != "" {
				c.RuntimeID = cs.RuntimeID
			}
			if cs.ImageDigest != "" {
				c.ImageDigest = cs.ImageDigest
			}
			if cs.ExitCode != nil {
				c.ExitCode = cs.ExitCode
			}
			if cs.Reason != "" {
				c.Reason = cs.Reason
			}
			if cs.HealthStatus != "" {
				c.HealthStatus = cs.HealthStatus
			}
		}
	}
	return true
}

// agentRegistryAuth hands a host credentials of a task's own account for the
// registry, and only for a task placed on that host.
func (s *Service) agentRegistryAuth(w http.ResponseWriter, r *http.Request) {
	var req agentapi.RegistryAuthRequest
	if err := decodeAgent(r, &req); err != nil || req.NodeID == "" {
		agentError(w, http.StatusBadRequest, "a registry-auth request needs a nodeId and a taskArn")
		return
	}
	if !mayAct(w, r, req.NodeID) {
		return
	}
	if s.cfg.RegistryPassword == nil {
		agentError(w, http.StatusNotFound, "this control plane has no registry credentials to give")
		return
	}
	key, ok := taskKeyFromArn(req.TaskArn)
	if !ok {
		agentError(w, http.StatusBadRequest, "bad task ARN "+req.TaskArn)
		return
	}
	var rec taskRecord
	if _, err := s.st.Get(r.Context(), key, &rec); err != nil || rec.Node != req.NodeID {
		agentError(w, http.StatusForbidden, "task "+req.TaskArn+" is not placed on node "+req.NodeID)
		return
	}
	pw, exp, err := s.cfg.RegistryPassword(r.Context(), rec.Spec.Account, rec.Spec.Region, time.Hour)
	if err != nil {
		agentError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	agentReply(w, agentapi.RegistryAuth{Username: "AWS", Password: pw, ExpiresAt: exp, Hosts: []string{r.Host}})
}

// agentTargetHealth applies a host's health report of the targets of a load
// balancer it runs; only the node the load balancer is placed on
// (lbs/<node>/<lb-id>) may report.
func (s *Service) agentTargetHealth(w http.ResponseWriter, r *http.Request) {
	var rep agentapi.TargetHealthReport
	if err := decodeAgent(r, &rep); err != nil || rep.NodeID == "" || rep.LoadBalancerARN == "" {
		agentError(w, http.StatusBadRequest, "a target-health report needs a nodeId and a loadBalancerArn")
		return
	}
	if !mayAct(w, r, rep.NodeID) {
		return
	}
	if s.cfg.TargetHealth == nil {
		agentError(w, http.StatusNotFound, "this control plane takes no target health reports")
		return
	}
	id := rep.LoadBalancerARN[strings.LastIndex(rep.LoadBalancerARN, "/")+1:]
	var spec agentapi.LoadBalancerSpec
	if _, err := s.st.Get(r.Context(), store.Key("lbs", rep.NodeID, id), &spec); err != nil || spec.ARN != rep.LoadBalancerARN {
		agentError(w, http.StatusForbidden, "load balancer "+rep.LoadBalancerARN+" is not placed on node "+rep.NodeID)
		return
	}
	if err := s.cfg.TargetHealth(r.Context(), rep); err != nil {
		agentError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	agentReply(w, struct{}{})
}
