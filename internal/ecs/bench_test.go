package ecs_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
)

// BenchmarkDescribeTasks measures one DescribeTasks of one task through the
// SDK, SigV4 verification, the store and back: the call clients poll.
func BenchmarkDescribeTasks(b *testing.B) {
	e := newEnv(b)
	ctx := ctxT(b)
	if _, err := e.ecs.CreateCluster(ctx, &ecs.CreateClusterInput{}); err != nil {
		b.Fatal(err)
	}
	td := e.register(b, "fam")
	arn := aws.ToString(e.run(b, "default", td, 1)[0].TaskArn)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := e.ecs.DescribeTasks(ctx, &ecs.DescribeTasksInput{Tasks: []string{arn}}); err != nil {
			b.Fatal(err)
		}
	}
}
