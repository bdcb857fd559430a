// Package density measures how many real tasks one host runs at once and
// what berth costs per running task beyond the container itself (issue 8):
// busybox httpd tasks of 6 MiB on a container instance (EC2 launch type, so
// that the host's real memory, not Fargate's sizes, is what bounds them),
// launched in steps; at each step the memory of the instance's agent, its
// containerd, the containerd shims and the log drivers, and the kernel's
// view of the host (MemAvailable) less the containers' own cgroup memory.
package density

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berthdev/berth/bench"
	"github.com/berthdev/berth/internal/devenv"
)

// Benchmark is the density benchmark.
type Benchmark struct {
	tasks, step int
}

// New returns the benchmark with its defaults.
func New() *Benchmark { return &Benchmark{tasks: 200, step: 50} }

// Name implements bench.Benchmark.
func (b *Benchmark) Name() string { return "density" }

// Title implements bench.Benchmark.
func (b *Benchmark) Title() string {
	return "Density: real tasks on one host, and berth's memory per task"
}

// Flags implements bench.Benchmark.
func (b *Benchmark) Flags(fs *flag.FlagSet) {
	fs.IntVar(&b.tasks, "density.tasks", b.tasks, "tasks to run at once at the last step")
	fs.IntVar(&b.step, "density.step", b.step, "tasks added per step")
}

// usage is the host's memory at one step.
type usage struct {
	tasks                                        int
	agentKiB, containerdKiB, shimKiB, driverKiB  int64 // proportional set sizes
	memAvailableKiB, containersKiB, shims, procs int64
}

func (u usage) berthKiB() int64 { return u.agentKiB + u.containerdKiB + u.shimKiB + u.driverKiB }

// Run implements bench.Benchmark.
func (b *Benchmark) Run(ctx context.Context, h *bench.Harness) (*bench.Result, error) {
	if b.step < 1 || b.tasks < b.step {
		return nil, fmt.Errorf("density: -density.tasks must be at least -density.step (≥ 1)")
	}
	dev, err := h.StartDev(ctx, "--lb-address-pool", "127.101.248.0/24", "--public-ip-pool", "127.100.248.0/24")
	if err != nil {
		return nil, err
	}
	if _, err := dev.ECS.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("density")}); err != nil {
		return nil, err
	}
	dir, err := h.NewDataDir()
	if err != nil {
		return nil, err
	}
	agent := exec.Command(h.Berth, "agent", "--data-dir", dir, "--server", dev.URL, "--cluster", "density",
		"--availability-zone", "us-east-1a", "--host-address", "127.104.248.1", "--region", "us-east-1")
	agent.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test")
	logf, err := os.Create(filepath.Join(dir, "agent.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	agent.Stdout, agent.Stderr = logf, logf
	agent.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := agent.Start(); err != nil {
		return nil, fmt.Errorf("start the container instance: %w", err)
	}
	h.Cleanup(func() {
		_ = agent.Process.Signal(syscall.SIGTERM)
		_, _ = agent.Process.Wait()
		devenv.CleanupDataDir(dir)
	})
	if err := waitInstance(ctx, dev); err != nil {
		return nil, err
	}
	td, err := dev.ECS.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{
		Family: aws.String("density"), NetworkMode: types.NetworkModeNone,
		RequiresCompatibilities: []types.Compatibility{types.CompatibilityEc2},
		ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("web"), Image: aws.String(dev.Image), Essential: aws.Bool(true),
			Memory: aws.Int32(6), StopTimeout: aws.Int32(2), Command: []string{"httpd", "-f", "-p", "8080", "-h", "/"}}},
	})
	if err != nil {
		return nil, err
	}
	tdArn := aws.ToString(td.TaskDefinition.TaskDefinitionArn)

	var steps []usage
	base, err := measure(dir, agent.Process.Pid, 0)
	if err != nil {
		return nil, err
	}
	steps = append(steps, base)
	start := time.Now()
	running := 0
	for running < b.tasks {
		n := min(b.step, b.tasks-running)
		arns, err := launch(ctx, dev, tdArn, n)
		if err != nil {
			return nil, fmt.Errorf("at %d tasks: %w", running, err)
		}
		if err := waitRunning(ctx, dev, arns); err != nil {
			return nil, fmt.Errorf("at %d tasks: %w", running, err)
		}
		running += n
		time.Sleep(2 * time.Second) // let the shims and drivers settle
		u, err := measure(dir, agent.Process.Pid, running)
		if err != nil {
			return nil, err
		}
		h.Log.Info("density step", "tasks", running, "berth_MiB", u.berthKiB()/1024, "containers_MiB", u.containersKiB/1024)
		steps = append(steps, u)
	}
	return b.result(steps, time.Since(start)), nil
}

func waitInstance(ctx context.Context, dev *bench.Dev) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		l, err := dev.ECS.ListContainerInstances(ctx, &ecs.ListContainerInstancesInput{Cluster: aws.String("density")})
		if err == nil && len(l.ContainerInstanceArns) == 1 {
			d, err := dev.ECS.DescribeContainerInstances(ctx, &ecs.DescribeContainerInstancesInput{Cluster: aws.String("density"), ContainerInstances: l.ContainerInstanceArns})
			if err == nil && len(d.ContainerInstances) == 1 && d.ContainerInstances[0].AgentConnected {
				return nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("the container instance did not join in 60 s")
}

func launch(ctx context.Context, dev *bench.Dev, td string, n int) ([]string, error) {
	var arns []string
	for n > 0 {
		c := min(n, 10)
		out, err := dev.ECS.RunTask(ctx, &ecs.RunTaskInput{Cluster: aws.String("density"), TaskDefinition: aws.String(td),
			LaunchType: types.LaunchTypeEc2, Count: aws.Int32(int32(c))})
		if err != nil {
			return nil, err
		}
		if len(out.Failures) > 0 {
			return nil, fmt.Errorf("RunTask failures: %s", aws.ToString(out.Failures[0].Reason))
		}
		for _, t := range out.Tasks {
			arns = append(arns, aws.ToString(t.TaskArn))
		}
		n -= c
	}
	return arns, nil
}

func waitRunning(ctx context.Context, dev *bench.Dev, arns []string) error {
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		runningN := 0
		for i := 0; i < len(arns); i += 100 {
			out, err := dev.ECS.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String("density"), Tasks: arns[i:min(i+100, len(arns))]})
			if err != nil {
				return err
			}
			for _, t := range out.Tasks {
				switch aws.ToString(t.LastStatus) {
				case "RUNNING":
					runningN++
				case "STOPPED":
					return fmt.Errorf("task %s stopped: %s", aws.ToString(t.TaskArn), aws.ToString(t.StoppedReason))
				}
			}
		}
		if runningN == len(arns) {
			return nil
		}
		time.Sleep(500 * time.Millisecond)
	}
	return fmt.Errorf("tasks not RUNNING after 5 minutes")
}

// measure reads the memory of the instance's processes (by their command
// lines: the agent's pid, and everything naming its data dir) and of the
// host.
func measure(dir string, agentPid, tasks int) (usage, error) {
	u := usage{tasks: tasks}
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		pid, _ := strconv.Atoi(filepath.Base(p))
		cmd, err := os.ReadFile(filepath.Join(p, "cmdline"))
		if err != nil {
			continue
		}
		line := strings.ReplaceAll(string(cmd), "\x00", " ")
		argv0, _, _ := strings.Cut(string(cmd), "\x00")
		pss := pssKiB(pid)
		switch {
		case pid == agentPid:
			u.agentKiB += pss
		case strings.Contains(line, "containerd-shim") && strings.Contains(line, dir):
			u.shimKiB += pss
			u.shims++
		case strings.Contains(line, "berth-logdriver") || (strings.Contains(line, "logdriver") && strings.Contains(line, dir)):
			u.driverKiB += pss
		case filepath.Base(argv0) == "containerd" && strings.Contains(line, dir):
			u.containerdKiB += pss
		default:
			continue
		}
		u.procs++
	}
	u.memAvailableKiB = meminfo("MemAvailable")
	u.containersKiB = containersKiB()
	return u, nil
}

// pssKiB is a process's proportional set size (shared pages divided among
// their users), the fair share of memory to charge it.
func pssKiB(pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "Pss:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}

func meminfo(field string) int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}

// containersKiB is the memory the tasks' cgroups hold (their containers'
// own: rss and page cache).
func containersKiB() int64 {
	entries, _ := os.ReadDir("/sys/fs/cgroup/memory/berth")
	var total int64
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/memory/berth", e.Name(), "memory.usage_in_bytes"))
		if err != nil {
			continue
		}
		n, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		total += n / 1024
	}
	return total
}

func (b *Benchmark) result(steps []usage, took time.Duration) *bench.Result {
	base, last := steps[0], steps[len(steps)-1]
	n := float64(last.tasks)
	perTaskBerth := float64(last.berthKiB()-base.berthKiB()) / n / 1024
	perContainer := float64(last.containersKiB-base.containersKiB) / n / 1024
	hostDrop := float64(base.memAvailableKiB-last.memAvailableKiB) / n / 1024
	fits := float64(last.memAvailableKiB) / 1024 / (perTaskBerth + perContainer)
	var d strings.Builder
	fmt.Fprintf(&d, "A fresh `berth dev` and one container instance joined to cluster `density` (`berth agent --cluster`, its own containerd), on this machine. Tasks: EC2 launch type, network mode none, one busybox `httpd` container with a 6 MiB memory limit, launched %d at a time (RunTask, count 10) until %d run at once; after each step, 2 s to settle, then the proportional set size (PSS: shared pages divided among their users) of the instance's agent, its containerd, the shims and the log drivers, the tasks' cgroup memory, and MemAvailable. The step took %s in all.\n\n", b.step, last.tasks, took.Round(time.Second))
	d.WriteString("| tasks | agent | containerd | shims (n) | log drivers | berth total | containers' cgroups | MemAvailable |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, u := range steps {
		fmt.Fprintf(&d, "| %d | %.1f MiB | %.1f MiB | %.1f MiB (%d) | %.1f MiB | %.1f MiB | %.1f MiB | %.0f MiB |\n", u.tasks,
			float64(u.agentKiB)/1024, float64(u.containerdKiB)/1024, float64(u.shimKiB)/1024, u.shims, float64(u.driverKiB)/1024,
			float64(u.berthKiB())/1024, float64(u.containersKiB)/1024, float64(u.memAvailableKiB)/1024)
	}
	fmt.Fprintf(&d, "\nPer running task: berth's processes %.2f MiB (agent, containerd, one shim per task, one log driver per container), the container itself %.2f MiB; MemAvailable fell %.2f MiB per task, but other work on this shared machine moves it by more than that, so it is shown, not used. At that rate the host's available memory holds about %.0f more such tasks (memory bounds them first; the 2 cores are idle once they run). Firecracker's bound of 5 MiB per microVM is quoted as the anchor. A task has one shim whatever its containers (containerd's shim groups a task's containers), so the shim is already per task, not per container.\n", perTaskBerth, perContainer, hostDrop, fits)
	return &bench.Result{
		Figures: []bench.Figure{
			{Name: "berth's memory per running task (agent, containerd, shim, log driver; PSS)", Value: bench.Value{Num: perTaskBerth, Unit: "MiB"},
				Anchor: &bench.Anchor{Name: "Firecracker's memory overhead per microVM", Value: bench.Value{Num: 5, Unit: "MiB"}, Source: "firecracker-microvm.github.io (< 5 MiB)"},
				Target: "≤ 5 MiB", Met: bench.Met(perTaskBerth <= 5)},
			// Figure names stay the same from run to run: -merge matches
			// rows by name.
			{Name: "real tasks running at once on this host (measured)", Value: bench.Value{Num: n, Unit: "tasks"}},
			{Name: "more such tasks the host's available memory would hold", Value: bench.Value{Num: math.Round(fits), Unit: "tasks"}},
		},
		Details: d.String(),
		Reproduce: []string{
			"go build -o bin/ ./cmd/berth ./cmd/berth-logdriver",
			fmt.Sprintf("go run ./bench/cmd/berthbench -berth bin/berth -run '^density$' -density.tasks %d -density.step %d -out /tmp/density.md", b.tasks, b.step),
		},
	}
}
