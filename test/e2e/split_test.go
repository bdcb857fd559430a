package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berthdev/berth/internal/devenv"
)

// proc is a berth process of a split deployment.
type proc struct {
	cmd *exec.Cmd
	out *os.File
}

func startProc(t *testing.T, logPath string, args ...string) *proc {
	t.Helper()
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(berthBin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, out: f}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _, _ = cmd.Process.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
		}
		f.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("%s:\n%s", filepath.Base(logPath), b)
		}
	})
	return p
}

// waitLine waits for a line of the process's output matching re.
func waitLine(t *testing.T, path string, re *regexp.Regexp) []string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		f, err := os.Open(path)
		if err == nil {
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				if m := re.FindStringSubmatch(sc.Text()); m != nil {
					f.Close()
					return m
				}
			}
			f.Close()
		}
		time.Sleep(50 * time.Millisecond)
	}
	b, _ := os.ReadFile(path)
	t.Fatalf("no line matching %s in %s:\n%s", re, path, b)
	return nil
}

// TestSplitRoles runs the roles as separate processes, as on several hosts:
// two `berth server` replicas sharing one etcd (the second uses the first's
// through --etcd-endpoints) and one `berth agent` joined with the token. A
// task run through one replica is placed on the agent and visible and
// stoppable through the other.
func TestSplitRoles(t *testing.T) {
	requireRoot(t)
	dir, err := os.MkdirTemp("", "berth-e2e-split-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { devenv.CleanupDataDir(dir) })
	addrA, addrB := freeAddr(t), freeAddr(t)

	// No anonymous registry: images are pushed with an ECR token, and the agent
	// pulls them with credentials of the task's own account.
	startProc(t, filepath.Join(dir, "server-a.log"), "server", "--data-dir", filepath.Join(dir, "server"), "--listen", addrA)
	m := waitLine(t, filepath.Join(dir, "server-a.log"), regexp.MustCompile(`access key id (\S+) secret access key (\S+)`))
	akid, secret := m[1], m[2]
	token := waitLine(t, filepath.Join(dir, "server-a.log"), regexp.MustCompile(`agent join token (\S+)`))[1]

	var ports struct {
		Client int `json:"client"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "server", "etcd", "ports.json"))
	if err != nil || json.Unmarshal(b, &ports) != nil {
		t.Fatalf("etcd ports of server a: %v %s", err, b)
	}
	etcdURL := "http://127.0.0.1:" + itoa(ports.Client)
	startProc(t, filepath.Join(dir, "server-b.log"), "server", "--data-dir", filepath.Join(dir, "server2"), "--listen", addrB, "--etcd-endpoints", etcdURL)
	mb := waitLine(t, filepath.Join(dir, "server-b.log"), regexp.MustCompile(`access key id (\S+) secret access key (\S+)`))
	if mb[1] != akid {
		t.Fatalf("replica b has root key %s, a has %s: they do not share state", mb[1], akid)
	}

	agentAddr := freeAddr(t)
	startProc(t, filepath.Join(dir, "agent.log"), "agent", "--data-dir", filepath.Join(dir, "agent"), "--server", "http://"+addrA,
		"--token", token, "--availability-zone", "us-east-1b", "--listen", agentAddr)
	waitLine(t, filepath.Join(dir, "agent.log"), regexp.MustCompile(`registered with control plane`))

	// The wrong token is refused.
	req, _ := http.NewRequest(http.MethodPost, "http://"+addrA+"/_berth/agent/v1/register", strings.NewReader(`{"nodeId":"x"}`))
	req.Header.Set("Authorization", "Bearer wrong")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("register with a wrong token: %v %v", err, resp)
	} else {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}

	push := exec.Command(berthBin, "--data-dir", dir, "--endpoint", "http://"+addrA, "image", "build-demo")
	push.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+akid, "AWS_SECRET_ACCESS_KEY="+secret)
	out, err := push.CombinedOutput()
	if err != nil {
		t.Fatalf("build-demo: %v\n%s", err, out)
	}
	image := addrA + "/busybox:latest"

	client := func(addr string) *ecs.Client {
		return ecs.NewFromConfig(aws.Config{Region: "us-east-1", BaseEndpoint: aws.String("http://" + addr),
			Credentials: credentials.NewStaticCredentialsProvider(akid, secret, "")})
	}
	ec2Client := func(addr string) *ec2.Client {
		return ec2.NewFromConfig(aws.Config{Region: "us-east-1", BaseEndpoint: aws.String("http://" + addr),
			Credentials: credentials.NewStaticCredentialsProvider(akid, secret, "")})
	}
	a, bc := client(addrA), client(addrB)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// test/test is a dev-mode convenience only.
	testKey := ecs.NewFromConfig(aws.Config{Region: "us-east-1", BaseEndpoint: aws.String("http://" + addrA),
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")})
	if _, err := testKey.ListClusters(ctx, &ecs.ListClustersInput{}); err == nil || !strings.Contains(err.Error(), "UnrecognizedClientException") {
		t.Fatalf("test/test outside dev mode: %v", err)
	}

	if _, err := bc.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("split")}); err != nil {
		t.Fatal(err)
	}
	td, err := bc.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{
		Family: aws.String("split"), NetworkMode: types.NetworkModeAwsvpc, Cpu: aws.String("256"), Memory: aws.String("512"),
		RequiresCompatibilities: []types.Compatibility{types.CompatibilityFargate},
		ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("app"), Image: aws.String(image),
			Command: []string{"sleep", "300"}, StopTimeout: aws.Int32(2)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	run, err := bc.RunTask(ctx, &ecs.RunTaskInput{Cluster: aws.String("split"), TaskDefinition: td.TaskDefinition.TaskDefinitionArn,
		LaunchType:           types.LaunchTypeFargate,
		NetworkConfiguration: &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{Subnets: defaultSubnets(t, ec2Client(addrA))}}})
	if err != nil || len(run.Tasks) != 1 {
		t.Fatalf("run: %v %+v", err, run)
	}
	arn := aws.ToString(run.Tasks[0].TaskArn)
	waitFor := func(c *ecs.Client, status string) types.Task {
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			out, err := c.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String("split"), Tasks: []string{arn}})
			if err == nil && len(out.Tasks) == 1 && aws.ToString(out.Tasks[0].LastStatus) == status {
				return out.Tasks[0]
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("task never %s", status)
		return types.Task{}
	}
	task := waitFor(a, "RUNNING")
	if aws.ToString(task.AvailabilityZone) != "us-east-1b" {
		t.Fatalf("task in zone %s, the only host serves us-east-1b", aws.ToString(task.AvailabilityZone))
	}
	if _, err := a.StopTask(ctx, &ecs.StopTaskInput{Cluster: aws.String("split"), Task: aws.String(arn)}); err != nil {
		t.Fatal(err)
	}
	task = waitFor(bc, "STOPPED")
	if task.StopCode != types.TaskStopCodeUserInitiated {
		t.Fatalf("stop code %s", task.StopCode)
	}
	// A standalone agent serves its own metrics.
	resp, err := http.Get("http://" + agentAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), `berth_agent_task_step_seconds_count{step="start"} 1`) {
		t.Fatalf("agent metrics lack the task's start step:\n%s", metrics)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
