package agent

import (
	"context"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/runtime"
)

// Metrics are the agent's Prometheus metrics: how long each step of a task
// takes on this host, and how long a launch takes from the moment the agent
// receives a task until the control plane has accepted its RUNNING report.
// A nil *Metrics records nothing.
//
//	berth_agent_task_step_seconds{step}             histogram; step is one of
//	    sandbox          create the network namespace and task cgroup
//	    pull             make sure an image is present (pull if it is not)
//	    start            create and start one container
//	    report           one state report accepted by the control plane
//	    report_wait      the task waiting until its reports are accepted
//	                     (from RUNNING on; a launch's earlier reports are
//	                     sent while it goes on, agent/reports.go)
//	    stop             stop one container (signal, grace, kill)
//	    delete           delete one container and its snapshot
//	    sandbox_delete   remove the network namespace and task cgroup
//	berth_agent_task_launch_seconds                 histogram
//	berth_agent_task_received_timestamp_seconds     gauge, Unix time the agent
//	                                                last received a task
//	berth_agent_awslogs_*                           awslogs shipping (logship.go)
//	berth_agent_task_cpu_seconds_total{task_id,cluster,family}  CPU time of a task's cgroup
//	berth_agent_task_memory_bytes{task_id,cluster,family}       memory a task's cgroup uses
//
// The per-task series are read from the task cgroups at each scrape, for
// the tasks this agent runs that have not stopped: a task's series go when
// it ends.
type Metrics struct {
	steps    *prometheus.HistogramVec
	launch   prometheus.Histogram
	received prometheus.Gauge
	usage    *taskUsageCollector
	logs     *shipMetrics
}

// NewMetrics creates the agent's metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	buckets := prometheus.ExponentialBuckets(0.0005, 2, 16) // 0.5 ms … 16 s
	m := &Metrics{
		steps: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "berth_agent_task_step_seconds", Help: "Duration of each step the agent takes to run or stop a task.",
			Buckets: buckets,
		}, []string{"step"}),
		launch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "berth_agent_task_launch_seconds", Help: "Time from the agent receiving a task to the control plane accepting its RUNNING report.",
			Buckets: buckets,
		}),
		received: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "berth_agent_task_received_timestamp_seconds", Help: "Unix time at which the agent last received a new task.",
		}),
	}
	m.usage = &taskUsageCollector{
		cpu: prometheus.NewDesc("berth_agent_task_cpu_seconds_total", "CPU time used by a task's processes (its cgroup's cpuacct.usage).",
			taskLabels, nil),
		mem: prometheus.NewDesc("berth_agent_task_memory_bytes", "Memory a task's processes use (its cgroup's memory.usage_in_bytes).",
			taskLabels, nil),
	}
	reg.MustRegister(m.steps, m.launch, m.received, m.usage)
	m.logs = newShipMetrics(reg)
	return m
}

var taskLabels = []string{"task_id", "cluster", "family"}

// taskUsageCollector reads the cgroups of the live tasks at each scrape.
type taskUsageCollector struct {
	cpu, mem *prometheus.Desc
	mu       sync.Mutex
	live     func() []agentapi.TaskSpec // set by the agent (New)
}

func (c *taskUsageCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.cpu; ch <- c.mem }

func (c *taskUsageCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	live := c.live
	c.mu.Unlock()
	if live == nil {
		return
	}
	for _, spec := range live() {
		path := CgroupPath(spec.TaskID)
		labels := []string{spec.TaskID, spec.ClusterArn[strings.LastIndexByte(spec.ClusterArn, '/')+1:], spec.Family}
		if cpu, err := runtime.TaskCgroupCPUUsage(path); err == nil {
			ch <- prometheus.MustNewConstMetric(c.cpu, prometheus.CounterValue, cpu.Seconds(), labels...)
		}
		if mem, err := runtime.TaskCgroupMemoryUsage(path); err == nil {
			ch <- prometheus.MustNewConstMetric(c.mem, prometheus.GaugeValue, float64(mem), labels...)
		}
	}
}

// watchTasks tells the metrics which tasks are live.
func (m *Metrics) watchTasks(live func() []agentapi.TaskSpec) {
	if m != nil {
		m.usage.mu.Lock()
		m.usage.live = live
		m.usage.mu.Unlock()
	}
}

func (m *Metrics) observeStep(step string, since time.Time) {
	if m != nil {
		m.steps.WithLabelValues(step).Observe(time.Since(since).Seconds())
	}
}

func (m *Metrics) taskReceived(at time.Time) {
	if m != nil {
		m.received.Set(float64(at.UnixNano()) / 1e9)
	}
}

func (m *Metrics) taskLaunched(received time.Time) {
	if m != nil {
		m.launch.Observe(time.Since(received).Seconds())
	}
}

// instrument wraps the agent's runtime, sandboxes and control plane so that
// each call of a step is timed.
func (m *Metrics) instrument(cfg Config) Config {
	if m == nil {
		return cfg
	}
	cfg.Runtime = timedRuntime{cfg.Runtime, m}
	cfg.Sandboxes = timedSandboxes{cfg.Sandboxes, m}
	cfg.Server = timedControlPlane{cfg.Server, m}
	return cfg
}

type timedRuntime struct {
	Runtime
	m *Metrics
}

func (r timedRuntime) Pull(ctx context.Context, ref string, opts ...runtime.PullOption) (runtime.Image, error) {
	defer r.m.observeStep("pull", time.Now())
	return r.Runtime.Pull(ctx, ref, opts...)
}

func (r timedRuntime) Run(ctx context.Context, spec runtime.ContainerSpec) (uint32, error) {
	defer r.m.observeStep("start", time.Now())
	return r.Runtime.Run(ctx, spec)
}

func (r timedRuntime) Stop(ctx context.Context, id string, sig syscall.Signal, timeout time.Duration) (runtime.ExitStatus, error) {
	defer r.m.observeStep("stop", time.Now())
	return r.Runtime.Stop(ctx, id, sig, timeout)
}

func (r timedRuntime) Delete(ctx context.Context, id string) error {
	defer r.m.observeStep("delete", time.Now())
	return r.Runtime.Delete(ctx, id)
}

type timedSandboxes struct {
	Sandboxes
	m *Metrics
}

func (s timedSandboxes) Create(spec agentapi.TaskSpec, fw *agentapi.Firewall) (SandboxInfo, error) {
	defer s.m.observeStep("sandbox", time.Now())
	return s.Sandboxes.Create(spec, fw)
}

func (s timedSandboxes) ApplyFirewall(spec agentapi.TaskSpec, fw agentapi.Firewall) error {
	defer s.m.observeStep("firewall", time.Now())
	return s.Sandboxes.ApplyFirewall(spec, fw)
}

func (s timedSandboxes) Delete(spec agentapi.TaskSpec) error {
	defer s.m.observeStep("sandbox_delete", time.Now())
	return s.Sandboxes.Delete(spec)
}

type timedControlPlane struct {
	ControlPlane
	m *Metrics
}

func (c timedControlPlane) Report(ctx context.Context, r agentapi.StateReport) error {
	defer c.m.observeStep("report", time.Now())
	return c.ControlPlane.Report(ctx, r)
}
