// Package scheduler decides where tasks run. Place is a pure function of a
// snapshot of the hosts and the tasks waiting for them: it returns a plan and
// changes nothing; the caller commits the plan with optimistic concurrency, so
// a plan computed on a stale snapshot fails to commit instead of overcommitting
// a host.
package scheduler

import "sort"

// Node is a host's capacity in a snapshot.
type Node struct {
	ID  string
	AZs []string // availability zones the host serves
	// CPU units and MiB offered, and already used by placed tasks.
	CPU, MemoryMiB         int
	UsedCPU, UsedMemoryMiB int
	// Placed counts the tasks already on the host, by zone, so that zones
	// stay balanced across scheduling passes, not only within one.
	Placed map[string]int
}

// Request is a task waiting for a host.
type Request struct {
	ID        string
	CPU       int
	MemoryMiB int
	// AZs the task may run in (from its subnets); empty means any.
	AZs []string
}

// Placement assigns a task to a host and zone.
type Placement struct {
	TaskID, NodeID, AZ string
}

// Unplaced is a task no host could take, with ECS's reason.
type Unplaced struct {
	TaskID, Reason string
}

// Plan is the outcome of one scheduling pass.
type Plan struct {
	Placements []Placement
	Unplaced   []Unplaced
}

// Place spreads requests over nodes: each task goes to the zone with the
// fewest tasks (already placed, and placed in this pass) among those allowed, then to the host in
// that zone with the most free memory that fits the task. Requests are placed
// in order; a request that fits nowhere is reported unplaced with the resource
// that ran out (RESOURCE:CPU or RESOURCE:MEMORY), or AGENT when no host serves
// any of its zones.
func Place(nodes []Node, reqs []Request) Plan {
	free := make([]Node, len(nodes))
	copy(free, nodes)
	perAZ := map[string]int{}
	for _, n := range nodes {
		for az, c := range n.Placed {
			perAZ[az] += c
		}
	}
	var plan Plan
	for _, r := range reqs {
		best, bestAZ := -1, ""
		reason := "AGENT"
		for i := range free {
			n := &free[i]
			az := pickAZ(n.AZs, r.AZs, perAZ)
			if az == "" {
				continue
			}
			if n.CPU-n.UsedCPU < r.CPU {
				reason = "RESOURCE:CPU"
				continue
			}
			if n.MemoryMiB-n.UsedMemoryMiB < r.MemoryMiB {
				reason = "RESOURCE:MEMORY"
				continue
			}
			if best < 0 || better(n, &free[best], az, bestAZ, perAZ) {
				best, bestAZ = i, az
			}
		}
		if best < 0 {
			plan.Unplaced = append(plan.Unplaced, Unplaced{TaskID: r.ID, Reason: reason})
			continue
		}
		free[best].UsedCPU += r.CPU
		free[best].UsedMemoryMiB += r.MemoryMiB
		perAZ[bestAZ]++
		plan.Placements = append(plan.Placements, Placement{TaskID: r.ID, NodeID: free[best].ID, AZ: bestAZ})
	}
	return plan
}

// better prefers the less loaded zone, then the host with more free memory,
// then the smaller id (so the plan is deterministic).
func better(a, b *Node, azA, azB string, perAZ map[string]int) bool {
	if perAZ[azA] != perAZ[azB] {
		return perAZ[azA] < perAZ[azB]
	}
	fa, fb := a.MemoryMiB-a.UsedMemoryMiB, b.MemoryMiB-b.UsedMemoryMiB
	if fa != fb {
		return fa > fb
	}
	return a.ID < b.ID
}

// pickAZ returns the allowed zone of a host with the fewest placements so far.
func pickAZ(nodeAZs, allowed []string, perAZ map[string]int) string {
	cands := make([]string, 0, len(nodeAZs))
	for _, az := range nodeAZs {
		if len(allowed) == 0 || containsStr(allowed, az) {
			cands = append(cands, az)
		}
	}
	if len(cands) == 0 {
		return ""
	}
	sort.SliceStable(cands, func(i, j int) bool {
		if perAZ[cands[i]] != perAZ[cands[j]] {
			return perAZ[cands[i]] < perAZ[cands[j]]
		}
		return cands[i] < cands[j]
	})
	return cands[0]
}

func containsStr(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
