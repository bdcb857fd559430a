// Package registry measures berth's registry (issue 3's benchmark): push and
// pull throughput of a 100 MiB image of several random layers (and, behind
// -registry.1gib, a 1 GiB one) through berth's registry with ECR auth
// (HTTP Basic with a GetAuthorizationToken token), against Debian's
// docker-registry (CNCF Distribution 2.8, no auth) on the same machine in
// the same run; and the cold pull: RunTask → RUNNING for a task whose 50 MiB
// image is not on the host yet.
package registry

import (
	"context"
	"flag"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/berthdev/berth/bench"
	"github.com/berthdev/berth/internal/registrylogin"
)

// Targets of issue 3.
const (
	ratioTarget = 0.95
	coldTarget  = 1500 * time.Millisecond
)

const mib = 1 << 20

// bigTrials bounds the trials of images over 100 MiB: each trial's image
// stays in both registries' storage until the run ends.
const bigTrials = 3

// Benchmark is the registry benchmark.
type Benchmark struct {
	trials   int
	big      bool
	coldRuns int
	coldMiB  int
	poll     time.Duration
}

// New returns the benchmark with its defaults: 15 trials of the 100 MiB
// image (about a second each on each registry: medians of many, since
// loopback throughput is noisy), no 1 GiB image, 7 cold pulls of a 50 MiB
// image, 5 ms polls.
func New() *Benchmark {
	return &Benchmark{trials: 15, coldRuns: 7, coldMiB: 50, poll: 5 * time.Millisecond}
}

// Name implements bench.Benchmark.
func (b *Benchmark) Name() string { return "registry" }

// Title implements bench.Benchmark.
func (b *Benchmark) Title() string { return "Registry: push and pull throughput, cold pull" }

// Flags implements bench.Benchmark.
func (b *Benchmark) Flags(fs *flag.FlagSet) {
	fs.IntVar(&b.trials, "registry.trials", b.trials, "pushes and pulls of each image to each registry (1–50; at most 3 of the 1 GiB image)")
	fs.BoolVar(&b.big, "registry.1gib", b.big, "also measure a 1 GiB image (8 × 128 MiB layers; needs ~3 GiB of memory and disk)")
	fs.IntVar(&b.coldRuns, "registry.cold", b.coldRuns, "cold-pull tasks, each with a fresh image (1–50)")
	fs.IntVar(&b.coldMiB, "registry.cold-mib", b.coldMiB, "size of the cold-pull image's random layer in MiB (1–1024)")
	fs.DurationVar(&b.poll, "registry.poll", b.poll, "pause between DescribeTasks polls while waiting for RUNNING")
}

// shape is one throughput image.
type shape struct {
	label     string
	layers    int
	layerSize int64
}

// trial is one push and pull of one image to one registry.
type trial struct {
	push, pull time.Duration
	bytes      int64
}

// series is a shape's trials on both registries.
type series struct {
	shape       shape
	berth, dist []trial
}

// Run implements bench.Benchmark.
func (b *Benchmark) Run(ctx context.Context, h *bench.Harness) (*bench.Result, error) {
	if b.trials < 1 || b.trials > 50 || b.coldRuns < 1 || b.coldRuns > 50 || b.coldMiB < 1 || b.coldMiB > 1024 || b.poll < 0 || b.poll > time.Second {
		return nil, fmt.Errorf("registry: -registry.trials and -registry.cold must be 1–50, -registry.cold-mib 1–1024, -registry.poll 0–1s (got %d, %d, %d, %s)",
			b.trials, b.coldRuns, b.coldMiB, b.poll)
	}
	dist, err := startDistribution(ctx, h)
	if err != nil {
		return nil, err
	}
	dev, err := h.StartDev(ctx)
	if err != nil {
		return nil, err
	}
	cfg := aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(dev.URL),
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")}
	ecrc := ecr.NewFromConfig(cfg)
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	auth, err := registrylogin.Login(lctx, ecrc, "bench/throughput", "bench/cold")
	cancel()
	if err != nil {
		return nil, err
	}
	clients := []*registryClient{newClient("berth", dev.Addr, auth), newClient("docker-registry", dist.Addr, authn.Anonymous)}

	// Cold pulls first: the throughput trials write gigabytes, and the
	// kernel's write-back of them would otherwise slow the unpacking the
	// cold pulls measure.
	cold, err := b.coldPulls(ctx, h, dev, clients[0])
	if err != nil {
		return nil, err
	}

	shapes := []shape{{"100 MiB (4 × 25 MiB layers)", 4, 25 * mib}}
	if b.big {
		shapes = append(shapes, shape{"1 GiB (8 × 128 MiB layers)", 8, 128 * mib})
	}
	var all []series
	for _, sh := range shapes {
		s, err := b.throughput(ctx, h, sh, clients)
		if err != nil {
			return nil, err
		}
		all = append(all, s)
	}

	return b.result(all, cold, dist), nil
}

// throughput pushes and pulls fresh images of one shape to both
// registries, alternating which goes first.
func (b *Benchmark) throughput(ctx context.Context, h *bench.Harness, sh shape, clients []*registryClient) (series, error) {
	s := series{shape: sh}
	trials := b.trials
	if sh.layerSize > 100*mib {
		trials = min(trials, bigTrials)
	}
	// Untimed warm-up: connections opened, the token checked once.
	warm, _, err := throughputImage(sh.layers, mib)
	if err != nil {
		return s, err
	}
	for _, c := range clients {
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		_, err := c.push(wctx, "bench/throughput", "warm", warm)
		if err == nil {
			_, _, err = c.pull(wctx, "bench/throughput", "warm")
		}
		cancel()
		if err != nil {
			return s, fmt.Errorf("warm-up: %w", err)
		}
	}
	h.Log.Info("throughput", "image", sh.label, "trials", trials)
	for i := range trials {
		img, size, err := throughputImage(sh.layers, sh.layerSize)
		if err != nil {
			return s, err
		}
		order := []int{0, 1}
		if i%2 == 1 {
			order = []int{1, 0}
		}
		for _, k := range order {
			c := clients[k]
			tag := fmt.Sprintf("t%d-%d", sh.layers, i)
			tctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
			push, err := c.push(tctx, "bench/throughput", tag, img)
			if err != nil {
				cancel()
				return s, err
			}
			pull, pulled, err := c.pull(tctx, "bench/throughput", tag)
			cancel()
			if err != nil {
				return s, err
			}
			if pulled != size {
				return s, fmt.Errorf("%s: pulled %d bytes of a %d-byte image", c.name, pulled, size)
			}
			t := trial{push: push, pull: pull, bytes: size}
			if k == 0 {
				s.berth = append(s.berth, t)
			} else {
				s.dist = append(s.dist, t)
			}
			h.Log.Info("trial", "registry", c.name, "image", sh.label, "n", i+1,
				"push_MBps", round1(mbps(size, push)), "pull_MBps", round1(mbps(size, pull)))
		}
	}
	return s, nil
}

// mbps is bytes per second in MB (10^6 bytes).
func mbps(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / 1e6 / d.Seconds()
}

func round1(f float64) float64 { return math.Round(f*10) / 10 }

// rates returns the MB/s of each trial's push or pull.
func rates(ts []trial, pull bool) []float64 {
	out := make([]float64, len(ts))
	for i, t := range ts {
		d := t.push
		if pull {
			d = t.pull
		}
		out[i] = mbps(t.bytes, d)
	}
	return out
}

// median of a non-empty sample.
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func minMax(xs []float64) (float64, float64) {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, x := range xs {
		lo, hi = min(lo, x), max(hi, x)
	}
	return lo, hi
}
