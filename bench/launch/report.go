package launch

import (
	"fmt"
	"math"
	goruntime "runtime"
	"sort"
	"strings"
	"time"

	"github.com/berthdev/berth/bench"
)

// component is one column of the breakdown.
type component struct {
	name, what string
	get        func(sample) time.Duration
}

var components = []component{
	{"API", "RunTask round trip (SigV4, validation, task written to etcd)", func(s sample) time.Duration { return s.api }},
	{"placement + hand-off", "RunTask reply → the agent has the task: placement pass, assign key, the agent's long poll returns", func(s sample) time.Duration { return s.handoff }},
	{"sandbox", "network namespace + task cgroup", func(s sample) time.Duration { return s.sandbox }},
	{"image check", "the image is on the host: look it up, check it is unpacked", func(s sample) time.Duration { return s.pull }},
	{"leftover check", "delete of a leftover container before the start (none exists)", func(s sample) time.Duration { return s.delete }},
	{"container start", "containerd: create container + snapshot + task (shim, runc create), start", func(s sample) time.Duration { return s.start }},
	{"state reports", "waiting until RUNNING's report is accepted (an etcd transaction); the earlier reports go while the containers start", func(s sample) time.Duration { return s.reports }},
	{"agent, other", "the rest of the agent's launch: goroutines, log dir, spec", func(s sample) time.Duration { return s.agent }},
	{"observed by client", "RUNNING accepted → the client's DescribeTasks poll sees it", func(s sample) time.Duration { return s.observe }},
}

func collect(samples []sample, f func(sample) time.Duration) []time.Duration {
	out := make([]time.Duration, len(samples))
	for i, s := range samples {
		out[i] = f(s)
	}
	return out
}

func floorCollect(fs []floorSample, f func(floorSample) time.Duration) []time.Duration {
	out := make([]time.Duration, len(fs))
	for i, s := range fs {
		out[i] = f(s)
	}
	return out
}

func ms(d time.Duration) string { return bench.FormatDuration(d) }

// result turns the samples into figures and the report section.
func (b *Benchmark) result(m measurements) *bench.Result {
	samples := m.tasks
	floorTotal := func(s floorSample) time.Duration { return s.total }
	total := bench.Summarize(collect(samples, func(s sample) time.Duration { return s.total }))
	fls := make([]bench.Summary, len(m.floor))
	for i := range m.floor {
		fls[i] = bench.Summarize(floorCollect(m.floor[i], floorTotal))
	}
	fl, flBerth := fls[0], fls[len(fls)-1]
	ratio := float64(total.P50) / float64(fl.P50)
	res := &bench.Result{
		Figures: []bench.Figure{
			{Name: "Task launch p50, RunTask → RUNNING (image on host)", Value: bench.Seconds(total.P50),
				Anchor: &bench.Anchor{Name: "bare containerd start p50", Value: bench.Seconds(fl.P50), Measured: true,
					Source: "containerd Go client on berth's own containerd, same image, same run"},
				Target: "≤ 2 × floor", Met: bench.Met(ratio <= 2)},
			{Name: "Task launch p50 vs. a containerd start with berth's seccomp profile and log driver", Value: bench.Seconds(total.P50),
				Anchor: &bench.Anchor{Name: "containerd start + seccomp + log driver p50", Value: bench.Seconds(flBerth.P50), Measured: true,
					Source: "as the floor, plus containerd's default seccomp profile and berth's log driver, as berth's containers have"}},
			{Name: "Task launch p99", Value: bench.Seconds(total.P99),
				Anchor: &bench.Anchor{Name: "bare containerd start p99", Value: bench.Seconds(fl.P99), Measured: true}},
			{Name: "Task launch p50 vs. AWS Fargate", Value: bench.Seconds(total.P50),
				Anchor: &bench.Anchor{Name: "Fargate task launch, as commonly quoted", Value: bench.Seconds(fargateQuoted),
					Source: "AWS publishes no SLA; tens of seconds, about 30 s, is the commonly quoted figure"}},
		},
		Reproduce: []string{
			"make build",
			fmt.Sprintf("go run ./bench/cmd/berthbench -berth bin/berth -run '^launch$' -launch.tasks %d -launch.floor %d -out /tmp/launch.md", b.tasks, b.floor),
		},
	}
	var d strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&d, format, a...) }
	w("A fresh `berth dev` (its own data dir, loopback port, private containerd) gets the demo image pushed, runs one warm-up task so that "+
		"the image is pulled and unpacked on the host, then launches %d tasks one after another through aws-sdk-go-v2's ECS client: "+
		"FARGATE, 256 CPU units / 512 MiB, awsvpc (the default subnets), one essential container running `sleep 3600` with stopTimeout 2. "+
		"Each is timed from just before RunTask until DescribeTasks shows RUNNING. ", len(samples))
	w("The client polls DescribeTasks with a %s pause between calls (a call took %s on average), so a launch is seen on average about "+
		"half a pause plus one to two round trips late: that is the *observed by client* row. ", ms(b.poll), ms(m.describeRTT))
	w("The host offers %d CPU units, so tasks are stopped in batches of %d (StopTask, then wait for STOPPED) between launches, never during one.\n\n",
		m.hostUnits, m.batch)
	w("The **floor** runs in the same run, on the same containerd (berth's private one, namespace `berth`), with the same image already unpacked: " +
		"the containerd Go client creates a container with a new overlayfs snapshot, creates its task (shim, `runc create`), starts it, and the clock " +
		"stops when Start returns; then the container is killed and deleted. It is bare: no seccomp profile, no task cgroup or network namespace " +
		"of berth's, output discarded. Two more series add what of berth's container configuration costs time: containerd's default seccomp " +
		"profile, and then also berth's log driver (berth-logdriver, which the shim starts for each container to write its log file). " +
		"Launches and floor starts alternate (a launch, then one start of each series), after one untimed warm-up of each, so that " +
		"all see the same machine.\n\n")

	w("| | p50 | p99 | min | max | mean |\n| --- | --- | --- | --- | --- | --- |\n")
	w("| berth: RunTask → RUNNING (%d tasks) | %s | %s | %s | %s | %s |\n", total.N, ms(total.P50), ms(total.P99), ms(total.Min), ms(total.Max), ms(total.Mean))
	for i, v := range floorVariants {
		f := fls[i]
		w("| floor: %s (%d) | %s | %s | %s | %s | %s |\n", v.name, f.N, ms(f.P50), ms(f.P99), ms(f.Min), ms(f.Max), ms(f.Mean))
	}
	w("\n")
	verdict := "met"
	if ratio > 2 {
		verdict = "**not met**"
	}
	w("berth's p50 is **%.2f ×** the floor's p50 (target ≤ 2 ×: %s). AWS quotes about 30 s for a Fargate launch (quoted, not measured): "+
		"berth's p50 is %.0f × shorter. Percentiles are by the nearest rank: with %d samples, p99 is the %s.\n\n",
		ratio, verdict, fargateQuoted.Seconds()/total.P50.Seconds(), total.N, rankName(total.N, 99))

	w("### Where the time goes\n\n")
	w("Per task, from the client's clock and the agent's metrics (`berth_agent_task_step_seconds{step}`, `berth_agent_task_launch_seconds`, " +
		"`berth_agent_task_received_timestamp_seconds` on `/metrics`, scraped before and after each launch). The rows add up to the total for every task; " +
		"shares are of the mean total.\n\n")
	w("| component | what | p50 | p99 | mean | share |\n| --- | --- | --- | --- | --- | --- |\n")
	type share struct {
		name string
		mean time.Duration
	}
	var shares []share
	for _, c := range components {
		s := bench.Summarize(collect(samples, c.get))
		name := c.name
		if c.name == "state reports" && len(samples) > 0 {
			name = fmt.Sprintf("state reports (%d)", samples[0].nReport)
		}
		w("| %s | %s | %s | %s | %s | %.0f %% |\n", name, c.what, ms(s.P50), ms(s.P99), ms(s.Mean), 100*s.Mean.Seconds()/total.Mean.Seconds())
		shares = append(shares, share{c.name, s.Mean})
	}
	w("| **total** | | %s | %s | %s | 100 %% |\n\n", ms(total.P50), ms(total.P99), ms(total.Mean))
	sort.Slice(shares, func(i, j int) bool { return shares[i].mean > shares[j].mean })
	w("Largest on average: %s (%s), %s (%s), %s (%s).\n\n", shares[0].name, ms(shares[0].mean), shares[1].name, ms(shares[1].mean), shares[2].name, ms(shares[2].mean))

	cpu := bench.Summarize(collect(samples, func(s sample) time.Duration { return s.cpu }))
	polls := 0
	for _, s := range samples {
		polls += s.polls
	}
	start := bench.Percentile(collect(samples, func(s sample) time.Duration { return s.start }), 50)
	w("berth's container start (p50 %s) compares with the floor's start configured as berth's, with seccomp and the log driver "+
		"(p50 %s): the difference, %s, is berth's runtime layer (image lookup and spec, task cgroup with limits, network namespace) and "+
		"contention with the berth process's own work on this machine's %d cores.\n\n",
		ms(start), ms(flBerth.P50), ms(start-flBerth.P50), goruntime.NumCPU())
	w("The berth dev process (control plane, agent, embedded etcd) used %s of CPU per launch on average (process_cpu_seconds_total, "+
		"which counts in 10 ms ticks), including serving the client's %.0f DescribeTasks polls per launch and one metrics scrape; "+
		"containerd, its shims and runc are separate processes and not counted.\n\n", ms(cpu.Mean), float64(polls)/float64(max(len(samples), 1)))
	w("The same launches by the task's own timestamps (DescribeTasks, millisecond precision), medians:\n\n")
	w("| interval | p50 |\n| --- | --- |\n")
	ts := func(name string, f func(sample) time.Duration) {
		w("| %s | %s |\n", name, ms(bench.Percentile(collect(samples, f), 50)))
	}
	ts("createdAt → pullStartedAt", func(s sample) time.Duration { return s.tsPullStart.Sub(s.tsCreated) })
	ts("pullStartedAt → pullStoppedAt", func(s sample) time.Duration { return s.tsPullStop.Sub(s.tsPullStart) })
	ts("pullStoppedAt → startedAt", func(s sample) time.Duration { return s.tsStarted.Sub(s.tsPullStop) })
	w("\n")

	w("The floor, by containerd call, p50 (mean):\n\n| call |")
	for _, v := range floorVariants {
		w(" %s |", v.name)
	}
	w("\n| --- |%s\n", strings.Repeat(" --- |", len(floorVariants)))
	for _, c := range []struct {
		name string
		f    func(floorSample) time.Duration
	}{
		{"NewContainer (snapshot + spec + metadata)", func(s floorSample) time.Duration { return s.container }},
		{"NewTask (shim + runc create)", func(s floorSample) time.Duration { return s.task }},
		{"Task.Start (runc start)", func(s floorSample) time.Duration { return s.start }},
		{"**total**", func(s floorSample) time.Duration { return s.total }},
	} {
		w("| %s |", c.name)
		for i := range floorVariants {
			s := bench.Summarize(floorCollect(m.floor[i], c.f))
			w(" %s (%s) |", ms(s.P50), ms(s.Mean))
		}
		w("\n")
	}
	w("\n<details><summary>Every task (ms)</summary>\n\n")
	w("| # | total | API | hand-off | sandbox | image | leftover | start | reports | agent | observed | polls |\n")
	w("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	f := func(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d)/float64(time.Millisecond)) }
	for i, s := range samples {
		w("| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %d |\n", i+1, f(s.total), f(s.api), f(s.handoff), f(s.sandbox),
			f(s.pull), f(s.delete), f(s.start), f(s.reports), f(s.agent), f(s.observe), s.polls)
	}
	w("\n</details>\n")
	res.Details = d.String()
	return res
}

// rankName names the sample the p-th percentile picks among n, from the top.
func rankName(n int, p float64) string {
	from := n - int(math.Ceil(p/100*float64(n)))
	switch from {
	case 0:
		return "largest"
	case 1:
		return "second largest"
	default:
		return fmt.Sprintf("%d-th largest", from+1)
	}
}
