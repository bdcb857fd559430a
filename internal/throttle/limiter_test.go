package throttle

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock tests move by hand, so no assertion depends on how
// fast the machine runs.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// allowed counts how many of n single-token takes succeed.
func allowed(l *Limiter, account, name string, lim Limit, n int) int {
	got := 0
	for range n {
		if l.Allow(account, name, lim, 1) {
			got++
		}
	}
	return got
}

func TestBurstThenRefill(t *testing.T) {
	clk := newClock()
	l := NewLimiter(0, clk.Now)
	lim := Limit{Rate: 20, Burst: 100}
	if got := allowed(l, "a", Launches, lim, 150); got != 100 {
		t.Fatalf("burst: %d of 150 allowed, want 100", got)
	}
	clk.Advance(500 * time.Millisecond) // 10 tokens
	if got := allowed(l, "a", Launches, lim, 50); got != 10 {
		t.Fatalf("after 0.5 s: %d allowed, want 10", got)
	}
	clk.Advance(time.Hour) // refills to the burst, not beyond
	if got := allowed(l, "a", Launches, lim, 500); got != 100 {
		t.Fatalf("after an hour: %d allowed, want 100", got)
	}
}

func TestAllowNIsAllOrNothing(t *testing.T) {
	clk := newClock()
	l := NewLimiter(0, clk.Now)
	lim := Limit{Rate: 20, Burst: 100}
	tests := []struct {
		n    int
		want bool
	}{
		{95, true}, {10, false}, {5, true}, {1, false},
	}
	for _, tt := range tests {
		if got := l.Allow("a", Launches, lim, tt.n); got != tt.want {
			t.Fatalf("Allow(%d) = %v, want %v", tt.n, got, tt.want)
		}
	}
	if got := l.Allow("a", Launches, lim, 101); got {
		t.Fatal("a take above the burst can never succeed, yet it did")
	}
}

func TestTakeUpTo(t *testing.T) {
	clk := newClock()
	l := NewLimiter(0, clk.Now)
	lim := Limit{Rate: 20, Burst: 100}
	steps := []struct {
		advance time.Duration
		n, want int
	}{
		{0, 60, 60},
		{0, 60, 40},
		{0, 10, 0},
		{250 * time.Millisecond, 10, 5},
		{time.Second, 3, 3},
	}
	for i, s := range steps {
		clk.Advance(s.advance)
		if got := l.TakeUpTo("a", Launches, lim, s.n); got != s.want {
			t.Fatalf("step %d: TakeUpTo(%d) = %d, want %d", i, s.n, got, s.want)
		}
	}
	if got := l.TakeUpTo("a", Launches, Limit{}, 7); got != 7 {
		t.Fatalf("unlimited TakeUpTo(7) = %d", got)
	}
}

func TestAccountsAndBucketsAreIsolated(t *testing.T) {
	clk := newClock()
	l := NewLimiter(0, clk.Now)
	lim := Limit{Rate: 1, Burst: 5}
	if got := allowed(l, "a", "ecs:RunTask", lim, 10); got != 5 {
		t.Fatalf("a RunTask: %d", got)
	}
	if got := allowed(l, "b", "ecs:RunTask", lim, 10); got != 5 {
		t.Fatalf("b RunTask after a drained its own: %d, want 5", got)
	}
	if got := allowed(l, "a", "ecs:DescribeTasks", lim, 10); got != 5 {
		t.Fatalf("a DescribeTasks after a drained RunTask: %d, want 5", got)
	}
}

func TestUnlimitedKeepsNoBucket(t *testing.T) {
	l := NewLimiter(0, nil)
	for _, lim := range []Limit{{}, {Rate: -1, Burst: 3}} {
		if got := allowed(l, "a", "x:y", lim, 1000); got != 1000 {
			t.Fatalf("%+v: %d of 1000 allowed", lim, got)
		}
	}
	if l.Len() != 0 {
		t.Fatalf("Len = %d, want 0", l.Len())
	}
}

func TestEvictionBoundsBuckets(t *testing.T) {
	clk := newClock()
	l := NewLimiter(10, clk.Now)
	lim := Limit{Rate: 1, Burst: 1}
	// Drain "hot" first, then keep it recently used while 100 other
	// accounts come and go: it must survive (and stay drained).
	if !l.Allow("hot", "b", lim, 1) {
		t.Fatal("first take refused")
	}
	for i := range 100 {
		l.Allow(fmt.Sprintf("acct-%d", i), "b", lim, 1)
		if i%5 == 0 && l.Allow("hot", "b", lim, 1) {
			t.Fatal("hot bucket was refilled: it was evicted although recently used")
		}
		if n := l.Len(); n > 10 {
			t.Fatalf("Len = %d, above the bound", n)
		}
	}
	if n := l.Len(); n != 10 {
		t.Fatalf("Len = %d, want 10", n)
	}
	// acct-0 was evicted long ago: it comes back full.
	if !l.Allow("acct-0", "b", lim, 1) {
		t.Fatal("an evicted bucket did not come back full")
	}
}

func TestLimitChangeKeepsBucket(t *testing.T) {
	clk := newClock()
	l := NewLimiter(0, clk.Now)
	if got := allowed(l, "a", "b", Limit{Rate: 1, Burst: 10}, 20); got != 10 {
		t.Fatalf("first limit: %d", got)
	}
	// A larger limit does not hand out a fresh burst at once.
	if got := allowed(l, "a", "b", Limit{Rate: 1, Burst: 50}, 20); got != 0 {
		t.Fatalf("after raising the burst: %d allowed at once, want 0", got)
	}
	clk.Advance(time.Minute)
	if got := allowed(l, "a", "b", Limit{Rate: 1, Burst: 50}, 100); got != 50 {
		t.Fatalf("a minute later: %d, want 50", got)
	}
}

func TestConcurrentTakesNeverExceedBurst(t *testing.T) {
	clk := newClock() // frozen: no refill during the test
	l := NewLimiter(0, clk.Now)
	lim := Limit{Rate: 1, Burst: 100}
	var mu sync.Mutex
	allowedB, tookC := 0, 0
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			b, c := 0, 0
			for range 50 {
				if l.Allow("a", "b", lim, 1) {
					b++
				}
				c += l.TakeUpTo("a", "c", lim, 3)
			}
			mu.Lock()
			allowedB += b
			tookC += c
			mu.Unlock()
		})
	}
	wg.Wait()
	if allowedB != 100 {
		t.Fatalf("8 goroutines were allowed %d of a bucket of 100", allowedB)
	}
	// A TakeUpTo that loses a race takes nothing, so some of c may be
	// left; what is left and what was taken must add up to the burst.
	left := l.TakeUpTo("a", "c", lim, 100)
	if tookC+left != 100 {
		t.Fatalf("took %d concurrently and %d after, want 100 in all", tookC, left)
	}
}
