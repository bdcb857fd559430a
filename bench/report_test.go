package bench

import (
	"context"
	"errors"
	"flag"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

type fakeBench struct{ name string }

func (f fakeBench) Name() string                                   { return f.name }
func (f fakeBench) Title() string                                  { return "Fake " + f.name }
func (f fakeBench) Flags(*flag.FlagSet)                            {}
func (f fakeBench) Run(context.Context, *Harness) (*Result, error) { return nil, nil }

func TestMarkdown(t *testing.T) {
	rep := Report{Date: time.Unix(0, 0), Machine: Machine{Cores: 2}, Outcomes: []Outcome{
		{Bench: fakeBench{"ok"}, Result: &Result{
			Figures: []Figure{{Name: "launch p50", Value: Seconds(250 * time.Millisecond),
				Anchor: &Anchor{Name: "floor", Value: Seconds(125 * time.Millisecond), Measured: true}, Target: "≤ 2 ×", Met: Met(true)}},
			Details: "details here", Reproduce: []string{"make bench"}}},
		{Bench: fakeBench{"bad"}, Err: errors.New("it broke | badly\nsecond line")},
	}}
	md := rep.Markdown()
	for _, want := range []string{
		"| launch p50 | 250.0 ms | floor: 125.0 ms (measured) | 2.00 × | ≤ 2 × | yes |",
		"| Fake bad | **failed**: it broke \\| badly | | | | |",
		"## Fake ok", "details here", "make bench", "**This benchmark failed**",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}

func TestValueString(t *testing.T) {
	for v, want := range map[Value]string{
		Seconds(1500 * time.Microsecond): "1.5 ms",
		Seconds(30 * time.Second):        "30.00 s",
		{Num: 512, Unit: "tasks/s"}:      "512 tasks/s",
	} {
		if got := v.String(); got != want {
			t.Errorf("%+v: %q, want %q", v, got, want)
		}
	}
}

const metricsText = `# HELP berth_agent_task_step_seconds Duration.
# TYPE berth_agent_task_step_seconds histogram
berth_agent_task_step_seconds_bucket{step="start",le="+Inf"} 2
berth_agent_task_step_seconds_sum{step="start"} 0.5
berth_agent_task_step_seconds_count{step="start"} 2
berth_agent_task_step_seconds_bucket{step="pull",le="+Inf"} 1
berth_agent_task_step_seconds_sum{step="pull"} 0.01
berth_agent_task_step_seconds_count{step="pull"} 1
# HELP berth_agent_task_received_timestamp_seconds When.
# TYPE berth_agent_task_received_timestamp_seconds gauge
berth_agent_task_received_timestamp_seconds 1.7e+09
# HELP process_cpu_seconds_total CPU.
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 3.25
`

func TestScrape(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(metricsText))
	}))
	defer srv.Close()
	m, err := Scrape(context.Background(), srv.Client(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if sum, n := m.Histogram("berth_agent_task_step_seconds", "step", "start"); sum != 500*time.Millisecond || n != 2 {
		t.Errorf("start: %v %d", sum, n)
	}
	if sum, n := m.Histogram("berth_agent_task_step_seconds", "step", "sandbox"); sum != 0 || n != 0 {
		t.Errorf("missing series: %v %d", sum, n)
	}
	if d, n := HistogramDelta(Metrics{}, m, "berth_agent_task_step_seconds", "step", "pull"); d != 10*time.Millisecond || n != 1 {
		t.Errorf("delta: %v %d", d, n)
	}
	if g := m.Gauge("berth_agent_task_received_timestamp_seconds"); g != 1.7e9 {
		t.Errorf("gauge %v", g)
	}
	if c := m.Counter("process_cpu_seconds_total"); c != 3.25 {
		t.Errorf("counter %v", c)
	}
}
