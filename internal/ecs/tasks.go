package ecs

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/protocol"
	"github.com/berthdev/berth/internal/store"
)

// taskRecord is a task as stored: what DescribeTasks shows, the spec the
// agent runs, and where it was placed.
type taskRecord struct {
	Task Task              `json:"task"`
	Spec agentapi.TaskSpec `json:"spec"`
	// Node is the host the task was placed on ("" while waiting for placement).
	Node string `json:"node,omitempty"`
	// ReportSeq is the sequence number of the last agent report applied.
	ReportSeq int64 `json:"reportSeq,omitempty"`
	// Awsvpc is the resolved network of an awsvpc task.
	Awsvpc *awsvpcPlan `json:"awsvpc,omitempty"`
	// Deactivating is when the service scheduler began stopping the task
	// behind its load balancers (lastStatus DEACTIVATING set by the control
	// plane while the host still runs it; see deactivateRecord).
	Deactivating *Time `json:"deactivating,omitempty"`
	// Metered: the stopped task's usage is recorded (Config.Meter); the
	// purge controller keeps an unmetered task until it is.
	Metered bool `json:"metered,omitempty"`
	// Placement is how an EC2 task is placed (nil: the default).
	Placement *taskPlacement `json:"placement,omitempty"`
}

func taskKey(sc scope, cluster, id string) string {
	return store.Scoped(sc.account, sc.region, "tasks", cluster, id)
}

// taskKeyFromArn finds the stored key of arn:aws:ecs:REGION:ACCT:task/CLUSTER/ID.
func taskKeyFromArn(arn string) (string, bool) {
	sc, cluster, id, ok := parseTaskArn(arn)
	if !ok {
		return "", false
	}
	return taskKey(sc, cluster, id), true
}

func parseTaskArn(arn string) (sc scope, cluster, id string, ok bool) {
	rest, found := strings.CutPrefix(arn, "arn:aws:ecs:")
	if !found {
		return scope{}, "", "", false
	}
	parts := strings.SplitN(rest, ":", 3)
	if len(parts) != 3 {
		return scope{}, "", "", false
	}
	res := strings.SplitN(parts[2], "/", 3)
	if len(res) != 3 || res[0] != "task" || res[1] == "" || res[2] == "" {
		return scope{}, "", "", false
	}
	return scope{account: parts[1], region: parts[0]}, res[1], res[2], true
}

type runTaskInput struct {
	Cluster              string                `json:"cluster"`
	TaskDefinition       string                `json:"taskDefinition"`
	Count                *int                  `json:"count"`
	LaunchType           string                `json:"launchType"`
	NetworkConfiguration *NetworkConfiguration `json:"networkConfiguration"`
	Overrides            *TaskOverride         `json:"overrides"`
	StartedBy            string                `json:"startedBy"`
	Group                string                `json:"group"`
	Tags                 []Tag                 `json:"tags"`
	PlatformVersion      string                `json:"platformVersion"`
	PropagateTags        string                `json:"propagateTags"`
	PlacementStrategy    []PlacementStrategy   `json:"placementStrategy"`
	PlacementConstraints []PlacementConstraint `json:"placementConstraints"`
	// CapacityProviderStrategy is exclusive with LaunchType.
	CapacityProviderStrategy []CapacityProviderStrategyItem `json:"capacityProviderStrategy"`
	// providers names each new task's capacity provider (nil: none).
	providers            []string
	EnableECSManagedTags bool   `json:"enableECSManagedTags"`
	ClientToken          string `json:"clientToken"`
}

func (s *Service) runTask(ctx context.Context, body []byte) (any, error) {
	sc, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	var in runTaskInput
	if err := protocol.Decode(body, &in); err != nil {
		return nil, err
	}
	count := 1
	if in.Count != nil {
		count = *in.Count
	}
	if count < 1 || count > 10 {
		return nil, invalidParam("count must be between 1 and 10.")
	}
	if p := in.PropagateTags; p != "" && p != "TASK_DEFINITION" && p != "SERVICE" && p != "NONE" {
		return nil, invalidParam("propagateTags must be one of TASK_DEFINITION, SERVICE, NONE.")
	}
	if len(in.StartedBy) > 128 {
		return nil, invalidParam("startedBy can have up to 128 characters.")
	}
	if err := validateTags(in.Tags); err != nil {
		return nil, err
	}
	cluster, err := s.getCluster(ctx, sc, in.Cluster)
	if err != nil {
		return nil, err
	}
	td, err := s.runnableTaskDef(ctx, sc, cluster, in.TaskDefinition, in.Overrides)
	if err != nil {
		return nil, err
	}
	strategy, launchType, err := resolveLaunch(cluster, in.LaunchType, in.CapacityProviderStrategy)
	if err != nil {
		return nil, err
	}
	if in.providers, err = splitProviders(strategy, count, nil); err != nil {
		return nil, err
	}
	switch launchType {
	case "FARGATE":
		if !contains(td.Compatibilities, "FARGATE") {
			return nil, invalidParam("Task definition does not support launch_type FARGATE.")
		}
	case compatEC2:
		if !contains(td.Compatibilities, compatEC2) {
			return nil, invalidParam("Task definition does not support launch_type EC2.")
		}
	case "EXTERNAL":
		return nil, invalidParam("No Container Instances were found in your cluster.")
	default:
		return nil, invalidParam("launchType must be one of EC2, FARGATE, EXTERNAL.")
	}
	if launchType != compatEC2 && (len(in.PlacementStrategy) > 0 || len(in.PlacementConstraints) > 0) {
		return nil, invalidParam("Placement strategies and constraints are not supported with launch type %s.", launchType)
	}
	if err := validatePlacement(in.PlacementStrategy, in.PlacementConstraints); err != nil {
		return nil, err
	}
	if td.NetworkMode != networkAwsvpc && in.NetworkConfiguration != nil {
		return nil, invalidParam("Network Configuration is not valid for the given networkMode of this task definition.")
	}
	if in.PlatformVersion != "" && launchType == compatEC2 {
		return nil, invalidParam("The platform version must be null when specifying an EC2 launch type.")
	}
	if in.PlatformVersion != "" && in.PlatformVersion != "LATEST" && in.PlatformVersion != "1.4.0" {
		return nil, invalidParam("The specified platform version does not exist. Use LATEST or 1.4.0.")
	}
	vpc, err := awsvpcConfig(td, in.NetworkConfiguration)
	if err != nil {
		return nil, err
	}
	overrides, err := resolveOverrides(td, in.Overrides, launchType)
	if err != nil {
		return nil, err
	}
	if _, _, err := taskSize(td, &overrides); err != nil {
		return nil, err
	}
	plan, err := s.resolveAwsvpc(ctx, sc, vpc)
	if err != nil {
		return nil, err
	}
	if launchType == compatEC2 && strategy == nil {
		tasks, failures, err := s.runEC2(ctx, sc, cluster, td, &in, overrides, vpc, plan, count, nil)
		if err != nil {
			return nil, err
		}
		if len(tasks) > 0 {
			s.wakePlacement()
		}
		return map[string]any{"tasks": tasks, "failures": failures}, nil
	}
	if err := s.takeRunTaskLaunches(sc, launchType, count); err != nil {
		return nil, err
	}
	recs, ops, err := s.newTasks(sc, cluster, td, &in, overrides, launchType, vpc, plan, count, s.cfg.Now())
	if err != nil {
		return nil, err
	}
	tasks := make([]*Task, 0, count)
	for _, rec := range recs {
		tasks = append(tasks, &rec.Task)
	}
	resp, err := s.st.C.Txn(ctx).Then(ops...).Commit()
	if err != nil {
		return nil, fmt.Errorf("store tasks: %w", err)
	}
	for _, rec := range recs {
		s.records.put(taskKey(sc, cluster.ClusterName, rec.Spec.TaskID), resp.Header.Revision, rec)
	}
	s.wakePlacement()
	return map[string]any{"tasks": tasks, "failures": []Failure{}}, nil
}

// runnableTaskDef resolves a task definition to run in cluster: ACTIVE, and
// its task role (or the override's) one the task may assume.
func (s *Service) runnableTaskDef(ctx context.Context, sc scope, cluster *Cluster, ref string, o *TaskOverride) (*TaskDefinition, error) {
	td, _, err := s.getTaskDef(ctx, sc, ref)
	if err != nil {
		return nil, err
	}
	if td.Status != "ACTIVE" {
		return nil, clientErr("TaskDefinition is inactive")
	}
	if err := s.checkTaskRole(ctx, sc, cluster, taskRole(td, o)); err != nil {
		return nil, err
	}
	return td, nil
}

// resolveOverrides checks a run's overrides (nil: none) for launchType.
func resolveOverrides(td *TaskDefinition, o *TaskOverride, launchType string) (TaskOverride, error) {
	out := TaskOverride{ContainerOverrides: []ContainerOverride{}}
	if o == nil {
		return out, nil
	}
	if err := validateOverrides(td, o, launchType); err != nil {
		return out, err
	}
	out = *o
	if out.ContainerOverrides == nil {
		out.ContainerOverrides = []ContainerOverride{}
	}
	return out, nil
}

// awsvpcConfig checks the network configuration a task of td needs: an
// awsvpc definition must have one, with subnets; other modes ignore it.
func awsvpcConfig(td *TaskDefinition, nc *NetworkConfiguration) (*AwsVpcConfiguration, error) {
	var vpc *AwsVpcConfiguration
	if td.NetworkMode == "awsvpc" {
		if nc == nil || nc.AwsvpcConfiguration == nil {
			return nil, invalidParam("Network Configuration must be provided when networkMode 'awsvpc' is specified.")
		}
		vpc = nc.AwsvpcConfiguration
		if len(vpc.Subnets) == 0 {
			return nil, invalidParam("subnets can not be empty.")
		}
		if len(vpc.Subnets) > 16 || len(vpc.SecurityGroups) > 5 {
			return nil, invalidParam("awsvpcConfiguration allows at most 16 subnets and 5 security groups.")
		}
		if p := vpc.AssignPublicIp; p != "" && p != "ENABLED" && p != "DISABLED" {
			return nil, invalidParam("assignPublicIp must be ENABLED or DISABLED.")
		}
	}
	return vpc, nil
}

// newTasks makes count task records of a resolved definition, overrides and
// network plan, and the etcd ops that store them and queue them for
// placement (RunTask and the service scheduler commit them in their own
// transactions).
func (s *Service) newTasks(sc scope, cluster *Cluster, td *TaskDefinition, in *runTaskInput, o TaskOverride,
	launchType string, vpc *AwsVpcConfiguration, plan *awsvpcPlan, count int, now time.Time) ([]*taskRecord, []clientv3.Op, error) {
	cpu, mem, err := taskSize(td, &o)
	if err != nil {
		return nil, nil, err
	}
	recs := make([]*taskRecord, 0, count)
	ops := make([]clientv3.Op, 0, count)
	for i := 0; i < count; i++ {
		rec := s.newTaskRecord(sc, cluster, td, in, o, launchType, vpc, cpu, mem, now)
		rec.Awsvpc = plan
		if i < len(in.providers) {
			rec.Task.CapacityProviderName, rec.Spec.CapacityProviderName = in.providers[i], in.providers[i]
		}
		b, err := encodeTask(rec)
		if err != nil {
			return nil, nil, err
		}
		ops = append(ops, store.OpPutBytes(taskKey(sc, cluster.ClusterName, rec.Spec.TaskID), b))
		recs = append(recs, rec)
	}
	return recs, ops, nil
}

// taskSize is the task's cpu units and memory MiB after overrides.
func taskSize(td *TaskDefinition, o *TaskOverride) (int, int, error) {
	cpu, mem := td.Cpu, td.Memory
	if o.Cpu != "" {
		cpu = o.Cpu
	}
	if o.Memory != "" {
		mem = o.Memory
	}
	return parseTaskSize(cpu, mem)
}

func (s *Service) newTaskRecord(sc scope, cluster *Cluster, td *TaskDefinition, in *runTaskInput, o TaskOverride,
	launchType string, vpc *AwsVpcConfiguration, cpu, mem int, now time.Time) *taskRecord {
	id := newID()
	arn := sc.arn("task/" + cluster.ClusterName + "/" + id)
	t := Task{
		TaskArn: arn, ClusterArn: cluster.ClusterArn, TaskDefinitionArn: td.TaskDefinitionArn,
		Overrides: o, LastStatus: agentapi.StatusProvisioning, DesiredStatus: agentapi.StatusRunning,
		Cpu: strconv.Itoa(cpu), Memory: strconv.Itoa(mem), StartedBy: in.StartedBy, Version: 1,
		CreatedAt: NewTime(now), Group: in.Group, LaunchType: launchType,
		Tags: in.Tags, Attachments: []Attachment{}, EnableExecuteCommand: false,
		EphemeralStorage: &EphemeralStg{SizeInGiB: ephemeralGiB(td)},
	}
	if t.Group == "" {
		t.Group = "family:" + td.Family
	}
	if in.PropagateTags == "TASK_DEFINITION" {
		// The run's own tags win over the definition's of the same key.
		t.Tags = mergeTags(td.Tags, in.Tags)
	}
	if launchType == "FARGATE" {
		t.PlatformVersion, t.PlatformFamily = "1.4.0", "Linux"
	}
	if vpc != nil {
		details := []KeyValuePair{{Name: "subnetId", Value: vpc.Subnets[0]}}
		t.Attachments = append(t.Attachments, Attachment{ID: newUUID(), Type: "ElasticNetworkInterface", Status: "PRECREATED", Details: details})
	}
	if launchType == compatEC2 {
		cpu, mem = ec2Size(td, cpu, mem)
		t.Cpu, t.Memory = strconv.Itoa(cpu), strconv.Itoa(mem)
	}
	spec := agentapi.TaskSpec{
		TaskArn: arn, TaskID: id, ClusterArn: cluster.ClusterArn, Account: sc.account, Region: sc.region,
		Family: td.Family, Revision: td.Revision, CPU: cpu, MemoryMiB: mem, DesiredStatus: agentapi.StatusRunning,
		PortMappings: portMappings(td),
	}
	specNetworking(&spec, td, launchType)
	spec.Group = t.Group
	if role := taskRole(td, &o); role != "" {
		// A task role: the agent serves its credentials under a fresh id.
		spec.TaskRoleArn, spec.CredentialsID = role, newUUID()
	}
	for _, tag := range t.Tags {
		if spec.Tags == nil {
			spec.Tags = map[string]string{}
		}
		spec.Tags[tag.Key] = tag.Value
	}
	for i := range td.ContainerDefinitions {
		cd := &td.ContainerDefinitions[i]
		cs := containerSpec(cd, findOverride(o.ContainerOverrides, cd.Name))
		spec.Containers = append(spec.Containers, cs)
		c := Container{
			ContainerArn: sc.arn("container/" + cluster.ClusterName + "/" + id + "/" + newUUID()),
			TaskArn:      arn, Name: cd.Name, Image: cd.Image, LastStatus: agentapi.ContainerPending,
			NetworkBindings: []NetworkBinding{}, NetworkInterfaces: []NetworkInterface{},
			Cpu: strconv.Itoa(cs.CPU),
		}
		spec.Containers[len(spec.Containers)-1].ContainerArn = c.ContainerArn
		if cs.MemoryMiB > 0 {
			c.Memory = strconv.Itoa(cs.MemoryMiB)
		}
		if cs.MemoryReservationMiB > 0 {
			c.MemoryReservation = strconv.Itoa(cs.MemoryReservationMiB)
		}
		if cd.HealthCheck != nil {
			c.HealthStatus = agentapi.HealthUnknown
			t.HealthStatus = agentapi.HealthUnknown
		}
		t.Containers = append(t.Containers, c)
	}
	rec := &taskRecord{Task: t, Spec: spec}
	if len(in.PlacementStrategy)+len(in.PlacementConstraints) > 0 {
		rec.Placement = &taskPlacement{Strategy: in.PlacementStrategy, Constraints: in.PlacementConstraints}
	}
	return rec
}

func findOverride(list []ContainerOverride, name string) *ContainerOverride {
	for i := range list {
		if list[i].Name == name {
			return &list[i]
		}
	}
	return nil
}

// containerSpec resolves a container definition and its override into what the agent runs.
func containerSpec(cd *ContainerDefinition, o *ContainerOverride) agentapi.ContainerSpec {
	cs := agentapi.ContainerSpec{
		Name: cd.Name, Image: cd.Image, Essential: cd.IsEssential(), EntryPoint: cd.EntryPoint, Command: cd.Command,
		CPU: cd.Cpu, WorkingDirectory: cd.WorkingDirectory, User: cd.User, Hostname: cd.Hostname,
		Labels: cd.DockerLabels,
	}
	if cd.Memory != nil {
		cs.MemoryMiB = *cd.Memory
	}
	if cd.MemoryReservation != nil {
		cs.MemoryReservationMiB = *cd.MemoryReservation
	}
	if cd.ReadonlyRootFilesystem != nil {
		cs.ReadonlyRootfs = *cd.ReadonlyRootFilesystem
	}
	if cd.Privileged != nil {
		cs.Privileged = *cd.Privileged
	}
	if cd.StopTimeout != nil {
		cs.StopTimeoutSeconds = *cd.StopTimeout
	}
	if cd.LinuxParameters != nil && cd.LinuxParameters.Capabilities != nil {
		cs.AddCapabilities = cd.LinuxParameters.Capabilities.Add
	}
	if lc := cd.LogConfiguration; lc != nil {
		cs.LogConfiguration = &agentapi.LogConfiguration{LogDriver: lc.LogDriver, Options: lc.Options}
	}
	env := map[string]int{}
	for _, kv := range cd.Environment {
		env[kv.Name] = len(cs.Environment)
		cs.Environment = append(cs.Environment, agentapi.KeyValue{Name: kv.Name, Value: kv.Value})
	}
	for _, d := range cd.DependsOn {
		cs.DependsOn = append(cs.DependsOn, agentapi.Dependency{ContainerName: d.ContainerName, Condition: d.Condition})
	}
	if hc := cd.HealthCheck; hc != nil {
		cs.HealthCheck = &agentapi.HealthCheck{Command: hc.Command, Interval: deref(hc.Interval, 30),
			Timeout: deref(hc.Timeout, 5), Retries: deref(hc.Retries, 3), StartPeriod: deref(hc.StartPeriod, 0)}
	}
	if o != nil {
		if o.Command != nil {
			cs.Command = o.Command
		}
		for _, kv := range o.Environment {
			if i, ok := env[kv.Name]; ok {
				cs.Environment[i].Value = kv.Value
				continue
			}
			cs.Environment = append(cs.Environment, agentapi.KeyValue{Name: kv.Name, Value: kv.Value})
		}
		if o.Cpu != nil {
			cs.CPU = *o.Cpu
		}
		if o.Memory != nil {
			cs.MemoryMiB = *o.Memory
		}
		if o.MemoryReservation != nil {
			cs.MemoryReservationMiB = *o.MemoryReservation
		}
	}
	return cs
}

func deref(p *int, def int) int {
	if p == nil {
		return def
	}
	return *p
}

// ephemeralGiB is the ephemeral storage a task of td gets: the definition's
// sizeInGiB when it is one Fargate allows (21–200), else the free 20.
func ephemeralGiB(td *TaskDefinition) int {
	var es EphemeralStg
	if len(td.EphemeralStorage) > 0 && json.Unmarshal(td.EphemeralStorage, &es) == nil && es.SizeInGiB >= 21 && es.SizeInGiB <= 200 {
		return es.SizeInGiB
	}
	return 20
}
