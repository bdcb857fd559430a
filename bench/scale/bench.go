package scale

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/berthdev/berth/bench"
	"github.com/berthdev/berth/internal/agent/sim"
)

// nomadC1M is Nomad's C1M: one million containers on 5,000 hosts in under
// five minutes, with five servers (HashiCorp, 2016). Quoted: it cannot run
// here.
const nomadC1M = 5 * time.Minute

// target is the bound for 1,000,000 tasks on 10,000 hosts.
const target = 3 * time.Minute

// Benchmark is the scheduler-at-scale benchmark.
type Benchmark struct {
	hosts, tasks, clients int
	pollWait, nodeTTL     time.Duration
	history               time.Duration
	profile               string
}

// New returns the benchmark at the size that finishes in a few minutes on
// this machine today (2,000 hosts, 50,000 tasks); the size is
// -scale.hosts 10000 -scale.tasks 1000000 (see profileNotes for why that
// does not fit yet: etcd's history of the task records outgrows its quota).
func New() *Benchmark {
	return &Benchmark{hosts: 2000, tasks: 50000, clients: 64, pollWait: 20 * time.Second, nodeTTL: time.Minute, history: time.Minute}
}

// Name implements bench.Benchmark.
func (b *Benchmark) Name() string { return "scale" }

// Title implements bench.Benchmark.
func (b *Benchmark) Title() string {
	return "Scheduler at scale: simulated hosts, tasks placed and RUNNING"
}

// Flags implements bench.Benchmark.
func (b *Benchmark) Flags(fs *flag.FlagSet) {
	fs.IntVar(&b.hosts, "scale.hosts", b.hosts, "simulated hosts, spread over 3 zones")
	fs.IntVar(&b.tasks, "scale.tasks", b.tasks, "Fargate tasks to launch (a multiple of 10)")
	fs.IntVar(&b.clients, "scale.clients", b.clients, "goroutines calling RunTask (count 10)")
	fs.DurationVar(&b.pollWait, "scale.pollwait", b.pollWait, "how long a simulated host's long poll waits")
	fs.DurationVar(&b.nodeTTL, "scale.nodettl", b.nodeTTL, "the control plane's host TTL (hosts heartbeat every quarter of it)")
	fs.DurationVar(&b.history, "scale.history", b.history, "how much history etcd keeps before compacting it")
	fs.StringVar(&b.profile, "scale.profile", b.profile, "directory to write cpu.pprof and heap.pprof of the run to (empty: none)")
}

// Run implements bench.Benchmark.
func (b *Benchmark) Run(ctx context.Context, h *bench.Harness) (*bench.Result, error) {
	polls := raiseNoFile(b.hosts)
	dir, err := os.MkdirTemp("", "berth-scale-")
	if err != nil {
		return nil, err
	}
	h.Cleanup(func() { _ = os.RemoveAll(dir) })
	cp, err := StartControlPlane(ctx, ControlPlaneConfig{DataDir: filepath.Join(dir, "etcd"), Logger: h.Log, NodeTTL: b.nodeTTL, History: b.history})
	if err != nil {
		return nil, err
	}
	h.Cleanup(cp.Close)
	stopProfile := func() {}
	if b.profile != "" {
		if stopProfile, err = startProfile(b.profile); err != nil {
			return nil, err
		}
	}
	load0 := loadAvg()
	out, err := Run(ctx, cp, Spec{Hosts: b.hosts, Tasks: b.tasks, Clients: b.clients, Logger: h.Log,
		Fleet: sim.Config{Timing: sim.DefaultTiming(), PollWait: b.pollWait, MaxPolls: polls, Workers: 128}})
	stopProfile()
	if err != nil {
		return nil, err
	}
	if err := Check(out); err != nil {
		return nil, fmt.Errorf("the run's placements are wrong: %w", err)
	}
	return b.result(out, load0, loadAvg()), nil
}

// raiseNoFile lifts the open-files limit so that every host's long poll has
// its connection (two descriptors each in this process: client and server
// end), and returns the cap on concurrent polls the limit leaves (0: none).
func raiseNoFile(hosts int) int {
	want := uint64(2*hosts + 4096)
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return hosts / 2
	}
	if lim.Cur < want {
		nl := syscall.Rlimit{Cur: max(want, lim.Cur), Max: max(want, lim.Max)}
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &nl) != nil { // raising Max needs root
			nl.Cur = lim.Max
			_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &nl)
		}
		_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	if lim.Cur >= want {
		return 0
	}
	return max(1, (int(lim.Cur)-4096)/2)
}

func startProfile(dir string) (func(), error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.Create(filepath.Join(dir, "cpu.pprof"))
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
		if hf, err := os.Create(filepath.Join(dir, "heap.pprof")); err == nil {
			_ = pprof.WriteHeapProfile(hf)
			hf.Close()
		}
	}, nil
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

func (b *Benchmark) result(o *Outcome, load0, load1 string) *bench.Result {
	full := b.hosts >= 10000 && b.tasks >= 1000000
	f := bench.Figure{Name: fmt.Sprintf("%d tasks on %d simulated hosts: RunTask of the first → all RUNNING", b.tasks, b.hosts),
		Value: bench.Seconds(o.Running),
		Anchor: &bench.Anchor{Name: "Nomad C1M", Value: bench.Seconds(nomadC1M),
			Source: "HashiCorp's C1M (2016): 1,000,000 containers on 5,000 hosts in under 5 minutes, with 5 servers (quoted)"}}
	if full {
		f.Target, f.Met = "≤ 3 min", bench.Met(o.Running <= target)
	}
	rate := float64(b.tasks) / o.Running.Seconds()
	res := &bench.Result{
		Figures: []bench.Figure{f,
			{Name: "Placed and RUNNING per second (that run)", Value: bench.Value{Num: float64(int(rate)), Unit: "tasks/s"},
				Anchor: &bench.Anchor{Name: "Nomad C1M's rate", Value: bench.Value{Num: float64(int(1000000 / nomadC1M.Seconds())), Unit: "tasks/s"},
					Source: "1,000,000 / 300 s (quoted)"}},
		},
		Reproduce: []string{fmt.Sprintf("go run ./bench/cmd/berthbench -run '^scale$' -scale.hosts %d -scale.tasks %d -scale.clients %d -scale.profile /tmp/scale-prof -out /tmp/scale.md",
			b.hosts, b.tasks, b.clients)},
	}
	var d strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&d, format, a...) }
	w("The control plane runs in the benchmark's process: berth's ECS API behind the SigV4 router, the placement controller and the "+
		"agent protocol's server, on an embedded etcd, over loopback HTTP (bench/scale/controlplane.go). %d simulated hosts "+
		"(internal/agent/sim, a test double: no containers) in 3 zones, %d CPU units and %d MiB each, register through the agent "+
		"protocol, long-poll for their tasks and report PENDING, ACTIVATING and RUNNING for each, after 5–15, 10–40 and 1–5 ms. "+
		"%d aws-sdk-go-v2 clients call RunTask (count 10, awsvpc over subnets in the 3 zones) for %d Fargate tasks drawn in turn "+
		"from 14 sizes of the Fargate table (256/512 to 4096/16384). The clock runs from the first RunTask until every task's "+
		"RUNNING report is accepted. The VPC control plane is replaced by an in-process stand-in (an interface per task "+
		"without an etcd write), so the figure is placement, the agent protocol and the task records, not ENI allocation.\n\n",
		b.hosts, o.Spec.HostCPU, o.Spec.HostMemoryMiB, b.clients, b.tasks)
	w("| phase | time |\n|---|---|\n")
	w("| %d hosts registered | %s |\n", b.hosts, bench.FormatDuration(o.Registered))
	w("| %d RunTask calls answered | %s |\n", o.RunTaskCalls, bench.FormatDuration(o.Submitted))
	w("| every task in its host's long poll | %s |\n", bench.FormatDuration(o.Assigned))
	w("| every task RUNNING | %s |\n\n", bench.FormatDuration(o.Running))
	w("%d state reports accepted, %d retried. Load average before / after: %s / %s (the machine is shared). "+
		"Checked after the run: every task on exactly one host, no host over its CPU or memory, zones within one task.\n",
		o.Stats.Reports, o.Stats.Retries, load0, load1)
	if !full {
		w("\nThis run is smaller than the issue's 10,000 hosts and 1,000,000 tasks; the target applies to that size only.\n")
	}
	w("\n%s", profileNotes)
	res.Details = d.String()
	return res
}

// profileNotes summarizes what CPU profiles of scale runs showed (pprof of
// the whole process: control plane, etcd, the simulated hosts and the SDK
// clients; -scale.profile writes them) and what was changed because of them.
const profileNotes = `**Where the time goes, and what changed because of it** (CPU profiles of this process, ` + "`-scale.profile`" + `; 1,000 hosts/20,000 tasks and 2,000/50,000):

1. *Placement committed one task per etcd transaction.* Each commit waited for its own fsync: 20,000 tasks took over two minutes to place, the CPU mostly idle. Now a pass reads the pending records 128 to a transaction and binds Fargate tasks 40 to a transaction (etcd's default limit is 128 ops), conditioned on every record's revision, 8 transactions in flight so raft shares fsyncs; a batch whose condition fails is committed again task by task (internal/ecs/placement_batch.go). Placement is now about 3% of the CPU.
2. *Every long poll decoded and re-encoded every spec of its node and read every task record* (for the statuses a restarted agent resumes from): 39% of the CPU. Now the specs go out as stored and only the records of tasks whose spec changed since the poll's revision are read.
3. *A placement pass reads every host and every assigned spec*, so its cost grows with the cluster, not with what it places. It now decodes only the usage fields of the specs, and rests as long as the pass took (at most 500 ms) before the next, so tasks gather and the reports keep at least half the CPU.
4. *Heartbeats*: hosts whose heartbeat waited behind a backlog were declared lost and their tasks stopped; the simulated hosts now heartbeat on their own queue and workers, and the run uses a 60 s host TTL.

What remains (2,000 hosts/50,000 tasks, 218 s of CPU in 161 s): the host-loss check, 17% (internal/ecs/hostloss.go lists every assign key with its value every second to learn which nodes have tasks; a keys-only read would do), the agents' state reports, 13% (each a read-modify-write transaction of a ~3 KiB task record; three per task; etcd's reads, 22% in all, serve mostly these two), the long polls, 12% (the node's specs on every wake), GC 10%, the simulated hosts themselves ~12%, the purge pass 4% (every task record once a minute), placement 2%. The live heap at the end was 215 MB for the whole process. The store, not the CPU, bounds the 1,000,000-task run: every report rewrites the whole record and etcd keeps an hour of history (auto-compaction 1h), about 1.5 GB on disk for 50,000 tasks, so a million would pass the 8 GiB backend quota; the next steps are a small status key per task (reports write only it) and batched reports.
`
