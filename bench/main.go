package bench

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"regexp"
	"runtime/pprof"
	"syscall"
	"time"
)

// Main parses the command line (args[0] is the program), runs the
// benchmarks and returns the exit code. SIGINT and SIGTERM cancel the run;
// cleanups still run and the report is still written.
func Main(args []string, benches ...Benchmark) int {
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	berth := fs.String("berth", "bin/berth", "the berth binary to benchmark")
	out := fs.String("out", "BENCHMARKS.md", "the report to write")
	run := fs.String("run", "", "run only the benchmarks whose name matches this regular expression")
	timeout := fs.Duration("timeout", 30*time.Minute, "bound on the whole run")
	verbose := fs.Bool("v", false, "debug logging")
	merge := fs.Bool("merge", false, "replace only the sections and summary rows of the benchmarks that ran in -out, keep the rest (with -run)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of this driver (its simulated hosts and clients, not berth) to this file")
	for _, b := range benches {
		b.Flags(fs)
	}
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: %s [flags]\n\nBenchmarks:", args[0])
		for _, b := range benches {
			fmt.Fprintf(fs.Output(), " %s", b.Name())
		}
		fmt.Fprintf(fs.Output(), "\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	opts := Options{Berth: *berth, Out: *out, Timeout: *timeout, Log: log, Args: append([]string{"berthbench"}, args[1:]...),
		Merge: *merge}
	if *run != "" {
		re, err := regexp.Compile(*run)
		if err != nil {
			log.Error("bad -run", "err", err)
			return 2
		}
		opts.Run = re
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			log.Error("cpu profile", "err", err)
			return 2
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Error("cpu profile", "err", err)
			return 2
		}
		defer pprof.StopCPUProfile()
	}
	// The signal handler stays installed until cleanups are done, so a
	// second Ctrl-C does not kill the driver halfway through them.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := Run(ctx, opts, benches); err != nil {
		log.Error("bench", "err", err)
		return 1
	}
	return 0
}
