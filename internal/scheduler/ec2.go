package scheduler

// EC2 placement: a task of the EC2 launch type goes to one of the user's
// container instances, chosen as ECS does
// (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-placement.html):
// first the instances that have the CPU, memory and ports, then those that
// satisfy the constraints, then the best by the strategies.
//
// Each instance runs through the checks below in order and stops at the
// first it fails. A task no instance passes is unplaced with the reason of
// the closest matching instance, the one that got furthest (ECS: "The
// closest matching container-instance ... encountered error ..."); on a tie,
// the smaller node id. Equivalently: the reason is that of the check that
// eliminated the last candidates.
//
//  1. AGENT: the instance's agent is connected. (DRAINING instances are not
//     candidates at all; with none left the reason is NO ACTIVE INSTANCES.)
//  2. ATTRIBUTE: the instance is in one of the task's zones (its subnets').
//  3. RESOURCE:CPU, 4. RESOURCE:MEMORY: enough unreserved.
//  5. RESOURCE:PORTS: none of the task's static host ports is taken, per
//     protocol.
//  6. MemberOf: every memberOf expression holds. task:group and
//     runningTasksCount see tasks placed earlier in the same pass.
//  7. DistinctInstance: no task of the request's group is on the instance,
//     whether it was there before the pass or placed in it. ECS: "place each
//     task in the group on a different container instance"; its tasks
//     already running count too (a blue/green deployment of a
//     distinctInstance service cannot start its new tasks next to the old).
//
// Strategies then rank the candidates lexicographically: the first strategy
// decides, each later one breaks the ties of those before, and the node id
// breaks the rest.
//
//   - binpack cpu|memory: the least of that resource left unreserved first.
//   - spread instanceId|host: the instance with the fewest tasks of the
//     request's group first.
//   - spread attribute:<name>: the instance whose value of the attribute has
//     the fewest tasks of the request's group across all instances in the
//     snapshot (candidates or not: a full zone still holds its share).
//     Instances without the attribute share the value "". ECS: "Service
//     tasks are spread based on the tasks from that service. Standalone tasks
//     are spread based on the tasks from the same task group." A request with
//     no group counts all tasks (RunningTasks), and distinctInstance then
//     wants an empty instance; the control plane always sets the group.
//   - random: a pseudo-random order drawn from Options.Seed, the request's
//     index and the node's index.

import (
	"errors"
	"fmt"
	"strings"
)

const attrAZ = "ecs.availability-zone"

// check stages, in order; stageReasons names the failure at each.
const (
	stageAgent = iota
	stageZone
	stageCPU
	stageMemory
	stagePorts
	stageMemberOf
	stageDistinct
	stagePassed
)

var stageReasons = [...]string{
	stageAgent:    ReasonAgent,
	stageZone:     ReasonAttribute,
	stageCPU:      ReasonCPU,
	stageMemory:   ReasonMemory,
	stagePorts:    ReasonPorts,
	stageMemberOf: ReasonMemberOf,
	stageDistinct: ReasonDistinctInstance,
}

// ec2State is what EC2 placement adds to a pass. Everything a request
// computes about a node that does not change until a task lands on that node
// is kept here, so the per-node work of a request is mostly array lookups.
type ec2State struct {
	ownGroups []bool                 // node i's Groups map is this pass's copy
	fields    map[string]*fieldIndex // spread fields, values interned
	spread    map[spreadKey][]int    // tasks of a group per value index of a field
	exprs     map[string]*exprCache  // memberOf expressions, parsed once
	keys      []int64                // scratch: the current candidate's strategy keys
	bestKeys  []int64                // scratch: the best candidate's
}

type spreadKey struct{ group, field string }

// fieldIndex interns the values of one attribute over the nodes.
type fieldIndex struct {
	value []int32 // per node, its value's index
	names int     // number of distinct values
}

// exprCache is a memberOf expression and its verdict per node: 0 not yet
// evaluated, 1 true, 2 false. A task landing on a node clears that node's
// verdicts (task:group and runningTasksCount change with it).
type exprCache struct {
	e       *Expr
	err     error
	verdict []uint8
}

func (st *state) ec2State() *ec2State {
	if st.ec2 == nil {
		st.ec2 = &ec2State{
			ownGroups: make([]bool, len(st.nodes)),
			fields:    map[string]*fieldIndex{},
			spread:    map[spreadKey][]int{},
			exprs:     map[string]*exprCache{},
		}
	}
	return st.ec2
}

// ec2Request is a request with its constraints resolved for one pass.
type ec2Request struct {
	*Request
	index    int
	memberOf []*exprCache
	badExpr  bool // a memberOf expression does not parse: nothing satisfies it
	distinct bool
	kinds    []keyKind     // per strategy: what its key measures
	fields   []*fieldIndex // per strategy: the field of an attribute spread, else nil
	spreads  [][]int       // per strategy: its counter, else nil
}

// keyKind is a strategy resolved once per request, so the per-node loop
// compares no strings.
type keyKind uint8

const (
	keyNone         keyKind = iota // an unknown strategy: no preference
	keyFreeCPU                     // binpack cpu
	keyFreeMemory                  // binpack memory
	keyGroupOnNode                 // spread instanceId/host
	keyGroupInValue                // spread attribute:<name>
	keyRandom
)

func resolveKind(s Strategy) keyKind {
	switch {
	case s.Type == StrategyBinpack && s.Field == "cpu":
		return keyFreeCPU
	case s.Type == StrategyBinpack && s.Field == "memory":
		return keyFreeMemory
	case s.Type == StrategySpread && (s.Field == "instanceId" || s.Field == "host"):
		return keyGroupOnNode
	case s.Type == StrategySpread && strings.HasPrefix(s.Field, subjAttribute):
		return keyGroupInValue
	case s.Type == StrategyRandom:
		return keyRandom
	}
	return keyNone
}

func (st *state) placeEC2(r *Request, index int) (Placement, Unplaced, bool) {
	es := st.ec2State()
	q := ec2Request{Request: r, index: index, kinds: make([]keyKind, len(r.Strategy)),
		fields: make([]*fieldIndex, len(r.Strategy)), spreads: make([][]int, len(r.Strategy))}
	for _, c := range r.Constraints {
		switch c.Type {
		case ConstraintDistinctInstance:
			q.distinct = true
		case ConstraintMemberOf:
			ec := es.exprs[c.Expression]
			if ec == nil {
				ec = &exprCache{verdict: make([]uint8, len(st.nodes))}
				ec.e, ec.err = ParseExpression(c.Expression)
				es.exprs[c.Expression] = ec
			}
			if ec.err != nil {
				q.badExpr = true // the API validates; a stale record fails closed
			} else {
				q.memberOf = append(q.memberOf, ec)
			}
		}
	}
	for k, s := range r.Strategy {
		q.kinds[k] = resolveKind(s)
		if q.kinds[k] == keyGroupInValue {
			q.fields[k], q.spreads[k] = st.spreadCounter(r.Group, s.Field)
		}
	}
	es.keys = append(es.keys[:0], make([]int64, len(r.Strategy))...)
	es.bestKeys = append(es.bestKeys[:0], make([]int64, len(r.Strategy))...)
	st.setAllowed(r.AZs)

	best, closest, furthest := -1, -1, -1
	for i := range st.nodes {
		if st.nodes[i].Draining {
			continue
		}
		stage := st.check(i, &q)
		if stage != stagePassed {
			if stage > furthest || (stage == furthest && st.idRank[i] < st.idRank[closest]) {
				furthest, closest = stage, i
			}
			continue
		}
		st.strategyKeys(i, &q, es.keys)
		if best < 0 || st.before(es.keys, i, es.bestKeys, best) {
			best = i
			copy(es.bestKeys, es.keys)
		}
	}
	if best < 0 {
		u := Unplaced{TaskID: r.ID, Reason: ReasonNoInstances}
		if closest >= 0 {
			u.Reason, u.NodeID = stageReasons[furthest], st.nodes[closest].ID
		}
		return Placement{}, u, false
	}
	az := st.ec2Zone[best]
	st.commitEC2(best, r, az)
	p := Placement{TaskID: r.ID, NodeID: st.nodes[best].ID}
	if az >= 0 {
		p.AZ = st.zones[az]
	}
	return p, Unplaced{}, true
}

// check runs node i through the checks and returns the stage it failed at,
// or stagePassed.
func (st *state) check(i int, q *ec2Request) int {
	n := &st.nodes[i]
	if n.Disconnected {
		return stageAgent
	}
	if len(q.AZs) > 0 && (st.ec2Zone[i] < 0 || !st.allowed[st.ec2Zone[i]]) {
		return stageZone
	}
	if n.CPU-n.UsedCPU < q.CPU {
		return stageCPU
	}
	if n.MemoryMiB-n.UsedMemoryMiB < q.MemoryMiB {
		return stageMemory
	}
	if portsTaken(n.UsedPorts, q.Ports) {
		return stagePorts
	}
	if q.badExpr {
		return stageMemberOf
	}
	for _, ec := range q.memberOf {
		if ec.verdict[i] == 0 {
			ec.verdict[i] = 2
			if ec.e.Match(n) {
				ec.verdict[i] = 1
			}
		}
		if ec.verdict[i] != 1 {
			return stageMemberOf
		}
	}
	if q.distinct && groupCount(n, q.Group) > 0 {
		return stageDistinct
	}
	return stagePassed
}

func protocol(p HostPort) string {
	if p.Protocol == "" {
		return "tcp"
	}
	return strings.ToLower(p.Protocol)
}

// portsTaken reports whether a static port of want is in used. Port 0 (a
// dynamic host port) needs nothing and never clashes.
func portsTaken(used, want []HostPort) bool {
	for _, w := range want {
		if w.Port == 0 {
			continue
		}
		for _, u := range used {
			if u.Port == w.Port && protocol(u) == protocol(w) {
				return true
			}
		}
	}
	return false
}

// groupCount is the number of tasks of group g on the node; with no group,
// all its tasks.
func groupCount(n *Node, g string) int {
	if g == "" {
		return n.RunningTasks
	}
	return n.Groups[g]
}

// field interns the nodes' values of a spread on attribute:<name>; for
// ecs.availability-zone that is the node's zone (the attribute, else
// AZs[0]). A node without the attribute has the value "".
func (st *state) field(field string) *fieldIndex {
	es := st.ec2State()
	if f := es.fields[field]; f != nil {
		return f
	}
	name := strings.TrimPrefix(field, subjAttribute)
	f := &fieldIndex{value: make([]int32, len(st.nodes))}
	ids := map[string]int32{}
	for i := range st.nodes {
		var v string
		if name == attrAZ {
			if z := st.ec2Zone[i]; z >= 0 {
				v = st.zones[z]
			}
		} else {
			v = st.nodes[i].Attributes[name]
		}
		id, ok := ids[v]
		if !ok {
			id = int32(len(ids))
			ids[v] = id
		}
		f.value[i] = id
	}
	f.names = len(ids)
	es.fields[field] = f
	return f
}

// spreadCounter returns the field and the tasks of group per value of it
// over all nodes, counted once per pass and kept current by commitEC2.
func (st *state) spreadCounter(group, field string) (*fieldIndex, []int) {
	es := st.ec2State()
	f := st.field(field)
	k := spreadKey{group, field}
	if c, ok := es.spread[k]; ok {
		return f, c
	}
	c := make([]int, f.names)
	for i := range st.nodes {
		c[f.value[i]] += groupCount(&st.nodes[i], group)
	}
	es.spread[k] = c
	return f, c
}

// strategyKeys fills keys with node i's rank under each strategy; lower is
// better.
func (st *state) strategyKeys(i int, q *ec2Request, keys []int64) {
	n := &st.nodes[i]
	for k, kind := range q.kinds {
		var v int64
		switch kind {
		case keyFreeCPU:
			v = int64(n.CPU - n.UsedCPU)
		case keyFreeMemory:
			v = int64(n.MemoryMiB - n.UsedMemoryMiB)
		case keyGroupOnNode:
			v = int64(groupCount(n, q.Group))
		case keyGroupInValue:
			v = int64(q.spreads[k][q.fields[k].value[i]])
		case keyRandom:
			v = int64(st.randomKey(q.index, i) >> 1) // 63 bits stay positive
		}
		keys[k] = v
	}
}

// before reports whether node a (keys ka) ranks before node b (keys kb):
// the first strategy that tells them apart decides, then the node id.
func (st *state) before(ka []int64, a int, kb []int64, b int) bool {
	for k := range ka {
		if ka[k] != kb[k] {
			return ka[k] < kb[k]
		}
	}
	return st.idRank[a] < st.idRank[b]
}

// randomKey is a pseudo-random number fixed by the seed, the request and the
// node (splitmix64's finaliser), so the random strategy is reproducible and
// needs no shared generator.
func (st *state) randomKey(req, node int) uint64 {
	x := uint64(st.opts.Seed) ^ uint64(req)*0x9e3779b97f4a7c15 ^ uint64(node)*0xc2b2ae3d27d4eb4f
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// commitEC2 records the task on node i: resources, zone, task counts, group
// (copying the snapshot's map before the first change) and ports; and
// brings the pass's counters and cached verdicts up to date.
func (st *state) commitEC2(i int, r *Request, az int) {
	es := st.ec2State()
	st.commit(i, r, az)
	n := &st.nodes[i]
	n.RunningTasks++
	if r.Group != "" {
		if !es.ownGroups[i] {
			g := make(map[string]int, len(n.Groups)+1)
			for k, v := range n.Groups {
				g[k] = v
			}
			n.Groups, es.ownGroups[i] = g, true
		}
		n.Groups[r.Group]++
	}
	if len(r.Ports) > 0 {
		n.UsedPorts = n.UsedPorts[:len(n.UsedPorts):len(n.UsedPorts)] // the snapshot's array is not ours
		for _, p := range r.Ports {
			if p.Port != 0 {
				n.UsedPorts = append(n.UsedPorts, p)
			}
		}
	}
	for k, c := range es.spread {
		if k.group == r.Group {
			c[es.fields[k.field].value[i]]++
		}
	}
	for _, ec := range es.exprs {
		if ec.verdict != nil {
			ec.verdict[i] = 0
		}
	}
}

// ECS's limits on a request's placement rules.
const (
	MaxStrategies  = 5
	MaxConstraints = 10
)

// ValidatePlacement checks a request's placement strategies and constraints
// as RunTask/CreateService do; the API turns an error into an
// InvalidParameterException with its message.
func ValidatePlacement(strategies []Strategy, constraints []Constraint) error {
	if len(strategies) > MaxStrategies {
		return fmt.Errorf("placementStrategy may contain at most %d rules", MaxStrategies)
	}
	for _, s := range strategies {
		switch s.Type {
		case StrategyBinpack:
			if s.Field != "cpu" && s.Field != "memory" {
				return fmt.Errorf("invalid placement strategy field %q for binpack: valid values are cpu and memory", s.Field)
			}
		case StrategySpread:
			name, isAttr := strings.CutPrefix(s.Field, subjAttribute)
			if s.Field != "instanceId" && s.Field != "host" && (!isAttr || name == "") {
				return fmt.Errorf("invalid placement strategy field %q for spread: valid values are instanceId, host and attribute:<name>", s.Field)
			}
		case StrategyRandom:
		default:
			return fmt.Errorf("invalid placement strategy type %q: valid values are random, spread and binpack", s.Type)
		}
	}
	if len(constraints) > MaxConstraints {
		return fmt.Errorf("placementConstraints may contain at most %d rules", MaxConstraints)
	}
	for _, c := range constraints {
		switch c.Type {
		case ConstraintDistinctInstance:
			if c.Expression != "" {
				return errors.New("an expression cannot be specified for a distinctInstance placement constraint")
			}
		case ConstraintMemberOf:
			if _, err := ParseExpression(c.Expression); err != nil {
				return err
			}
		default:
			return fmt.Errorf("invalid placement constraint type %q: valid values are distinctInstance and memberOf", c.Type)
		}
	}
	return nil
}
