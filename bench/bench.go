// Package bench is berth's benchmark driver: `make bench` runs every
// registered Benchmark on this machine and writes BENCHMARKS.md with the
// machine, the date, each figure beside its anchor (measured in the same run
// where the anchor runs here, quoted where it cannot) with the ratio, and
// how to reproduce it.
//
// A benchmark is a small package (bench/launch, bench/startup, …) that
// implements Benchmark; bench/cmd/berthbench lists them. Benchmarks get a
// Harness that starts real `berth dev` environments on loopback and cleans
// everything up afterwards, also when the benchmark fails or the run is
// interrupted.
package bench

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"time"
)

// Benchmark is one benchmark of `make bench`.
type Benchmark interface {
	// Name is a short identifier, matched by the -run flag.
	Name() string
	// Title heads the benchmark's section in BENCHMARKS.md.
	Title() string
	// Flags registers the benchmark's own flags, named "<name>.<flag>".
	Flags(fs *flag.FlagSet)
	// Run measures. Everything it starts it must stop, or hand to
	// h.Cleanup, before it returns; it must honour ctx and bound every
	// wait.
	Run(ctx context.Context, h *Harness) (*Result, error)
}

// Result is what a benchmark measured.
type Result struct {
	// Figures are the headline numbers, each with its anchor and target.
	Figures []Figure
	// Details is Markdown: method, breakdowns, per-sample tables, notes.
	Details string
	// Reproduce are shell commands that rerun this benchmark alone.
	Reproduce []string
}

// Harness is what a running benchmark gets from the driver.
type Harness struct {
	// Berth is the absolute path of the berth binary under test.
	Berth string
	// Log receives progress messages.
	Log *slog.Logger

	cleanups []func()
	failed   bool
}

// Failed reports, in a cleanup, whether the benchmark failed: a cleanup
// then keeps what tells why (a server's log, say).
func (h *Harness) Failed() bool { return h.failed }

// Cleanup registers f to run when the benchmark has finished, whether it
// succeeded or not; the last registered runs first.
func (h *Harness) Cleanup(f func()) { h.cleanups = append(h.cleanups, f) }

func (h *Harness) runCleanups() {
	for i := len(h.cleanups) - 1; i >= 0; i-- {
		h.cleanups[i]()
	}
	h.cleanups = nil
}

// Options configure a run of the driver.
type Options struct {
	Berth   string         // berth binary
	Out     string         // Markdown file to write
	Run     *regexp.Regexp // benchmarks whose Name matches; nil runs all
	Timeout time.Duration  // bound on the whole run
	Args    []string       // the command line, for the report
	// Merge puts the report into Out as it is (MergeMarkdown) instead of
	// rewriting it: for a run of some benchmarks (-run).
	Merge bool
	Log   *slog.Logger
}

// Outcome is one benchmark's result or failure.
type Outcome struct {
	Bench    Benchmark
	Result   *Result
	Err      error
	Duration time.Duration
}

// Run runs the selected benchmarks one after another and writes the report.
// A failing benchmark is reported (in the file, and by the returned error)
// and does not stop the others. Cleanups run even when ctx is cancelled; a
// run cut short by ctx writes Out+".partial" and leaves Out alone.
func Run(ctx context.Context, opts Options, benches []Benchmark) error {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	bin, err := filepath.Abs(opts.Berth)
	if err != nil {
		return fmt.Errorf("berth binary: %w", err)
	}
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("berth binary: %w (run `make build` first)", err)
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("benchmarks need root: they run real containers, namespaces and cgroups")
	}
	if opts.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opts.Timeout)
		defer cancel()
	}
	started := time.Now()
	machine := DescribeMachine()
	var outcomes []Outcome
	failed := 0
	for _, b := range benches {
		if opts.Run != nil && !opts.Run.MatchString(b.Name()) {
			continue
		}
		if ctx.Err() != nil {
			outcomes = append(outcomes, Outcome{Bench: b, Err: fmt.Errorf("not run: %w", ctx.Err())})
			failed++
			continue
		}
		h := &Harness{Berth: bin, Log: opts.Log.With("bench", b.Name())}
		h.Log.Info("benchmark starting", "title", b.Title())
		t0 := time.Now()
		res, err := runOne(ctx, b, h)
		o := Outcome{Bench: b, Result: res, Err: err, Duration: time.Since(t0)}
		if err != nil {
			failed++
			h.Log.Error("benchmark failed", "err", err)
		} else {
			h.Log.Info("benchmark done", "took", o.Duration.Round(time.Millisecond))
		}
		outcomes = append(outcomes, o)
	}
	if len(outcomes) == 0 {
		return fmt.Errorf("no benchmark matches -run %v", opts.Run)
	}
	rep := Report{Machine: machine, Date: started, Took: time.Since(started), Args: opts.Args, Outcomes: outcomes}
	out := opts.Out
	if ctx.Err() != nil {
		// Interrupted or out of time: keep the last complete report.
		out += ".partial"
	}
	md := rep.Markdown()
	if opts.Merge {
		if old, err := os.ReadFile(opts.Out); err == nil {
			md = MergeMarkdown(string(old), rep)
		} else if !os.IsNotExist(err) {
			return fmt.Errorf("merge into %s: %w", opts.Out, err)
		}
	}
	if err := os.WriteFile(out, []byte(md), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", out, err)
	}
	opts.Log.Info("report written", "file", out)
	if ctx.Err() != nil {
		return fmt.Errorf("run interrupted (%w): partial report in %s, %s left as it was", ctx.Err(), out, opts.Out)
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d benchmarks failed (see %s)", failed, len(outcomes), opts.Out)
	}
	return nil
}

// runOne runs a benchmark and its cleanups, turning a panic into an error so
// that the cleanups still run and the report is still written.
func runOne(ctx context.Context, b Benchmark, h *Harness) (res *Result, err error) {
	defer func() {
		h.failed = err != nil
		h.runCleanups()
	}()
	defer func() {
		if p := recover(); p != nil {
			res, err = nil, fmt.Errorf("panic: %v", p)
		}
	}()
	return b.Run(ctx, h)
}
