package scheduler

// The Fargate placer's index. placeFargate's rule picks, among the hosts
// that serve an allowed zone and fit the task, the least (perAZ[zone], -free
// memory, id), zone being the host's least loaded allowed zone. Since a
// host's key in its least loaded zone is its smallest over all its allowed
// zones, that is also the least over (host, allowed zone it serves) pairs.
// So with a max-heap per zone ordered by (free memory, -id), a task looks at
// the allowed zones from the least loaded up and, in each, searches the heap
// from the top, skipping every subtree whose root has too little memory or
// cannot beat the best host found: the top fits unless it lacks CPU, so a
// task typically costs O(zones + log hosts) instead of a scan of every host.
// (Hosts short of CPU but rich in memory make the search visit them; it is
// never worse than the scan.) A task the index cannot place goes through the
// scan, which computes the failure reason as it always has.
//
// container/heap would do the sifting, but a host sits in several heaps and
// must know its position in each, which its interface leaves to us anyway.

type fargateIndex struct {
	heaps [][]int32 // per zone: node indexes, a max-heap on (free memory, -id rank)
	pos   [][]int32 // per node, aligned with st.nodeZones[i]: its position in that zone's heap (-1: a repeated zone)
	order []int     // scratch: the allowed zones of a request, least loaded first
}

func (st *state) buildIndex() *fargateIndex {
	ix := &fargateIndex{heaps: make([][]int32, len(st.zones)), pos: make([][]int32, len(st.nodes))}
	for i, zs := range st.nodeZones {
		ix.pos[i] = make([]int32, len(zs))
		for j, z := range zs {
			ix.pos[i][j] = -1
			if indexOf(zs[:j], z) >= 0 {
				continue // a zone listed twice is indexed once
			}
			ix.pos[i][j] = int32(len(ix.heaps[z]))
			ix.heaps[z] = append(ix.heaps[z], int32(i))
		}
	}
	for z, h := range ix.heaps {
		for k := len(h)/2 - 1; k >= 0; k-- {
			st.siftDown(ix, z, k)
		}
	}
	return ix
}

func indexOf(zs []int, z int) int {
	for j, x := range zs {
		if x == z {
			return j
		}
	}
	return -1
}

func (st *state) freeMem(i int) int { return st.nodes[i].MemoryMiB - st.nodes[i].UsedMemoryMiB }

// higher orders the heaps: more free memory, then the smaller id.
func (st *state) higher(a, b int) bool {
	fa, fb := st.freeMem(a), st.freeMem(b)
	if fa != fb {
		return fa > fb
	}
	return st.idRank[a] < st.idRank[b]
}

func (st *state) setPos(ix *fargateIndex, z, k int) {
	i := int(ix.heaps[z][k])
	ix.pos[i][indexOf(st.nodeZones[i], z)] = int32(k)
}

// siftDown restores the heap of zone z below position k after the host
// there lost memory.
func (st *state) siftDown(ix *fargateIndex, z, k int) {
	h := ix.heaps[z]
	for {
		top, l, r := k, 2*k+1, 2*k+2
		if l < len(h) && st.higher(int(h[l]), int(h[top])) {
			top = l
		}
		if r < len(h) && st.higher(int(h[r]), int(h[top])) {
			top = r
		}
		if top == k {
			st.setPos(ix, z, k)
			return
		}
		h[k], h[top] = h[top], h[k]
		st.setPos(ix, z, k)
		k = top
	}
}

// reindex restores the heaps of node i's zones after a task landed on it
// (its free memory only went down).
func (st *state) reindex(i int) {
	ix := st.index
	for j, z := range st.nodeZones[i] {
		if p := ix.pos[i][j]; p >= 0 {
			st.siftDown(ix, z, int(p))
		}
	}
}

// indexedFargate returns the host and zone placeFargate's rule picks, or -1
// when no host fits.
func (st *state) indexedFargate(r *Request) (node, az int) {
	if st.index == nil {
		st.index = st.buildIndex()
	}
	ix := st.index
	// The allowed zones with hosts, least loaded first, then by name; few
	// enough that an insertion sort is the simplest.
	ix.order = ix.order[:0]
	for z := range st.zones {
		if !st.allowed[z] || len(ix.heaps[z]) == 0 {
			continue
		}
		k := len(ix.order)
		ix.order = append(ix.order, z)
		for ; k > 0 && st.perAZ[ix.order[k-1]] > st.perAZ[z]; k-- {
			ix.order[k] = ix.order[k-1]
		}
		ix.order[k] = z
	}
	for a := 0; a < len(ix.order); {
		// Zones as loaded as each other compete on the host alone.
		best, b := -1, a
		for ; b < len(ix.order) && st.perAZ[ix.order[b]] == st.perAZ[ix.order[a]]; b++ {
			best = st.search(ix.heaps[ix.order[b]], 0, r, best)
		}
		if best >= 0 {
			return best, st.pickAZ(st.nodeZones[best])
		}
		a = b
	}
	return -1, -1
}

// search returns the best host that fits r in the subtree of heap h at k,
// or best if none beats it. A host that fits beats its whole subtree.
func (st *state) search(h []int32, k int, r *Request, best int) int {
	if k >= len(h) {
		return best
	}
	i := int(h[k])
	if st.freeMem(i) < r.MemoryMiB || (best >= 0 && !st.higher(i, best)) {
		return best
	}
	if n := &st.nodes[i]; n.CPU-n.UsedCPU >= r.CPU {
		return i
	}
	best = st.search(h, 2*k+1, r, best)
	return st.search(h, 2*k+2, r, best)
}
