package agent

import (
	"os"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/runtime"
)

// Per-task CPU and memory come from the live tasks' cgroups, labelled by
// task id, cluster and family, and go when the task does.
func TestTaskUsageMetrics(t *testing.T) {
	if testing.Short() || os.Geteuid() != 0 {
		t.Skip("needs root to make a task cgroup")
	}
	id := "usage-metrics-test"
	if err := runtime.CreateTaskCgroup(CgroupPath(id), 256, 512); err != nil {
		t.Skipf("no v1 task cgroups here: %v", err)
	}
	t.Cleanup(func() { _ = runtime.DeleteTaskCgroup(CgroupPath(id)) })
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	if n, err := testutil.GatherAndCount(reg, "berth_agent_task_cpu_seconds_total"); err != nil || n != 0 {
		t.Fatalf("series before the agent says which tasks live: %d (%v)", n, err)
	}
	live := []agentapi.TaskSpec{{TaskID: id, ClusterArn: "arn:aws:ecs:us-east-1:000000000000:cluster/prod", Family: "web"},
		{TaskID: "no-such-cgroup", Family: "web"}}
	m.watchTasks(func() []agentapi.TaskSpec { return live })
	if n, err := testutil.GatherAndCount(reg, "berth_agent_task_cpu_seconds_total", "berth_agent_task_memory_bytes"); err != nil || n != 2 {
		t.Fatalf("%d series (%v), want one of each for the task with a cgroup", n, err)
	}
	fams, _ := reg.Gather()
	for _, f := range fams {
		if f.GetName() != "berth_agent_task_memory_bytes" {
			continue
		}
		labels := map[string]string{}
		for _, l := range f.GetMetric()[0].GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["task_id"] != id || labels["cluster"] != "prod" || labels["family"] != "web" {
			t.Errorf("labels %v", labels)
		}
	}
	live = nil // the task ended
	if n, err := testutil.GatherAndCount(reg, "berth_agent_task_cpu_seconds_total", "berth_agent_task_memory_bytes"); err != nil || n != 0 {
		t.Fatalf("%d series after the task ended (%v)", n, err)
	}
}
