package ecs_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berthdev/berth/internal/agentapi"
	becs "github.com/berthdev/berth/internal/ecs"
)

// TaskLogStreams: a task's streams, to the node it is placed on only, and
// for LogsAfterStop after it stopped.
func TestTaskLogStreams(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	e := newEnvWith(t, becs.Config{Now: clock})
	ctx := ctxT(t)
	if _, err := e.ecs.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("c")}); err != nil {
		t.Fatal(err)
	}
	out, err := e.ecs.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{
		Family: aws.String("logged"), NetworkMode: types.NetworkModeAwsvpc, Cpu: aws.String("256"), Memory: aws.String("512"),
		RequiresCompatibilities: []types.Compatibility{types.CompatibilityFargate},
		ContainerDefinitions: []types.ContainerDefinition{
			{Name: aws.String("web"), Image: aws.String("busybox"), LogConfiguration: &types.LogConfiguration{LogDriver: types.LogDriverAwslogs,
				Options: map[string]string{"awslogs-group": "/ecs/web", "awslogs-stream-prefix": "p", "awslogs-create-group": "true"}}},
			{Name: aws.String("side"), Image: aws.String("busybox"), Essential: aws.Bool(false), LogConfiguration: &types.LogConfiguration{
				LogDriver: types.LogDriverAwslogs, Options: map[string]string{"awslogs-group": "/ecs/side", "awslogs-region": "eu-west-1"}}},
			{Name: aws.String("quiet"), Image: aws.String("busybox"), Essential: aws.Bool(false)},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.agent.Register(ctx, agentapi.RegisterRequest{NodeID: "n1", AvailabilityZones: []string{"us-east-1a"}, CPU: 4096, MemoryMiB: 8192}); err != nil {
		t.Fatal(err)
	}
	e.run(t, "c", aws.ToString(out.TaskDefinition.TaskDefinitionArn), 1)
	spec := e.poll(t, "n1", 1).Tasks[0]

	tl, ok, err := e.svc.TaskLogStreams(ctx, "n1", spec.TaskArn)
	want := []becs.TaskLogStream{
		{Region: "us-east-1", Group: "/ecs/web", Stream: "p/web/" + spec.TaskID, CreateGroup: true},
		{Region: "eu-west-1", Group: "/ecs/side", Stream: "side/" + spec.TaskID},
	}
	if err != nil || !ok || tl.Account != "000000000000" || len(tl.Streams) != 2 || tl.Streams[0] != want[0] || tl.Streams[1] != want[1] {
		t.Fatalf("on its node: %+v %v %v, want %+v", tl, ok, err, want)
	}
	for name, arn := range map[string]string{
		"no such task": strings.Replace(spec.TaskArn, spec.TaskID, strings.Repeat("0", 32), 1),
		"not an ARN":   "task",
	} {
		if _, ok, err := e.svc.TaskLogStreams(ctx, "n1", arn); ok || err != nil {
			t.Errorf("%s: %v %v, want not ok", name, ok, err)
		}
	}
	if _, ok, err := e.svc.TaskLogStreams(ctx, "n2", spec.TaskArn); ok || err != nil {
		t.Errorf("another node: %v %v, want not ok", ok, err)
	}

	// Stopped: its last batches are taken for LogsAfterStop.
	started := time.Now()
	for i, st := range []string{"PENDING", "RUNNING", "STOPPED"} {
		if err := e.agent.Report(ctx, agentapi.StateReport{NodeID: "n1", TaskArn: spec.TaskArn, Seq: int64(i + 1), Status: st, StartedAt: &started}); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok, err := e.svc.TaskLogStreams(ctx, "n1", spec.TaskArn); !ok || err != nil {
		t.Errorf("just stopped: %v %v, want ok", ok, err)
	}
	mu.Lock()
	now = now.Add(becs.LogsAfterStop + time.Second)
	mu.Unlock()
	if _, ok, err := e.svc.TaskLogStreams(ctx, "n1", spec.TaskArn); ok || err != nil {
		t.Errorf("stopped long ago: %v %v, want not ok", ok, err)
	}
}
