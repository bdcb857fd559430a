package ecs

import (
	"context"
	"errors"
	"regexp"
	"sort"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/protocol"
	"github.com/berthdev/berth/internal/store"
)

var clusterNameRE = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,255}$`)

// clusterName resolves a cluster parameter (name, ARN or empty for "default").
func clusterName(p string) string {
	if p == "" {
		return "default"
	}
	if strings.HasPrefix(p, "arn:") {
		return lastSegment(p)
	}
	return p
}

// foreignArn reports whether p is an ARN of another account or region than
// sc: such a cluster is never the caller's, whatever its name.
func foreignArn(sc scope, p string) bool {
	rest, ok := strings.CutPrefix(p, "arn:")
	if !ok {
		return false
	}
	parts := strings.SplitN(rest, ":", 5) // partition, service, region, account, resource
	return len(parts) != 5 || parts[2] != sc.region || parts[3] != sc.account
}

func (s *Service) getCluster(ctx context.Context, sc scope, param string) (*Cluster, error) {
	if foreignArn(sc, param) {
		return nil, clusterNotFound()
	}
	var c Cluster
	_, err := s.st.Get(ctx, store.Scoped(sc.account, sc.region, "clusters", clusterName(param)), &c)
	if errors.Is(err, store.ErrNotFound) || (err == nil && c.Status != "ACTIVE") {
		return nil, clusterNotFound()
	}
	if err != nil {
		return nil, err
	}
	return &c, nil
}

type createClusterInput struct {
	ClusterName                     string                         `json:"clusterName"`
	Tags                            []Tag                          `json:"tags"`
	Settings                        []ClusterSetting               `json:"settings"`
	CapacityProviders               []string                       `json:"capacityProviders"`
	DefaultCapacityProviderStrategy []CapacityProviderStrategyItem `json:"defaultCapacityProviderStrategy"`
}

func (s *Service) createCluster(ctx context.Context, body []byte) (any, error) {
	sc, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	var in createClusterInput
	if err := protocol.Decode(body, &in); err != nil {
		return nil, err
	}
	name := clusterName(in.ClusterName)
	if !clusterNameRE.MatchString(name) {
		return nil, invalidParam("Cluster name can have up to 255 characters: letters (uppercase and lowercase), numbers, underscores, and hyphens.")
	}
	if err := validateTags(in.Tags); err != nil {
		return nil, err
	}
	key := store.Scoped(sc.account, sc.region, "clusters", name)
	c := Cluster{
		ClusterArn: sc.arn("cluster/" + name), ClusterName: name, Status: "ACTIVE",
		Tags: in.Tags, Settings: in.Settings, Statistics: []KeyValuePair{},
		// Every cluster has berth's own providers unless it names others.
		CapacityProviders:               []string{providerFargate, providerFargateSpot},
		DefaultCapacityProviderStrategy: []CapacityProviderStrategyItem{},
	}
	if in.CapacityProviders != nil {
		c.CapacityProviders = in.CapacityProviders
	}
	if in.DefaultCapacityProviderStrategy != nil {
		c.DefaultCapacityProviderStrategy = in.DefaultCapacityProviderStrategy
	}
	if err := s.checkClusterProviders(ctx, sc, name, c.CapacityProviders, c.DefaultCapacityProviderStrategy); err != nil {
		return nil, err
	}
	if c.Settings == nil {
		c.Settings = []ClusterSetting{{Name: "containerInsights", Value: "disabled"}}
	}
	// CreateCluster is idempotent: an ACTIVE cluster of that name is returned
	// as it is; an INACTIVE one comes back to life.
	var existing Cluster
	rev, err := s.st.Get(ctx, key, &existing)
	switch {
	case err == nil && existing.Status == "ACTIVE":
		return map[string]any{"cluster": s.withCounts(ctx, sc, &existing)}, nil
	case err == nil || errors.Is(err, store.ErrNotFound):
		if err := s.st.PutIfRevision(ctx, key, rev, c); err != nil {
			return nil, err
		}
		return map[string]any{"cluster": c}, nil
	default:
		return nil, err
	}
}

// withCounts fills a cluster's task counts from the tasks stored in it.
func (s *Service) withCounts(ctx context.Context, sc scope, c *Cluster) *Cluster {
	out := *c
	out.RunningTasksCount, out.PendingTasksCount = 0, 0
	_ = s.st.List(ctx, store.ScopedPrefix(sc.account, sc.region, "tasks", c.ClusterName), func(_ string, val []byte) error {
		var r taskRecord
		if err := unmarshalTask(val, &r); err != nil {
			return nil
		}
		switch {
		case r.Task.LastStatus == agentapi.StatusRunning:
			out.RunningTasksCount++
		case agentapi.TaskStatusRank(r.Task.LastStatus) < agentapi.TaskStatusRank(agentapi.StatusRunning):
			out.PendingTasksCount++
		}
		return nil
	})
	out.ActiveServicesCount = s.activeServices(ctx, sc, c.ClusterName)
	if out.DefaultCapacityProviderStrategy == nil {
		out.DefaultCapacityProviderStrategy = []CapacityProviderStrategyItem{}
	}
	n := 0
	_ = s.st.List(ctx, store.ScopedPrefix(sc.account, sc.region, "instances", c.ClusterName), func(string, []byte) error { n++; return nil })
	out.RegisteredContainerInstancesCount = n
	if out.Statistics == nil {
		out.Statistics = []KeyValuePair{}
	}
	return &out
}

type describeClustersInput struct {
	Clusters []string `json:"clusters"`
	Include  []string `json:"include"`
}

func (s *Service) describeClusters(ctx context.Context, body []byte) (any, error) {
	sc, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	var in describeClustersInput
	if err := protocol.Decode(body, &in); err != nil {
		return nil, err
	}
	if len(in.Clusters) == 0 {
		in.Clusters = []string{"default"}
	}
	if len(in.Clusters) > 100 {
		return nil, invalidParam("clusters can have at most 100 items.")
	}
	withTags := contains(in.Include, "TAGS")
	clusters := []*Cluster{}
	failures := []Failure{}
	for _, p := range in.Clusters {
		if foreignArn(sc, p) {
			failures = append(failures, Failure{Arn: p, Reason: "MISSING"})
			continue
		}
		name := clusterName(p)
		var c Cluster
		_, err := s.st.Get(ctx, store.Scoped(sc.account, sc.region, "clusters", name), &c)
		if errors.Is(err, store.ErrNotFound) {
			failures = append(failures, Failure{Arn: sc.arn("cluster/" + name), Reason: "MISSING"})
			continue
		}
		if err != nil {
			return nil, err
		}
		out := s.withCounts(ctx, sc, &c)
		if !withTags {
			out.Tags = nil
		}
		clusters = append(clusters, out)
	}
	return map[string]any{"clusters": clusters, "failures": failures}, nil
}

type listInput struct {
	NextToken  string `json:"nextToken"`
	MaxResults *int   `json:"maxResults"`
}

func (s *Service) listClusters(ctx context.Context, body []byte) (any, error) {
	sc, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	var in listInput
	if err := protocol.Decode(body, &in); err != nil {
		return nil, err
	}
	all, err := store.ListJSON[Cluster](ctx, s.st, store.ScopedPrefix(sc.account, sc.region, "clusters"))
	if err != nil {
		return nil, err
	}
	arns := []string{}
	for _, c := range all {
		if c.Status == "ACTIVE" {
			arns = append(arns, c.ClusterArn)
		}
	}
	sort.Strings(arns)
	pg, next, err := page(arns, func(a string) string { return a }, in.NextToken, in.MaxResults, 100)
	if err != nil {
		return nil, err
	}
	return map[string]any{"clusterArns": pg, "nextToken": omitEmpty(next)}, nil
}

func (s *Service) deleteCluster(ctx context.Context, body []byte) (any, error) {
	sc, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	var in struct {
		Cluster string `json:"cluster"`
	}
	if err := protocol.Decode(body, &in); err != nil {
		return nil, err
	}
	if in.Cluster == "" {
		return nil, invalidParam("cluster is required.")
	}
	name := clusterName(in.Cluster)
	key := store.Scoped(sc.account, sc.region, "clusters", name)
	active := false
	_ = s.st.List(ctx, store.ScopedPrefix(sc.account, sc.region, "tasks", name), func(_ string, val []byte) error {
		var r taskRecord
		if unmarshalTask(val, &r) == nil && r.Task.LastStatus != agentapi.StatusStopped {
			active = true
		}
		return nil
	})
	if active {
		return nil, protocol.NewError(codeClusterContainsTasks, 400, "The Cluster cannot be deleted while Tasks are active.")
	}
	c, err := store.Mutate(ctx, s.st, key, func(c *Cluster) ([]clientv3.Op, error) {
		if c.Status != "ACTIVE" {
			return nil, clusterNotFound()
		}
		c.Status = "INACTIVE"
		return nil, nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, clusterNotFound()
	}
	if err != nil {
		return nil, err
	}
	return map[string]any{"cluster": c}, nil
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// omitEmpty turns "" into nil so the field is left out of the reply.
func omitEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}
