package ecs_test

import (
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	becs "github.com/berthdev/berth/internal/ecs"
	"github.com/berthdev/berth/internal/throttle"
)

// tokenJar is a launch limiter whose tokens the test hands out by hand: no
// clock, so nothing depends on the machine's speed.
type tokenJar struct {
	mu      sync.Mutex
	tokens  int
	refused int // asks that got fewer tokens than they wanted
}

func (j *tokenJar) add(n int) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.tokens += n
}

func (j *tokenJar) state() (tokens, refused int) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.tokens, j.refused
}

func (j *tokenJar) TakeLaunches(account, region string, n int) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	if account != "000000000000" || region != "us-east-1" || n > j.tokens {
		j.refused++
		return false
	}
	j.tokens -= n
	return true
}

func (j *tokenJar) TakeLaunchesUpTo(account, region string, n int) int {
	j.mu.Lock()
	defer j.mu.Unlock()
	k := min(n, j.tokens)
	if k < n {
		j.refused++
	}
	j.tokens -= k
	return k
}

// TestRunTaskOverLaunchRate: RunTask takes count tokens or fails whole with
// ThrottlingException, storing nothing; an invalid call takes none.
func TestRunTaskOverLaunchRate(t *testing.T) {
	jar := &tokenJar{tokens: 5}
	e := newEnvWith(t, becs.Config{LaunchLimiter: jar})
	ctx := ctxT(t)
	if _, err := e.ecs.CreateCluster(ctx, &ecs.CreateClusterInput{}); err != nil {
		t.Fatal(err)
	}
	td := e.register(t, "app")
	in := &ecs.RunTaskInput{TaskDefinition: aws.String(td), Count: aws.Int32(10), LaunchType: "FARGATE",
		NetworkConfiguration: subnets}
	_, err := e.ecs.RunTask(ctx, in, func(o *ecs.Options) { o.RetryMaxAttempts = 1 })
	if apiCode(err) != "ThrottlingException" {
		t.Fatalf("RunTask count 10 with 5 tokens: %v", err)
	}
	if total, _, created := e.liveTasks(t, "default"); total != 0 || created != 0 {
		t.Fatalf("a throttled RunTask stored %d tasks", created)
	}
	// Invalid: no network configuration for an awsvpc definition.
	_, err = e.ecs.RunTask(ctx, &ecs.RunTaskInput{TaskDefinition: aws.String(td), Count: aws.Int32(1), LaunchType: "FARGATE"})
	if apiCode(err) != "InvalidParameterException" {
		t.Fatalf("invalid RunTask: %v", err)
	}
	if tokens, _ := jar.state(); tokens != 5 {
		t.Fatalf("failed calls took tokens: %d left of 5", tokens)
	}
	in.Count = aws.Int32(5)
	out, err := e.ecs.RunTask(ctx, in)
	if err != nil || len(out.Tasks) != 5 {
		t.Fatalf("RunTask count 5 with 5 tokens: %v %+v", err, out)
	}
	if tokens, _ := jar.state(); tokens != 0 {
		t.Fatalf("%d tokens left, want 0", tokens)
	}
}

// TestServiceLaunchesWithinLaunchRate: a service over the launch rate is not
// failed; it launches what the bucket allows and the rest on later passes.
func TestServiceLaunchesWithinLaunchRate(t *testing.T) {
	jar := &tokenJar{tokens: 2}
	e := newEnvWith(t, becs.Config{LaunchLimiter: jar})
	ctx := ctxT(t)
	if _, err := e.ecs.CreateCluster(ctx, &ecs.CreateClusterInput{}); err != nil {
		t.Fatal(err)
	}
	e.startAgent(t, "n1")
	td := e.registerImage(t, "web", "nginx")
	e.createService(t, &ecs.CreateServiceInput{ServiceName: aws.String("web"), TaskDefinition: aws.String(td), DesiredCount: aws.Int32(6)})
	// Two launched, then passes keep asking and get nothing.
	eventually(t, "two tasks and a refused ask", func() bool {
		_, refused := jar.state()
		return len(e.serviceTasks(t, "web")) == 2 && refused >= 2
	})
	if n := len(e.serviceTasks(t, "web")); n != 2 {
		t.Fatalf("%d tasks launched on 2 tokens", n)
	}
	s := e.service(t, "web")
	if aws.ToString(s.Status) != "ACTIVE" || s.Deployments[0].RolloutState == "FAILED" || s.Deployments[0].FailedTasks != 0 {
		t.Fatalf("service under the launch rate: %+v", s)
	}
	if s.PendingCount+s.RunningCount != 2 {
		t.Fatalf("pending %d + running %d, want the 2 launched", s.PendingCount, s.RunningCount)
	}
	jar.add(4)
	s = e.waitStable(t, "web")
	if s.RunningCount != 6 || len(e.serviceTasks(t, "web")) != 6 {
		t.Fatalf("after 4 more tokens: %+v", s)
	}
	if tokens, _ := jar.state(); tokens != 0 {
		t.Fatalf("%d tokens left, want 0", tokens)
	}
}

// TestRunTaskWithThrottlePolicy: the real policy plugs in as the launch
// limiter; a count above the burst is refused however long one waits.
func TestRunTaskWithThrottlePolicy(t *testing.T) {
	cfg, err := throttle.Config{}.Apply("launch=0.001/5") // no refill during the test
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvWith(t, becs.Config{LaunchLimiter: throttle.NewPolicy(cfg, nil)})
	ctx := ctxT(t)
	if _, err := e.ecs.CreateCluster(ctx, &ecs.CreateClusterInput{}); err != nil {
		t.Fatal(err)
	}
	td := e.register(t, "app")
	for i, tt := range []struct {
		count int32
		want  string
	}{{10, "ThrottlingException"}, {5, ""}, {1, "ThrottlingException"}} {
		_, err := e.ecs.RunTask(ctx, &ecs.RunTaskInput{TaskDefinition: aws.String(td), Count: aws.Int32(tt.count),
			LaunchType: "FARGATE", NetworkConfiguration: subnets}, func(o *ecs.Options) { o.RetryMaxAttempts = 1 })
		if apiCode(err) != tt.want || (tt.want == "" && err != nil) {
			t.Fatalf("call %d, count %d: %v, want %q", i, tt.count, err, tt.want)
		}
	}
	if _, _, created := e.liveTasks(t, "default"); created != 5 {
		t.Fatalf("%d tasks stored, want the 5 of the call that got its tokens", created)
	}
}
