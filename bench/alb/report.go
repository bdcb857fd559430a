package alb

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/berthdev/berth/bench"
)

// reproduce reruns this benchmark alone.
var reproduce = []string{
	"bash scripts/setup.sh   # installs wrk and nginx-light too",
	"make build",
	"go run ./bench/cmd/berthbench -berth bin/berth -run '^alb$' -merge",
}

// skipped is the result when Debian's tools are missing.
func skipped(missing []string) *bench.Result {
	return &bench.Result{
		Details: fmt.Sprintf("**Skipped**: %s not installed. Install them with `bash scripts/setup.sh` "+
			"(or `apt-get install -y wrk nginx-light iproute2`) and run again.\n", strings.Join(missing, ", ")),
		Reproduce: reproduce,
	}
}

// result turns the measurements into figures and Markdown.
func (b *Benchmark) result(m *measurements) *bench.Result {
	albRate, ngxRate := medianRate(m.wrk["ALB"]), medianRate(m.wrk["nginx"])
	half := m.latency[0].runs
	direct := medianP99(half["direct"])
	albAdded, ngxAdded := medianP99(half["ALB"])-direct, medianP99(half["nginx"])-direct
	figs := []bench.Figure{
		{Name: "ALB throughput (wrk, median req/s)",
			Value: bench.Value{Num: math.Round(albRate), Unit: "req/s"},
			Anchor: &bench.Anchor{Name: "nginx reverse proxy to the same task", Value: bench.Value{Num: math.Round(ngxRate), Unit: "req/s"},
				Measured: true, Source: "Debian's nginx in the VPC's namespace, same run"},
			Target: fmt.Sprintf("≥ %.1f × nginx", throughputTarget), Met: bench.Met(albRate >= throughputTarget*ngxRate)},
		{Name: "ALB added p99 at half of nginx's load (open loop)",
			Value: bench.Seconds(albAdded),
			Anchor: &bench.Anchor{Name: "nginx's added p99", Value: bench.Seconds(ngxAdded), Measured: true,
				Source: "same generator, same rate, same run"},
			Target: "≤ " + bench.FormatDuration(addedP99Target), Met: bench.Met(albAdded <= addedP99Target)},
	}
	if len(m.latency) > 1 {
		own := m.latency[1].runs
		d := medianP99(own["direct"])
		figs = append(figs, bench.Figure{Name: "ALB added p99 at half its own throughput (open loop)",
			Value: bench.Seconds(medianP99(own["ALB"]) - d),
			Anchor: &bench.Anchor{Name: "nginx's added p99 at that rate", Value: bench.Seconds(medianP99(own["nginx"]) - d), Measured: true,
				Source: "same generator, same rate, same run"}})
	}
	if r := m.rollout; r != nil {
		failed := r.non200 + r.errs
		figs = append(figs,
			bench.Figure{Name: fmt.Sprintf("UpdateService → new revision serves 100 %% (%d tasks)", rolloutTasks), Value: bench.Seconds(r.allNew)},
			bench.Figure{Name: "UpdateService → service steady (one deployment, COMPLETED)", Value: bench.Seconds(r.steady)},
			bench.Figure{Name: "failed requests during the ALB rollout", Value: bench.Value{Num: float64(failed), Unit: "requests"},
				Target: "0", Met: bench.Met(failed == 0)})
	}
	return &bench.Result{Figures: figs, Details: b.details(m), Reproduce: reproduce}
}

// details is the section's Markdown.
func (b *Benchmark) details(m *measurements) string {
	var s strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&s, format, a...) }
	w("Issue 5: berth's ALB against Debian's nginx as a reverse proxy to the same backend, in the same run on the same machine, "+
		"measured %s on %d cores (%s), %.1f GiB, %s; load average %s at the start (1, 5, 15 min; other work on the machine "+
		"skews these figures, and the ALB, nginx, the backend and the clients all share these cores).\n\n",
		m.date.UTC().Format("2006-01-02 15:04 MST"), m.machine.Cores, m.machine.CPUModel, m.machine.MemoryGiB, m.machine.Kernel, m.machine.LoadAvg)
	w("**Setup.** One `berth dev` (its own data dir, port and address pools `127.101.250.0/24`, `127.100.250.0/24`). " +
		"The backend is one FARGATE task in the default VPC (cpu = every core of the host, so its quota limits no path) running " +
		"`benchhttp`, a static Go net/http server answering `hello` with 200 on every path over keep-alive, shipped as a one-layer " +
		"image in berth's registry. Three paths to it:\n\n")
	w("- **direct**: clients in the VPC's namespace (`berth-vpc-…`) to the task's address: the ceiling;\n")
	w("- **nginx**: Debian's nginx %s in the VPC's namespace on 127.0.0.1:%d, `worker_processes %d` (the cores berth's process may use), "+
		"daemon off, access_log off, `upstream { keepalive 64; }`, `proxy_http_version 1.1`, `proxy_set_header Connection \"\"`, "+
		"keepalive_requests 1000000 on both sides; clients in the same namespace;\n", nginxVersion(), nginxAddr.Port(), m.workers)
	w("- **ALB**: an application load balancer in the default subnets, HTTP listener :80 forwarding to an ip target group with the " +
		"task registered; clients on the host, to the address its DNS name resolves to in /etc/hosts (127.101.250.x); " +
		"the ALB dials the task from inside the VPC's namespace.\n\n")
	w("nginx and the ALB both run on the host's cores beside the backend and the client, so each proxy competes with the same two; " +
		"the ALB runs in berth dev's process, which also holds the control plane, etcd and the registry (idle during the runs).\n\n")

	w("### Throughput (wrk, closed loop)\n\n`wrk -t%d -c%d -d%s --latency`, after a 2 s warm-up of each path; %d rounds, the paths' order rotated each round.\n\n",
		b.threads, b.conns, b.dur, b.rounds)
	w("| round | path | req/s | wrk p50 | wrk p99 | non-2xx | socket errors | load before |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for r := range b.rounds {
		for _, p := range []string{"direct", "nginx", "ALB"} {
			if r < len(m.wrk[p]) {
				x := m.wrk[p][r]
				w("| %d | %s | %.0f | %s | %s | %d | %d | %.2f |\n", r+1, p, x.ReqPerSec, bench.FormatDuration(x.P50), bench.FormatDuration(x.P99),
					x.Non2xx, x.SockErrs, x.Load)
			}
		}
	}
	albRate, ngxRate, dirRate := medianRate(m.wrk["ALB"]), medianRate(m.wrk["nginx"]), medianRate(m.wrk["direct"])
	w("\nMedians: direct %.0f, nginx %.0f (%.2f × direct), ALB %.0f req/s (%.2f × direct); **ALB / nginx = %.2f** (target ≥ %.1f).\n\n",
		dirRate, ngxRate, ngxRate/dirRate, albRate, albRate/dirRate, albRate/ngxRate, throughputTarget)

	if p := m.profile; p != nil {
		w("**Where the ALB's time goes.** One more, untimed `wrk` run against the ALB (%.0f req/s) while Linux perf sampled "+
			"berth dev's process at 999 Hz with call stacks: %.0f %% of its samples are in the kernel (TCP over loopback and, "+
			"for the target leg, the veth, bridge and firewall of the VPC, run inline in the sender's system calls). The top symbols "+
			"with at least 5 %% of the samples, callees included (inclusive, self):\n\n```\n%s\n```\n\n",
			p.reqPerSec, p.kernel, strings.Join(p.top, "\n"))
	}

	w("### Added latency (open loop)\n\n")
	w("The generator (bench/alb/loadgen.go) schedules request i at start + i/rate whatever came before, over %d keep-alive "+
		"connections, for %s after %s untimed; %d rounds, the paths' order rotated. A request taken by a connection after its "+
		"due time is timed from the due time (queueing behind slow answers counts: no coordinated omission); one taken early "+
		"waits and is timed from its write (Go's timers wake up to ~1 ms late, which is the generator's, not the server's). "+
		"*late* is the share of requests taken after their due time: near 100 %% means the path (or the host) did not keep up "+
		"with the rate, and its latencies are queueing. A path's added p99 is its p99 less direct's (medians over the rounds).\n\n",
		b.loadConns, b.loadDur, b.loadWup, b.rounds)
	for _, set := range m.latency {
		w("**%.0f req/s, %s.**\n\n", set.rate, set.what)
		w("| round | path | answered/s | p50 | p99 | p99.9 | max | late | errors | load before |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
		for r := range b.rounds {
			for _, p := range []string{"direct", "nginx", "ALB"} {
				if r < len(set.runs[p]) {
					x := set.runs[p][r]
					w("| %d | %s | %.0f | %s | %s | %s | %s | %.1f %% | %d | %.2f |\n", r+1, p, x.rate, us(x.p50), us(x.p99), us(x.p999), us(x.max),
						100*float64(x.late)/float64(max(x.sent, 1)), x.errs+x.non200, x.load)
				}
			}
		}
		direct, ngx, alb := medianP99(set.runs["direct"]), medianP99(set.runs["nginx"]), medianP99(set.runs["ALB"])
		w("\nMedian p99: direct %s, nginx %s (adds %s), ALB %s (**adds %s**; target ≤ %s).\n\n", us(direct), us(ngx), us(ngx-direct),
			us(alb), us(alb-direct), bench.FormatDuration(addedP99Target))
	}

	if r := m.rollout; r != nil {
		w("### Rolling update behind the ALB\n\n")
		w("A service of %d tasks (256 CPU units each) of the same image with `BODY=%s`, behind a second ip target group and the ALB's "+
			"listener :%d; health checks every %d s (timeout %d s, healthy after %d), `deregistration_delay.timeout_seconds=%d`. "+
			"Once it was steady and all targets healthy, a revision with `BODY=%s` was registered and `UpdateService` sent "+
			"(minimumHealthyPercent 100, maximumPercent 200) while a client on the host sent `GET /` through the ALB every %s "+
			"(keep-alive). *Serves 100 %%* is the first of %d consecutive new answers; *steady* is DescribeServices showing one "+
			"deployment, of the new revision, COMPLETED, with %d running (polled every 100 ms).\n\n",
			rolloutTasks, oldBody, rolloutPort, hcInterval, hcTimeout, hcHealthy, deregDelayS, newBody, b.poll, window, rolloutTasks)
		w("| | |\n| --- | --- |\n")
		w("| first new answer | %s |\n| new revision serves 100 %% | %s |\n| service steady | %s |\n", bench.FormatDuration(r.firstNew),
			bench.FormatDuration(r.allNew), bench.FormatDuration(r.steady))
		w("| requests | %d |\n| non-200 answers | %d |\n| transport errors | %d |\n| old (or failed) answers after 100 %% | %d |\n| 200s with another body | %d |\n\n",
			r.polls, r.non200, r.errs, r.old, r.other)
		w("The time to 100 %% is bounded below by the health checks: a new task serves only after %d checks %d s apart, and an old one "+
			"leaves the rotation only once its replacement is healthy.\n", hcHealthy, hcInterval)
	}
	return s.String()
}

// us prints a latency in µs below 10 ms.
func us(d time.Duration) string {
	if d < 10*time.Millisecond && d > -10*time.Millisecond {
		return fmt.Sprintf("%d µs", d.Microseconds())
	}
	return bench.FormatDuration(d)
}
