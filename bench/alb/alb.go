// Package alb benchmarks berth's application load balancer against nginx
// (issue 5's benchmark), in one `berth dev` on loopback:
//
//   - throughput: Debian's wrk, closed loop, against the ALB (from the host,
//     to its loopback address), against Debian's nginx as a reverse proxy
//     to the same backend task (nginx and wrk in the VPC's namespace), and
//     against the backend directly (the ceiling), interleaved in rounds;
//   - added latency at half load: an open-loop generator (loadgen.go) at
//     half of nginx's throughput against the same three; the ALB's added
//     p99 is its p99 less the backend's;
//   - rollout: the time from UpdateService to the new revision serving
//     every request of a 3-task service behind the ALB (rollout.go).
//
// The backend is a static Go HTTP server (benchhttp) in a one-layer image
// pushed to the dev registry (image.go). Traffic goes only to 127.0.0.0/8
// and to addresses inside the namespaces of that berth dev.
package alb

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/berthdev/berth/bench"
	"github.com/berthdev/berth/internal/netns"
)

// Issue 5's targets.
const (
	throughputTarget = 0.8 // × nginx's req/s
	addedP99Target   = time.Millisecond
)

// Task sizes: the throughput backend may use the whole dev host (its CPU
// quota must not be what limits all three paths); the rollout's tasks are
// small so that twice the service fits.
const (
	taskCPU, taskMemory = 256, 512
)

// Address pools of this benchmark's berth dev: /24s no other berth on the
// host uses by default (e2e environments take other /24s).
var devArgs = []string{"--lb-address-pool", "127.101.250.0/24", "--public-ip-pool", "127.100.250.0/24"}

// Benchmark is the ALB benchmark.
type Benchmark struct {
	rounds           int
	threads, conns   int
	dur              time.Duration
	workers          int
	loadConns        int
	loadDur, loadWup time.Duration
	poll             time.Duration
	rollout          bool
	profile          bool   // perf the ALB under wrk, if perf is installed
	perfData         string // keep perf.data here; "": a temp file
	devPID           int    // berth dev's process, for perf; 0: no profile
}

// New returns the benchmark with its defaults: 3 interleaved rounds of
// `wrk -t2 -c64 -d10s` and of 10 s open-loop runs over 64 connections,
// nginx with one worker per core, 20 ms rollout polls.
func New() *Benchmark {
	return &Benchmark{rounds: 3, threads: 2, conns: 64, dur: 10 * time.Second, workers: goruntime.NumCPU(),
		loadConns: 64, loadDur: 10 * time.Second, loadWup: time.Second, poll: 20 * time.Millisecond, rollout: true, profile: true}
}

// Name implements bench.Benchmark.
func (b *Benchmark) Name() string { return "alb" }

// Title implements bench.Benchmark.
func (b *Benchmark) Title() string { return "ALB vs nginx" }

// Flags implements bench.Benchmark.
func (b *Benchmark) Flags(fs *flag.FlagSet) {
	fs.IntVar(&b.rounds, "alb.rounds", b.rounds, "interleaved rounds of each measurement (1–20)")
	fs.IntVar(&b.threads, "alb.threads", b.threads, "wrk threads (1–64)")
	fs.IntVar(&b.conns, "alb.conns", b.conns, "wrk connections (1–10000)")
	fs.DurationVar(&b.dur, "alb.duration", b.dur, "each wrk run (1s–5m)")
	fs.IntVar(&b.workers, "alb.nginx-workers", b.workers, "nginx worker_processes (1–256); default: the cores the ALB's process may use")
	fs.IntVar(&b.loadConns, "alb.load-conns", b.loadConns, "open-loop generator connections (1–10000)")
	fs.DurationVar(&b.loadDur, "alb.load-duration", b.loadDur, "each timed open-loop run (1s–5m), after -alb.load-warmup")
	fs.DurationVar(&b.loadWup, "alb.load-warmup", b.loadWup, "untimed start of each open-loop run (0–1m)")
	fs.DurationVar(&b.poll, "alb.poll", b.poll, "pause between the rollout client's requests (1ms–1s)")
	fs.BoolVar(&b.rollout, "alb.rollout", b.rollout, "also time a rolling update behind the ALB")
	fs.BoolVar(&b.profile, "alb.profile", b.profile, "profile berth dev with Linux perf (if installed) during an extra, untimed wrk run against the ALB")
	fs.StringVar(&b.perfData, "alb.perf-data", b.perfData, "keep the profile's perf.data file here (default: a temp file, removed)")
}

func (b *Benchmark) validate() error {
	switch {
	case b.rounds < 1 || b.rounds > 20:
		return fmt.Errorf("alb: -alb.rounds must be 1–20 (got %d)", b.rounds)
	case b.threads < 1 || b.threads > 64 || b.conns < b.threads || b.conns > 10000:
		return fmt.Errorf("alb: -alb.threads must be 1–64 and -alb.conns threads–10000 (got %d, %d)", b.threads, b.conns)
	case b.dur < time.Second || b.dur > 5*time.Minute || b.loadDur < time.Second || b.loadDur > 5*time.Minute:
		return fmt.Errorf("alb: -alb.duration and -alb.load-duration must be 1s–5m (got %s, %s)", b.dur, b.loadDur)
	case b.workers < 1 || b.workers > 256:
		return fmt.Errorf("alb: -alb.nginx-workers must be 1–256 (got %d)", b.workers)
	case b.loadConns < 1 || b.loadConns > 10000:
		return fmt.Errorf("alb: -alb.load-conns must be 1–10000 (got %d)", b.loadConns)
	case b.loadWup < 0 || b.loadWup > time.Minute:
		return fmt.Errorf("alb: -alb.load-warmup must be 0–1m (got %s)", b.loadWup)
	case b.poll < time.Millisecond || b.poll > time.Second:
		return fmt.Errorf("alb: -alb.poll must be 1ms–1s (got %s)", b.poll)
	}
	return nil
}

// missingTools lists the Debian tools the benchmark needs and lacks.
func missingTools() []string {
	var missing []string
	for _, t := range []string{"wrk", "nginx", "ip"} {
		if _, err := exec.LookPath(t); err != nil {
			missing = append(missing, t)
		}
	}
	return missing
}

// path is one way to the backend.
type path struct {
	name string // "direct", "nginx", "ALB"
	url  string
	vpc  string // namespace the clients run in; "" for the host
	dial func(ctx context.Context) (net.Conn, error)
}

// Run implements bench.Benchmark.
func (b *Benchmark) Run(ctx context.Context, h *bench.Harness) (*bench.Result, error) {
	if err := b.validate(); err != nil {
		return nil, err
	}
	if missing := missingTools(); len(missing) > 0 {
		h.Log.Warn("skipped: tools missing", "missing", missing)
		return skipped(missing), nil
	}
	tmp, err := os.MkdirTemp("", "berth-bench-alb-")
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	h.Cleanup(func() { _ = os.RemoveAll(tmp) })
	bin, err := buildServer(ctx, tmp)
	if err != nil {
		return nil, err
	}
	dev, err := h.StartDev(ctx, devArgs...)
	if err != nil {
		return nil, err
	}
	if _, perr := exec.LookPath("perf"); perr == nil && b.profile {
		if b.devPID, err = devPID(h.Berth, dev.DataDir); err != nil {
			return nil, fmt.Errorf("profile: %w", err)
		}
		if b.perfData == "" {
			b.perfData = filepath.Join(tmp, "perf.data")
		}
	} else if b.profile {
		h.Log.Warn("no profile of the ALB: perf not installed (apt-get install linux-perf)")
	}
	image, err := pushServerImage(ctx, dev.Addr, "benchhttp", bin)
	if err != nil {
		return nil, err
	}
	s, err := newStack(ctx, dev, image)
	if err != nil {
		return nil, err
	}
	m := &measurements{machine: bench.DescribeMachine(), date: time.Now(), workers: b.workers}
	if err := b.measureProxies(ctx, h, s, m); err != nil {
		return nil, err
	}
	if b.rollout {
		h.Log.Info("rollout: service of 3 tasks behind the ALB's port 81")
		r, err := s.rollout(ctx, b.poll)
		if err != nil {
			return nil, err
		}
		m.rollout = &r
	}
	return b.result(m), nil
}

// measureProxies runs the backend task, the ALB and nginx in front of it,
// and measures throughput and latency through each.
func (b *Benchmark) measureProxies(ctx context.Context, h *bench.Harness, s *stack, m *measurements) error {
	td, err := s.taskDef(ctx, goruntime.NumCPU()*1024, goruntime.NumCPU()*2048, "hello")
	if err != nil {
		return err
	}
	arn, ip, err := s.runBackend(ctx, td)
	if err != nil {
		return err
	}
	backend := netip.AddrPortFrom(ip, backendPort)
	h.Log.Info("backend running", "task", arn, "addr", backend)
	if err := s.createLB(ctx); err != nil {
		return err
	}
	tgArn, err := s.targetGroup(ctx, "bench-throughput", benchPort)
	if err != nil {
		return err
	}
	if _, err := s.lb.RegisterTargets(ctx, &elb.RegisterTargetsInput{TargetGroupArn: aws.String(tgArn),
		Targets: []elbtypes.TargetDescription{{Id: aws.String(ip.String()), Port: aws.Int32(backendPort)}}}); err != nil {
		return fmt.Errorf("RegisterTargets: %w", err)
	}
	if err := s.waitHealthy(ctx, tgArn, 1, 2*time.Minute); err != nil {
		return err
	}
	if err := s.resolveLB(ctx); err != nil {
		return err
	}
	albURL := fmt.Sprintf("http://%s:%d/", s.lbAddr, benchPort)
	if err := waitServes(ctx, albURL); err != nil {
		return err
	}
	h.Log.Info("ALB serving", "dns", s.lbDNS, "addr", s.lbAddr)
	ng, err := startNginx(ctx, s.vpcID, b.workers, backend)
	h.Cleanup(func() {
		if err := ng.stop(); err != nil {
			h.Log.Error("stop nginx", "err", err)
		}
	})
	if err != nil {
		return err
	}
	lbAddr := netip.AddrPortFrom(s.lbAddr, benchPort).String()
	inVPC := func(addr string) func(ctx context.Context) (net.Conn, error) {
		return func(ctx context.Context) (net.Conn, error) { return netns.DialInVPC(ctx, s.vpcID, "tcp", addr) }
	}
	paths := []path{
		{name: "direct", url: "http://" + backend.String() + "/", vpc: s.vpcID, dial: inVPC(backend.String())},
		{name: "nginx", url: "http://" + nginxAddr.String() + "/", vpc: s.vpcID, dial: inVPC(nginxAddr.String())},
		{name: "ALB", url: albURL, dial: func(ctx context.Context) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", lbAddr)
		}},
	}
	if err := b.measureThroughput(ctx, h, paths, m); err != nil {
		return err
	}
	b.profileALB(ctx, h, paths[2], m)
	if err := b.measureLatency(ctx, h, paths, m); err != nil {
		return err
	}
	if err := ng.stop(); err != nil {
		return err
	}
	// The rollout's tasks need the host's CPU units the backend holds.
	if err := s.dev.StopTasks(ctx, cluster, []string{arn}); err != nil {
		return err
	}
	_, err = s.lb.DeregisterTargets(ctx, &elb.DeregisterTargetsInput{TargetGroupArn: aws.String(tgArn),
		Targets: []elbtypes.TargetDescription{{Id: aws.String(ip.String()), Port: aws.Int32(backendPort)}}})
	if err != nil {
		return fmt.Errorf("DeregisterTargets: %w", err)
	}
	return nil
}
