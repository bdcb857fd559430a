package scale

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/agent/sim"
)

// TestScheduleAtScale is the CI-sized scale run as a correctness test, not a
// timing test: 1,000 simulated hosts in 3 zones, 20,000 Fargate tasks of
// mixed sizes launched by 32 SDK clients, every one reported RUNNING; then
// every task is placed exactly once, no host is over its CPU or memory, and
// the zones are within one task of each other. It needs no root.
func TestScheduleAtScale(t *testing.T) {
	hosts, tasks := 1000, 20000
	if testing.Short() {
		hosts, tasks = 100, 2000
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	logger := quiet
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	cp, err := StartControlPlane(ctx, ControlPlaneConfig{DataDir: t.TempDir(), Logger: quiet, NodeTTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cp.Close)
	out, err := Run(ctx, cp, Spec{Hosts: hosts, Tasks: tasks, Clients: 32, Logger: logger,
		Fleet: sim.Config{Timing: sim.DefaultTiming(), PollWait: 10 * time.Second, Workers: 128}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Launched) != tasks {
		t.Fatalf("%d tasks launched, want %d", len(out.Launched), tasks)
	}
	if err := Check(out); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d hosts, %d tasks: registered in %v, submitted in %v, assigned in %v, running in %v (%d reports, %d retried)",
		hosts, tasks, out.Registered, out.Submitted, out.Assigned, out.Running, out.Stats.Reports, out.Stats.Retries)
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
