package ecs_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/berthdev/berth/internal/agentapi"
	becs "github.com/berthdev/berth/internal/ecs"
)

type fakeMeter struct {
	mu    sync.Mutex
	tasks []becs.StoppedTask
}

func (m *fakeMeter) MeterTask(_ context.Context, t becs.StoppedTask) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tasks = append(m.tasks, t)
	return nil
}

func TestStoppedTaskIsMeteredAndLaunchObserved(t *testing.T) {
	meter := &fakeMeter{}
	reg := prometheus.NewRegistry()
	e := newEnvWith(t, becs.Config{Meter: meter, Registerer: reg})
	ctx := ctxT(t)
	if _, err := e.ecs.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("c")}); err != nil {
		t.Fatal(err)
	}
	td := e.register(t, "fam")
	if _, err := e.agent.Register(ctx, agentapi.RegisterRequest{NodeID: "n1", AvailabilityZones: []string{"us-east-1a"}, CPU: 2048, MemoryMiB: 4096}); err != nil {
		t.Fatal(err)
	}
	e.run(t, "c", td, 1)
	arn := e.poll(t, "n1", 1).Tasks[0].TaskArn
	pull := time.Now().Add(-time.Second)
	report := func(seq int64, status string) {
		t.Helper()
		if err := e.agent.Report(ctx, agentapi.StateReport{NodeID: "n1", TaskArn: arn, Seq: seq, Status: status, PullStartedAt: &pull, StartedAt: &pull}); err != nil {
			t.Fatal(err)
		}
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP berth_tasks Tasks by last status, as the control plane's store has them.
# TYPE berth_tasks gauge
berth_tasks{state="ACTIVATING"} 0
berth_tasks{state="DEACTIVATING"} 0
berth_tasks{state="DEPROVISIONING"} 0
berth_tasks{state="PENDING"} 0
berth_tasks{state="PROVISIONING"} 1
berth_tasks{state="RUNNING"} 0
berth_tasks{state="STOPPED"} 0
berth_tasks{state="STOPPING"} 0
`), "berth_tasks"); err != nil {
		t.Error(err)
	}
	report(1, "PENDING")
	report(2, "RUNNING")
	report(3, "RUNNING") // a repeated RUNNING is not a second launch
	if n, err := testutil.GatherAndCount(reg, "berth_task_launch_seconds"); err != nil || n != 1 {
		t.Fatalf("launch histogram: %d series (%v)", n, err)
	}
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == "berth_task_launch_seconds" {
			if c := mf.GetMetric()[0].GetHistogram().GetSampleCount(); c != 1 {
				t.Errorf("launch observed %d times, want 1", c)
			}
		}
	}
	report(4, "STOPPED")
	report(5, "STOPPED") // repeated: metered once, StoppedAt kept
	meter.mu.Lock()
	defer meter.mu.Unlock()
	if len(meter.tasks) != 1 {
		t.Fatalf("metered %d times, want 1", len(meter.tasks))
	}
	st := meter.tasks[0]
	if st.Cluster != "c" || st.Family != "fam" || st.CPU != 256 || st.MemoryMiB != 512 || st.Group != "family:fam" ||
		st.PullStartedAt == nil || st.StoppedAt == nil || st.Account != "000000000000" || st.EphemeralGiB != 20 {
		t.Errorf("stopped task %+v", st)
	}
	if got := e.describe(t, "c", arn).StoppedAt; got == nil || got.Sub(*st.StoppedAt).Abs() > 5*time.Millisecond {
		t.Errorf("stoppedAt moved: %v, metered with %v", got, st.StoppedAt)
	}
}

// A task of a definition with more ephemeral storage is metered with it.
func TestStoppedTaskEphemeralStorage(t *testing.T) {
	meter := &fakeMeter{}
	e := newEnvWith(t, becs.Config{Meter: meter})
	ctx := ctxT(t)
	if _, err := e.ecs.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("c")}); err != nil {
		t.Fatal(err)
	}
	out, err := e.ecs.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{
		Family: aws.String("big"), NetworkMode: types.NetworkModeAwsvpc, Cpu: aws.String("256"), Memory: aws.String("512"),
		RequiresCompatibilities: []types.Compatibility{types.CompatibilityFargate}, EphemeralStorage: &types.EphemeralStorage{SizeInGiB: 50},
		ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("app"), Image: aws.String("busybox")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.agent.Register(ctx, agentapi.RegisterRequest{NodeID: "n1", AvailabilityZones: []string{"us-east-1a"}, CPU: 2048, MemoryMiB: 4096}); err != nil {
		t.Fatal(err)
	}
	e.run(t, "c", aws.ToString(out.TaskDefinition.TaskDefinitionArn), 1)
	arn := e.poll(t, "n1", 1).Tasks[0].TaskArn
	if got := e.describe(t, "c", arn).EphemeralStorage; got == nil || got.SizeInGiB != 50 {
		t.Errorf("described ephemeral storage %+v, want 50 GiB", got)
	}
	if err := e.agent.Report(ctx, agentapi.StateReport{NodeID: "n1", TaskArn: arn, Seq: 1, Status: "STOPPED"}); err != nil {
		t.Fatal(err)
	}
	meter.mu.Lock()
	defer meter.mu.Unlock()
	if len(meter.tasks) != 1 || meter.tasks[0].EphemeralGiB != 50 {
		t.Fatalf("metered %+v", meter.tasks)
	}
}
