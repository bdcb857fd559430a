package ecs_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/smithy-go"

	"github.com/berthdev/berth/internal/agentapi"
	becs "github.com/berthdev/berth/internal/ecs"
	"github.com/berthdev/berth/internal/protocol"
	"github.com/berthdev/berth/internal/store"
)

// testKeys authenticates test/test as account 000000000000.
type testKeys struct{}

func (testKeys) Lookup(_ context.Context, akid string) (string, string, error) {
	switch akid {
	case "test":
		return "test", "000000000000", nil
	case "other":
		return "other", "111111111111", nil
	}
	return "", "", protocol.ErrUnknownKey
}

// env is the ECS service in process on an embedded etcd, with an SDK client
// and a fake agent speaking the real agent protocol: no containers, no root.
type env struct {
	ecs   *ecs.Client
	agent *agentapi.Client
	st    *store.Store
	url   string
	svc   *becs.Service
}

func newEnv(t testing.TB) *env {
	t.Helper()
	return newEnvWith(t, becs.Config{})
}

// newEnvWith is newEnv with some of the service's configuration given.
func newEnvWith(t testing.TB, cfg becs.Config) *env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	e, err := store.StartEmbedded(ctx, t.TempDir(), logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	st := store.New(e.Client)
	cfg.Store, cfg.Logger = st, logger
	cfg.AgentTokenValid = func(_ context.Context, tok string) bool { return tok == "agent-token" }
	router := protocol.NewRouter(testKeys{}, logger, protocol.WithRegisterer(nil))
	cfg.VerifySignature = func(ctx context.Context, r *http.Request, body []byte) (protocol.Identity, error) {
		return router.VerifySignature(ctx, r, body, "ecs")
	}
	svc := becs.New(cfg)
	router.AddJSONService(svc.JSONService())
	router.Handle(agentapi.PathPrefix, svc.AgentHandler())
	srv := httptest.NewServer(router)
	t.Cleanup(srv.Close)
	done := make(chan struct{})
	go func() { _ = svc.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	client := ecs.NewFromConfig(aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL),
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")})
	return &env{ecs: client, agent: &agentapi.Client{BaseURL: srv.URL, Token: "agent-token"}, st: st, url: srv.URL, svc: svc}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func (e *env) register(t testing.TB, family string) string {
	t.Helper()
	out, err := e.ecs.RegisterTaskDefinition(ctxT(t), &ecs.RegisterTaskDefinitionInput{
		Family: aws.String(family), NetworkMode: types.NetworkModeAwsvpc, Cpu: aws.String("256"), Memory: aws.String("512"),
		RequiresCompatibilities: []types.Compatibility{types.CompatibilityFargate},
		ContainerDefinitions:    []types.ContainerDefinition{{Name: aws.String("app"), Image: aws.String("busybox"), Command: []string{"sleep", "1"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.TaskDefinition.TaskDefinitionArn)
}

func (e *env) run(t testing.TB, cluster, td string, count int32) []types.Task {
	t.Helper()
	out, err := e.ecs.RunTask(ctxT(t), &ecs.RunTaskInput{Cluster: aws.String(cluster), TaskDefinition: aws.String(td),
		Count: aws.Int32(count), LaunchType: types.LaunchTypeFargate,
		NetworkConfiguration: &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{Subnets: []string{"subnet-1"}}}})
	if err != nil {
		t.Fatal(err)
	}
	return out.Tasks
}

// poll waits for the fake agent to be handed n tasks.
func (e *env) poll(t *testing.T, node string, n int) agentapi.TasksResponse {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var since int64
	for time.Now().Before(deadline) {
		resp, err := e.agent.Tasks(ctxT(t), node, since, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Tasks) == n {
			return resp
		}
		since = resp.Revision
	}
	t.Fatalf("agent was not handed %d tasks", n)
	return agentapi.TasksResponse{}
}

func (e *env) describe(t *testing.T, cluster, arn string) types.Task {
	t.Helper()
	out, err := e.ecs.DescribeTasks(ctxT(t), &ecs.DescribeTasksInput{Cluster: aws.String(cluster), Tasks: []string{arn}})
	if err != nil || len(out.Tasks) != 1 {
		t.Fatalf("describe: %v %+v", err, out)
	}
	return out.Tasks[0]
}

func TestLifecycleThroughAgentProtocol(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	if _, err := e.ecs.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("c")}); err != nil {
		t.Fatal(err)
	}
	td := e.register(t, "fam")
	if _, err := e.agent.Register(ctx, agentapi.RegisterRequest{NodeID: "n1", AvailabilityZones: []string{"us-east-1a", "us-east-1b"}, CPU: 2048, MemoryMiB: 4096}); err != nil {
		t.Fatal(err)
	}
	tasks := e.run(t, "c", td, 2)
	if len(tasks) != 2 || aws.ToString(tasks[0].LastStatus) != "PROVISIONING" || aws.ToString(tasks[0].DesiredStatus) != "RUNNING" {
		t.Fatalf("RunTask returned %+v", tasks)
	}
	resp := e.poll(t, "n1", 2)
	spec := resp.Tasks[0]
	if spec.CPU != 256 || spec.MemoryMiB != 512 || len(spec.Containers) != 1 || spec.Containers[0].Command[1] != "1" {
		t.Fatalf("spec %+v", spec)
	}
	azs := map[string]bool{}
	for _, tk := range tasks {
		azs[aws.ToString(e.describe(t, "c", aws.ToString(tk.TaskArn)).AvailabilityZone)] = true
	}
	if len(azs) != 2 {
		t.Fatalf("two tasks on a two-zone host should spread, got zones %v", azs)
	}
	arn := spec.TaskArn
	now := time.Now()
	report := func(seq int64, status string, cs ...agentapi.ContainerState) error {
		return e.agent.Report(ctx, agentapi.StateReport{NodeID: "n1", TaskArn: arn, Seq: seq, Status: status,
			PullStartedAt: &now, PullStoppedAt: &now, StartedAt: &now, Containers: cs})
	}
	for i, st := range []string{"PENDING", "ACTIVATING", "RUNNING"} {
		if err := report(int64(10+i), st, agentapi.ContainerState{Name: "app", Status: "RUNNING", RuntimeID: "rid"}); err != nil {
			t.Fatal(err)
		}
	}
	got := e.describe(t, "c", arn)
	if aws.ToString(got.LastStatus) != "RUNNING" || got.StartedAt == nil || aws.ToString(got.Containers[0].RuntimeId) != "rid" || got.Connectivity != "CONNECTED" {
		t.Fatalf("after RUNNING: %+v", got)
	}
	// A late report of an earlier status, or a repeated sequence number, changes nothing.
	if err := report(5, "PENDING"); err != nil {
		t.Fatal(err)
	}
	if err := report(12, "PENDING"); err != nil {
		t.Fatal(err)
	}
	if s := aws.ToString(e.describe(t, "c", arn).LastStatus); s != "RUNNING" {
		t.Fatalf("stale report moved the task to %s", s)
	}
	cl, err := e.ecs.DescribeClusters(ctx, &ecs.DescribeClustersInput{Clusters: []string{"c"}})
	if err != nil || cl.Clusters[0].RunningTasksCount != 1 || cl.Clusters[0].PendingTasksCount != 1 {
		t.Fatalf("cluster counts: %v %+v", err, cl)
	}
	// StopTask sets the desired status; the agent learns it through its poll.
	if _, err := e.ecs.StopTask(ctx, &ecs.StopTaskInput{Cluster: aws.String("c"), Task: aws.String(arn), Reason: aws.String("bye")}); err != nil {
		t.Fatal(err)
	}
	resp = e.poll(t, "n1", 2)
	for _, s := range resp.Tasks {
		if s.TaskArn == arn && (s.DesiredStatus != "STOPPED" || s.StopCode != "UserInitiated" || s.StoppedReason != "bye") {
			t.Fatalf("stopped spec %+v", s)
		}
	}
	code := 143
	for i, st := range []string{"DEACTIVATING", "STOPPING", "DEPROVISIONING", "STOPPED"} {
		if err := report(int64(20+i), st, agentapi.ContainerState{Name: "app", Status: "STOPPED", ExitCode: &code}); err != nil {
			t.Fatal(err)
		}
	}
	got = e.describe(t, "c", arn)
	if aws.ToString(got.LastStatus) != "STOPPED" || got.StopCode != types.TaskStopCodeUserInitiated ||
		aws.ToString(got.StoppedReason) != "bye" || got.StoppedAt == nil || aws.ToInt32(got.Containers[0].ExitCode) != 143 {
		t.Fatalf("after STOPPED: %+v", got)
	}
	// The stopped task is no longer handed to the agent.
	resp = e.poll(t, "n1", 1)
	if resp.Tasks[0].TaskArn == arn {
		t.Fatal("stopped task still assigned")
	}
	// A report from another node is refused.
	err = e.agent.Report(ctx, agentapi.StateReport{NodeID: "n2", TaskArn: resp.Tasks[0].TaskArn, Seq: 99, Status: "RUNNING"})
	if err == nil {
		t.Fatal("report from a node the task is not placed on was accepted")
	}
}

func TestStopBeforePlacement(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	if _, err := e.ecs.CreateCluster(ctx, &ecs.CreateClusterInput{}); err != nil {
		t.Fatal(err)
	}
	td := e.register(t, "fam")
	tasks := e.run(t, "default", td, 1) // no host registered: it stays PROVISIONING
	arn := aws.ToString(tasks[0].TaskArn)
	if _, err := e.ecs.StopTask(ctx, &ecs.StopTaskInput{Task: aws.String(arn)}); err != nil {
		t.Fatal(err)
	}
	got := e.describe(t, "default", arn)
	if aws.ToString(got.LastStatus) != "STOPPED" || got.StopCode != types.TaskStopCodeUserInitiated {
		t.Fatalf("%+v", got)
	}
	// A host that registers later is not handed the stopped task.
	if _, err := e.agent.Register(ctx, agentapi.RegisterRequest{NodeID: "n1", AvailabilityZones: []string{"us-east-1a"}, CPU: 1024, MemoryMiB: 2048}); err != nil {
		t.Fatal(err)
	}
	resp, err := e.agent.Tasks(ctx, "n1", 0, time.Second)
	if err != nil || len(resp.Tasks) != 0 {
		t.Fatalf("tasks %v %+v", err, resp)
	}
}

func TestTaskDefinitionsAndPaging(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	for i := 0; i < 3; i++ {
		e.register(t, "a")
	}
	e.register(t, "b")
	d, err := e.ecs.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String("a")})
	if err != nil || d.TaskDefinition.Revision != 3 {
		t.Fatalf("latest of a: %v %+v", err, d)
	}
	if _, err := e.ecs.DeregisterTaskDefinition(ctx, &ecs.DeregisterTaskDefinitionInput{TaskDefinition: aws.String("a:3")}); err != nil {
		t.Fatal(err)
	}
	d, err = e.ecs.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String("a")})
	if err != nil || d.TaskDefinition.Revision != 2 {
		t.Fatalf("latest ACTIVE of a after deregistering 3: %v %+v", err, d)
	}
	if r := e.register(t, "a"); !strings.HasSuffix(r, ":4") {
		t.Fatalf("revisions are never reused: got %s", r)
	}
	var all []string
	var token *string
	for pages := 0; ; pages++ {
		out, err := e.ecs.ListTaskDefinitions(ctx, &ecs.ListTaskDefinitionsInput{MaxResults: aws.Int32(2), NextToken: token})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, out.TaskDefinitionArns...)
		if token = out.NextToken; token == nil {
			break
		}
		if pages > 5 {
			t.Fatal("paging does not end")
		}
	}
	if len(all) != 4 || !strings.HasSuffix(all[0], "a:1") || !strings.HasSuffix(all[3], "b:1") {
		t.Fatalf("ACTIVE definitions %v", all)
	}
	fams, err := e.ecs.ListTaskDefinitionFamilies(ctx, &ecs.ListTaskDefinitionFamiliesInput{})
	if err != nil || len(fams.Families) != 2 {
		t.Fatalf("families %v %+v", err, fams)
	}
}

func TestErrors(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	td := e.register(t, "fam")
	tests := []struct {
		name string
		call func() error
		code string
	}{
		{"unknown cluster", func() error {
			_, err := e.ecs.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String("nope")})
			return err
		}, "ClusterNotFoundException"},
		{"run on unknown cluster", func() error {
			_, err := e.ecs.RunTask(ctx, &ecs.RunTaskInput{Cluster: aws.String("nope"), TaskDefinition: aws.String(td)})
			return err
		}, "ClusterNotFoundException"},
		{"unknown task definition", func() error {
			_, err := e.ecs.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String("nope:7")})
			return err
		}, "ClientException"},
		{"bad tag", func() error {
			_, err := e.ecs.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("x"), Tags: []types.Tag{{Key: aws.String("aws:x"), Value: aws.String("v")}}})
			return err
		}, "InvalidParameterException"},
		{"bad cluster name", func() error {
			_, err := e.ecs.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("a b")})
			return err
		}, "InvalidParameterException"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := apiCode(tc.call()); got != tc.code {
				t.Fatalf("code %q, want %q", got, tc.code)
			}
		})
	}
}

func TestTags(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	out, err := e.ecs.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("t")})
	if err != nil {
		t.Fatal(err)
	}
	arn := out.Cluster.ClusterArn
	if _, err := e.ecs.TagResource(ctx, &ecs.TagResourceInput{ResourceArn: arn, Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}, {Key: aws.String("k2"), Value: aws.String("v2")}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ecs.UntagResource(ctx, &ecs.UntagResourceInput{ResourceArn: arn, TagKeys: []string{"k2"}}); err != nil {
		t.Fatal(err)
	}
	l, err := e.ecs.ListTagsForResource(ctx, &ecs.ListTagsForResourceInput{ResourceArn: arn})
	if err != nil || len(l.Tags) != 1 || aws.ToString(l.Tags[0].Key) != "k" {
		t.Fatalf("tags %v %+v", err, l)
	}
	_, err = e.ecs.ListTagsForResource(ctx, &ecs.ListTagsForResourceInput{ResourceArn: aws.String("arn:aws:ecs:us-east-1:000000000000:cluster/none")})
	if apiCode(err) == "" {
		t.Fatalf("tags of a missing cluster: %v", err)
	}
}

func TestPropagateTags(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	if _, err := e.ecs.CreateCluster(ctx, &ecs.CreateClusterInput{}); err != nil {
		t.Fatal(err)
	}
	td, err := e.ecs.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{
		Family: aws.String("tagged"), NetworkMode: types.NetworkModeAwsvpc, Cpu: aws.String("256"), Memory: aws.String("512"),
		RequiresCompatibilities: []types.Compatibility{types.CompatibilityFargate},
		ContainerDefinitions:    []types.ContainerDefinition{{Name: aws.String("app"), Image: aws.String("busybox")}},
		Tags:                    []types.Tag{{Key: aws.String("team"), Value: aws.String("a")}, {Key: aws.String("env"), Value: aws.String("dev")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := e.ecs.RunTask(ctx, &ecs.RunTaskInput{TaskDefinition: td.TaskDefinition.TaskDefinitionArn, PropagateTags: types.PropagateTagsTaskDefinition,
		Tags:                 []types.Tag{{Key: aws.String("env"), Value: aws.String("prod")}},
		NetworkConfiguration: &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{Subnets: []string{"subnet-1"}}}})
	if err != nil {
		t.Fatal(err)
	}
	l, err := e.ecs.ListTagsForResource(ctx, &ecs.ListTagsForResourceInput{ResourceArn: out.Tasks[0].TaskArn})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, tg := range l.Tags {
		got[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
	}
	if got["team"] != "a" || got["env"] != "prod" || len(got) != 2 {
		t.Fatalf("tags %v, want team=a env=prod", got)
	}
}

// TestRegistryAuthOnlyForOwnTasks: a host gets registry credentials of a
// task's account only for a task placed on it.
func TestRegistryAuthOnlyForOwnTasks(t *testing.T) {
	e := newEnvWith(t, becs.Config{RegistryPassword: func(_ context.Context, account, region string, _ time.Duration) (string, time.Time, error) {
		return "pw-" + account + "-" + region, time.Now().Add(time.Hour), nil
	}})
	ctx := ctxT(t)
	if _, err := e.ecs.CreateCluster(ctx, &ecs.CreateClusterInput{}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"n1", "n2"} {
		if _, err := e.agent.Register(ctx, agentapi.RegisterRequest{NodeID: n, AvailabilityZones: []string{"us-east-1a"}, CPU: 256, MemoryMiB: 512}); err != nil {
			t.Fatal(err)
		}
	}
	e.run(t, "default", e.register(t, "fam"), 1)
	var spec agentapi.TaskSpec
	var owner, other string
	deadline := time.Now().Add(10 * time.Second)
	for owner == "" && time.Now().Before(deadline) {
		for _, n := range []string{"n1", "n2"} {
			resp, err := e.agent.Tasks(ctx, n, 0, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.Tasks) == 1 {
				spec, owner = resp.Tasks[0], n
			}
		}
	}
	if owner == "" {
		t.Fatal("task never placed")
	}
	if other = "n1"; owner == "n1" {
		other = "n2"
	}
	a, err := e.agent.RegistryAuth(ctx, agentapi.RegistryAuthRequest{NodeID: owner, TaskArn: spec.TaskArn})
	if err != nil || a.Username != "AWS" || a.Password != "pw-000000000000-us-east-1" || len(a.Hosts) != 1 {
		t.Fatalf("owner's credentials: %v %+v", err, a)
	}
	if _, err := e.agent.RegistryAuth(ctx, agentapi.RegistryAuthRequest{NodeID: other, TaskArn: spec.TaskArn}); err == nil {
		t.Fatal("a host got credentials for a task that is not placed on it")
	}
}
