package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/berthdev/berth/internal/agentapi"
)

// The awslogs log driver. A container's stdout and stderr always go to its
// log file first (the log driver process appends them, whatever the agent
// does: see runtime/logdriver); for a container whose logConfiguration names
// awslogs, a shipper goroutine tails that file and sends its lines in
// batches to the control plane's logs store (agentapi.PathLogs).
//
// The file is the buffer between the container and the network, so a
// container never waits for the agent or the control plane, and a busy
// container slows no one else: each shipper reads only its own file and
// sends batches of at most 10,000 events or 1 MiB.
//
//   - mode blocking (the default) never drops a line: the shipper retries a
//     batch until the control plane stores it; the backlog waits on disk.
//   - mode non-blocking bounds the backlog by max-buffer-size (default 1m):
//     lines further behind than that are dropped, counted, and logged.
//
// Batches carry where they end in the file; the control plane keeps the end
// of the last batch it stored for each stream and a retried batch is not
// stored twice, so a shipper that restarts (with the agent) resumes where
// the stream ends. Events are stamped with the time the shipper reads them.

// logSink is what shippers need of the control plane (agentapi.Client has it).
type logSink interface {
	PutLogs(ctx context.Context, r agentapi.LogsRequest) (agentapi.LogsResponse, error)
}

const (
	shipPoll          = 200 * time.Millisecond
	shipReadSize      = 256 << 10
	shipBatchEvents   = 10000
	shipBatchBytes    = 1 << 20 // of messages, counting 26 bytes of overhead each
	shipMaxEvent      = 256<<10 - 26
	multilineFlush    = time.Second // a pending multi-line event is sent after this much quiet
	defaultMaxBuffer  = 1 << 20
	shipFinishTimeout = 15 * time.Second // how long deprovision waits for a shipper to drain
)

// shipMetrics count what the shippers do:
//
//	berth_agent_awslogs_events_total          events the control plane stored
//	berth_agent_awslogs_dropped_events_total  events dropped (non-blocking mode
//	                                          beyond max-buffer-size, or a group gone)
//	berth_agent_awslogs_backlog_bytes         output written but not yet shipped,
//	                                          summed over the host's containers
type shipMetrics struct {
	events, dropped prometheus.Counter
	backlog         prometheus.Gauge
}

func newShipMetrics(reg prometheus.Registerer) *shipMetrics {
	m := &shipMetrics{
		events: prometheus.NewCounter(prometheus.CounterOpts{Name: "berth_agent_awslogs_events_total",
			Help: "Log events of awslogs containers stored by the control plane."}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "berth_agent_awslogs_dropped_events_total",
			Help: "Log events of awslogs containers dropped (non-blocking mode, or a log group that is gone)."}),
		backlog: prometheus.NewGauge(prometheus.GaugeOpts{Name: "berth_agent_awslogs_backlog_bytes",
			Help: "Container output written but not yet shipped, over all awslogs containers of the host."}),
	}
	reg.MustRegister(m.events, m.dropped, m.backlog)
	return m
}

func (m *shipMetrics) shipped(n int) {
	if m != nil {
		m.events.Add(float64(n))
	}
}

func (m *shipMetrics) drop(n int64) {
	if m != nil && n > 0 {
		m.dropped.Add(float64(n))
	}
}

func (m *shipMetrics) behind(delta int64) {
	if m != nil && delta != 0 {
		m.backlog.Add(float64(delta))
	}
}

// behindWarning is how far a shipper may fall behind its container before
// it says so (then again every behindEvery).
const (
	behindWarning = 64 << 20
	behindEvery   = time.Minute
)

// resourceInitError is a container that cannot start because its task's
// resources are not right; its message is the stop reason as is.
type resourceInitError struct{ msg string }

func (e *resourceInitError) Error() string { return e.msg }

func loggerArgsError(format string, args ...any) error {
	return &resourceInitError{msg: "ResourceInitializationError: failed to validate logger args: " + fmt.Sprintf(format, args...)}
}

// logShippers owns the agent's shippers: they run under the agent's
// context, outlive the task goroutine that started them until their
// container's output is drained, and are waited for when the agent stops.
type logShippers struct {
	a    *Agent
	sink logSink // nil: the control plane takes no logs
	mu   sync.Mutex
	ctx  context.Context
	run  map[string]*shipper // by containerd id
	wg   sync.WaitGroup
	// launches: shippers give way to task launches (launchgate.go).
	launches launchGate
}

func newLogShippers(a *Agent, sink logSink) *logShippers {
	return &logShippers{a: a, sink: sink, ctx: context.Background(), run: map[string]*shipper{}}
}

// setContext gives the shippers the agent's context; call before any task runs.
func (l *logShippers) setContext(ctx context.Context) {
	l.mu.Lock()
	l.ctx = ctx
	l.mu.Unlock()
}

// wait waits for every shipper to return (they return when the agent's
// context ends).
func (l *logShippers) wait() { l.wg.Wait() }

func usesAWSLogs(cs agentapi.ContainerSpec) bool {
	return cs.LogConfiguration != nil && cs.LogConfiguration.LogDriver == agentapi.LogDriverAWSLogs
}

// shipConfig is a container's awslogs options, checked.
type shipConfig struct {
	req       agentapi.LogsRequest // the batch template: where events go
	blocking  bool
	maxBuffer int64
	multiline *regexp.Regexp
}

func parseShipConfig(spec agentapi.TaskSpec, cs agentapi.ContainerSpec, node string) (shipConfig, error) {
	o := cs.LogConfiguration.Options
	c := shipConfig{blocking: true, maxBuffer: defaultMaxBuffer}
	c.req = agentapi.LogsRequest{NodeID: node, TaskArn: spec.TaskArn, Account: spec.Account,
		Region: spec.Region, Group: o[agentapi.AWSLogsGroup],
		Stream: agentapi.AWSLogsStream(o[agentapi.AWSLogsStreamPrefix], cs.Name, spec.TaskID)}
	if r := o[agentapi.AWSLogsRegion]; r != "" {
		c.req.Region = r
	}
	if c.req.Group == "" {
		return c, loggerArgsError("must specify a value for log opt '%s'", agentapi.AWSLogsGroup)
	}
	switch v := o[agentapi.AWSLogsCreateGroup]; v {
	case "", "false":
	case "true":
		c.req.CreateGroup = true
	default:
		return c, loggerArgsError("invalid value for log opt '%s': %q (true or false)", agentapi.AWSLogsCreateGroup, v)
	}
	switch m := o[agentapi.LogsMode]; m {
	case "", "blocking":
	case "non-blocking":
		c.blocking = false
	default:
		return c, loggerArgsError("logger: logger mode %s is not supported (blocking or non-blocking)", m)
	}
	if s := o[agentapi.LogsMaxBufferSize]; s != "" {
		n, err := parseSize(s)
		if err != nil || n <= 0 {
			return c, loggerArgsError("invalid value for log opt '%s': %q", agentapi.LogsMaxBufferSize, s)
		}
		if c.blocking {
			return c, loggerArgsError("log opt '%s' requires mode non-blocking", agentapi.LogsMaxBufferSize)
		}
		c.maxBuffer = n
	}
	df, mp := o[agentapi.AWSLogsDatetimeFormat], o[agentapi.AWSLogsMultilinePattern]
	var err error
	switch {
	case df != "" && mp != "":
		return c, loggerArgsError("you cannot configure log opt '%s' and '%s' at the same time",
			agentapi.AWSLogsDatetimeFormat, agentapi.AWSLogsMultilinePattern)
	case df != "":
		c.multiline, err = regexp.Compile("^" + strftimeRegexp(df))
	case mp != "":
		c.multiline, err = regexp.Compile(mp)
	}
	if err != nil {
		return c, loggerArgsError("multiline pattern: %v", err)
	}
	return c, nil
}

// parseSize reads sizes the way Docker's log options write them: bytes, or
// a number with k, m or g (powers of 1024; an optional trailing b or ib).
func parseSize(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "b"), "i")
	mult := int64(1)
	switch {
	case strings.HasSuffix(t, "k"):
		mult, t = 1<<10, t[:len(t)-1]
	case strings.HasSuffix(t, "m"):
		mult, t = 1<<20, t[:len(t)-1]
	case strings.HasSuffix(t, "g"):
		mult, t = 1<<30, t[:len(t)-1]
	}
	n, err := strconv.ParseFloat(t, 64)
	if err != nil {
		return 0, err
	}
	return int64(n * float64(mult)), nil
}

// strftime directives awslogs-datetime-format accepts, as regular
// expressions (Docker's awslogs driver's table).
var strftime = map[byte]string{
	'a': `(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)`,
	'A': `(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)`,
	'b': `(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)`,
	'B': `(?:January|February|March|April|May|June|July|August|September|October|November|December)`,
	'd': `(?:0[1-9]|[1,2][0-9]|3[0,1])`,
	'f': `(?:\d{6})`,
	'H': `(?:[0,1][0-9]|2[0-3])`,
	'I': `(?:0[0-9]|1[0-2])`,
	'j': `(?:0[0-9][1-9]|[1,2][0-9][0-9]|3[0-5][0-9]|36[0-6])`,
	'L': `(?:\d{3})`,
	'm': `(?:0[1-9]|1[0-2])`,
	'M': `(?:[0-5][0-9])`,
	'p': `[A,P]M`,
	'S': `(?:[0-5][0-9])`,
	'w': `[0-6]`,
	'y': `(?:\d{2})`,
	'Y': `(?:\d{4})`,
	'z': `(?:[+-]\d{4})`,
	'Z': `(?:[A-Za-z]+)`,
	'%': `%`,
}

func strftimeRegexp(f string) string {
	var b strings.Builder
	for i := 0; i < len(f); i++ {
		if f[i] == '%' && i+1 < len(f) {
			if re, ok := strftime[f[i+1]]; ok {
				b.WriteString(re)
				i++
				continue
			}
		}
		b.WriteString(regexp.QuoteMeta(f[i : i+1]))
	}
	return b.String()
}

// prepare checks a container's awslogs options and makes sure its stream
// exists (creating the group if it may) before the container starts.
func (l *logShippers) prepare(ctx context.Context, spec agentapi.TaskSpec, cs agentapi.ContainerSpec) error {
	cfg, err := parseShipConfig(spec, cs, l.a.cfg.Node.NodeID)
	if err != nil {
		return err
	}
	if l.sink == nil {
		return loggerArgsError("this agent's control plane does not take logs")
	}
	_, err = l.sink.PutLogs(ctx, cfg.req)
	if err != nil && strings.Contains(err.Error(), agentapi.LogsErrorGroupNotFound) {
		return loggerArgsError("create stream has been retried 1 times: failed to create Cloudwatch log stream: %s", agentapi.LogsErrorGroupNotFound)
	}
	if err != nil {
		return loggerArgsError("failed to create Cloudwatch log stream: %v", err)
	}
	return nil
}

// start begins shipping a container's output, unless it is shipped
// already. Options were checked by prepare; a container adopted after a
// restart is shipped with whatever it was started with.
func (l *logShippers) start(spec agentapi.TaskSpec, cs agentapi.ContainerSpec, id, path string) {
	cfg, err := parseShipConfig(spec, cs, l.a.cfg.Node.NodeID)
	if err != nil || l.sink == nil {
		l.a.log.Warn("awslogs: not shipping", "task", spec.TaskID, "container", cs.Name, "err", err)
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, running := l.run[id]; running {
		return
	}
	var m *shipMetrics
	if l.a.cfg.Metrics != nil {
		m = l.a.cfg.Metrics.logs
	}
	sh := &shipper{cfg: cfg, sink: l.sink, path: path, metrics: m, exited: make(chan struct{}), done: make(chan struct{}), gate: &l.launches,
		log: l.a.log.With("task", spec.TaskID, "container", cs.Name, "group", cfg.req.Group, "stream", cfg.req.Stream)}
	l.run[id] = sh
	ctx := l.ctx
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		sh.run(ctx)
		l.mu.Lock()
		delete(l.run, id)
		l.mu.Unlock()
	}()
}

// finish tells the shipper of a container that has exited (and whose log
// driver is gone) to send the rest of its output and stop, and waits up to
// timeout for it; a shipper still busy then goes on in the background.
func (l *logShippers) finish(id string, timeout time.Duration) {
	l.mu.Lock()
	sh := l.run[id]
	l.mu.Unlock()
	if sh == nil {
		return
	}
	sh.exitOnce.Do(func() { close(sh.exited) })
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-sh.done:
	case <-t.C:
		sh.log.Warn("awslogs: output not shipped yet; shipping goes on in the background")
	}
}

// shipper tails one container's log file into its stream.
type shipper struct {
	cfg      shipConfig
	sink     logSink
	path     string
	log      *slog.Logger
	exited   chan struct{}
	exitOnce sync.Once
	done     chan struct{}
	gate     *launchGate // nil: never gives way

	off   int64  // next byte of the file to read
	carry []byte // a line read in part
	// The batch: its messages back to back in text, each event's end in
	// text and timestamp in batch. Messages become strings once a batch,
	// one string sliced up, rather than one allocation a line.
	text   []byte
	batch  []batchEvent
	events []agentapi.LogEvent // the request's, reused
	size   int                 // bytes the batch counts against shipBatchBytes
	end    int64               // where the batch ends in the file
	acked  int64               // where the last batch the control plane took ends
	// dropUntil: lines ending at or before it are dropped (non-blocking).
	dropUntil int64
	lastTS    int64
	pending   *pendingEvent // multi-line event being gathered

	dropped, droppedBytes int64
	metrics               *shipMetrics
	backlog               int64 // last reported to metrics
	warned                time.Time
}

// track reports how far behind the file's end the shipper is.
func (s *shipper) track(f *os.File) {
	fi, err := f.Stat()
	if err != nil {
		return
	}
	behind := max(fi.Size()-s.acked, 0)
	s.metrics.behind(behind - s.backlog)
	s.backlog = behind
	if behind > behindWarning && time.Since(s.warned) > behindEvery {
		s.warned = time.Now()
		s.log.Warn("awslogs: shipping is behind the container's output", "bytes_behind", behind)
	}
}

// batchEvent is an event of the batch being gathered.
type batchEvent struct {
	ts  int64
	end int // of its message in shipper.text
}

type pendingEvent struct {
	msg  []byte
	ts   int64
	end  int64
	seen time.Time
}

func (s *shipper) run(ctx context.Context) {
	defer close(s.done)
	defer func() { s.metrics.behind(-s.backlog) }()
	resp, err := s.send(ctx, s.cfg.req) // where the stream ends: resume there
	if err != nil {
		return
	}
	s.off, s.end, s.acked = resp.Offset, resp.Offset, resp.Offset
	var f *os.File
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	buf := make([]byte, shipReadSize)
	for ctx.Err() == nil {
		exited := isClosed(s.exited)
		if f == nil {
			if f, err = os.Open(s.path); err != nil {
				f = nil
				if exited {
					return // nothing was ever written
				}
				if !sleepOr(ctx, s.exited, shipPoll) && ctx.Err() != nil {
					return
				}
				continue
			}
		}
		if !s.cfg.blocking {
			s.bound(f)
		}
		s.track(f)
		n, err := f.ReadAt(buf, s.off)
		if err != nil && !errors.Is(err, io.EOF) {
			s.log.Warn("awslogs: read output", "err", err)
		}
		if n > 0 {
			s.consume(buf[:n])
			if !s.flushFull(ctx) {
				return
			}
			continue
		}
		// Caught up with the file.
		if exited {
			s.finishLines()
		} else if p := s.pending; p != nil && time.Since(p.seen) >= multilineFlush {
			s.emitPending()
		}
		if len(s.batch) > 0 || s.end > s.acked {
			if !s.flush(ctx) {
				return
			}
		}
		if exited {
			if s.dropped > 0 {
				s.log.Warn("awslogs: dropped output (non-blocking mode)", "events", s.dropped, "bytes", s.droppedBytes)
			}
			return
		}
		sleepOr(ctx, s.exited, shipPoll)
	}
}

// bound drops what lies further behind the end of the file than
// max-buffer-size (non-blocking mode).
func (s *shipper) bound(f *os.File) {
	fi, err := f.Stat()
	if err != nil || fi.Size()-s.off <= s.cfg.maxBuffer {
		return
	}
	s.dropUntil = fi.Size() - s.cfg.maxBuffer
	if time.Since(s.warned) > behindEvery {
		s.warned = time.Now()
		s.log.Warn("awslogs: dropping output beyond max-buffer-size (non-blocking mode)",
			"max_buffer_size", s.cfg.maxBuffer, "dropped_events_so_far", s.dropped)
	}
}

// consume splits data (the file from s.off on) into lines and events.
func (s *shipper) consume(data []byte) {
	start := s.off - int64(len(s.carry))
	s.off += int64(len(data))
	if len(s.carry) > 0 {
		data = append(s.carry, data...)
		s.carry = nil
	}
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			if len(data) >= shipMaxEvent { // a line too long for one event
				i = shipMaxEvent - 1
			} else {
				s.carry = append([]byte(nil), data...)
				return
			}
		}
		line := data[:i+1]
		data = data[i+1:]
		start += int64(len(line))
		s.line(bytes.TrimSuffix(line, []byte("\n")), start)
	}
}

// line takes one line of output ending at end in the file.
func (s *shipper) line(l []byte, end int64) {
	if end <= s.dropUntil {
		s.dropped++
		s.metrics.drop(1)
		s.droppedBytes += int64(len(l)) + 1
		s.end = max(s.end, end)
		return
	}
	now := time.Now()
	if s.cfg.multiline == nil {
		if len(l) > 0 {
			s.add(l, s.stamp(now), end)
		} else {
			s.end = max(s.end, end)
		}
		return
	}
	if p := s.pending; p != nil && !s.cfg.multiline.Match(l) && len(p.msg)+1+len(l) <= shipMaxEvent {
		p.msg = append(append(p.msg, '\n'), l...)
		p.end, p.seen = end, now
		return
	}
	s.emitPending()
	s.pending = &pendingEvent{msg: append([]byte(nil), l...), ts: s.stamp(now), end: end, seen: now}
}

// stamp is the event time: now, never before the previous event's.
func (s *shipper) stamp(now time.Time) int64 {
	s.lastTS = max(s.lastTS, now.UnixMilli())
	return s.lastTS
}

func (s *shipper) emitPending() {
	if p := s.pending; p != nil {
		s.pending = nil
		if len(p.msg) > 0 {
			s.add(p.msg, p.ts, p.end)
		} else {
			s.end = max(s.end, p.end)
		}
	}
}

// finishLines turns what is left (a line without its newline, a pending
// multi-line event) into events: the container is gone.
func (s *shipper) finishLines() {
	if len(s.carry) > 0 {
		c := s.carry
		s.carry = nil
		s.line(c, s.off)
	}
	s.emitPending()
}

func (s *shipper) add(msg []byte, ts, end int64) {
	s.text = append(s.text, msg...)
	s.batch = append(s.batch, batchEvent{ts: ts, end: len(s.text)})
	s.size += len(msg) + 26
	s.end = max(s.end, end)
}

// flushFull sends the batch if it is full; false if shipping must stop
// (see flush).
func (s *shipper) flushFull(ctx context.Context) bool {
	if len(s.batch) >= shipBatchEvents || s.size >= shipBatchBytes-shipMaxEvent-26 {
		return s.flush(ctx)
	}
	return true
}

// flush sends the batch (retrying as the mode says); false if the agent is
// stopping or the control plane refuses the task's output.
func (s *shipper) flush(ctx context.Context) bool {
	s.gate.wait(ctx, shipYield)
	req := s.cfg.req
	text, start := string(s.text), 0
	s.events = s.events[:0]
	for _, e := range s.batch {
		s.events = append(s.events, agentapi.LogEvent{Timestamp: e.ts, Message: text[start:e.end]})
		start = e.end
	}
	req.Events, req.End = s.events, s.end
	if _, err := s.send(ctx, req); err != nil {
		return false
	}
	s.acked = s.end
	s.metrics.shipped(len(s.batch))
	s.text, s.batch, s.size = s.text[:0], s.batch[:0], 0
	return true
}

// send delivers one request, retrying until it is taken or the agent stops.
// A group that is gone (and may not be created) drops the batch: retrying
// cannot help.
func (s *shipper) send(ctx context.Context, req agentapi.LogsRequest) (agentapi.LogsResponse, error) {
	for attempt := 0; ; attempt++ {
		resp, err := s.sink.PutLogs(ctx, req)
		if err == nil {
			return resp, nil
		}
		if ctx.Err() != nil {
			return resp, ctx.Err()
		}
		if strings.Contains(err.Error(), agentapi.LogsErrorGroupNotFound) {
			s.dropped += int64(len(req.Events))
			s.metrics.drop(int64(len(req.Events)))
			s.log.Warn("awslogs: log group is gone; dropping a batch", "events", len(req.Events))
			return agentapi.LogsResponse{Offset: req.End}, nil
		}
		if errors.Is(err, agentapi.ErrLogsRefused) {
			// The control plane will never take this task's output (it
			// stopped too long ago, or it is not this node's): stop.
			s.dropped += int64(len(req.Events))
			s.metrics.drop(int64(len(req.Events)))
			s.log.Error("awslogs: the control plane refuses this task's output; shipping stops", "err", err,
				"dropped_events", len(req.Events))
			return resp, err
		}
		if attempt%10 == 0 {
			s.log.Warn("awslogs: ship output", "err", err, "attempt", attempt+1)
		}
		if !sleep(ctx, min(time.Duration(attempt+1)*200*time.Millisecond, 5*time.Second)) {
			return resp, ctx.Err()
		}
	}
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// sleepOr waits d, or until c is closed or ctx ends; false if ctx ended.
func sleepOr(ctx context.Context, c <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-c:
	case <-t.C:
	}
	return true
}
