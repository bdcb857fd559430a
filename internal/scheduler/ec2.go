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

// ec2State is what EC2 placement adds to a pass.
type ec2State struct {
	ownGroups []bool                  // node i's Groups map is this pass's copy
	spread    map[spreadKey]spreadCnt // tasks of a group per value of a field
	exprs     map[string]exprResult   // memberOf expressions, parsed once
}

type spreadKey struct{ group, field string }

// spreadCnt counts a group's tasks per value of an attribute.
type spreadCnt map[string]int

type exprResult struct {
	e   *Expr
	err error
}

func (st *state) ec2State() *ec2State {
	if st.ec2 == nil {
		st.ec2 = &ec2State{
			ownGroups: make([]bool, len(st.nodes)),
			spread:    map[spreadKey]spreadCnt{},
			exprs:     map[string]exprResult{},
		}
	}
	return st.ec2
}

// ec2Request is a request with its constraints resolved for one pass.
type ec2Request struct {
	*Request
	index    int
	memberOf []*Expr
	badExpr  bool // a memberOf expression does not parse: nothing satisfies it
	distinct bool
	spreads  []spreadCnt // per strategy: the counter of an attribute spread, else nil
}

func (st *state) placeEC2(r *Request, index int) (Placement, Unplaced, bool) {
	es := st.ec2State()
	q := ec2Request{Request: r, index: index, spreads: make([]spreadCnt, len(r.Strategy))}
	for _, c := range r.Constraints {
		switch c.Type {
		case ConstraintDistinctInstance:
			q.distinct = true
		case ConstraintMemberOf:
			res, ok := es.exprs[c.Expression]
			if !ok {
				res.e, res.err = ParseExpression(c.Expression)
				es.exprs[c.Expression] = res
			}
			if res.err != nil {
				q.badExpr = true // the API validates; a stale record fails closed
			} else {
				q.memberOf = append(q.memberOf, res.e)
			}
		}
	}
	for k, s := range r.Strategy {
		if s.Type == StrategySpread && strings.HasPrefix(s.Field, subjAttribute) {
			q.spreads[k] = st.spreadCounter(r.Group, s.Field)
		}
	}
	st.setAllowed(r.AZs)

	best, closest, furthest := -1, -1, -1
	for i := range st.nodes {
		n := &st.nodes[i]
		if n.Draining {
			continue
		}
		stage := st.check(i, &q)
		if stage != stagePassed {
			if stage > furthest || (stage == furthest && n.ID < st.nodes[closest].ID) {
				furthest, closest = stage, i
			}
			continue
		}
		if best < 0 || st.rank(i, best, &q) {
			best = i
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
	for _, e := range q.memberOf {
		if !e.Match(n) {
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

func portsTaken(used, want []HostPort) bool {
	for _, w := range want {
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

// fieldValue is node i's value for a spread on attribute:<name>.
func (st *state) fieldValue(i int, field string) string {
	name := strings.TrimPrefix(field, subjAttribute)
	if name == attrAZ {
		if z := st.ec2Zone[i]; z >= 0 {
			return st.zones[z]
		}
		return ""
	}
	return st.nodes[i].Attributes[name]
}

// spreadCounter returns the tasks of group per value of field over all nodes,
// counted once per pass and kept current by commitEC2.
func (st *state) spreadCounter(group, field string) spreadCnt {
	es := st.ec2State()
	k := spreadKey{group, field}
	if c, ok := es.spread[k]; ok {
		return c
	}
	c := spreadCnt{}
	for i := range st.nodes {
		c[st.fieldValue(i, field)] += groupCount(&st.nodes[i], group)
	}
	es.spread[k] = c
	return c
}

// rank reports whether node a is a better candidate than node b.
func (st *state) rank(a, b int, q *ec2Request) bool {
	na, nb := &st.nodes[a], &st.nodes[b]
	for k, s := range q.Strategy {
		var va, vb int64
		switch s.Type {
		case StrategyBinpack:
			switch s.Field {
			case "cpu":
				va, vb = int64(na.CPU-na.UsedCPU), int64(nb.CPU-nb.UsedCPU)
			case "memory":
				va, vb = int64(na.MemoryMiB-na.UsedMemoryMiB), int64(nb.MemoryMiB-nb.UsedMemoryMiB)
			}
		case StrategySpread:
			if c := q.spreads[k]; c != nil {
				va, vb = int64(c[st.fieldValue(a, s.Field)]), int64(c[st.fieldValue(b, s.Field)])
			} else { // instanceId, host
				va, vb = int64(groupCount(na, q.Group)), int64(groupCount(nb, q.Group))
			}
		case StrategyRandom:
			// Compare as unsigned: the full 64 bits, shifted to stay signed.
			va, vb = int64(st.randomKey(q.index, a)>>1), int64(st.randomKey(q.index, b)>>1)
		}
		if va != vb {
			return va < vb
		}
	}
	return na.ID < nb.ID
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
// (copying the snapshot's map before the first change) and ports.
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
		n.UsedPorts = append(n.UsedPorts[:len(n.UsedPorts):len(n.UsedPorts)], r.Ports...)
	}
	for k, c := range es.spread {
		if k.group == r.Group {
			c[st.fieldValue(i, k.field)]++
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
