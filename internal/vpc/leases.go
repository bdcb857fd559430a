package vpc

import (
	"context"
	"math/rand/v2"
	"net/netip"
	"sync"
	"time"
)

// Picking free addresses without listing every lease.
//
// An attach used to list its subnet's leases to find a free address, so
// attaching cost O(leases) and a run of n tasks O(n²). leaseCache keeps,
// per lease prefix (a subnet's ipam/ directory, or the public pool's), the
// addresses known to be leased and those being leased by this process, with
// the lowest address that may be free. It is a hint: the attach transaction
// (the lease key must not exist) decides, so several replicas may attach at
// once. It learns from this process's commits and releases and from races
// it lost; what another replica freed it learns when its copy is older than
// leaseCacheTTL, or when it finds the range full, both of which re-read the
// prefix.

// leaseCacheTTL is how long a copy of a prefix's leases is trusted before
// it is read again.
const leaseCacheTTL = 30 * time.Second

// releaseQuarantine is how long an address this process freed is not
// handed out again while others are free. A peer's firewall learns that
// the address left a security group's set within about a second (the node
// hub releases set changes at most every second under load); an interface
// of another group taking the address at once would be admitted by the
// stale set meanwhile. (Another replica learns of the release only when it
// re-reads the leases, later still.)
const releaseQuarantine = 10 * time.Second

type leaseCache struct {
	mu    sync.Mutex
	pools map[string]*leasePool // by lease prefix
}

// leasePool is one prefix's addresses. Its lock is held across a reload,
// so attachers of one subnet wait for one read instead of each making it.
type leasePool struct {
	mu      sync.Mutex
	leased  map[uint32]bool      // leased as of the last read, or since by this process
	pending map[uint32]bool      // reserved by an attach not yet settled
	cooling map[uint32]time.Time // freed here, not handed out before then while others are free
	low     uint32               // no address below it is free
	loaded  time.Time            // zero: never read
}

func (c *leaseCache) pool(prefix string) *leasePool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pools == nil {
		c.pools = map[string]*leasePool{}
	}
	p := c.pools[prefix]
	if p == nil {
		p = &leasePool{leased: map[uint32]bool{}, pending: map[uint32]bool{}, cooling: map[uint32]time.Time{}}
		c.pools[prefix] = p
	}
	return p
}

// forget drops a prefix (its subnet was deleted).
func (c *leaseCache) forget(prefix string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.pools, prefix)
}

// reserve picks a free address of [first, last] under prefix and marks it
// pending: the lowest free one, or after lost races (attempt > 0) one of
// the lowest few at random, so that replicas racing for one subnet spread
// out. ok is false when the stored leases leave none free. Every reserved
// address must be settled.
func (s *Service) reserve(ctx context.Context, prefix string, first, last uint32, attempt int) (netip.Addr, bool, error) {
	p := s.leases.pool(prefix)
	p.mu.Lock()
	defer p.mu.Unlock()
	fresh := false
	if p.loaded.IsZero() || time.Since(p.loaded) > leaseCacheTTL {
		if err := s.reloadPool(ctx, prefix, p); err != nil {
			return netip.Addr{}, false, err
		}
		fresh = true
	}
	spread := min(attempt+1, 16)
	for {
		cands := p.free(first, last, spread, time.Now())
		if len(cands) == 0 && len(p.cooling) > 0 {
			cands = p.free(first, last, spread, time.Time{}) // only quarantined ones are left
		}
		if len(cands) > 0 {
			n := cands[rand.IntN(len(cands))]
			p.pending[n] = true
			return addrOf(n), true, nil
		}
		if fresh {
			return netip.Addr{}, false, nil
		}
		// Only the stored leases decide that the range is full: another
		// replica may have freed some.
		if err := s.reloadPool(ctx, prefix, p); err != nil {
			return netip.Addr{}, false, err
		}
		fresh = true
	}
}

// settle ends a reservation: leased says whether the address is now
// leased (committed, or found taken by someone else) or still free (the
// transaction failed for another reason).
func (s *Service) settle(prefix string, a netip.Addr, leased bool) {
	p := s.leases.pool(prefix)
	p.mu.Lock()
	defer p.mu.Unlock()
	n := u32(a)
	delete(p.pending, n)
	p.mark(n, leased)
}

// released records that this process freed a leased address, which is
// quarantined for a while.
func (s *Service) released(prefix string, a netip.Addr) {
	p := s.leases.pool(prefix)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mark(u32(a), false)
	now := time.Now()
	for n, until := range p.cooling {
		if !until.After(now) {
			delete(p.cooling, n)
		}
	}
	p.cooling[u32(a)] = now.Add(releaseQuarantine)
}

func (p *leasePool) mark(n uint32, leased bool) {
	if leased {
		p.leased[n] = true
		return
	}
	delete(p.leased, n)
	if n < p.low {
		p.low = n
	}
}

// reloadPool reads the prefix's leases; reservations in flight stay.
func (s *Service) reloadPool(ctx context.Context, prefix string, p *leasePool) error {
	keys, err := s.listKeys(ctx, prefix)
	if err != nil {
		return err
	}
	p.leased = make(map[uint32]bool, len(keys))
	for _, k := range keys {
		if a, err := netip.ParseAddr(k); err == nil && a.Is4() {
			p.leased[u32(a)] = true
		}
	}
	p.low = 0
	p.loaded = time.Now()
	return nil
}

// free returns up to limit addresses of [first, last] neither leased,
// pending nor quarantined at now (zero now: none is), lowest first, and
// moves low up to the first address neither leased nor pending.
func (p *leasePool) free(first, last uint32, limit int, now time.Time) []uint32 {
	var out []uint32
	lowest, found := uint32(0), false
	for n := uint64(max(first, p.low)); n <= uint64(last) && len(out) < limit; n++ {
		a := uint32(n)
		if p.leased[a] || p.pending[a] {
			continue
		}
		if !found {
			lowest, found = a, true
		}
		if until, ok := p.cooling[a]; ok && !now.IsZero() && until.After(now) {
			continue
		}
		out = append(out, a)
	}
	if found {
		p.low = lowest
	} else if len(out) == 0 && last >= p.low {
		p.low = last + 1 // none free up to last (wraps only at 255.255.255.255, which no range reaches)
	}
	return out
}
