package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/agentapi"
)

// fakeLogSink stores batches as the control plane does: a batch ending at
// or before the stream's offset is a retry and is not stored again.
type fakeLogSink struct {
	mu       sync.Mutex
	offset   int64
	events   []agentapi.LogEvent
	fail     int           // fail this many calls first
	lostAcks int           // then store but "lose the reply" this many times
	gate     chan struct{} // if set, calls wait for it to close
	refuse   bool          // refuse batches with events for good (403)
	calls    int
}

func (f *fakeLogSink) PutLogs(ctx context.Context, r agentapi.LogsRequest) (agentapi.LogsResponse, error) {
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return agentapi.LogsResponse{}, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.fail > 0 {
		f.fail--
		return agentapi.LogsResponse{}, errors.New("POST /_berth/agent/v1/logs: connection refused")
	}
	if len(r.Events) == 0 && r.End == 0 {
		return agentapi.LogsResponse{Offset: f.offset}, nil
	}
	if f.refuse {
		return agentapi.LogsResponse{}, fmt.Errorf("POST /_berth/agent/v1/logs: 403 Forbidden: %w: task not on node", agentapi.ErrLogsRefused)
	}
	if r.End > f.offset {
		f.events = append(f.events, r.Events...)
		f.offset = r.End
	}
	if f.lostAcks > 0 && len(r.Events) > 0 {
		f.lostAcks--
		return agentapi.LogsResponse{}, errors.New("read reply: connection reset")
	}
	return agentapi.LogsResponse{Offset: r.End}, nil
}

func (f *fakeLogSink) messages() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, e := range f.events {
		out = append(out, e.Message)
	}
	return out
}

func startShipper(t *testing.T, cfg shipConfig, sink logSink, path string) (*shipper, context.CancelFunc) {
	t.Helper()
	sh := &shipper{cfg: cfg, sink: sink, path: path, log: slog.New(slog.DiscardHandler),
		exited: make(chan struct{}), done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	go sh.run(ctx)
	t.Cleanup(func() { cancel(); <-sh.done })
	return sh, cancel
}

func (s *shipper) finishAndWait(t *testing.T) {
	t.Helper()
	s.exitOnce.Do(func() { close(s.exited) })
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		t.Fatal("shipper did not finish")
	}
}

func appendLines(t *testing.T, path string, from, to int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b strings.Builder
	for i := from; i <= to; i++ {
		fmt.Fprintf(&b, "%d\n", i)
	}
	if _, err := f.WriteString(b.String()); err != nil {
		t.Fatal(err)
	}
}

func checkSequence(t *testing.T, got []string, from, to int) {
	t.Helper()
	if len(got) != to-from+1 {
		t.Fatalf("%d events, want %d", len(got), to-from+1)
	}
	for i, m := range got {
		if m != strconv.Itoa(from+i) {
			t.Fatalf("event %d is %q, want %d", i, m, from+i)
		}
	}
}

// A batch the control plane refuses for good (403: the task is not this
// node's, or stopped too long ago) is not retried: the shipper stops.
func TestShipperStopsWhenRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.log")
	appendLines(t, path, 1, 100)
	sink := &fakeLogSink{refuse: true}
	sh, _ := startShipper(t, shipConfig{blocking: true}, sink, path)
	select {
	case <-sh.done:
	case <-time.After(10 * time.Second):
		t.Fatal("shipper still retrying a refused batch")
	}
	sink.mu.Lock()
	calls := sink.calls
	sink.mu.Unlock()
	if calls != 2 || sh.dropped != 100 { // the stream check, one batch
		t.Fatalf("%d calls, %d dropped; want 2 calls, 100 dropped", calls, sh.dropped)
	}
}

func TestShipperBlockingLosesNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.log")
	sink := &fakeLogSink{fail: 3, lostAcks: 2}
	sh, _ := startShipper(t, shipConfig{blocking: true}, sink, path)
	appendLines(t, path, 1, 20000)
	time.Sleep(300 * time.Millisecond)
	appendLines(t, path, 20001, 50000)
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o644)
	_, _ = f.WriteString("50001") // no newline: the container exited mid-line
	f.Close()
	sh.finishAndWait(t)
	checkSequence(t, sink.messages(), 1, 50001)
	for _, e := range sink.events {
		if e.Timestamp == 0 {
			t.Fatal("event without a timestamp")
		}
	}
}

func TestShipperResumesWhereTheStreamEnds(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.log")
	sink := &fakeLogSink{}
	appendLines(t, path, 1, 1000)
	sh, cancel := startShipper(t, shipConfig{blocking: true}, sink, path)
	waitUntil(t, 10*time.Second, func() bool { return len(sink.messages()) == 1000 })
	cancel() // the agent stops
	<-sh.done
	appendLines(t, path, 1001, 2000)
	sh2, _ := startShipper(t, shipConfig{blocking: true}, sink, path) // and starts again
	sh2.finishAndWait(t)
	checkSequence(t, sink.messages(), 1, 2000)
}

func TestShipperNonBlockingDropsBeyondBuffer(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.log")
	gate := make(chan struct{})
	sink := &fakeLogSink{gate: gate}
	sh, _ := startShipper(t, shipConfig{blocking: false, maxBuffer: 64 << 10}, sink, path)
	appendLines(t, path, 1, 200000) // ~1.2 MB while the control plane does not answer
	close(gate)
	sh.finishAndWait(t)
	got := sink.messages()
	if sh.dropped == 0 || len(got) == 0 || int(sh.dropped)+len(got) != 200000 {
		t.Fatalf("shipped %d, dropped %d of 200000", len(got), sh.dropped)
	}
	last, _ := strconv.Atoi(got[len(got)-1])
	first, _ := strconv.Atoi(got[0])
	checkSequence(t, got, first, last) // what is kept is whole and in order
	if last != 200000 {
		t.Fatalf("last shipped line %d", last)
	}
}

func TestShipperMultiline(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.log")
	sink := &fakeLogSink{}
	cfg := shipConfig{blocking: true, multiline: regexp.MustCompile("^" + strftimeRegexp("%Y-%m-%d %H:%M:%S"))}
	sh, _ := startShipper(t, cfg, sink, path)
	text := "preamble\n2026-11-26 02:04:44 panic: boom\n\tat a()\n\tat b()\n2026-11-26 02:04:45 recovered\n"
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	// The last event waits for more lines, then goes after a quiet second.
	waitUntil(t, 5*time.Second, func() bool { return len(sink.messages()) == 3 })
	sh.finishAndWait(t)
	want := []string{"preamble", "2026-11-26 02:04:44 panic: boom\n\tat a()\n\tat b()", "2026-11-26 02:04:45 recovered"}
	if got := sink.messages(); fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
		t.Fatalf("events %q, want %q", got, want)
	}
}

func TestParseShipConfig(t *testing.T) {
	spec := agentapi.TaskSpec{TaskArn: "arn:t", TaskID: "abc", Account: "000000000000", Region: "us-east-1"}
	tests := []struct {
		opts map[string]string
		err  string
		want func(shipConfig) bool
	}{
		{opts: map[string]string{"awslogs-group": "g", "awslogs-stream-prefix": "p"},
			want: func(c shipConfig) bool {
				return c.blocking && c.req.Stream == "p/web/abc" && c.req.Region == "us-east-1" && !c.req.CreateGroup
			}},
		{opts: map[string]string{"awslogs-group": "g", "awslogs-region": "eu-west-1", "awslogs-create-group": "true"},
			want: func(c shipConfig) bool {
				return c.req.Region == "eu-west-1" && c.req.CreateGroup && c.req.Stream == "web/abc"
			}},
		{opts: map[string]string{"awslogs-group": "g", "mode": "non-blocking", "max-buffer-size": "25m"},
			want: func(c shipConfig) bool { return !c.blocking && c.maxBuffer == 25<<20 }},
		{opts: map[string]string{"awslogs-group": "g", "mode": "non-blocking"},
			want: func(c shipConfig) bool { return c.maxBuffer == defaultMaxBuffer }},
		{opts: map[string]string{"awslogs-group": "g", "awslogs-multiline-pattern": "^INFO"},
			want: func(c shipConfig) bool { return c.multiline.MatchString("INFO x") && !c.multiline.MatchString(" INFO") }},
		{opts: map[string]string{}, err: "must specify a value for log opt 'awslogs-group'"},
		{opts: map[string]string{"awslogs-group": "g", "mode": "fast"}, err: "logger mode fast is not supported"},
		{opts: map[string]string{"awslogs-group": "g", "max-buffer-size": "1m"}, err: "requires mode non-blocking"},
		{opts: map[string]string{"awslogs-group": "g", "mode": "non-blocking", "max-buffer-size": "lots"}, err: "max-buffer-size"},
		{opts: map[string]string{"awslogs-group": "g", "awslogs-create-group": "yes"}, err: "awslogs-create-group"},
		{opts: map[string]string{"awslogs-group": "g", "awslogs-datetime-format": "%Y", "awslogs-multiline-pattern": "x"}, err: "at the same time"},
		{opts: map[string]string{"awslogs-group": "g", "awslogs-multiline-pattern": "("}, err: "multiline pattern"},
	}
	for i, tt := range tests {
		cs := agentapi.ContainerSpec{Name: "web", LogConfiguration: &agentapi.LogConfiguration{LogDriver: "awslogs", Options: tt.opts}}
		c, err := parseShipConfig(spec, cs, "node")
		if tt.err != "" {
			var ie *resourceInitError
			if !errors.As(err, &ie) || !strings.Contains(err.Error(), tt.err) ||
				!strings.HasPrefix(err.Error(), "ResourceInitializationError: failed to validate logger args: ") {
				t.Errorf("%d: err %v, want %q", i, err, tt.err)
			}
			continue
		}
		if err != nil || !tt.want(c) {
			t.Errorf("%d: %+v, %v", i, c, err)
		}
	}
}

func waitUntil(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
