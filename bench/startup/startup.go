// Package startup measures how long `berth dev` takes to be ready: from
// starting the process until /_berth/health answers and the agent has
// registered, on a warm machine, both on an empty data dir and on one left
// by an earlier run. Its anchor, measured in the same run, is the private
// containerd alone, which `berth dev` must start before its agent can
// register.
package startup

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/berthdev/berth/bench"
	"github.com/berthdev/berth/internal/devenv"
	"github.com/berthdev/berth/internal/runtime"
)

// target is issue 2's bound on `berth dev`'s time to ready.
const target = 2 * time.Second

// Benchmark is the time-to-ready benchmark.
type Benchmark struct {
	runs int
	poll time.Duration
}

// New returns the benchmark with its defaults: 5 runs of each kind, 5 ms polls.
func New() *Benchmark { return &Benchmark{runs: 5, poll: 5 * time.Millisecond} }

// Name implements bench.Benchmark.
func (b *Benchmark) Name() string { return "startup" }

// Title implements bench.Benchmark.
func (b *Benchmark) Title() string { return "`berth dev` time to ready" }

// Flags implements bench.Benchmark.
func (b *Benchmark) Flags(fs *flag.FlagSet) {
	fs.IntVar(&b.runs, "startup.runs", b.runs, "starts of each kind (1–50)")
	fs.DurationVar(&b.poll, "startup.poll", b.poll, "pause between readiness checks")
}

// Run implements bench.Benchmark.
func (b *Benchmark) Run(ctx context.Context, h *bench.Harness) (*bench.Result, error) {
	if b.runs < 1 || b.runs > 50 || b.poll <= 0 || b.poll > time.Second {
		return nil, fmt.Errorf("startup: -startup.runs must be 1–50 and -startup.poll 1ns–1s (got %d, %s)", b.runs, b.poll)
	}
	addr, err := devenv.FreeAddr()
	if err != nil {
		return nil, err
	}
	// The data dir the restarts reuse; its first start is the warm-up.
	reused, err := h.NewDataDir()
	if err != nil {
		return nil, err
	}
	if _, err := b.startOnce(ctx, h, reused, addr); err != nil {
		return nil, fmt.Errorf("warm-up start: %w", err)
	}
	var restarts, firsts []start
	for i := 0; i < b.runs; i++ {
		d, err := b.startOnce(ctx, h, reused, addr)
		if err != nil {
			return nil, fmt.Errorf("restart %d: %w", i+1, err)
		}
		restarts = append(restarts, d)
	}
	for i := 0; i < b.runs; i++ {
		dir, err := h.NewDataDir()
		if err != nil {
			return nil, err
		}
		d, err := b.startOnce(ctx, h, dir, addr)
		devenv.CleanupDataDir(dir)
		if err != nil {
			return nil, fmt.Errorf("first start %d: %w", i+1, err)
		}
		firsts = append(firsts, d)
	}
	var containerd []time.Duration
	for i := 0; i < b.runs; i++ {
		d, err := containerdOnce(ctx, h)
		if err != nil {
			return nil, fmt.Errorf("containerd start %d: %w", i+1, err)
		}
		containerd = append(containerd, d)
	}
	return b.result(restarts, firsts, containerd), nil
}

// start is one timed start of `berth dev`.
type start struct {
	ready   time.Duration // exec → healthy and registered
	healthy time.Duration // exec → /_berth/health answers: etcd and the API serve
}

// startOnce starts `berth dev` on dir and times it until ready, then stops it.
func (b *Benchmark) startOnce(ctx context.Context, h *bench.Harness, dir, addr string) (start, error) {
	var s start
	env, err := devenv.New(h.Berth, dir, addr)
	if err != nil {
		return s, err
	}
	t0 := time.Now()
	if err := env.Start(); err != nil {
		return s, err
	}
	defer env.Stop(15 * time.Second)
	// The server serves before the agent starts, so health comes first.
	if err := env.WaitFor(ctx, env.Healthy, b.poll, 30*time.Second); err != nil {
		return s, err
	}
	s.healthy = time.Since(t0)
	if err := env.WaitReady(ctx, b.poll, 30*time.Second); err != nil {
		return s, err
	}
	s.ready = time.Since(t0)
	h.Log.Info("berth dev ready", "data_dir", dir, "took", s.ready)
	return s, nil
}

// containerdOnce times a private containerd on a fresh directory from start
// until it serves (internal/runtime's Start, as the agent does it).
func containerdOnce(ctx context.Context, h *bench.Harness) (time.Duration, error) {
	dir, err := h.NewDataDir()
	if err != nil {
		return 0, err
	}
	defer devenv.CleanupDataDir(dir)
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	t0 := time.Now()
	rt, err := runtime.Start(ctx, runtime.Config{DataDir: filepath.Join(dir, "containerd"), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return 0, err
	}
	d := time.Since(t0)
	if err := rt.Shutdown(context.WithoutCancel(ctx)); err != nil {
		return d, fmt.Errorf("stop containerd: %w", err)
	}
	return d, nil
}

func readies(ss []start, f func(start) time.Duration) []time.Duration {
	out := make([]time.Duration, len(ss))
	for i, s := range ss {
		out[i] = f(s)
	}
	return out
}

func (b *Benchmark) result(restarts, firsts []start, containerd []time.Duration) *bench.Result {
	ready := func(s start) time.Duration { return s.ready }
	rs, fs, cs := bench.Summarize(readies(restarts, ready)), bench.Summarize(readies(firsts, ready)), bench.Summarize(containerd)
	anchor := &bench.Anchor{Name: "private containerd alone, start → serving, median", Value: bench.Seconds(cs.P50), Measured: true,
		Source: "internal/runtime.Start on an empty directory, same run"}
	res := &bench.Result{
		Figures: []bench.Figure{
			{Name: fmt.Sprintf("`berth dev` ready, restart on an existing data dir (median of %d)", rs.N), Value: bench.Seconds(rs.P50),
				Anchor: anchor, Target: "< 2 s", Met: bench.Met(rs.P50 < target)},
			{Name: fmt.Sprintf("`berth dev` ready, first start on an empty data dir (median of %d)", fs.N), Value: bench.Seconds(fs.P50),
				Anchor: anchor, Target: "< 2 s", Met: bench.Met(fs.P50 < target)},
		},
		Reproduce: []string{
			"make build",
			fmt.Sprintf("go run ./bench/cmd/berthbench -berth bin/berth -run '^startup$' -startup.runs %d -out /tmp/startup.md", b.runs),
		},
	}
	var d strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&d, format, a...) }
	w("Time from starting the `berth dev` process until `/_berth/health` answers 200 and its agent has logged that it registered with the "+
		"control plane (what the end-to-end tests wait for), checked every %s. The machine is warm: one untimed start comes first. "+
		"*Restart*: the same data dir each time (etcd's data and the registry kept; `berth dev` stops its containerd on exit, so each "+
		"start starts containerd again). *First start*: a new, empty data dir each time. Each run ends with SIGTERM and waits for the "+
		"process to exit. The anchor is the private containerd alone on an empty directory, from exec until it serves its socket, which "+
		"`berth dev` waits for before its agent registers.\n\n", bench.FormatDuration(b.poll))
	w("| | median | min | max | runs |\n| --- | --- | --- | --- | --- |\n")
	row := func(name string, s bench.Summary) {
		w("| %s | %s | %s | %s | %d |\n", name, bench.FormatDuration(s.P50), bench.FormatDuration(s.Min), bench.FormatDuration(s.Max), s.N)
	}
	row("restart, existing data dir", rs)
	row("first start, empty data dir", fs)
	row("containerd alone (anchor)", cs)
	w("\nWhere the time goes (medians): the control plane comes up first (embedded etcd, accounts, registry, API), and only then does " +
		"the agent start its containerd, wait for it to serve, and register.\n\n")
	w("| | restart | first start |\n| --- | --- | --- |\n")
	healthy := func(s start) time.Duration { return s.healthy }
	agent := func(s start) time.Duration { return s.ready - s.healthy }
	w("| exec → `/_berth/health` answers (etcd, API) | %s | %s |\n",
		bench.FormatDuration(bench.Percentile(readies(restarts, healthy), 50)), bench.FormatDuration(bench.Percentile(readies(firsts, healthy), 50)))
	w("| → agent registered (containerd started and serving, register call) | %s | %s |\n",
		bench.FormatDuration(bench.Percentile(readies(restarts, agent), 50)), bench.FormatDuration(bench.Percentile(readies(firsts, agent), 50)))
	w("\nTarget (issue 2): ready in under 2 s on a warm machine.\n")
	res.Details = d.String()
	return res
}
