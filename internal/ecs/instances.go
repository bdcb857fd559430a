package ecs

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"sort"
	"strconv"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/berthdev/berth/internal/protocol"
	"github.com/berthdev/berth/internal/scheduler"
	"github.com/berthdev/berth/internal/store"
)

// The container instance API: RegisterContainerInstance,
// DeregisterContainerInstance, DescribeContainerInstances,
// ListContainerInstances, UpdateContainerInstancesState. Attributes are in
// attributes.go, the agent's join in instance_join.go.

// registration is what a host registers with, from the API or an agent.
type registration struct {
	Cluster       *Cluster
	InstanceArn   string // re-registering an instance keeps its ARN
	NodeID        string
	AZ            string
	InstanceType  string
	Architecture  string
	CPU, Memory   int
	ReservedPorts []int
	Attributes    map[string]string // custom attributes to set
	AgentVersion  string
	Tags          []Tag
	// Provider is the user's capacity provider the instance belongs to.
	Provider string
	// HostAddress: see instanceRecord.
	HostAddress string
}

var ec2InstanceIDRE = regexp.MustCompile(`^i-[0-9a-f]{8,17}$`)

// newInstanceID is an EC2-shaped instance id for a host without one.
func newInstanceID() string { return "i-" + newID()[:17] }

// registerInstance stores a container instance (or updates the one reg
// names, keeping its ARN and custom attributes) and its node's owner
// record. The node token hash, when not empty, replaces the owner's.
func (s *Service) registerInstance(ctx context.Context, sc scope, reg registration, tokenHash string) (*instanceRecord, error) {
	if reg.NodeID == "" {
		reg.NodeID = newInstanceID()
	}
	if !ec2InstanceIDRE.MatchString(reg.NodeID) {
		return nil, invalidParam("instanceId %q is not an EC2 instance id (i- and 8 or 17 hexadecimal digits).", reg.NodeID)
	}
	if reg.CPU <= 0 || reg.Memory <= 0 {
		return nil, invalidParam("totalResources must include CPU and MEMORY greater than 0.")
	}
	cluster := reg.Cluster.ClusterName
	if reg.Provider != "" {
		if isFargateProvider(reg.Provider) {
			return nil, invalidParam("A container instance cannot belong to the %s capacity provider.", reg.Provider)
		}
		if _, err := s.getProvider(ctx, sc, reg.Provider); err != nil {
			return nil, invalidParam("The capacity provider %s does not exist.", reg.Provider)
		}
	}
	// The node may already be another account's or cluster's host.
	var owner nodeOwner
	if _, err := s.st.Get(ctx, store.Key("nodeowners", reg.NodeID), &owner); err == nil {
		if owner.Account != sc.account || owner.Region != sc.region || owner.Cluster != cluster {
			return nil, invalidParam("Instance %s is already registered in another cluster; deregister it there first.", reg.NodeID)
		}
		if reg.InstanceArn == "" {
			reg.InstanceArn = sc.arn("container-instance/" + cluster + "/" + owner.InstanceID)
		}
		if tokenHash == "" {
			tokenHash = owner.TokenHash
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	id := newID()
	if reg.InstanceArn != "" {
		id = lastSegment(reg.InstanceArn)
		if !strings.HasPrefix(reg.InstanceArn, "arn:") || foreignArn(sc, reg.InstanceArn) || !strings.Contains(reg.InstanceArn, ":container-instance/"+cluster+"/") {
			return nil, invalidParam("containerInstanceArn %s is not a container instance of cluster %s.", reg.InstanceArn, cluster)
		}
	}
	key := instanceKey(sc, cluster, id)
	now := s.cfg.Now()
	rec, err := store.Upsert(ctx, s.st, key, func(r *instanceRecord) ([]clientv3.Op, error) {
		if r.Instance.ContainerInstanceArn == "" {
			r.Instance = ContainerInstance{
				ContainerInstanceArn: sc.arn("container-instance/" + cluster + "/" + id),
				Status:               instanceActive, RegisteredAt: NewTime(now), Attachments: []Attachment{},
			}
			r.Custom = map[string]string{}
		}
		if r.NodeID != "" && r.NodeID != reg.NodeID {
			return nil, invalidParam("Container instance %s belongs to instance %s, not %s.", id, r.NodeID, reg.NodeID)
		}
		r.Cluster, r.NodeID = cluster, reg.NodeID
		r.CPU, r.MemoryMiB, r.ReservedPorts = reg.CPU, reg.Memory, reg.ReservedPorts
		r.Instance.Ec2InstanceID = reg.NodeID
		r.Instance.CapacityProviderName = reg.Provider
		r.HostAddress = reg.HostAddress
		r.Instance.Version++
		r.Instance.VersionInfo = &VersionInfo{AgentVersion: reg.AgentVersion, AgentHash: "berth"}
		if reg.Tags != nil {
			r.Instance.Tags = reg.Tags
		}
		arch := reg.Architecture
		if arch == "" {
			arch = "x86_64"
		}
		itype := reg.InstanceType
		if itype == "" {
			itype = "berth.host"
		}
		r.Builtin = map[string]string{
			"ecs.availability-zone": reg.AZ, "ecs.instance-type": itype, "ecs.os-type": "linux",
			"ecs.os-family": "LINUX", "ecs.cpu-architecture": arch,
			"ecs.capability.privileged-container": "", "ecs.capability.task-eni": "",
		}
		for k, v := range reg.Attributes {
			r.Custom[k] = v
		}
		b, err := json.Marshal(nodeOwner{Account: sc.account, Region: sc.region, Cluster: cluster, InstanceID: id, TokenHash: tokenHash})
		if err != nil {
			return nil, err
		}
		return []clientv3.Op{store.OpPutBytes(store.Key("nodeowners", reg.NodeID), b)}, nil
	})
	if err != nil {
		return nil, err
	}
	s.wakePlacement()
	return rec, nil
}

type registerInstanceInput struct {
	Cluster                  string `json:"cluster"`
	InstanceIdentityDocument string `json:"instanceIdentityDocument"`
	TotalResources           []struct {
		Name           string   `json:"name"`
		IntegerValue   int      `json:"integerValue"`
		StringSetValue []string `json:"stringSetValue"`
	} `json:"totalResources"`
	VersionInfo          *VersionInfo `json:"versionInfo"`
	ContainerInstanceArn string       `json:"containerInstanceArn"`
	Attributes           []IAttribute `json:"attributes"`
	Tags                 []Tag        `json:"tags"`
}

// registerContainerInstance registers a host by API, as the ECS agent does
// on an EC2 instance. The instance stays agentConnected=false until an
// agent with that instance id joins (`berth agent --cluster`).
func (s *Service) registerContainerInstance(ctx context.Context, body []byte) (any, error) {
	sc, in, err := request[registerInstanceInput](ctx, body)
	if err != nil {
		return nil, err
	}
	cluster, err := s.getCluster(ctx, sc, in.Cluster)
	if err != nil {
		return nil, err
	}
	if err := validateTags(in.Tags); err != nil {
		return nil, err
	}
	reg := registration{Cluster: cluster, InstanceArn: in.ContainerInstanceArn, Attributes: map[string]string{}, Tags: in.Tags}
	if in.InstanceIdentityDocument != "" {
		var doc struct {
			InstanceID       string `json:"instanceId"`
			AvailabilityZone string `json:"availabilityZone"`
			InstanceType     string `json:"instanceType"`
			Architecture     string `json:"architecture"`
		}
		if err := json.Unmarshal([]byte(in.InstanceIdentityDocument), &doc); err != nil {
			return nil, invalidParam("instanceIdentityDocument is not a JSON instance identity document.")
		}
		reg.NodeID, reg.AZ, reg.InstanceType, reg.Architecture = doc.InstanceID, doc.AvailabilityZone, doc.InstanceType, doc.Architecture
	}
	if reg.AZ == "" {
		reg.AZ = sc.region + "a"
	}
	for _, r := range in.TotalResources {
		switch r.Name {
		case "CPU":
			reg.CPU = r.IntegerValue
		case "MEMORY":
			reg.Memory = r.IntegerValue
		case "PORTS":
			reg.ReservedPorts = parsePorts(r.StringSetValue)
		}
	}
	if in.VersionInfo != nil {
		reg.AgentVersion = in.VersionInfo.AgentVersion
	}
	for _, a := range in.Attributes {
		if err := validAttribute(a); err != nil {
			return nil, err
		}
		reg.Attributes[a.Name] = a.Value
	}
	rec, err := s.registerInstance(ctx, sc, reg, "")
	if err != nil {
		return nil, err
	}
	return map[string]any{"containerInstance": s.instanceView(ctx, rec)}, nil
}

func parsePorts(list []string) []int {
	var out []int
	for _, p := range list {
		if n, err := strconv.Atoi(p); err == nil && n > 0 && n < 65536 {
			out = append(out, n)
		}
	}
	return out
}

// InstanceAddress is the address of an account's container instance by its
// EC2 instance id (elb.Instances: instance target groups).
func (s *Service) InstanceAddress(ctx context.Context, account, region, instanceID string) (string, error) {
	var o nodeOwner
	if _, err := s.st.Get(ctx, store.Key("nodeowners", instanceID), &o); err != nil {
		return "", err
	}
	if o.Account != account || o.Region != region {
		return "", store.ErrNotFound
	}
	var r instanceRecord
	if _, err := s.st.Get(ctx, instanceKey(o.scope(), o.Cluster, o.InstanceID), &r); err != nil {
		return "", err
	}
	if r.HostAddress == "" {
		return "", errors.New("instance " + instanceID + " has no address")
	}
	return r.HostAddress, nil
}

// getInstance finds a container instance of a cluster by id or ARN.
func (s *Service) getInstance(ctx context.Context, sc scope, cluster *Cluster, ref string) (*instanceRecord, int64, error) {
	if ref == "" || (strings.HasPrefix(ref, "arn:") && (foreignArn(sc, ref) || !strings.Contains(ref, ":container-instance/"))) {
		return nil, 0, store.ErrNotFound
	}
	var r instanceRecord
	rev, err := s.st.Get(ctx, instanceKey(sc, cluster.ClusterName, lastSegment(ref)), &r)
	if err != nil {
		return nil, 0, err
	}
	return &r, rev, nil
}

// listInstances reads a cluster's container instances, by ARN.
func (s *Service) listInstances(ctx context.Context, sc scope, cluster string) ([]*instanceRecord, error) {
	recs, err := store.ListJSON[instanceRecord](ctx, s.st, store.ScopedPrefix(sc.account, sc.region, "instances", cluster))
	if err != nil {
		return nil, err
	}
	out := make([]*instanceRecord, len(recs))
	for i := range recs {
		out[i] = &recs[i]
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Instance.ContainerInstanceArn < out[j].Instance.ContainerInstanceArn
	})
	return out, nil
}

type instancesInput struct {
	Cluster            string   `json:"cluster"`
	ContainerInstances []string `json:"containerInstances"`
	Include            []string `json:"include"`
	Status             string   `json:"status"`
}

func (s *Service) describeContainerInstances(ctx context.Context, body []byte) (any, error) {
	sc, cluster, in, err := s.instancesCall(ctx, body)
	if err != nil {
		return nil, err
	}
	if len(in.ContainerInstances) == 0 || len(in.ContainerInstances) > 100 {
		return nil, invalidParam("containerInstances must name between 1 and 100 container instances.")
	}
	out := []ContainerInstance{}
	failures := []Failure{}
	for _, ref := range in.ContainerInstances {
		r, _, err := s.getInstance(ctx, sc, cluster, ref)
		if errors.Is(err, store.ErrNotFound) {
			failures = append(failures, Failure{Arn: instanceArnOf(sc, cluster, ref), Reason: "MISSING"})
			continue
		}
		if err != nil {
			return nil, err
		}
		ci := s.instanceView(ctx, r)
		if !contains(in.Include, "TAGS") {
			ci.Tags = nil
		}
		out = append(out, ci)
	}
	return map[string]any{"containerInstances": out, "failures": failures}, nil
}

func instanceArnOf(sc scope, cluster *Cluster, ref string) string {
	if strings.HasPrefix(ref, "arn:") {
		return ref
	}
	return sc.arn("container-instance/" + cluster.ClusterName + "/" + ref)
}

// instancesCall decodes a container instance call and finds its cluster.
func (s *Service) instancesCall(ctx context.Context, body []byte) (scope, *Cluster, *instancesInput, error) {
	sc, err := scopeOf(ctx)
	if err != nil {
		return scope{}, nil, nil, err
	}
	var in instancesInput
	if err := protocol.Decode(body, &in); err != nil {
		return scope{}, nil, nil, err
	}
	cluster, err := s.getCluster(ctx, sc, in.Cluster)
	if err != nil {
		return scope{}, nil, nil, err
	}
	return sc, cluster, &in, nil
}

type listInstancesInput struct {
	Cluster    string `json:"cluster"`
	Filter     string `json:"filter"`
	Status     string `json:"status"`
	MaxResults *int   `json:"maxResults"`
	NextToken  string `json:"nextToken"`
}

func (s *Service) listContainerInstances(ctx context.Context, body []byte) (any, error) {
	sc, in, err := request[listInstancesInput](ctx, body)
	if err != nil {
		return nil, err
	}
	switch in.Status {
	case "", instanceActive, instanceDraining, "REGISTERING", "DEREGISTERING", "REGISTRATION_FAILED":
	default:
		return nil, invalidParam("status must be one of ACTIVE, DRAINING, REGISTERING, DEREGISTERING, REGISTRATION_FAILED.")
	}
	cluster, err := s.getCluster(ctx, sc, in.Cluster)
	if err != nil {
		return nil, err
	}
	match, err := instanceFilter(in.Filter)
	if err != nil {
		return nil, err
	}
	recs, err := s.listInstances(ctx, sc, cluster.ClusterName)
	if err != nil {
		return nil, err
	}
	var arns []string
	for _, r := range recs {
		if in.Status != "" && r.Instance.Status != in.Status {
			continue
		}
		if !match(r) {
			continue
		}
		arns = append(arns, r.Instance.ContainerInstanceArn)
	}
	pg, next, err := page(arns, func(a string) string { return a }, in.NextToken, in.MaxResults, 100)
	if err != nil {
		return nil, err
	}
	if pg == nil {
		pg = []string{}
	}
	out := map[string]any{"containerInstanceArns": pg}
	if next != "" {
		out["nextToken"] = next
	}
	return out, nil
}

type updateInstancesStateInput struct {
	Cluster            string   `json:"cluster"`
	ContainerInstances []string `json:"containerInstances"`
	Status             string   `json:"status"`
}

// updateContainerInstancesState moves instances between ACTIVE and
// DRAINING. A DRAINING instance takes no new task; the service scheduler
// replaces its service tasks elsewhere, as ECS does.
func (s *Service) updateContainerInstancesState(ctx context.Context, body []byte) (any, error) {
	sc, in, err := request[updateInstancesStateInput](ctx, body)
	if err != nil {
		return nil, err
	}
	if in.Status != instanceActive && in.Status != instanceDraining {
		return nil, invalidParam("Container instance status can only be updated to ACTIVE or DRAINING.")
	}
	if len(in.ContainerInstances) == 0 || len(in.ContainerInstances) > 10 {
		return nil, invalidParam("containerInstances must name between 1 and 10 container instances.")
	}
	cluster, err := s.getCluster(ctx, sc, in.Cluster)
	if err != nil {
		return nil, err
	}
	out := []ContainerInstance{}
	failures := []Failure{}
	for _, ref := range in.ContainerInstances {
		r, _, err := s.getInstance(ctx, sc, cluster, ref)
		if errors.Is(err, store.ErrNotFound) {
			failures = append(failures, Failure{Arn: instanceArnOf(sc, cluster, ref), Reason: "MISSING"})
			continue
		}
		if err != nil {
			return nil, err
		}
		key := instanceKey(sc, cluster.ClusterName, lastSegment(r.Instance.ContainerInstanceArn))
		r, err = store.Mutate(ctx, s.st, key, func(r *instanceRecord) ([]clientv3.Op, error) {
			if r.Instance.Status != in.Status {
				r.Instance.Status = in.Status
				r.Instance.Version++
			}
			return nil, nil
		})
		if err != nil {
			return nil, err
		}
		out = append(out, s.instanceView(ctx, r))
	}
	s.wakeServices()
	s.wakePlacement()
	return map[string]any{"containerInstances": out, "failures": failures}, nil
}

type deregisterInstanceInput struct {
	Cluster           string `json:"cluster"`
	ContainerInstance string `json:"containerInstance"`
	Force             bool   `json:"force"`
}

// deregisterContainerInstance removes an instance. With tasks on it, ECS
// refuses unless force; berth then stops those tasks as lost (the host is no
// longer the user's), and services replace them. The node token is revoked
// with the owner record, so the host's agent can no longer act.
func (s *Service) deregisterContainerInstance(ctx context.Context, body []byte) (any, error) {
	sc, in, err := request[deregisterInstanceInput](ctx, body)
	if err != nil {
		return nil, err
	}
	cluster, err := s.getCluster(ctx, sc, in.Cluster)
	if err != nil {
		return nil, err
	}
	r, rev, err := s.getInstance(ctx, sc, cluster, in.ContainerInstance)
	if errors.Is(err, store.ErrNotFound) {
		return nil, invalidParam("The referenced container instance %s was not found.", in.ContainerInstance)
	}
	if err != nil {
		return nil, err
	}
	running, pending := s.taskCounts(ctx, r.NodeID)
	if running+pending > 0 && !in.Force {
		return nil, invalidParam("Found running tasks on the instance. Stop them or deregister with force.")
	}
	view := s.instanceView(ctx, r)
	key := instanceKey(sc, cluster.ClusterName, lastSegment(r.Instance.ContainerInstanceArn))
	resp, err := s.st.C.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).
		Then(clientv3.OpDelete(key), clientv3.OpDelete(store.Key("nodeowners", r.NodeID)), clientv3.OpDelete(store.Key("nodes", r.NodeID))).Commit()
	if err != nil {
		return nil, err
	}
	if !resp.Succeeded {
		return nil, clientErr("The container instance changed meanwhile; try again.")
	}
	s.stopTasksOnNode(ctx, r.NodeID, "Container instance "+view.ContainerInstanceArn+" was deregistered.")
	view.Status, view.AgentConnected = instanceInactive, false
	return map[string]any{"containerInstance": view}, nil
}

// instanceFilter compiles ListContainerInstances' filter (the cluster
// query language) into a predicate.
func instanceFilter(f string) (func(*instanceRecord) bool, error) {
	if strings.TrimSpace(f) == "" {
		return func(*instanceRecord) bool { return true }, nil
	}
	expr, err := scheduler.ParseExpression(f)
	if err != nil {
		return nil, invalidParam("%s", err.Error())
	}
	return func(r *instanceRecord) bool {
		n := r.schedulerNode()
		return expr.Match(&n)
	}, nil
}
