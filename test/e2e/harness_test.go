// Package e2e runs berth for real: the berth binary in dev mode with its own
// containerd, driven by the real AWS CLI and aws-sdk-go-v2. These tests need
// root (namespaces, cgroups, containerd) and skip under -short.
package e2e

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berthdev/berth/internal/devenv"
)

// berthBin is the binary under test, built once by TestMain.
var berthBin string

func TestMain(m *testing.M) {
	code := func() int {
		dir, err := os.MkdirTemp("", "berth-e2e-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		berthBin = filepath.Join(dir, "berth")
		build := exec.Command("go", "build", "-o", dir+"/", "github.com/berthdev/berth/cmd/berth", "github.com/berthdev/berth/cmd/berth-logdriver")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build berth:", err)
			return 1
		}
		return m.Run()
	}()
	os.Exit(code)
}

// requireRoot skips tests that need a real host.
func requireRoot(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test: needs root and containerd (skipped with -short)")
	}
	if os.Geteuid() != 0 {
		t.Skip("end-to-end test: needs root")
	}
	for _, bin := range []string{"containerd", "runc"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("end-to-end test: %s not installed", bin)
		}
	}
}

// devEnv is one running `berth dev` with its own data dir and port.
type devEnv struct {
	t         *testing.T
	DataDir   string
	URL       string
	Image     string // the demo image in this env's registry
	ECS       *ecs.Client
	EC2       *ec2.Client
	cmd       *exec.Cmd
	subnetIDs []string
	cfg       aws.Config
	logPath   string
	pool      int // third octet of this env's public IP and load balancer pools
}

// freeAddr is a loopback address for a server the test starts: below the
// kernel's ephemeral range (devenv.FreeAddr), so that no outgoing
// connection takes its port between now and the server's bind (a port the
// kernel picked for a listener on :0 failed a test so, in CI).
func freeAddr(t *testing.T) string {
	t.Helper()
	addr, err := devenv.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// startDev starts `berth dev` in a fresh data dir, pushes the demo image, and
// registers cleanup that removes every process, mount, namespace and cgroup
// the env made, even when the test fails.
func startDev(t *testing.T) *devEnv {
	t.Helper()
	requireRoot(t)
	dir, err := os.MkdirTemp("", "berth-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	e := &devEnv{t: t, DataDir: dir, URL: "http://" + freeAddr(t)}
	t.Cleanup(func() { e.destroy() })
	e.start()
	cfg := aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(e.URL),
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")}
	e.ECS = ecs.NewFromConfig(cfg)
	e.EC2 = ec2.NewFromConfig(cfg)
	e.cfg = cfg
	out := e.berth("image", "build-demo")
	e.Image = strings.TrimPrefix(e.URL, "http://") + "/busybox:latest"
	if !strings.Contains(out, "busybox@sha256:") {
		t.Fatalf("build-demo printed %q", out)
	}
	return e
}

// start runs the berth dev process and waits until it serves.
func (e *devEnv) start() {
	e.t.Helper()
	e.logPath = filepath.Join(e.DataDir, fmt.Sprintf("berth-%d.log", time.Now().UnixNano()))
	logf, err := os.Create(e.logPath)
	if err != nil {
		e.t.Fatal(err)
	}
	defer logf.Close()
	if e.pool == 0 {
		// Disjoint address pools, so that envs of tests (or of two test
		// runs) on one host never hand out the same loopback address.
		e.pool = 1 + mrand.IntN(254)
	}
	cmd := exec.Command(berthBin, "-v", "dev", "--data-dir", e.DataDir, "--listen", strings.TrimPrefix(e.URL, "http://"),
		"--public-ip-pool", fmt.Sprintf("127.100.%d.0/24", e.pool), "--lb-address-pool", fmt.Sprintf("127.101.%d.0/24", e.pool))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.cmd = cmd
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(e.URL + "/_berth/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 && e.agentRegistered() {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.t.Fatalf("berth dev did not become ready; log:\n%s", e.log())
}

func (e *devEnv) agentRegistered() bool {
	b, _ := os.ReadFile(e.logPath)
	return strings.Contains(string(b), "registered with control plane")
}

func (e *devEnv) log() string {
	b, _ := os.ReadFile(e.logPath)
	return string(b)
}

// kill sends SIGKILL to the berth process only (containerd and shims live on).
func (e *devEnv) kill() {
	if e.cmd == nil {
		return
	}
	_ = e.cmd.Process.Signal(syscall.SIGKILL)
	_, _ = e.cmd.Process.Wait()
	e.cmd = nil
}

// berth runs a CLI verb against this env and returns its stdout.
func (e *devEnv) berth(args ...string) string {
	e.t.Helper()
	out, err := e.berthErr(args...)
	if err != nil {
		e.t.Fatalf("berth %v: %v\n%s", args, err, out)
	}
	return out
}

func (e *devEnv) berthErr(args ...string) (string, error) {
	cmd := exec.Command(berthBin, append([]string{"--data-dir", e.DataDir, "--endpoint", e.URL}, args...)...)
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out) + stderr.String(), err
	}
	return string(out), nil
}

// destroy stops berth and removes everything it left on the host.
func (e *devEnv) destroy() {
	if e.t.Failed() {
		e.t.Logf("berth dev log:\n%s", e.log())
	}
	if e.cmd != nil {
		_ = e.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _, _ = e.cmd.Process.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			e.kill()
		}
	}
	CleanupDataDir(e.DataDir)
}

// CleanupDataDir kills every process that names dir on its command line
// (containerd and the shims of its containers), unmounts what is mounted
// under it, removes the sandboxes and cgroups of its tasks, and deletes it.
// It lives in internal/devenv, which the benchmarks share.
func CleanupDataDir(dir string) { devenv.CleanupDataDir(dir) }

// cgroupProcs lists the processes in a cgroup and the cgroups below it.
func cgroupProcs(path string) []int { return devenv.CgroupProcs(path) }

// Helpers for the tests.

func (e *devEnv) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	e.t.Cleanup(cancel)
	return ctx
}

// registerTask registers a Fargate task definition with the given containers.
func (e *devEnv) registerTask(family, cpu, mem string, containers ...types.ContainerDefinition) string {
	e.t.Helper()
	out, err := e.ECS.RegisterTaskDefinition(e.ctx(), &ecs.RegisterTaskDefinitionInput{
		Family: aws.String(family), NetworkMode: types.NetworkModeAwsvpc, Cpu: aws.String(cpu), Memory: aws.String(mem),
		RequiresCompatibilities: []types.Compatibility{types.CompatibilityFargate}, ContainerDefinitions: containers,
	})
	if err != nil {
		e.t.Fatalf("register %s: %v", family, err)
	}
	return aws.ToString(out.TaskDefinition.TaskDefinitionArn)
}

// container is a container definition of the demo image.
func (e *devEnv) container(name string, cmd ...string) types.ContainerDefinition {
	return types.ContainerDefinition{Name: aws.String(name), Image: aws.String(e.Image), Essential: aws.Bool(true),
		Command: cmd, StopTimeout: aws.Int32(2)}
}

// runTask runs one task of a definition in cluster and returns its ARN.
func (e *devEnv) runTask(cluster, taskDef string) string {
	e.t.Helper()
	ctx := e.ctx()
	if _, err := e.ECS.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String(cluster)}); err != nil {
		e.t.Fatal(err)
	}
	out, err := e.ECS.RunTask(ctx, &ecs.RunTaskInput{
		Cluster: aws.String(cluster), TaskDefinition: aws.String(taskDef), LaunchType: types.LaunchTypeFargate,
		NetworkConfiguration: &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{Subnets: e.subnets()}},
	})
	if err != nil {
		e.t.Fatalf("run %s: %v", taskDef, err)
	}
	if len(out.Tasks) != 1 {
		e.t.Fatalf("run %s: failures %v", taskDef, out.Failures)
	}
	return aws.ToString(out.Tasks[0].TaskArn)
}

// awsConfig is the SDK configuration for this env (keys test/test).
func (e *devEnv) awsConfig() aws.Config { return e.cfg }

// subnets are the default VPC's subnets, one per zone.
func (e *devEnv) subnets() []string {
	e.t.Helper()
	if e.subnetIDs == nil {
		e.subnetIDs = defaultSubnets(e.t, e.EC2)
	}
	return e.subnetIDs
}

// defaultSubnets asks EC2 for the account's default subnets.
func defaultSubnets(t *testing.T, c *ec2.Client) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: []ec2types.Filter{
		{Name: aws.String("default-for-az"), Values: []string{"true"}}}})
	if err != nil {
		t.Fatalf("describe default subnets: %v", err)
	}
	var ids []string
	for _, s := range out.Subnets {
		ids = append(ids, aws.ToString(s.SubnetId))
	}
	if len(ids) != 3 {
		t.Fatalf("default subnets: %v, want one per zone", ids)
	}
	return ids
}

// describe returns one task.
func (e *devEnv) describe(cluster, arn string) types.Task {
	e.t.Helper()
	out, err := e.ECS.DescribeTasks(e.ctx(), &ecs.DescribeTasksInput{Cluster: aws.String(cluster), Tasks: []string{arn}})
	if err != nil || len(out.Tasks) != 1 {
		e.t.Fatalf("describe %s: %v %v", arn, err, out)
	}
	return out.Tasks[0]
}

// waitStatus polls until the task reaches status (or beyond) and returns it.
func (e *devEnv) waitStatus(cluster, arn, status string, timeout time.Duration) types.Task {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	var t types.Task
	for time.Now().Before(deadline) {
		t = e.describe(cluster, arn)
		if aws.ToString(t.LastStatus) == status || aws.ToString(t.LastStatus) == "STOPPED" {
			return t
		}
		time.Sleep(100 * time.Millisecond)
	}
	e.t.Fatalf("task %s: still %s after %s, wanted %s", arn, aws.ToString(t.LastStatus), timeout, status)
	return t
}
