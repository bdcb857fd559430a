package agent

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"
)

func TestLaunchGate(t *testing.T) {
	var g launchGate
	ctx := context.Background()
	took := func() time.Duration {
		start := time.Now()
		g.wait(ctx, 300*time.Millisecond)
		return time.Since(start)
	}
	if d := took(); d > 50*time.Millisecond {
		t.Fatalf("no launch: waited %v", d)
	}
	done1, done2 := g.start(), g.start()
	if d := took(); d < 250*time.Millisecond {
		t.Fatalf("during launches: waited %v, want the whole 300ms", d)
	}
	done1()
	done1() // idempotent: does not end the other launch
	if d := took(); d < 250*time.Millisecond {
		t.Fatalf("one launch left: waited %v, want the whole 300ms", d)
	}
	go func() { time.Sleep(50 * time.Millisecond); done2() }()
	if d := took(); d > 250*time.Millisecond {
		t.Fatalf("the last launch ended after 50ms: waited %v", d)
	}
	if d := took(); d > 50*time.Millisecond {
		t.Fatalf("after the launches: waited %v", d)
	}
	var none *launchGate
	none.wait(ctx, time.Second) // a shipper without a gate never waits
}

// A shipper holds a batch back while a task is launched, for at most
// shipYield: it ships under launches that never end, too.
func TestShipperGivesWayToLaunches(t *testing.T) {
	for _, ends := range []bool{true, false} {
		path := filepath.Join(t.TempDir(), "c.log")
		appendLines(t, path, 1, 10)
		var g launchGate
		launched := g.start()
		sink := &fakeLogSink{}
		sh := &shipper{cfg: shipConfig{blocking: true}, sink: sink, path: path, gate: &g, log: slog.New(slog.DiscardHandler),
			exited: make(chan struct{}), done: make(chan struct{})}
		ctx, cancel := context.WithCancel(context.Background())
		go sh.run(ctx)
		start := time.Now()
		time.Sleep(100 * time.Millisecond)
		if got := len(sink.messages()); got != 0 && time.Since(start) < shipYield {
			t.Fatalf("%d events shipped during a launch", got)
		}
		if ends {
			launched()
		}
		for deadline := time.Now().Add(5 * time.Second); len(sink.messages()) < 10; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("launch ends %v: %d events shipped after 5s", ends, len(sink.messages()))
			}
		}
		checkSequence(t, sink.messages(), 1, 10)
		cancel()
		<-sh.done
		launched()
	}
}
