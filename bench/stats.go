package bench

import (
	"math"
	"slices"
	"time"
)

// Summary describes a sample of durations.
type Summary struct {
	N                  int
	Min, P50, P99, Max time.Duration
	Mean               time.Duration
}

// Percentile returns the p-th percentile (0 < p ≤ 100) of ds by the
// nearest-rank method: the smallest value that at least p% of the sample
// does not exceed. With 50 samples p99 is the largest.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	return s[min(max(rank, 1), len(s))-1]
}

// Summarize computes a Summary of ds.
func Summarize(ds []time.Duration) Summary {
	if len(ds) == 0 {
		return Summary{}
	}
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return Summary{N: len(ds), Min: slices.Min(ds), P50: Percentile(ds, 50), P99: Percentile(ds, 99), Max: slices.Max(ds),
		Mean: sum / time.Duration(len(ds))}
}
