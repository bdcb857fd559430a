package alb

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/berthdev/berth/bench"
)

// measurements is everything one run measured.
type measurements struct {
	machine bench.Machine
	date    time.Time
	workers int
	wrk     map[string][]wrkResult // by path name, one per round
	latency []latencySet
	rollout *rolloutResult
	profile *profile // berth dev under wrk against the ALB; nil: none
}

// latencySet is the open-loop runs at one rate.
type latencySet struct {
	what string  // how the rate was chosen
	rate float64 // requests per second
	runs map[string][]loadSample
}

// loadSample summarizes one open-loop run.
type loadSample struct {
	rate                     float64 // answered per second in the timed part
	p50, p99, p999, max      time.Duration
	sent, errs, non200, late int64
	load                     float64 // 1-minute load average before the run
}

// order is the round's order of paths: rotated each round, so that no path
// always runs first (or right after another).
func order[T any](xs []T, round int) []T {
	out := make([]T, 0, len(xs))
	for i := range xs {
		out = append(out, xs[(i+round)%len(xs)])
	}
	return out
}

// measureThroughput runs wrk against every path, once untimed to warm up,
// then -alb.rounds times interleaved.
func (b *Benchmark) measureThroughput(ctx context.Context, h *bench.Harness, paths []path, m *measurements) error {
	for _, p := range paths {
		if _, err := runWrk(ctx, p.vpc, b.threads, b.conns, 2*time.Second, p.url); err != nil {
			return fmt.Errorf("wrk warm-up, %s: %w", p.name, err)
		}
	}
	m.wrk = map[string][]wrkResult{}
	for r := range b.rounds {
		for _, p := range order(paths, r) {
			load := loadAvg1()
			res, err := runWrk(ctx, p.vpc, b.threads, b.conns, b.dur, p.url)
			res.Load = load
			if err != nil {
				return fmt.Errorf("wrk round %d, %s: %w", r+1, p.name, err)
			}
			h.Log.Info("wrk", "round", r+1, "path", p.name, "req/s", int(res.ReqPerSec), "p99", res.P99)
			m.wrk[p.name] = append(m.wrk[p.name], res)
		}
	}
	return nil
}

// measureLatency runs the open-loop generator at half nginx's median
// throughput against every path, -alb.rounds times interleaved; and, if the
// ALB's own median is below nginx's, also at half the ALB's, so that its
// added latency is known at a load it sustains.
func (b *Benchmark) measureLatency(ctx context.Context, h *bench.Harness, paths []path, m *measurements) error {
	ngx, alb := medianRate(m.wrk["nginx"]), medianRate(m.wrk["ALB"])
	m.latency = []latencySet{{what: "half nginx's median throughput", rate: ngx / 2}}
	if alb < 0.9*ngx {
		m.latency = append(m.latency, latencySet{what: "half the ALB's own median throughput", rate: alb / 2})
	}
	for i := range m.latency {
		set := &m.latency[i]
		set.runs = map[string][]loadSample{}
		for r := range b.rounds {
			for _, p := range order(paths, r) {
				load := loadAvg1()
				res, err := runLoad(ctx, loadSpec{rate: set.rate, conns: b.loadConns, dur: b.loadDur, warmup: b.loadWup, dial: p.dial})
				if err != nil {
					return fmt.Errorf("open-loop %.0f/s round %d, %s: %w", set.rate, r+1, p.name, err)
				}
				if len(res.lat) == 0 {
					return fmt.Errorf("open-loop %.0f/s round %d, %s: %w (%d errors)", set.rate, r+1, p.name, errNoSamples, res.errs)
				}
				s := summarizeLoad(res, b.loadDur)
				s.load = load
				h.Log.Info("open loop", "rate", int(set.rate), "round", r+1, "path", p.name, "answered/s", int(s.rate), "p50", s.p50,
					"p99", s.p99, "late", s.late, "errors", s.errs+s.non200)
				set.runs[p.name] = append(set.runs[p.name], s)
			}
		}
	}
	return nil
}

// profileALB runs one more, untimed wrk against the ALB while perf samples
// berth dev, if there is a profile to take.
func (b *Benchmark) profileALB(ctx context.Context, h *bench.Harness, alb path, m *measurements) {
	if b.devPID == 0 {
		return
	}
	prof := make(chan error, 1)
	go func() {
		var err error
		m.profile, err = perfProfile(ctx, b.devPID, b.dur-2*time.Second, b.perfData)
		prof <- err
	}()
	res, err := runWrk(ctx, alb.vpc, b.threads, b.conns, b.dur, alb.url)
	if perr := <-prof; perr != nil {
		h.Log.Warn("no profile of the ALB", "err", perr)
		m.profile = nil
		return
	}
	if err == nil && m.profile != nil {
		m.profile.reqPerSec = res.ReqPerSec
	}
}

// summarizeLoad reduces a run to its percentiles.
func summarizeLoad(r loadResult, dur time.Duration) loadSample {
	lat := slices.Clone(r.lat)
	slices.Sort(lat)
	at := func(p float64) time.Duration { return bench.Percentile(lat, p) }
	return loadSample{rate: float64(len(lat)) / dur.Seconds(), p50: at(50), p99: at(99), p999: at(99.9), max: lat[len(lat)-1],
		sent: r.sent, errs: r.errs, non200: r.non200, late: r.late}
}

// medianRate is the median req/s of wrk runs.
func medianRate(rs []wrkResult) float64 {
	v := make([]float64, 0, len(rs))
	for _, r := range rs {
		v = append(v, r.ReqPerSec)
	}
	return median(v)
}

// median of xs (the mean of the middle two for an even count); 0 if empty.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// medianP99 is the median of the runs' p99s.
func medianP99(ss []loadSample) time.Duration {
	v := make([]float64, 0, len(ss))
	for _, s := range ss {
		v = append(v, float64(s.p99))
	}
	return time.Duration(median(v))
}

// loadAvg1 is the host's 1-minute load average, or -1.
func loadAvg1() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return -1
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return -1
	}
	return v
}
