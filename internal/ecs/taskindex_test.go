package ecs_test

import (
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/berthdev/berth/internal/store"
)

// storeTasks writes n task records of cluster c straight to etcd (as the
// scale benchmarks store them), half RUNNING and half STOPPED desired, and
// returns the ARNs of the RUNNING ones.
func storeTasks(t testing.TB, e *env, cluster string, n int) []string {
	t.Helper()
	var running []string
	var ops []clientv3.Op
	flush := func() {
		if len(ops) > 0 {
			if _, err := e.st.C.Txn(ctxT(t)).Then(ops...).Commit(); err != nil {
				t.Fatal(err)
			}
			ops = ops[:0]
		}
	}
	for i := range n {
		id := fmt.Sprintf("%032x", i)
		arn := "arn:aws:ecs:us-east-1:000000000000:task/" + cluster + "/" + id
		desired := "RUNNING"
		if i%2 == 1 {
			desired = "STOPPED"
		} else {
			running = append(running, arn)
		}
		v := fmt.Sprintf(`{"task":{"taskArn":%q,"desiredStatus":%q,"lastStatus":%q,"launchType":"FARGATE","group":"family:f%d"},"spec":{"family":"f%d"}}`,
			arn, desired, desired, i%3, i%3)
		ops = append(ops, clientv3.OpPut(store.Scoped("000000000000", "us-east-1", "tasks", cluster, id), v))
		if len(ops) == 100 {
			flush()
		}
	}
	flush()
	return running
}

func TestListTasksIndex(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	if _, err := e.ecs.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("big")}); err != nil {
		t.Fatal(err)
	}
	want := storeTasks(t, e, "big", 500)
	// Every RUNNING task once, in order, across pages; written just
	// before, so the index must have caught up first.
	var got []string
	var token *string
	for {
		out, err := e.ecs.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String("big"), NextToken: token, MaxResults: aws.Int32(70)})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, out.TaskArns...)
		if out.NextToken == nil {
			break
		}
		token = out.NextToken
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("listed %d tasks, want %d (first %v)", len(got), len(want), got[:min(3, len(got))])
	}
	out, err := e.ecs.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String("big"), Family: aws.String("f1"), DesiredStatus: types.DesiredStatusStopped})
	if err != nil {
		t.Fatal(err)
	}
	for _, arn := range out.TaskArns {
		var n int
		fmt.Sscanf(arn[len(arn)-32:], "%x", &n)
		if n%2 != 1 || n%3 != 1 {
			t.Fatalf("task %d listed for family f1, STOPPED", n)
		}
	}
	if len(out.TaskArns) != 83 && len(out.TaskArns) != 84 {
		t.Fatalf("%d STOPPED tasks of family f1, want 83", len(out.TaskArns))
	}
	// A delete leaves the index at once too.
	if _, err := e.st.C.Delete(ctx, store.Scoped("000000000000", "us-east-1", "tasks", "big", fmt.Sprintf("%032x", 0))); err != nil {
		t.Fatal(err)
	}
	out, err = e.ecs.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String("big"), MaxResults: aws.Int32(1)})
	if err != nil || len(out.TaskArns) != 1 || out.TaskArns[0] != want[1] {
		t.Fatalf("after a delete: %v %v", err, out.TaskArns)
	}
}

// BenchmarkListTasks is one page of ListTasks in a cluster of 100,000
// stored tasks, through the SDK.
func BenchmarkListTasks(b *testing.B) {
	e := newEnv(b)
	ctx := ctxT(b)
	if _, err := e.ecs.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("big")}); err != nil {
		b.Fatal(err)
	}
	storeTasks(b, e, "big", 100000)
	b.ResetTimer()
	for b.Loop() {
		if _, err := e.ecs.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String("big")}); err != nil {
			b.Fatal(err)
		}
	}
}
