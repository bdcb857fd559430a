package billing

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/berthdev/berth/internal/store"
)

// MinimumBilled is the shortest duration a task is billed for.
const MinimumBilled = time.Minute

// Task is what metering needs to know of a stopped task. ECS hands it over
// (through the daemon's adapter) when the task reaches STOPPED, and again
// from its purge controller until Record has succeeded once.
type Task struct {
	Account, Region, TaskID, TaskArn string
	// Cluster is the cluster's name; Group is ECS's task group
	// ("service:NAME" or "family:NAME"); Family the task definition's.
	Cluster, Group, Family string
	// LaunchType is FARGATE (or EC2); CapacityProvider FARGATE or
	// FARGATE_SPOT ("" = FARGATE); Architecture X86_64 or ARM64 ("" = x86).
	LaunchType, CapacityProvider, Architecture string
	// CPU in ECS units (1024 = one vCPU), MemoryMiB, EphemeralGiB (0 = 20).
	CPU, MemoryMiB, EphemeralGiB int
	// The task's timestamps (nil when the task never got there).
	CreatedAt, PullStartedAt, StartedAt, StoppedAt *time.Time
	Tags                                           map[string]string
}

// Usage is a task's metered usage, written once under
// usage/<account>/<region>/<task-id>.
type Usage struct {
	Account    string `json:"account"`
	Region     string `json:"region"`
	TaskID     string `json:"taskId"`
	TaskArn    string `json:"taskArn"`
	Cluster    string `json:"cluster"`
	Group      string `json:"group,omitempty"`
	Family     string `json:"family,omitempty"`
	LaunchType string `json:"launchType,omitempty"`
	Capacity   string `json:"capacity"`
	Arch       string `json:"arch"`
	// Start and End are the task's run as billed: End-Start is how long
	// it ran (BilledSeconds is that, rounded up, at least a minute).
	Start         time.Time `json:"start"`
	End           time.Time `json:"end"`
	BilledSeconds int64     `json:"billedSeconds"`
	// StartedFrom names the timestamp Start is ("pullStartedAt",
	// "startedAt"), or "" for a task that never pulled nor started and so
	// costs nothing.
	StartedFrom string            `json:"startedFrom,omitempty"`
	VCPU        float64           `json:"vcpu"`
	MemoryGB    float64           `json:"memoryGB"`
	Tags        map[string]string `json:"tags,omitempty"`
	Lines       []Line            `json:"lines,omitempty"`
	RecordedAt  time.Time         `json:"recordedAt"`
}

// Line is one usage type of a task: how much of it, and what it costs.
type Line struct {
	UsageType string  `json:"usageType"`
	Kind      string  `json:"kind"`
	Quantity  float64 `json:"quantity"` // vCPU-hours or GB-hours
	Cost      float64 `json:"cost"`     // USD
}

// Cost is the task's total cost in USD.
func (u *Usage) Cost() float64 {
	var c float64
	for _, l := range u.Lines {
		c += l.Cost
	}
	return c
}

// quantity sums the lines of one kind.
func (u *Usage) quantity(kind string) float64 {
	var q float64
	for _, l := range u.Lines {
		if l.Kind == kind {
			q += l.Quantity
		}
	}
	return q
}

// Tag keys every usage carries (AWS's ECS managed tags, which Cost
// Explorer groups by) besides the task's own tags.
const (
	TagCluster = "aws:ecs:clusterName"
	TagService = "aws:ecs:serviceName"
	TagFamily  = "aws:ecs:taskDefinitionFamily"
)

// Meter computes a stopped task's usage as Fargate bills it: from the
// moment its image pull started (a task that never pulled — its images
// were cached — from when its containers started; one that did neither
// costs nothing) to the moment it reached STOPPED, rounded up to the
// second, at least one minute; vCPU and memory of the task's size,
// ephemeral storage above the free 20 GB. Tasks of the EC2 and EXTERNAL
// launch types cost nothing here (their capacity is the user's).
func Meter(t Task, r *Rates, now time.Time) Usage {
	capacity := t.CapacityProvider
	if capacity == "" {
		capacity = CapacityFargate
	}
	arch := t.Architecture
	if arch == "" {
		arch = ArchX86
	}
	u := Usage{Account: t.Account, Region: t.Region, TaskID: t.TaskID, TaskArn: t.TaskArn, Cluster: t.Cluster,
		Group: t.Group, Family: t.Family, LaunchType: t.LaunchType, Capacity: capacity, Arch: arch, RecordedAt: now.UTC(),
		VCPU: float64(t.CPU) / 1024, MemoryGB: float64(t.MemoryMiB) / 1024, Tags: usageTags(t)}
	switch {
	case t.LaunchType == "EC2" || t.LaunchType == "EXTERNAL":
		// Tasks on capacity the user brings are paid with that capacity.
		return u
	case t.PullStartedAt != nil:
		u.Start, u.StartedFrom = t.PullStartedAt.UTC(), "pullStartedAt"
	case t.StartedAt != nil:
		u.Start, u.StartedFrom = t.StartedAt.UTC(), "startedAt"
	default:
		return u
	}
	end := now
	if t.StoppedAt != nil {
		end = *t.StoppedAt
	}
	// ECS keeps timestamps to the millisecond (epoch seconds with three
	// decimals); rounding off the float noise of reading them back keeps
	// a run of exactly N seconds from being billed N+1.
	u.Start, u.End = u.Start.Round(time.Millisecond), end.UTC().Round(time.Millisecond)
	if u.End.Before(u.Start) {
		u.End = u.Start
	}
	u.BilledSeconds = billedSeconds(u.End.Sub(u.Start))
	hours := float64(u.BilledSeconds) / 3600
	cr := r.compute(capacity, arch)
	u.Lines = append(u.Lines,
		Line{UsageType: r.usageType(kindVCPU, capacity, arch), Kind: kindVCPU, Quantity: u.VCPU * hours, Cost: u.VCPU * hours * cr.VCPUHour},
		Line{UsageType: r.usageType(kindMemory, capacity, arch), Kind: kindMemory, Quantity: u.MemoryGB * hours, Cost: u.MemoryGB * hours * cr.GBHour})
	if extra := t.EphemeralGiB - r.FreeEphemeralGB; extra > 0 {
		q := float64(extra) * hours
		u.Lines = append(u.Lines, Line{UsageType: r.usageType(kindEphemeral, capacity, arch), Kind: kindEphemeral, Quantity: q, Cost: q * r.EphemeralGBHour})
	}
	return u
}

// billedSeconds rounds d up to the second, and to at least a minute.
func billedSeconds(d time.Duration) int64 {
	s := int64(math.Ceil(d.Seconds()))
	return max(s, int64(MinimumBilled/time.Second))
}

func usageTags(t Task) map[string]string {
	tags := make(map[string]string, len(t.Tags)+3)
	for k, v := range t.Tags {
		tags[k] = v
	}
	tags[TagCluster] = t.Cluster
	if t.Family != "" {
		tags[TagFamily] = t.Family
	}
	if name, ok := strings.CutPrefix(t.Group, "service:"); ok {
		tags[TagService] = name
	}
	return tags
}

// usageKey is where a task's usage lives.
func usageKey(account, region, taskID string) string {
	return store.Key("usage", account, region, taskID)
}

// Record meters a stopped task and stores its usage, unless it is stored
// already: the write is an etcd transaction that creates the key only if it
// is absent, so any number of calls — a repeated STOPPED report, the purge
// controller's pass after a restart, two server replicas — bill the task
// once. It reports whether this call created the record.
func (s *Service) Record(ctx context.Context, t Task) (bool, error) {
	u := Meter(t, &s.rates, s.now())
	b, err := json.Marshal(u)
	if err != nil {
		return false, fmt.Errorf("encode usage of task %s: %w", t.TaskID, err)
	}
	key := usageKey(t.Account, t.Region, t.TaskID)
	resp, err := s.st.C.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(store.OpPutBytes(key, b)).Commit()
	if err != nil {
		return false, fmt.Errorf("store usage of task %s: %w", t.TaskID, err)
	}
	if !resp.Succeeded {
		return false, nil
	}
	s.metrics.billed(&u)
	s.log.Debug("task metered", "task", t.TaskID, "cluster", t.Cluster, "billedSeconds", u.BilledSeconds, "cost", u.Cost())
	return true, nil
}

// list reads an account's usage (every region), ordered by start.
func (s *Service) list(ctx context.Context, account string) ([]Usage, error) {
	out, err := store.ListJSON[Usage](ctx, s.st, store.Prefix("usage", account))
	if err != nil {
		return nil, fmt.Errorf("list usage of account %s: %w", account, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out, nil
}
