package bench

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/berthdev/berth/internal/devenv"
)

// Dev is a running `berth dev` with the demo image in its registry and an
// ECS client (aws-sdk-go-v2, keys test/test) pointed at it.
type Dev struct {
	*devenv.Env
	ECS   *ecs.Client
	EC2   *ec2.Client
	HTTP  *http.Client
	Image string // 127.0.0.1:PORT/busybox:latest
	// Subnets are the default VPC's subnets, one per zone.
	Subnets []string
}

// NewDataDir makes a fresh data directory for a dev env. The harness removes
// it (and everything an env made in it) when the benchmark ends.
func (h *Harness) NewDataDir() (string, error) {
	dir, err := os.MkdirTemp("", "berth-bench-")
	if err != nil {
		return "", fmt.Errorf("data dir: %w", err)
	}
	h.Cleanup(func() { devenv.CleanupDataDir(dir) })
	return dir, nil
}

// keepLog copies the log of a failed benchmark's berth out of its data
// dir, which is removed, and says where.
func (h *Harness) keepLog(path, role string) {
	b, err := os.ReadFile(path)
	if err != nil {
		h.Log.Warn("the failed benchmark's log is lost", "role", role, "err", err)
		return
	}
	f, err := os.CreateTemp("", "berth-bench-"+role+"-*.log")
	if err == nil {
		_, err = f.Write(b)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		h.Log.Warn("the failed benchmark's log is lost", "role", role, "err", err)
		return
	}
	h.Log.Info("kept the failed benchmark's log", "role", role, "file", f.Name())
}

// StartDev starts `berth dev` on a free loopback port in a fresh data dir,
// waits until it is ready and pushes the demo image. The env is destroyed
// when the benchmark ends. args are more flags for `berth dev`, e.g. its
// own address pools (--lb-address-pool, --public-ip-pool) so that it hands
// out no address another berth on the host uses.
func (h *Harness) StartDev(ctx context.Context, args ...string) (*Dev, error) {
	env, err := h.startEnv("dev", args)
	if err != nil {
		return nil, err
	}
	if err := env.WaitReady(ctx, 20*time.Millisecond, 60*time.Second); err != nil {
		return nil, err
	}
	h.Log.Info("berth dev ready", "endpoint", env.URL, "data_dir", env.DataDir)
	pctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	out, err := env.Berth(pctx, "image", "build-demo")
	if err != nil {
		return nil, fmt.Errorf("push the demo image: %w", err)
	}
	if !strings.Contains(out, "busybox@sha256:") {
		return nil, fmt.Errorf("push the demo image: build-demo printed %q", out)
	}
	cfg := aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(env.URL),
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")}
	d := &Dev{Env: env, ECS: ecs.NewFromConfig(cfg), EC2: ec2.NewFromConfig(cfg), HTTP: &http.Client{Timeout: 10 * time.Second},
		Image: env.Addr + "/busybox:latest"}
	subnets, err := d.EC2.DescribeSubnets(pctx, &ec2.DescribeSubnetsInput{Filters: []ec2types.Filter{
		{Name: aws.String("default-for-az"), Values: []string{"true"}}}})
	if err != nil {
		return nil, fmt.Errorf("default subnets: %w", err)
	}
	for _, s := range subnets.Subnets {
		d.Subnets = append(d.Subnets, aws.ToString(s.SubnetId))
	}
	return d, nil
}

// startEnv starts `berth ROLE` with more flags args on a free loopback port
// in a fresh data dir; the harness stops it when the benchmark ends, before
// it removes the data dir.
func (h *Harness) startEnv(role string, args []string) (*devenv.Env, error) {
	dir, err := h.NewDataDir()
	if err != nil {
		return nil, err
	}
	addr, err := devenv.FreeAddr()
	if err != nil {
		return nil, err
	}
	env, err := devenv.New(h.Berth, dir, addr)
	if err != nil {
		return nil, err
	}
	env.Role, env.Args = role, args
	if err := env.Start(); err != nil {
		return nil, err
	}
	h.Cleanup(func() {
		env.Stop(15 * time.Second)
		if h.Failed() {
			h.keepLog(env.LogPath, role)
		}
	})
	return env, nil
}

// Metrics scrapes the env's /metrics.
func (d *Dev) Metrics(ctx context.Context) (Metrics, error) {
	return Scrape(ctx, d.HTTP, d.URL)
}

// MetricStep is the agent's histogram of its task steps.
const MetricStep = "berth_agent_task_step_seconds"

// StopTasks stops tasks of cluster, waits until all are STOPPED and then
// until the agent has finished with them (see settle), so that nothing of
// the stops runs during the next measurement.
func (d *Dev) StopTasks(ctx context.Context, cluster string, arns []string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for _, arn := range arns {
		if _, err := d.ECS.StopTask(ctx, &ecs.StopTaskInput{Cluster: aws.String(cluster), Task: aws.String(arn)}); err != nil {
			return fmt.Errorf("StopTask %s: %w", arn, err)
		}
	}
	for {
		out, err := d.ECS.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(cluster), Tasks: arns})
		if err != nil {
			return fmt.Errorf("wait for tasks to stop: %w", err)
		}
		stopped := 0
		for _, t := range out.Tasks {
			if aws.ToString(t.LastStatus) == "STOPPED" {
				stopped++
			}
		}
		if stopped == len(arns) {
			return d.settle(ctx)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d tasks not STOPPED: %w", len(arns)-stopped, len(arns), ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// settle waits until the agent's step metrics stop changing: its last
// report and the sandbox removal come a moment after the client sees
// STOPPED.
func (d *Dev) settle(ctx context.Context) error {
	count := func(m Metrics) uint64 {
		var n uint64
		for _, st := range []string{"report", "stop", "delete", "sandbox_delete"} {
			_, c := m.Histogram(MetricStep, "step", st)
			n += c
		}
		return n
	}
	deadline := time.Now().Add(5 * time.Second)
	prev, err := d.Metrics(ctx)
	if err != nil {
		return err
	}
	for time.Now().Before(deadline) {
		time.Sleep(25 * time.Millisecond)
		cur, err := d.Metrics(ctx)
		if err != nil {
			return err
		}
		if count(cur) == count(prev) {
			return nil
		}
		prev = cur
	}
	return errors.New("the agent kept working 5 s after its tasks stopped")
}
