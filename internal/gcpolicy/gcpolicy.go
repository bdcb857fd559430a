// Package gcpolicy owns the Go garbage collector's setting (GOGC) of a
// berth control plane process.
//
// Go's default, GOGC=100, collects whenever the heap has doubled since the
// last collection. Under load the control plane allocates fast (every task
// write is copied several times inside etcd) while its live heap is small,
// and the collector took a quarter of the CPU of the million-task benchmark.
// A higher GOGC collects less often, but it multiplies the memory a large
// store needs: with a million tasks stored the live heap is over a gigabyte.
//
// So the policy is GOGC=Percent (300) while the heap that allows stays
// under Ceiling (1.5 GiB), then whatever percent keeps the heap's goal at the
// ceiling, but never under Go's own 100: a small store collects a third as
// often as Go's default; a large one never holds more than the default
// would. Go's memory limit (GOMEMLIMIT) would cap the heap instead, and
// collect without pause once the live heap reaches it; this policy only
// ever falls back to the default.
//
// A user's GOGC or GOMEMLIMIT in the environment wins: the policy then
// leaves the collector alone.
package gcpolicy

import (
	"context"
	"log/slog"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Config tunes the policy; zero values take the defaults.
type Config struct {
	// Percent is GOGC while the heap it allows stays under Ceiling
	// (default 300).
	Percent int
	// Ceiling is the heap size, in bytes, up to which Percent applies
	// (default 1.5 GiB: with the memory that is not heap, a server holding a
	// million tasks stays under 2 GiB).
	Ceiling int64
	// Interval is how often the live heap is read (default 500 ms).
	Interval time.Duration
	Logger   *slog.Logger
}

func (c *Config) defaults() {
	if c.Percent <= 0 {
		c.Percent = 300
	}
	if c.Ceiling <= 0 {
		c.Ceiling = 3 << 29
	}
	if c.Interval <= 0 {
		c.Interval = 500 * time.Millisecond
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// UserSet reports whether the environment sets the collector (GOGC or
// GOMEMLIMIT): the policy then stays off.
func UserSet() bool {
	_, gogc := os.LookupEnv("GOGC")
	_, limit := os.LookupEnv("GOMEMLIMIT")
	return gogc || limit
}

// Run applies the policy until ctx ends, reading the live heap every
// interval; it returns at once when the user set the collector (UserSet).
// It restores the percent it found when it returns.
func Run(ctx context.Context, cfg Config) {
	if UserSet() {
		return
	}
	cfg.defaults()
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	read := func() int64 {
		metrics.Read(sample)
		if sample[0].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return int64(sample[0].Value.Uint64())
	}
	cur := Percent(read(), cfg.Ceiling, cfg.Percent)
	was := debug.SetGCPercent(cur)
	defer debug.SetGCPercent(was)
	cfg.Logger.Debug("garbage collector policy", "gogc", cur, "ceiling_bytes", cfg.Ceiling)
	t := time.NewTicker(cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if p := Percent(read(), cfg.Ceiling, cfg.Percent); p != cur {
			debug.SetGCPercent(p)
			cur = p
		}
	}
}

// Percent is the GOGC for a live heap of live bytes: high while the goal
// it sets, live × (1 + high/100), is at most ceiling; else the percent whose
// goal is the ceiling, in steps of 10 (so that a heap that grows slowly
// does not change it at every reading), and never under 100.
func Percent(live, ceiling int64, high int) int {
	if live <= 0 || live*int64(100+high) <= ceiling*100 {
		return high
	}
	p := int((ceiling*100/live - 100) / 10 * 10)
	return max(100, min(high, p))
}
