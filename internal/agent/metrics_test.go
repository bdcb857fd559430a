package agent

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/berthdev/berth/internal/agentapi"
)

// histogramCounts reads the sample count of every series of a histogram,
// keyed by its "step" label ("" for none).
func histogramCounts(t *testing.T, reg *prometheus.Registry, name string) map[string]uint64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]uint64{}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			out[stepLabel(m)] = m.GetHistogram().GetSampleCount()
		}
	}
	return out
}

func stepLabel(m *dto.Metric) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == "step" {
			return l.GetValue()
		}
	}
	return ""
}

func TestMetricsTimeALaunch(t *testing.T) {
	reg := prometheus.NewRegistry()
	srv := newFakeServer(spec(agentapi.ContainerSpec{Name: "app", Image: "img", Essential: true}))
	a := New(Config{Node: agentapi.RegisterRequest{NodeID: "n"}, DataDir: t.TempDir(), Server: srv, Runtime: newFakeRuntime(),
		Sandboxes: &fakeSandboxes{}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: NewMetrics(reg)})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = a.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	before := time.Now()
	srv.waitStatus(t, agentapi.StatusRunning)
	deadline := time.Now().Add(5 * time.Second)
	for histogramCounts(t, reg, "berth_agent_task_launch_seconds")[""] != 1 {
		if time.Now().After(deadline) {
			t.Fatal("no launch recorded after RUNNING")
		}
		time.Sleep(5 * time.Millisecond)
	}
	steps := histogramCounts(t, reg, "berth_agent_task_step_seconds")
	for _, step := range []string{"sandbox", "pull", "start"} {
		if steps[step] != 1 {
			t.Errorf("step %s recorded %d times, want 1 (%v)", step, steps[step], steps)
		}
	}
	if steps["report"] < 1 {
		t.Errorf("reports recorded %d times, want RUNNING's at least", steps["report"])
	}
	if steps["report_wait"] != 1 {
		t.Errorf("report waits recorded %d times, want 1 (RUNNING's) before any stop", steps["report_wait"])
	}
	fams, _ := reg.Gather()
	for _, f := range fams {
		if f.GetName() == "berth_agent_task_received_timestamp_seconds" {
			got := f.GetMetric()[0].GetGauge().GetValue()
			if got < float64(before.Add(-time.Minute).Unix()) || got > float64(time.Now().Unix()+1) {
				t.Errorf("received timestamp %v is not about now", got)
			}
		}
	}
}

// TestNilMetrics: an agent without metrics leaves its dependencies as given.
func TestNilMetrics(t *testing.T) {
	rt := newFakeRuntime()
	cfg := (*Metrics)(nil).instrument(Config{Runtime: rt})
	if cfg.Runtime != Runtime(rt) {
		t.Fatal("nil Metrics must not wrap the runtime")
	}
	(*Metrics)(nil).observeStep("start", time.Now())
	(*Metrics)(nil).taskReceived(time.Now())
	(*Metrics)(nil).taskLaunched(time.Now())
}
