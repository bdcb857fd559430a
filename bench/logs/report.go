package logs

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/berthdev/berth/bench"
)

// target is the bound on launch latency under logging load.
const target = 1.10

func ms(d time.Duration) string { return bench.FormatDuration(d) }

func mb(bytes int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(bytes) / 1e6 / d.Seconds()
}

func round(x float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(x*p) / p
}

func (b *Benchmark) result(m measurements) *bench.Result {
	ingest := m.ingestDone.Sub(m.floodStart)
	fromWrite := m.ingestDone.Sub(m.firstWrite)
	write := m.lastWrite.Sub(m.firstWrite)
	base, during, duringFile, duringCPU := bench.Summarize(m.base), bench.Summarize(m.during), bench.Summarize(m.duringFile), bench.Summarize(m.duringCPU)
	ratio := float64(during.P50) / float64(base.P50)
	fileRatio := float64(duringFile.P50) / float64(base.P50)
	cpuRatio := float64(duringCPU.P50) / float64(base.P50)
	linesPerSec := float64(m.lines+1) / ingest.Seconds()

	floodFlag := ""
	if b.floodCPU != 1024 {
		floodFlag = fmt.Sprintf(" -logs.flood-cpu %d", b.floodCPU)
	}
	res := &bench.Result{
		Figures: []bench.Figure{
			{Name: "Log ingest, RunTask → last line readable via GetLogEvents", Value: bench.Value{Num: round(linesPerSec, 0), Unit: "lines/s"}},
			{Name: "Log ingest, MB/s (100-byte lines)", Value: bench.Value{Num: round(mb(m.readBytes, ingest), 1), Unit: "MB/s"}},
			{Name: "The container's own write rate (its log file's growth)", Value: bench.Value{Num: round(mb(m.fileBytes, write), 1), Unit: "MB/s"},
				Anchor: &bench.Anchor{Name: "the issue's noisy container", Value: bench.Value{Num: 50, Unit: "MB/s"},
					Source: "issue 6: a container that writes 50 MB/s of logs must not slow down or block other tasks"}},
			{Name: "Task launch p50 during the flood", Value: bench.Seconds(during.P50),
				Anchor: &bench.Anchor{Name: "task launch p50 without logging load", Value: bench.Seconds(base.P50), Measured: true,
					Source: "the same small task, same env, launched before the flood"},
				Target: "≤ 1.10 × without load", Met: bench.Met(ratio <= target)},
			{Name: "Task launch p50 during the same flood without awslogs (its log file only)", Value: bench.Seconds(duringFile.P50),
				Anchor: &bench.Anchor{Name: "task launch p50 without logging load", Value: bench.Seconds(base.P50), Measured: true,
					Source: "the same small task, same env, launched before the floods"}},
			{Name: "Task launch p50 while the same task burns the CPU it asked for and logs nothing", Value: bench.Seconds(duringCPU.P50),
				Anchor: &bench.Anchor{Name: "task launch p50 without logging load", Value: bench.Seconds(base.P50), Measured: true,
					Source: "the same small task, same env, launched before the floods"}},
		},
		Reproduce: []string{
			"go build -o bin/ ./cmd/berth ./cmd/berth-logdriver",
			fmt.Sprintf("go run ./bench/cmd/berthbench -berth bin/berth -run '^logs$' -logs.lines %d -logs.launches %d%s -out /tmp/logs.md",
				b.lines, b.launches, floodFlag),
		},
	}
	var d strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&d, format, a...) }
	w("A fresh `berth dev` (own data dir, loopback port, its own address pools: `%s`) gets the demo image (busybox-static) pushed. "+
		"The **flood** is a task (FARGATE %d/%d; awsvpc) whose one container runs `yes <99 bytes> | head -n %d; echo <end line>` "+
		"with the awslogs driver (awslogs-create-group true): %d lines, %.1f MB. The clock runs from just before RunTask until "+
		"GetLogEvents (aws-sdk-go-v2's CloudWatch Logs client, asking every 50 ms for the stream's last event) returns the end line; "+
		"then, after the clock and the launches, the stream is read from its head (10,000 events a page) and every line is checked. The container's own write rate is the growth of its log file "+
		"on the host (the log driver's output), its size polled every millisecond from the first byte until it holds every line.\n\n",
		b.args, b.floodCPU, 2*b.floodCPU, m.lines, m.lines+1, float64(m.fileBytes)/1e6)
	w("| | |\n| --- | --- |\n")
	w("| RunTask → last line readable | %s |\n", ms(ingest))
	w("| first byte in the log file → last line readable | %s (%.0f lines/s, %.1f MB/s) |\n", ms(fromWrite),
		float64(m.lines+1)/fromWrite.Seconds(), mb(m.readBytes, fromWrite))
	w("| the container writing: first byte → log file complete | %s (%.0f lines/s, %.1f MB/s) |\n", ms(write),
		float64(m.lines+1)/write.Seconds(), mb(m.fileBytes, write))
	w("| ingest: RunTask → last line readable | %.0f lines/s, %.1f MB/s |\n", linesPerSec, mb(m.readBytes, ingest))
	w("| load average (1, 5, 15 min) before / after | %s / %s |\n\n", m.loadBefore, m.loadAfter)

	w("**Launch latency under the flood.** A small task (`%s`, no awslogs, FARGATE 256/512, awsvpc) is launched %d times one "+
		"after another, each timed from just before RunTask until DescribeTasks (polled every %s) shows RUNNING, then stopped (StopTask, "+
		"STOPPED, the agent idle) before the next: first without logging load (after an untimed warm-up), last from the flood's "+
		"RunTask until its last line is readable, at most %d launches a phase.", smallCmd, b.launches, ms(b.poll), b.launches)
	w(" Between the two, the same launches run during two more floods, each a task of the same size started, given its launches, "+
		"and stopped: the same container writing to `/dev/null` (`bench-logs-cpu-flood`: a task that uses the whole CPU it asked "+
		"for and logs nothing), and the same container without awslogs (`bench-logs-file-flood`, no logConfiguration: its output only "+
		"goes to its log file on the host, through its log driver, which runs in the task's cgroup; launches start once the file grows; "+
		"%.1f MB written in %s, %.1f MB/s). Both run `head -n 1000000000`, stopped after the launches. What they cost the others the "+
		"flooding task may spend; the difference from the file flood to the flood with awslogs is what shipping and storing its logs cost.",
		float64(m.fileGrowth.bytes)/1e6, ms(m.fileGrowth.took), mb(m.fileGrowth.bytes, m.fileGrowth.took))
	if m.launchesAfter > 0 {
		w(" %d launch started during the flood with awslogs but ended after its last line was readable: not counted.", m.launchesAfter)
	}
	w(" While the flood with awslogs runs the reader only asks for the stream's last event (GetLogEvents from the tail, limit 1, " +
		"every 50 ms); every line is read back and checked after the launches.")
	w("\n\n| | n | p50 | p99 | min | max | mean |\n| --- | --- | --- | --- | --- | --- | --- |\n")
	for _, r := range []struct {
		name string
		s    bench.Summary
	}{{"without logging load", base}, {"during a flood to /dev/null (CPU only)", duringCPU},
		{"during the flood without awslogs (file only)", duringFile}, {"during the flood with awslogs", during}} {
		w("| %s | %d | %s | %s | %s | %s | %s |\n", r.name, r.s.N, ms(r.s.P50), ms(r.s.P99), ms(r.s.Min), ms(r.s.Max), ms(r.s.Mean))
	}
	verdict := "met"
	if ratio > target {
		verdict = "**not met**"
	}
	w("\nDuring the flood the p50 is **%.2f ×** the p50 without load (target ≤ %.2f ×: %s); during the same flood without "+
		"awslogs it is %.2f ×, and while a task of the same size burns its CPU and logs nothing %.2f ×.\n\n", ratio, target, verdict, fileRatio, cpuRatio)

	sb, sf := bench.Summarize(m.slowBase), bench.Summarize(m.slowFlood)
	w("**A slow logger's delay.** A third task with awslogs prints the host's uptime (`cat /proc/uptime`: the container shares the " +
		"kernel's clock, 10 ms resolution) ten times a second through both phases; a reader follows its stream with GetLogEvents every 10 ms, " +
		"and a line's delay is from the time it carries to the reply that first returns it. The shipper polls the log file every 200 ms, and while a task on the host is being launched it holds each batch back for up to 250 ms (launches come first).\n\n")
	w("| slow logger, container → GetLogEvents | lines | p50 | p99 | max |\n| --- | --- | --- | --- | --- |\n")
	sfile := bench.Summarize(m.slowFile)
	w("| without logging load | %d | %s | %s | %s |\n", sb.N, ms(sb.P50), ms(sb.P99), ms(sb.Max))
	w("| during the flood without awslogs | %d | %s | %s | %s |\n", sfile.N, ms(sfile.P50), ms(sfile.P99), ms(sfile.Max))
	w("| during the flood with awslogs | %d | %s | %s | %s |\n", sf.N, ms(sf.P50), ms(sf.P99), ms(sf.Max))
	res.Details = d.String()
	return res
}
