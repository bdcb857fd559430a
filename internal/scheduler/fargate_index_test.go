package scheduler

import (
	"fmt"
	"math/rand"
	"reflect"
	"sort"
	"testing"
)

// TestFargateMatchesReference checks the indexed Fargate placer against the
// original scan (referencePlace, the implementation before the index) on
// random clusters: hosts in several zones, duplicate ids, hosts short of CPU
// but not memory, tasks restricted to zones, zones nobody serves.
func TestFargateMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	zones := []string{"a", "b", "c", "d"}
	iters := 20000
	if testing.Short() {
		iters = 2000
	}
	for it := range iters {
		nodes := make([]Node, rng.Intn(30))
		for i := range nodes {
			n := &nodes[i]
			n.ID = fmt.Sprintf("n%d", rng.Intn(40))
			for range rng.Intn(4) {
				n.AZs = append(n.AZs, zones[rng.Intn(len(zones))])
			}
			n.CPU, n.MemoryMiB = 256*rng.Intn(6), 512*rng.Intn(6)
			n.UsedCPU, n.UsedMemoryMiB = 256*rng.Intn(2), 256*rng.Intn(3)
			if rng.Intn(3) == 0 {
				n.Placed = map[string]int{zones[rng.Intn(len(zones))]: rng.Intn(4)}
			}
		}
		reqs := make([]Request, rng.Intn(40))
		for i := range reqs {
			r := &reqs[i]
			r.ID = fmt.Sprintf("t%d", i)
			r.CPU, r.MemoryMiB = 128*rng.Intn(4), 256*rng.Intn(4)
			for range rng.Intn(3) {
				r.AZs = append(r.AZs, append(zones, "z")[rng.Intn(len(zones)+1)])
			}
		}
		got, want := Place(nodes, reqs), referencePlace(nodes, reqs)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("iteration %d:\nnodes %+v\nreqs %+v\ngot  %+v\nwant %+v", it, nodes, reqs, got, want)
		}
	}
}

// referencePlace is Place as it was before the index: it spreads requests over nodes: each task goes to the zone with the
// fewest tasks (already placed, and placed in this pass) among those allowed, then to the host in
// that zone with the most free memory that fits the task. Requests are placed
// in order; a request that fits nowhere is reported unplaced with the resource
// that ran out (RESOURCE:CPU or RESOURCE:MEMORY), or AGENT when no host serves
// any of its zones.
func referencePlace(nodes []Node, reqs []Request) Plan {
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
			az := referencePickAZ(n.AZs, r.AZs, perAZ)
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
			if best < 0 || referenceBetter(n, &free[best], az, bestAZ, perAZ) {
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
func referenceBetter(a, b *Node, azA, azB string, perAZ map[string]int) bool {
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
func referencePickAZ(nodeAZs, allowed []string, perAZ map[string]int) string {
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
