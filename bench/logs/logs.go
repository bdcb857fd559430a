// Package logs measures log ingest through the awslogs driver: one
// container writes lines of about 100 bytes as fast as it can, and the clock
// runs from RunTask until the last of them is readable through GetLogEvents.
// During that flood a second, small task is launched again and again, and
// its launch latency (RunTask → RUNNING) is compared with the same launches
// without the flood, in the same run. Two more phases anchor it: the same
// launches while a task of the flood's size writes to /dev/null (what a task
// that uses the CPU it asked for costs the others, logging nothing), and
// while it writes without awslogs (its output only goes to its log file):
// the rest is what shipping and storing its logs cost. A slow logger's lines
// are timed from the container to GetLogEvents without load and during the
// floods that write.
package logs

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berthdev/berth/bench"
)

const (
	cluster = "bench-logs"
	group   = "/bench/logs"
	// line is what the flood writes, 99 bytes and a newline.
	line = "berth-log-bench-0123456789abcdefghijklmnopqrstuvwxyz-ABCDEFGHIJKLMNOPQRSTUVWXYZ-0123456789-0123456789"
	// endLine follows the flood's lines, so that the last line is
	// recognisable.
	endLine = "berth-log-bench-end"
	// endPoll is how often the stream's last event is asked for during
	// the flood.
	endPoll = 50 * time.Millisecond
)

// Benchmark is the log ingest benchmark.
type Benchmark struct {
	lines    int
	launches int
	floodCPU int // CPU units of the floods (Fargate sizes: 256–4096)
	poll     time.Duration
	args     string
}

// New returns the benchmark with its defaults: 2,000,000 lines (200 MB),
// 10 launches per phase, 5 ms polling, and berth dev on address pools of
// its own.
func New() *Benchmark {
	return &Benchmark{lines: 2_000_000, launches: 10, floodCPU: 1024, poll: 5 * time.Millisecond,
		args: "--lb-address-pool 127.101.249.0/24 --public-ip-pool 127.100.249.0/24"}
}

// Name implements bench.Benchmark.
func (b *Benchmark) Name() string { return "logs" }

// Title implements bench.Benchmark.
func (b *Benchmark) Title() string { return "Log ingest: one container to GetLogEvents" }

// Flags implements bench.Benchmark.
func (b *Benchmark) Flags(fs *flag.FlagSet) {
	fs.IntVar(&b.lines, "logs.lines", b.lines, "lines of 100 bytes the flooding container writes (1000–10,000,000)")
	fs.IntVar(&b.launches, "logs.launches", b.launches, "launches of the small task per phase, one after another (1–100)")
	fs.IntVar(&b.floodCPU, "logs.flood-cpu", b.floodCPU, "CPU units of the flooding tasks: 256, 512, 1024, 2048 or 4096 (memory twice as many MiB)")
	fs.DurationVar(&b.poll, "logs.poll", b.poll, "pause between DescribeTasks polls while waiting for RUNNING")
	fs.StringVar(&b.args, "logs.dev-args", b.args, "more flags for berth dev, space-separated")
}

func (b *Benchmark) validate() error {
	if b.lines < 1000 || b.lines > 10_000_000 || b.launches < 1 || b.launches > 100 {
		return fmt.Errorf("logs: -logs.lines must be 1000–10,000,000 and -logs.launches 1–100 (got %d, %d)", b.lines, b.launches)
	}
	switch b.floodCPU {
	case 256, 512, 1024, 2048, 4096:
	default:
		return fmt.Errorf("logs: -logs.flood-cpu must be 256, 512, 1024, 2048 or 4096 (got %d)", b.floodCPU)
	}
	if b.poll < 0 || b.poll > time.Second {
		return fmt.Errorf("logs: -logs.poll must be 0–1s (got %s)", b.poll)
	}
	return nil
}

// env is a dev env set up for the benchmark.
type env struct {
	dev                      *bench.Dev
	cwl                      *cloudwatchlogs.Client
	poll                     time.Duration
	small, floodDef, slowDef string
	// fileFloodDef is the flood without awslogs: its output only goes to
	// its log file on the host. cpuFloodDef is the same container writing
	// to /dev/null: a task that uses its whole CPU and logs nothing.
	fileFloodDef, cpuFloodDef string
}

// Run implements bench.Benchmark.
func (b *Benchmark) Run(ctx context.Context, h *bench.Harness) (*bench.Result, error) {
	if err := b.validate(); err != nil {
		return nil, err
	}
	dev, err := h.StartDev(ctx, strings.Fields(b.args)...)
	if err != nil {
		return nil, err
	}
	e := &env{dev: dev, poll: b.poll, cwl: cloudwatchlogs.NewFromConfig(aws.Config{Region: "us-east-1",
		BaseEndpoint: aws.String(dev.URL), Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")})}
	if err := e.setup(ctx, b.lines, b.floodCPU); err != nil {
		return nil, err
	}
	m := measurements{lines: b.lines, loadBefore: loadavg()}

	h.Log.Info("warm-up task (pulls the image onto the host)")
	if _, err := e.launchAndStop(ctx); err != nil {
		return nil, fmt.Errorf("warm-up task: %w", err)
	}
	// The slow logger runs through both phases.
	slowArn, _, err := e.launch(ctx, e.slowDef)
	if err != nil {
		return nil, fmt.Errorf("slow logger: %w", err)
	}
	h.Cleanup(func() { _ = e.dev.StopTasks(context.Background(), cluster, []string{slowArn}) })
	slow := newSlowWatcher(e, "slow/main/"+taskID(slowArn))
	sctx, stopSlow := context.WithCancel(ctx)
	var swg sync.WaitGroup
	swg.Add(1)
	go func() { defer swg.Done(); slow.run(sctx) }()
	defer func() { stopSlow(); swg.Wait() }()

	h.Log.Info("baseline: launches without logging load", "launches", b.launches)
	m.baseStart = time.Now()
	for i := range b.launches {
		d, err := e.launchAndStop(ctx)
		if err != nil {
			return nil, fmt.Errorf("baseline launch %d: %w", i+1, err)
		}
		m.base = append(m.base, d)
	}
	m.baseEnd = time.Now()

	h.Log.Info("file flood: launches while a container without awslogs writes", "lines", b.lines)
	h.Log.Info("cpu flood: launches while a container burns its CPU and logs nothing", "launches", b.launches)
	if m.duringCPU, _, err = e.loadPhase(ctx, h, b, e.cpuFloodDef, ""); err != nil {
		return nil, fmt.Errorf("cpu flood: %w", err)
	}
	if err := e.fileFlood(ctx, h, b, &m); err != nil {
		return nil, err
	}
	h.Log.Info("flood: launches while a container logs", "lines", b.lines)
	if err := e.flood(ctx, h, b, &m); err != nil {
		return nil, err
	}
	m.loadAfter = loadavg()
	stopSlow()
	swg.Wait()
	m.slowBase, m.slowFlood = slow.delays(m.baseStart, m.baseEnd), slow.delays(m.floodStart, m.ingestDone)
	m.slowFile = slow.delays(m.fileStart, m.fileEnd)
	h.Log.Info("checking every line of the flood's stream")
	if err := e.verify(ctx, m.floodStream, b.lines, &m); err != nil {
		return nil, err
	}
	return b.result(m), nil
}

// measurements is everything one run measured.
type measurements struct {
	lines                  int
	loadBefore, loadAfter  string
	base, during           []time.Duration // launch latencies
	launchesAfter          int             // flood launches that ended after the ingest did
	duringFile             []time.Duration // launches during the flood without awslogs
	duringCPU              []time.Duration // launches during the flood to /dev/null
	fileStart, fileEnd     time.Time       // RunTask of the file flood; it stopped
	fileGrowth             growth          // its log file's, from its first byte to its last launch
	floodStream            string
	baseStart, baseEnd     time.Time
	floodStart, ingestDone time.Time // RunTask of the flood; its last line read back
	firstWrite, lastWrite  time.Time // the log file's growth, as polled
	fileBytes              int64
	readBytes              int64
	slowBase, slowFlood    []time.Duration
	slowFile               []time.Duration
}

// smallCmd is the small task's command: it waits, and exits at once on
// StopTask's SIGTERM (a bare sleep as PID 1 ignores it, and each stop would
// wait out the stop timeout).
const smallCmd = `trap "exit 0" TERM; sleep 3600 & wait`

// setup creates the cluster and the task definitions: the small task
// (smallCmd, no awslogs, 256/512), the flood (floodCPU, by default 1024/2048: a whole CPU, so
// that its quota is not what limits it) and the slow logger (256/512), both
// with awslogs and awslogs-create-group true. All FARGATE, awsvpc.
func (e *env) setup(ctx context.Context, lines, floodCPU int) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := e.dev.ECS.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String(cluster)}); err != nil {
		return fmt.Errorf("create cluster: %w", err)
	}
	awslogs := func(prefix string) *types.LogConfiguration {
		return &types.LogConfiguration{LogDriver: types.LogDriverAwslogs, Options: map[string]string{
			"awslogs-group": group, "awslogs-region": "us-east-1", "awslogs-stream-prefix": prefix, "awslogs-create-group": "true"}}
	}
	register := func(family, cpu, memory string, logs *types.LogConfiguration, cmd ...string) (string, error) {
		out, err := e.dev.ECS.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{
			Family: aws.String(family), NetworkMode: types.NetworkModeAwsvpc, Cpu: aws.String(cpu), Memory: aws.String(memory),
			RequiresCompatibilities: []types.Compatibility{types.CompatibilityFargate},
			ContainerDefinitions: []types.ContainerDefinition{{
				Name: aws.String("main"), Image: aws.String(e.dev.Image), Essential: aws.Bool(true),
				Command: cmd, StopTimeout: aws.Int32(2), LogConfiguration: logs,
			}},
		})
		if err != nil {
			return "", fmt.Errorf("register task definition %s: %w", family, err)
		}
		return aws.ToString(out.TaskDefinition.TaskDefinitionArn), nil
	}
	var err error
	if e.small, err = register("bench-logs-small", "256", "512", nil, "sh", "-c", smallCmd); err != nil {
		return err
	}
	floodCmd := fmt.Sprintf("yes %s | head -n %d; echo %s", line, lines, endLine)
	cpu, mem := strconv.Itoa(floodCPU), strconv.Itoa(2*floodCPU)
	if e.floodDef, err = register("bench-logs-flood", cpu, mem, awslogs("flood"), "sh", "-c", floodCmd); err != nil {
		return err
	}
	// The file flood writes until it is stopped.
	if e.fileFloodDef, err = register("bench-logs-file-flood", cpu, mem, nil, "sh", "-c",
		fmt.Sprintf("yes %s | head -n 1000000000", line)); err != nil {
		return err
	}
	if e.cpuFloodDef, err = register("bench-logs-cpu-flood", cpu, mem, nil, "sh", "-c",
		fmt.Sprintf("yes %s | head -n 1000000000 >/dev/null", line)); err != nil {
		return err
	}
	// The slow logger prints the host's uptime (the container shares the
	// kernel's clock) ten times a second.
	e.slowDef, err = register("bench-logs-slow", "256", "512", awslogs("slow"), "sh", "-c", "while true; do cat /proc/uptime; sleep 0.1; done")
	return err
}

// launch runs a task of def and waits until DescribeTasks shows RUNNING.
func (e *env) launch(ctx context.Context, def string) (string, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	t0 := time.Now()
	out, err := e.dev.ECS.RunTask(ctx, &ecs.RunTaskInput{
		Cluster: aws.String(cluster), TaskDefinition: aws.String(def), LaunchType: types.LaunchTypeFargate,
		NetworkConfiguration: &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{Subnets: e.dev.Subnets}},
	})
	if err != nil {
		return "", 0, fmt.Errorf("RunTask: %w", err)
	}
	if len(out.Tasks) != 1 {
		return "", 0, fmt.Errorf("RunTask: no task, failures %d", len(out.Failures))
	}
	arn := aws.ToString(out.Tasks[0].TaskArn)
	for {
		d, err := e.dev.ECS.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(cluster), Tasks: []string{arn}})
		now := time.Now()
		if err != nil {
			return arn, 0, fmt.Errorf("DescribeTasks %s: %w", arn, err)
		}
		if len(d.Tasks) == 1 {
			switch t := d.Tasks[0]; aws.ToString(t.LastStatus) {
			case "RUNNING":
				return arn, now.Sub(t0), nil
			case "DEACTIVATING", "STOPPING", "DEPROVISIONING", "STOPPED":
				if def == e.floodDef && t.StartedAt != nil {
					return arn, now.Sub(t0), nil // a flood that finished between polls
				}
				return arn, 0, fmt.Errorf("task %s stopped before it ran: %s: %s", arn, t.StopCode, aws.ToString(t.StoppedReason))
			}
		}
		select {
		case <-ctx.Done():
			return arn, 0, fmt.Errorf("task %s not RUNNING: %w", arn, ctx.Err())
		case <-time.After(e.poll):
		}
	}
}

// launchAndStop launches the small task, then stops it and waits until the
// agent is done with it.
func (e *env) launchAndStop(ctx context.Context) (time.Duration, error) {
	arn, d, err := e.launch(ctx, e.small)
	if arn != "" {
		if serr := e.dev.StopTasks(ctx, cluster, []string{arn}); err == nil && serr != nil {
			err = fmt.Errorf("stop %s: %w", arn, serr)
		}
	}
	return d, err
}

// flood runs the flooding task, launches small tasks one after another until
// its last line is readable, and then has the measurements.
func (e *env) flood(ctx context.Context, h *bench.Harness, b *Benchmark, m *measurements) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	m.floodStart = time.Now()
	arn, _, err := e.launch(ctx, e.floodDef)
	if err != nil {
		return fmt.Errorf("flood task: %w", err)
	}
	h.Cleanup(func() { _ = e.dev.StopTasks(context.Background(), cluster, []string{arn}) })
	id := taskID(arn)
	want := int64(b.lines)*int64(len(line)+1) + int64(len(endLine)+1)

	var wg sync.WaitGroup
	var fileErr, readErr error
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	wg.Add(2)
	go func() {
		defer wg.Done()
		fileErr = watchFile(wctx, filepath.Join(e.dev.DataDir, "agent", "logs", id, "main.log"), want, m)
	}()
	ingested := make(chan struct{})
	m.floodStream = "flood/main/" + id
	go func() {
		defer wg.Done()
		defer close(ingested)
		readErr = e.waitEnd(ctx, m.floodStream, m)
	}()
	var err2 error
	m.during, m.launchesAfter, err2 = e.launchUntil(ctx, ingested, b.launches)
	if err2 != nil {
		return fmt.Errorf("launch during the flood: %w", err2)
	}
	<-ingested
	stopWatch()
	wg.Wait()
	if readErr != nil {
		return readErr
	}
	if fileErr != nil {
		return fileErr
	}
	h.Log.Info("flood ingested", "took", m.ingestDone.Sub(m.floodStart).Round(time.Millisecond), "launches", len(m.during))
	return nil
}

// launchUntil launches the small task one after another until done is
// closed, at most n times, and returns the latencies of the launches that
// ended before done was closed and how many ended after (not all of them
// under load: not counted).
func (e *env) launchUntil(ctx context.Context, done <-chan struct{}, n int) ([]time.Duration, int, error) {
	var ds []time.Duration
	after := 0
	for len(ds)+after < n && !isClosed(done) {
		d, err := e.launchAndStop(ctx)
		if err != nil {
			return ds, after, err
		}
		if isClosed(done) {
			after++
		} else {
			ds = append(ds, d)
		}
	}
	return ds, after, nil
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// fileFlood runs the flood without awslogs, writing without end: the
// launches of loadPhase once its log file grows.
func (e *env) fileFlood(ctx context.Context, h *bench.Harness, b *Benchmark, m *measurements) error {
	m.fileStart = time.Now()
	var err error
	if m.duringFile, m.fileGrowth, err = e.loadPhase(ctx, h, b, e.fileFloodDef, "main.log"); err != nil {
		return fmt.Errorf("file flood: %w", err)
	}
	m.fileEnd = time.Now()
	h.Log.Info("file flood done", "took", m.fileEnd.Sub(m.fileStart).Round(time.Millisecond), "launches", len(m.duringFile),
		"MB/s", mb(m.fileGrowth.bytes, m.fileGrowth.took))
	return nil
}

// growth is how much a log file grew, in how long.
type growth struct {
	bytes int64
	took  time.Duration
}

// loadPhase runs a task of def (one that works until it is stopped),
// launches the small task one after another, b.launches times, and stops
// it. With a log file name it waits until the task's file grows before the
// first launch and returns how it grew.
func (e *env) loadPhase(ctx context.Context, h *bench.Harness, b *Benchmark, def, logFile string) ([]time.Duration, growth, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	arn, _, err := e.launch(ctx, def)
	if err != nil {
		return nil, growth{}, err
	}
	h.Cleanup(func() { _ = e.dev.StopTasks(context.Background(), cluster, []string{arn}) })
	path := ""
	var first time.Time
	var firstSize int64
	if logFile != "" {
		path = filepath.Join(e.dev.DataDir, "agent", "logs", taskID(arn), logFile)
		for first.IsZero() {
			if fi, err := os.Stat(path); err == nil && fi.Size() > 0 {
				first, firstSize = time.Now(), fi.Size()
				break
			}
			select {
			case <-ctx.Done():
				return nil, growth{}, fmt.Errorf("its log file does not grow: %w", ctx.Err())
			case <-time.After(time.Millisecond):
			}
		}
	}
	never := make(chan struct{})
	ds, _, err := e.launchUntil(ctx, never, b.launches)
	var g growth
	if path != "" {
		if fi, serr := os.Stat(path); serr == nil {
			g = growth{bytes: fi.Size() - firstSize, took: time.Since(first)}
		} else if err == nil {
			err = serr
		}
	}
	if err != nil {
		return nil, g, fmt.Errorf("launch: %w", err)
	}
	if err := e.dev.StopTasks(ctx, cluster, []string{arn}); err != nil {
		return nil, g, fmt.Errorf("stop: %w", err)
	}
	if path != "" {
		if err := os.Remove(path); err != nil {
			h.Log.Warn("remove the flood's log", "err", err)
		}
	}
	return ds, g, nil
}

// watchFile polls the size of the flood's log file until it holds want
// bytes, noting when it first grew and when it was complete.
func watchFile(ctx context.Context, path string, want int64, m *measurements) error {
	for {
		fi, err := os.Stat(path)
		now := time.Now()
		if err == nil && fi.Size() > 0 && m.firstWrite.IsZero() {
			m.firstWrite = now
		}
		if err == nil && fi.Size() >= want {
			m.lastWrite, m.fileBytes = now, fi.Size()
			return nil
		}
		select {
		case <-ctx.Done():
			if err != nil {
				return fmt.Errorf("flood log file: %w", err)
			}
			return fmt.Errorf("flood log file has %d of %d bytes: %w", fi.Size(), want, ctx.Err())
		case <-time.After(time.Millisecond):
		}
	}
}

// waitEnd polls the flood's stream's last event (GetLogEvents from the
// tail, one event) until it is the end line. It reads no more than that
// while the clock runs: reading all 200 MB back (and decoding it in this
// process) took more CPU than shipping it, and it is not what a flooding
// container makes others pay. verify reads every line afterwards.
func (e *env) waitEnd(ctx context.Context, stream string, m *measurements) error {
	for {
		out, err := e.cwl.GetLogEvents(ctx, &cloudwatchlogs.GetLogEventsInput{LogGroupName: aws.String(group),
			LogStreamName: aws.String(stream), StartFromHead: aws.Bool(false), Limit: aws.Int32(1)})
		now := time.Now()
		switch {
		case err != nil && ctx.Err() != nil:
			return fmt.Errorf("wait for the flood's end line: %w", err)
		case err == nil && len(out.Events) > 0 && aws.ToString(out.Events[len(out.Events)-1].Message) == endLine:
			m.ingestDone = now
			return nil
		}
		// The stream is made with the flood's first batch; until then an
		// error. Every 50 ms: the ingest takes seconds, and each call is
		// signed and served while the launches are measured.
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for the flood's end line: %w", ctx.Err())
		case <-time.After(endPoll):
		}
	}
}

// verify reads the flood's stream from its head through GetLogEvents,
// checking every line and that the end line comes last.
func (e *env) verify(ctx context.Context, stream string, lines int, m *measurements) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	var token *string
	n := 0
	for {
		out, err := e.cwl.GetLogEvents(ctx, &cloudwatchlogs.GetLogEventsInput{LogGroupName: aws.String(group),
			LogStreamName: aws.String(stream), StartFromHead: aws.Bool(true), Limit: aws.Int32(10000), NextToken: token})
		if err != nil {
			return fmt.Errorf("read back the flood: %d of %d lines: %w", n, lines, err)
		}
		for _, ev := range out.Events {
			msg := aws.ToString(ev.Message)
			m.readBytes += int64(len(msg) + 1)
			switch {
			case n < lines && msg == line:
				n++
			case n == lines && msg == endLine:
				return nil
			default:
				return fmt.Errorf("read back the flood: line %d is %q", n+1, msg)
			}
		}
		if len(out.Events) == 0 {
			return fmt.Errorf("read back the flood: %d of %d lines, then the stream ends", n, lines)
		}
		token = out.NextForwardToken
	}
}

// slowWatcher follows the slow logger's stream and times each line from
// the container's clock to its being read.
type slowWatcher struct {
	e      *env
	stream string
	boot   time.Time // wall clock at uptime 0
	mu     sync.Mutex
	lines  []slowLine
}

type slowLine struct{ written, read time.Time }

func newSlowWatcher(e *env, stream string) *slowWatcher {
	up, _ := uptime()
	return &slowWatcher{e: e, stream: stream, boot: time.Now().Add(-up)}
}

func (s *slowWatcher) run(ctx context.Context) {
	var token *string
	for ctx.Err() == nil {
		out, err := s.e.cwl.GetLogEvents(ctx, &cloudwatchlogs.GetLogEventsInput{LogGroupName: aws.String(group),
			LogStreamName: aws.String(s.stream), StartFromHead: aws.Bool(true), NextToken: token})
		now := time.Now()
		if err == nil {
			s.mu.Lock()
			for _, ev := range out.Events {
				f := strings.Fields(aws.ToString(ev.Message))
				if len(f) == 0 {
					continue
				}
				if secs, err := strconv.ParseFloat(f[0], 64); err == nil {
					s.lines = append(s.lines, slowLine{written: s.boot.Add(time.Duration(secs * float64(time.Second))), read: now})
				}
			}
			s.mu.Unlock()
			token = out.NextForwardToken
		}
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// delays are the delays of the lines written between from and to.
func (s *slowWatcher) delays(from, to time.Time) []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ds []time.Duration
	for _, l := range s.lines {
		if !l.written.Before(from) && l.written.Before(to) {
			ds = append(ds, l.read.Sub(l.written))
		}
	}
	return ds
}

// uptime is the host's /proc/uptime.
func uptime() (time.Duration, error) {
	b, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return 0, fmt.Errorf("uptime: %w", err)
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, errors.New("uptime: /proc/uptime is empty")
	}
	secs, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return 0, fmt.Errorf("uptime: %w", err)
	}
	return time.Duration(secs * float64(time.Second)), nil
}

// loadavg is /proc/loadavg's 1, 5 and 15 minute figures.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func taskID(arn string) string { return arn[strings.LastIndex(arn, "/")+1:] }
