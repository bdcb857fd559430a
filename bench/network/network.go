// Package network measures what awsvpc networking costs (issue 4's
// benchmark):
//
//   - the time the ENI and security groups add to a task's launch: the
//     agent's sandbox with an ENI and a firewall (netns.CreateSandbox,
//     AttachENI into a VPC whose namespace is already on the host,
//     ApplyFirewall with the default group's policy, the task cgroup)
//     against the same sandbox without networking, interleaved in the same
//     run (sandbox.go); and, in a real `berth dev`, real launches with the
//     agent's sandbox step beside the whole launch (launches.go);
//   - TCP throughput between two tasks over the VPC's bridges, across two
//     subnets (routed by the VPC namespace) and within one, against loopback
//     inside a task's sandbox in the same run (stream.go).
//
// Everything it makes has a random name and is removed when it ends, failed
// or not, and nothing else (owned.go). Packets go only to loopback and into
// namespaces it made.
package network

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"time"

	"github.com/berthdev/berth/bench"
)

// Issue 4's target, and AWS's figure as the issue quotes it.
const (
	addedTarget = 30 * time.Millisecond
	// awsQuoted is "several seconds" taken at its lowest, so that the ratio
	// does not flatter berth.
	awsQuoted = 2 * time.Second
)

// Benchmark is the awsvpc networking benchmark.
type Benchmark struct {
	iterations, warmup, tasks int
	pause                     time.Duration
	streams, streamMiB        int
	streamMax                 time.Duration
	poll                      time.Duration
}

// New returns the benchmark with its defaults: 50 timed sandboxes of each
// kind after 5 untimed ones, 50 real launches, 20 ms between sandboxes, 5
// streams of each path of 1 GiB or 5 s, 5 ms polls.
func New() *Benchmark {
	return &Benchmark{iterations: 50, warmup: 5, tasks: 50, pause: 20 * time.Millisecond,
		streams: 5, streamMiB: 1024, streamMax: 5 * time.Second, poll: 5 * time.Millisecond}
}

// Name implements bench.Benchmark.
func (b *Benchmark) Name() string { return "network" }

// Title implements bench.Benchmark.
func (b *Benchmark) Title() string {
	return "awsvpc networking: launch overhead and task-to-task throughput"
}

// Flags implements bench.Benchmark.
func (b *Benchmark) Flags(fs *flag.FlagSet) {
	fs.IntVar(&b.iterations, "network.iterations", b.iterations, "timed sandboxes with and without networking, each (1–1000)")
	fs.IntVar(&b.warmup, "network.warmup", b.warmup, "untimed sandboxes of each kind first (0–100)")
	fs.IntVar(&b.tasks, "network.tasks", b.tasks, "real task launches in berth dev, interleaved with the sandboxes (0–1000)")
	fs.DurationVar(&b.pause, "network.pause", b.pause, "pause after removing a sandbox, before the next is timed (0–1s)")
	fs.IntVar(&b.streams, "network.streams", b.streams, "throughput streams of each path (1–50)")
	fs.IntVar(&b.streamMiB, "network.stream-mib", b.streamMiB, "MiB per stream (1–65536); a stream also ends after -network.stream-max")
	fs.DurationVar(&b.streamMax, "network.stream-max", b.streamMax, "longest a stream sends (100ms–1m)")
	fs.DurationVar(&b.poll, "network.poll", b.poll, "pause between DescribeTasks polls while waiting for RUNNING")
}

func (b *Benchmark) validate() error {
	switch {
	case b.iterations < 1 || b.iterations > 1000:
		return fmt.Errorf("network: -network.iterations must be 1–1000 (got %d)", b.iterations)
	case b.warmup < 0 || b.warmup > 100:
		return fmt.Errorf("network: -network.warmup must be 0–100 (got %d)", b.warmup)
	case b.tasks < 0 || b.tasks > 1000:
		return fmt.Errorf("network: -network.tasks must be 0–1000 (got %d)", b.tasks)
	case b.pause < 0 || b.pause > time.Second:
		return fmt.Errorf("network: -network.pause must be 0–1s (got %s)", b.pause)
	case b.streams < 1 || b.streams > 50:
		return fmt.Errorf("network: -network.streams must be 1–50 (got %d)", b.streams)
	case b.streamMiB < 1 || b.streamMiB > 65536:
		return fmt.Errorf("network: -network.stream-mib must be 1–65536 (got %d)", b.streamMiB)
	case b.streamMax < 100*time.Millisecond || b.streamMax > time.Minute:
		return fmt.Errorf("network: -network.stream-max must be 100ms–1m (got %s)", b.streamMax)
	case b.poll < 0 || b.poll > time.Second:
		return fmt.Errorf("network: -network.poll must be 0–1s (got %s)", b.poll)
	}
	return nil
}

// measurements is everything one run measured.
type measurements struct {
	with, without []sandboxSample // A and B, in the order they ran
	launches      []launchSample
	streams       map[string][]streamSample // by path name
	mtu           map[string]int            // "eth0", "lo" in a task's sandbox
	members       int                       // /32s in the firewall's ingress rule
	hostUnits     int
	batch         int
}

// Run implements bench.Benchmark.
func (b *Benchmark) Run(ctx context.Context, h *bench.Harness) (*bench.Result, error) {
	if err := b.validate(); err != nil {
		return nil, err
	}
	var r *launcher
	if b.tasks > 0 {
		dev, err := h.StartDev(ctx)
		if err != nil {
			return nil, err
		}
		if r, err = newLauncher(ctx, dev, b.poll); err != nil {
			return nil, err
		}
		h.Log.Info("warm-up task (pulls the image onto the host)")
		if _, err := r.launchAndStop(ctx); err != nil {
			return nil, fmt.Errorf("warm-up task: %w", err)
		}
	}

	o, err := newOwned()
	if err != nil {
		return nil, err
	}
	h.Cleanup(func() {
		if err := o.cleanup(); err != nil {
			h.Log.Error("network cleanup", "err", err)
		}
	})
	vpc, err := newBenchVPC(o)
	if err != nil {
		return nil, err
	}
	h.Log.Info("VPC ready", "vpc", vpc.id, "cidr", vpcCIDR)

	m := measurements{streams: map[string][]streamSample{}}
	if err := b.measureLaunch(ctx, h, vpc, r, &m); err != nil {
		return nil, err
	}
	if err := b.measureStreams(ctx, h, vpc, &m); err != nil {
		return nil, err
	}
	return b.result(m), nil
}

// measureLaunch times sandboxes with networking (A) and without (B), one of
// each per iteration, alternating which goes first, and a real launch after
// each pair while there are launches left, so that all see the same
// machine.
func (b *Benchmark) measureLaunch(ctx context.Context, h *bench.Harness, vpc *benchVPC, r *launcher, m *measurements) error {
	for i := range b.warmup {
		if _, err := vpc.withNetwork(i, b.pause); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
		if _, err := vpc.withoutNetwork(i, b.pause); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
	}
	m.members = len(vpc.policy(vpc.host(2, 10)).Ingress[0].CIDRs)
	var running []string
	if r != nil {
		m.hostUnits, m.batch = r.hostUnits, r.batch
	}
	for i := 0; i < max(b.iterations, b.tasks); i++ {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("after %d iterations: %w", i, err)
		}
		if i < b.iterations {
			first, second := vpc.withNetwork, vpc.withoutNetwork
			if i%2 == 1 {
				first, second = second, first
			}
			s1, err := first(i, b.pause)
			if err != nil {
				return fmt.Errorf("iteration %d: %w", i+1, err)
			}
			s2, err := second(i, b.pause)
			if err != nil {
				return fmt.Errorf("iteration %d: %w", i+1, err)
			}
			if i%2 == 1 {
				s1, s2 = s2, s1
			}
			m.with, m.without = append(m.with, s1), append(m.without, s2)
		}
		if r != nil && i < b.tasks {
			s, arn, err := r.launch(ctx, time.Minute)
			if arn != "" {
				running = append(running, arn)
			}
			if err != nil {
				return fmt.Errorf("task %d of %d: %w", i+1, b.tasks, err)
			}
			m.launches = append(m.launches, s)
			if len(running) >= r.batch || i == b.tasks-1 {
				if err := r.dev.StopTasks(ctx, r.cluster, running); err != nil {
					return err
				}
				running = nil
			}
		}
		if (i+1)%10 == 0 {
			h.Log.Info("progress", "sandboxes", len(m.with), "launches", len(m.launches))
		}
	}
	return nil
}

// randHex returns n random hex digits.
func randHex(n int) (string, error) {
	b := make([]byte, (n+1)/2)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random name: %w", err)
	}
	return hex.EncodeToString(b)[:n], nil
}
