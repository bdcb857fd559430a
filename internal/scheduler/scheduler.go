// Package scheduler decides where tasks run. Place is a pure function of a
// snapshot of the hosts and the tasks waiting for them: it returns a plan and
// changes nothing; the caller commits the plan with optimistic concurrency, so
// a plan computed on a stale snapshot fails to commit instead of overcommitting
// a host.
//
// Two placement semantics share the entry point, chosen per request:
//
//   - Fargate (the default, LaunchType ""): berth's own hosts; each task goes
//     to the least loaded allowed zone, then the host with the most free
//     memory (placeFargate).
//   - EC2 (LaunchType "EC2"): a user's container instances, placed as ECS
//     does (ec2.go): instances are filtered (agent connected, not draining,
//     zone, CPU, memory, static host ports, memberOf and distinctInstance
//     constraints), then ranked by the request's placement strategies
//     (binpack, spread, random) in order, ties broken by node id. memberOf
//     expressions are in ECS's cluster query language (query.go).
//
// SplitByProviders (capacity.go) divides tasks among a capacity provider
// strategy's providers by base and weight, before placement.
package scheduler

import (
	"sort"
	"time"
)

// Node is a host's capacity in a snapshot: a berth host for Fargate tasks, or
// a user's container instance for EC2 tasks. The fields after Placed matter
// only to EC2 placement.
type Node struct {
	ID  string
	AZs []string // availability zones the host serves
	// CPU units and MiB offered, and already used by placed tasks.
	CPU, MemoryMiB         int
	UsedCPU, UsedMemoryMiB int
	// Placed counts the tasks already on the host, by zone, so that zones
	// stay balanced across scheduling passes, not only within one.
	Placed map[string]int

	// Attributes are the container instance's ECS attributes, built-in
	// (ecs.availability-zone, ecs.instance-type, ecs.os-type,
	// ecs.cpu-architecture, ...) and custom; memberOf expressions and spread
	// on attribute:<name> read them. ecs.availability-zone, when set, is the
	// instance's zone; otherwise its zone is AZs[0].
	Attributes map[string]string
	// InstanceID is the EC2 instance id (i-...): the value of ec2InstanceId in
	// expressions and of spread on instanceId/host. Empty means ID.
	InstanceID string
	// UsedPorts are the static host ports tasks on the instance hold.
	UsedPorts []HostPort
	// Groups counts the tasks on the instance per task group
	// ("service:web", "family:batch"): spread and distinctInstance count
	// them, and task:group expressions test them.
	Groups map[string]int
	// RunningTasks is the number of tasks on the instance (runningTasksCount).
	RunningTasks int
	// Disconnected marks an instance whose agent is not connected: it takes
	// nothing, and a task that only it could take fails with AGENT. (The zero
	// value is connected, so Fargate snapshots need not set it.)
	Disconnected bool
	// Draining marks a DRAINING instance: it takes no new task.
	Draining bool
	// AgentVersion and RegisteredAt answer agentVersion and registeredAt in
	// expressions.
	AgentVersion string
	RegisteredAt time.Time
}

// HostPort is a static host port. Protocol is "tcp" or "udp"; empty means tcp.
type HostPort struct {
	Protocol string
	Port     int
}

// Launch types a request can ask for.
const (
	LaunchTypeFargate = ""    // berth's hosts, zone spread (the default)
	LaunchTypeEC2     = "EC2" // a user's container instances, ECS placement
)

// Request is a task waiting for a host.
type Request struct {
	ID        string
	CPU       int
	MemoryMiB int
	// AZs the task may run in (from its subnets); empty means any.
	AZs []string

	// LaunchType picks the placement semantics: LaunchTypeFargate or
	// LaunchTypeEC2. The fields below apply to EC2 only.
	LaunchType string
	// Ports are the static host ports the task needs. A dynamic host port
	// (0) needs none; listing it is harmless.
	Ports []HostPort
	// Group is the task group: "service:<name>" for a service's tasks, else
	// RunTask's group (default "family:<family>"). Spread counts the group's
	// tasks; distinctInstance keeps the group's tasks on distinct instances.
	Group string
	// Strategy is the placementStrategy, applied in order: an earlier
	// strategy decides, a later one breaks its ties; the node id breaks the
	// last ties. Empty means no preference (node id order); the control plane
	// passes ServiceDefaultStrategy for service tasks, as ECS does.
	Strategy []Strategy
	// Constraints are the placementConstraints, task definition's and
	// request's together; all must hold.
	Constraints []Constraint
}

// Strategy is one ECS placement strategy.
type Strategy struct {
	Type  string // StrategyBinpack, StrategySpread or StrategyRandom
	Field string // binpack: cpu|memory; spread: instanceId|host|attribute:<name>; random: unused
}

// Strategy types.
const (
	StrategyBinpack = "binpack"
	StrategySpread  = "spread"
	StrategyRandom  = "random"
)

// ServiceDefaultStrategy is what ECS uses for a service's tasks when the
// service names no strategy: spread across availability zones.
func ServiceDefaultStrategy() []Strategy {
	return []Strategy{{Type: StrategySpread, Field: "attribute:ecs.availability-zone"}}
}

// Constraint is one ECS placement constraint.
type Constraint struct {
	Type       string // ConstraintDistinctInstance or ConstraintMemberOf
	Expression string // memberOf: a cluster query language expression
}

// Constraint types.
const (
	ConstraintDistinctInstance = "distinctInstance"
	ConstraintMemberOf         = "memberOf"
)

// Failure reasons, as ECS reports them in RunTask's failures[].reason.
const (
	ReasonCPU              = "RESOURCE:CPU"
	ReasonMemory           = "RESOURCE:MEMORY"
	ReasonPorts            = "RESOURCE:PORTS"
	ReasonAgent            = "AGENT"
	ReasonAttribute        = "ATTRIBUTE"
	ReasonMemberOf         = "MemberOf placement constraint unsatisfied."
	ReasonDistinctInstance = "DistinctInstance placement constraint unsatisfied."
	// ReasonNoInstances: the snapshot has no instance that may take tasks
	// (none registered, or all draining). ECS reports this with the
	// capacity provider failure "NO ACTIVE INSTANCES"; RunTask on a cluster
	// with no instance at all is an InvalidParameterException ("No Container
	// Instances were found in your cluster."), which the API checks itself.
	ReasonNoInstances = "NO ACTIVE INSTANCES"
)

// Placement assigns a task to a host and zone.
type Placement struct {
	TaskID, NodeID, AZ string
}

// Unplaced is a task no host could take, with ECS's reason.
type Unplaced struct {
	TaskID, Reason string
	// NodeID is, for an EC2 task, the closest matching instance: the one
	// that passed the most checks before failing with Reason (ECS reports
	// its ARN with the failure). Empty for Fargate tasks.
	NodeID string
}

// Plan is the outcome of one scheduling pass.
type Plan struct {
	Placements []Placement
	Unplaced   []Unplaced
}

// Options tune a scheduling pass.
type Options struct {
	// Seed drives the random strategy: the same seed, snapshot and requests
	// give the same plan.
	Seed int64
}

// Place places requests in order (see PlaceWith) with the zero Options.
func Place(nodes []Node, reqs []Request) Plan {
	return PlaceWith(nodes, reqs, Options{})
}

// PlaceWith places requests in order, each by its launch type's semantics;
// a request sees the placements of those before it. Inputs are not changed.
func PlaceWith(nodes []Node, reqs []Request, opts Options) Plan {
	st := newState(nodes, opts)
	var plan Plan
	for i := range reqs {
		r := &reqs[i]
		var p Placement
		var u Unplaced
		var ok bool
		if r.LaunchType == LaunchTypeEC2 {
			p, u, ok = st.placeEC2(r, i)
		} else {
			p, u, ok = st.placeFargate(r)
		}
		if ok {
			plan.Placements = append(plan.Placements, p)
		} else {
			plan.Unplaced = append(plan.Unplaced, u)
		}
	}
	return plan
}

// state is one scheduling pass: working copies of the nodes that placements
// update, and indexes built once per pass.
type state struct {
	nodes []Node
	opts  Options

	// Zones are interned to indexes in name order, so comparing indexes
	// compares names and the inner loops do no map lookups.
	zones     []string
	nodeZones [][]int // per node, the zones it serves (Fargate)
	ec2Zone   []int   // per node, its zone for EC2 placement (-1: none)
	perAZ     []int   // tasks per zone, placed before and in this pass
	allowed   []bool  // scratch: the zones the current request allows

	// idRank orders the nodes by id, so ties break on an int compare
	// rather than a string compare in the inner loops.
	idRank []int32

	index *fargateIndex // built on the first Fargate request
	ec2   *ec2State     // built on the first EC2 request
}

func newState(nodes []Node, opts Options) *state {
	st := &state{nodes: make([]Node, len(nodes)), opts: opts}
	copy(st.nodes, nodes)
	names := map[string]bool{}
	for i := range nodes {
		for _, az := range nodes[i].AZs {
			names[az] = true
		}
		for az := range nodes[i].Placed {
			names[az] = true
		}
		if az := nodes[i].Attributes[attrAZ]; az != "" {
			names[az] = true
		}
	}
	for az := range names {
		st.zones = append(st.zones, az)
	}
	sort.Strings(st.zones)
	idx := make(map[string]int, len(st.zones))
	for i, az := range st.zones {
		idx[az] = i
	}
	order := make([]int, len(nodes))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return nodes[order[a]].ID < nodes[order[b]].ID })
	st.idRank = make([]int32, len(nodes))
	for r, i := range order {
		st.idRank[i] = int32(r)
	}
	st.perAZ = make([]int, len(st.zones))
	st.allowed = make([]bool, len(st.zones))
	st.nodeZones = make([][]int, len(nodes))
	st.ec2Zone = make([]int, len(nodes))
	for i := range nodes {
		n := &nodes[i]
		zs := make([]int, len(n.AZs))
		for j, az := range n.AZs {
			zs[j] = idx[az]
		}
		st.nodeZones[i] = zs
		for az, c := range n.Placed {
			st.perAZ[idx[az]] += c
		}
		switch {
		case n.Attributes[attrAZ] != "":
			st.ec2Zone[i] = idx[n.Attributes[attrAZ]]
		case len(zs) > 0:
			st.ec2Zone[i] = zs[0]
		default:
			st.ec2Zone[i] = -1
		}
	}
	return st
}

// setAllowed fills st.allowed from a request's zones (all when it names
// none) and reports whether any known zone is allowed.
func (st *state) setAllowed(azs []string) bool {
	ok := false
	for i, z := range st.zones {
		st.allowed[i] = len(azs) == 0 || containsStr(azs, z)
		ok = ok || st.allowed[i]
	}
	return ok
}

// placeFargate spreads a task over zones: it goes to the zone with the
// fewest tasks (already placed, and placed in this pass) among those allowed,
// then to the host in that zone with the most free memory that fits it, then
// the smaller node id. A request that fits nowhere is unplaced with the
// resource that ran out (RESOURCE:CPU or RESOURCE:MEMORY) on the last host,
// in snapshot order, that served an allowed zone, or AGENT when no host
// serves any of its zones.
//
// The index (fargate_index.go) finds the host; the scan, which states the
// rule directly, only runs to name the reason of a task that fits nowhere.
func (st *state) placeFargate(r *Request) (Placement, Unplaced, bool) {
	if !st.setAllowed(r.AZs) {
		return Placement{}, Unplaced{TaskID: r.ID, Reason: ReasonAgent}, false
	}
	best, bestAZ := st.indexedFargate(r)
	if best < 0 {
		var reason string
		best, bestAZ, reason = st.scanFargate(r)
		if best < 0 {
			return Placement{}, Unplaced{TaskID: r.ID, Reason: reason}, false
		}
	}
	st.commit(best, r, bestAZ)
	return Placement{TaskID: r.ID, NodeID: st.nodes[best].ID, AZ: st.zones[bestAZ]}, Unplaced{}, true
}

// scanFargate applies placeFargate's rule to every host in turn.
func (st *state) scanFargate(r *Request) (best, bestAZ int, reason string) {
	best, bestAZ, reason = -1, -1, ReasonAgent
	for i := range st.nodes {
		n := &st.nodes[i]
		az := st.pickAZ(st.nodeZones[i])
		if az < 0 {
			continue
		}
		if n.CPU-n.UsedCPU < r.CPU {
			reason = ReasonCPU
			continue
		}
		if n.MemoryMiB-n.UsedMemoryMiB < r.MemoryMiB {
			reason = ReasonMemory
			continue
		}
		if best < 0 || st.better(i, best, az, bestAZ) {
			best, bestAZ = i, az
		}
	}
	return best, bestAZ, reason
}

// better prefers the less loaded zone, then the host with more free memory,
// then the smaller id (so the plan is deterministic).
func (st *state) better(a, b int, azA, azB int) bool {
	if st.perAZ[azA] != st.perAZ[azB] {
		return st.perAZ[azA] < st.perAZ[azB]
	}
	na, nb := &st.nodes[a], &st.nodes[b]
	fa, fb := na.MemoryMiB-na.UsedMemoryMiB, nb.MemoryMiB-nb.UsedMemoryMiB
	if fa != fb {
		return fa > fb
	}
	return st.idRank[a] < st.idRank[b]
}

// pickAZ returns the allowed zone of a host with the fewest placements so
// far, the first by name on a tie; -1 when it serves no allowed zone.
func (st *state) pickAZ(zs []int) int {
	best := -1
	for _, z := range zs {
		if !st.allowed[z] {
			continue
		}
		if best < 0 || st.perAZ[z] < st.perAZ[best] || (st.perAZ[z] == st.perAZ[best] && z < best) {
			best = z
		}
	}
	return best
}

// commit records a task on node i in zone az (-1: none).
func (st *state) commit(i int, r *Request, az int) {
	n := &st.nodes[i]
	n.UsedCPU += r.CPU
	n.UsedMemoryMiB += r.MemoryMiB
	if az >= 0 {
		st.perAZ[az]++
	}
	if st.index != nil {
		st.reindex(i)
	}
}

func containsStr(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
