// Package throttle rate-limits callers the way AWS does: a token bucket per
// account and bucket name (an API operation, or Fargate task launches),
// with a refill rate (the sustained rate) and a capacity (the burst).
//
// Buckets are made lazily on first use and kept in LRU order; past a bound
// the least recently used one is dropped, so memory stays bounded however
// many accounts call. A dropped bucket comes back full, which is what an
// idle bucket would have refilled to anyway: only a bucket that is both
// drained and the least recently used of more than the bound loses its
// debt, so keep the bound well above the number of busy buckets.
package throttle

import (
	"container/list"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limit is one bucket's shape: Rate tokens a second refill it up to Burst.
// A Limit with Rate <= 0 is no limit at all.
type Limit struct {
	Rate  float64
	Burst int
}

// Unlimited reports whether l limits nothing.
func (l Limit) Unlimited() bool { return l.Rate <= 0 || math.IsInf(l.Rate, 1) }

// DefaultMaxBuckets bounds the buckets a Limiter keeps.
const DefaultMaxBuckets = 100_000

type key struct{ account, bucket string }

type entry struct {
	key   key
	limit Limit
	rl    *rate.Limiter
}

// Limiter holds the token buckets. It is safe for concurrent use.
type Limiter struct {
	max int
	now func() time.Time

	mu      sync.Mutex
	buckets map[key]*list.Element // of *entry
	lru     list.List             // front: most recently used
}

// NewLimiter returns a Limiter that keeps at most maxBuckets buckets
// (DefaultMaxBuckets if maxBuckets <= 0). now is its clock (nil: time.Now).
func NewLimiter(maxBuckets int, now func() time.Time) *Limiter {
	if maxBuckets <= 0 {
		maxBuckets = DefaultMaxBuckets
	}
	if now == nil {
		now = time.Now
	}
	return &Limiter{max: maxBuckets, now: now, buckets: make(map[key]*list.Element)}
}

// bucket returns the bucket of (account, name) shaped by lim, making it (and
// evicting the least recently used one past the bound) if needed. A bucket
// whose limit changed keeps its tokens under the new limit.
func (l *Limiter) bucket(account, name string, lim Limit) *rate.Limiter {
	k := key{account, name}
	l.mu.Lock()
	defer l.mu.Unlock()
	if el, ok := l.buckets[k]; ok {
		l.lru.MoveToFront(el)
		e := el.Value.(*entry)
		if e.limit != lim {
			now := l.now()
			e.rl.SetLimitAt(now, rate.Limit(lim.Rate))
			e.rl.SetBurstAt(now, lim.Burst)
			e.limit = lim
		}
		return e.rl
	}
	e := &entry{key: k, limit: lim, rl: rate.NewLimiter(rate.Limit(lim.Rate), lim.Burst)}
	l.buckets[k] = l.lru.PushFront(e)
	for l.lru.Len() > l.max {
		old := l.lru.Back()
		l.lru.Remove(old)
		delete(l.buckets, old.Value.(*entry).key)
	}
	return e.rl
}

// Allow takes n tokens from the bucket (account, name) if it has them all,
// and reports whether it did. An unlimited lim always allows and keeps no
// bucket.
func (l *Limiter) Allow(account, name string, lim Limit, n int) bool {
	if lim.Unlimited() || n <= 0 {
		return true
	}
	return l.bucket(account, name, lim).AllowN(l.now(), n)
}

// TakeUpTo takes as many tokens as the bucket (account, name) has, up to n,
// and returns how many it took (n for an unlimited lim).
func (l *Limiter) TakeUpTo(account, name string, lim Limit, n int) int {
	if lim.Unlimited() || n <= 0 {
		return max(n, 0)
	}
	rl := l.bucket(account, name, lim)
	now := l.now()
	// Reading the tokens and taking them are two steps: a concurrent
	// taker can win in between, and then this take fails and returns 0,
	// which callers treat as "try again later".
	k := min(n, int(math.Floor(rl.TokensAt(now))))
	if k <= 0 || !rl.AllowN(now, k) {
		return 0
	}
	return k
}

// Len is the number of buckets kept.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lru.Len()
}
