package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// stopAndWait waits until the task is RUNNING and its container has printed
// "ready", calls StopTask, and returns the STOPPED task and how long the
// stop took.
func (e *devEnv) stopAndWait(cluster, arn, container string) (types.Task, time.Duration) {
	e.t.Helper()
	if st := e.waitStatus(cluster, arn, "RUNNING", 60*time.Second); aws.ToString(st.LastStatus) != "RUNNING" {
		e.t.Fatalf("task not RUNNING: %s", taskSummary(st))
	}
	e.waitContainerLog(cluster, arn, container, "ready", 30*time.Second)
	start := time.Now()
	if _, err := e.ECS.StopTask(e.ctx(), &ecs.StopTaskInput{Cluster: aws.String(cluster), Task: aws.String(arn),
		Reason: aws.String("e2e stop")}); err != nil {
		e.t.Fatalf("stop task: %v", err)
	}
	task := e.pollTask(cluster, arn, 60*time.Second, "STOPPED", func(t types.Task) bool {
		return aws.ToString(t.LastStatus) == "STOPPED"
	}, nil)
	return task, time.Since(start)
}

// TestStopTaskSIGTERM: StopTask sends SIGTERM first; a container that exits
// on it stops at once with its own exit code.
func TestStopTaskSIGTERM(t *testing.T) {
	e := startDev(t)
	c := e.container("graceful", "sh", "-c", `trap "echo got TERM; exit 0" TERM; echo ready; while true; do sleep 1; done`)
	c.StopTimeout = aws.Int32(30) // a SIGKILL would come only after 30 s
	arn := e.runTask("stop", e.registerTask("graceful", "256", "512", c))
	task, took := e.stopAndWait("stop", arn, "graceful")
	t.Logf("stopped in %v", took.Round(time.Millisecond))
	gc := findContainer(task, "graceful")
	if gc.ExitCode == nil || *gc.ExitCode != 0 {
		t.Fatalf("graceful: want exit code 0: %s", taskSummary(task))
	}
	if task.StopCode != types.TaskStopCodeUserInitiated {
		t.Errorf("stopCode %q, want UserInitiated", task.StopCode)
	}
	if r := aws.ToString(task.StoppedReason); r != "e2e stop" {
		t.Errorf("stoppedReason %q, want the StopTask reason", r)
	}
	if took > 15*time.Second {
		t.Errorf("stop took %v: the container should have exited on SIGTERM, not waited for the 30 s SIGKILL", took)
	}
	if log := e.waitContainerLog("stop", arn, "graceful", "got TERM", 10*time.Second); strings.Count(log, "got TERM") != 1 {
		t.Errorf("log:\n%s", log)
	}
}

// TestStopTaskSIGKILL: a container that ignores SIGTERM is SIGKILLed once
// its stopTimeout (2 s) has passed: exit code 137, not an OOM.
func TestStopTaskSIGKILL(t *testing.T) {
	e := startDev(t)
	c := e.container("stubborn", "sh", "-c", `trap "" TERM; echo ready; sleep 300`)
	c.StopTimeout = aws.Int32(2)
	arn := e.runTask("stop", e.registerTask("stubborn", "256", "512", c))
	task, took := e.stopAndWait("stop", arn, "stubborn")
	t.Logf("stopped in %v", took.Round(time.Millisecond))
	sc := findContainer(task, "stubborn")
	if sc.ExitCode == nil || *sc.ExitCode != 137 {
		t.Fatalf("stubborn: want exit code 137: %s", taskSummary(task))
	}
	if strings.Contains(aws.ToString(sc.Reason), "OutOfMemory") {
		t.Errorf("stubborn: reason %q: a SIGKILL by StopTask is not an OOM kill", aws.ToString(sc.Reason))
	}
	if task.StopCode != types.TaskStopCodeUserInitiated {
		t.Errorf("stopCode %q, want UserInitiated", task.StopCode)
	}
	if took < 2*time.Second || took > 15*time.Second {
		t.Errorf("stop took %v, want the 2 s stopTimeout and then a prompt SIGKILL", took)
	}
}

// TestPullFailure: a task whose image is not in the registry stops with
// TaskFailedToStart and a CannotPullContainerError reason.
func TestPullFailure(t *testing.T) {
	e := startDev(t)
	c := e.container("ghost", "true")
	c.Image = aws.String(strings.TrimPrefix(e.URL, "http://") + "/nope:latest")
	arn := e.runTask("pull", e.registerTask("ghost", "256", "512", c))
	task := e.waitStatus("pull", arn, "STOPPED", 90*time.Second)
	if aws.ToString(task.LastStatus) != "STOPPED" || task.StopCode != types.TaskStopCodeTaskFailedToStart {
		t.Fatalf("want STOPPED with TaskFailedToStart: %s", taskSummary(task))
	}
	t.Logf("stoppedReason: %s", aws.ToString(task.StoppedReason))
	if r := aws.ToString(task.StoppedReason); !strings.HasPrefix(r, "CannotPullContainerError:") {
		t.Errorf("stoppedReason %q, want CannotPullContainerError: …", r)
	}
	gc := findContainer(task, "ghost")
	if r := aws.ToString(gc.Reason); !strings.HasPrefix(r, "CannotPullContainerError:") {
		t.Errorf("container reason %q, want CannotPullContainerError: …", r)
	}
	if gc.ExitCode != nil || aws.ToString(gc.LastStatus) != "STOPPED" {
		t.Errorf("ghost: want STOPPED without an exit code: %s", taskSummary(task))
	}
}

// TestStopTaskStopSignal: StopTask sends the image's STOPSIGNAL instead of
// SIGTERM. The demo image is re-pushed with STOPSIGNAL SIGINT in its config.
func TestStopTaskStopSignal(t *testing.T) {
	e := startDev(t)
	src, err := name.ParseReference(e.Image, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(src, remote.WithContext(e.ctx()))
	if err != nil {
		t.Fatalf("fetch demo image: %v", err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg = cfg.DeepCopy()
	cfg.Config.StopSignal = "SIGINT"
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		t.Fatal(err)
	}
	target := strings.TrimPrefix(e.URL, "http://") + "/stopsignal:latest"
	dst, err := name.ParseReference(target, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(dst, img, remote.WithContext(e.ctx())); err != nil {
		t.Fatalf("push %s: %v", target, err)
	}

	c := e.container("interrupted", "sh", "-c",
		`trap "echo got INT; exit 0" INT; trap "echo got TERM; exit 0" TERM; echo ready; while true; do sleep 1; done`)
	c.Image = aws.String(target)
	c.StopTimeout = aws.Int32(30)
	arn := e.runTask("stop", e.registerTask("stopsignal", "256", "512", c))
	task, took := e.stopAndWait("stop", arn, "interrupted")
	t.Logf("stopped in %v", took.Round(time.Millisecond))
	if ic := findContainer(task, "interrupted"); ic.ExitCode == nil || *ic.ExitCode != 0 {
		t.Fatalf("interrupted: want exit code 0: %s", taskSummary(task))
	}
	log := e.waitContainerLog("stop", arn, "interrupted", "got ", 10*time.Second)
	if !strings.Contains(log, "got INT") || strings.Contains(log, "got TERM") {
		t.Errorf("want the image's STOPSIGNAL (INT), not TERM; log:\n%s", log)
	}
}

// TestStopTaskWhileWaiting: a task whose app still waits for a dependency
// (HEALTHY, within a long start period) stops at once on StopTask; the app
// never ran.
func TestStopTaskWhileWaiting(t *testing.T) {
	e := startDev(t)
	db := e.container("db", "sh", "-c", `trap "exit 0" TERM; echo ready; while true; do sleep 1; done`)
	db.HealthCheck = &types.HealthCheck{Command: []string{"CMD-SHELL", "exit 1"}, Interval: aws.Int32(5),
		Timeout: aws.Int32(2), Retries: aws.Int32(1), StartPeriod: aws.Int32(300)}
	app := e.container("app", "sh", "-c", "echo app ran; exec sleep 300")
	app.DependsOn = []types.ContainerDependency{{ContainerName: aws.String("db"), Condition: types.ContainerConditionHealthy}}
	arn := e.runTask("stop", e.registerTask("waiting", "256", "512", app, db))
	e.pollTask("stop", arn, 60*time.Second, "with db RUNNING", func(t types.Task) bool {
		return aws.ToString(findContainer(t, "db").LastStatus) == "RUNNING" || aws.ToString(t.LastStatus) == "STOPPED"
	}, nil)
	e.waitContainerLog("stop", arn, "db", "ready", 30*time.Second)
	start := time.Now()
	if _, err := e.ECS.StopTask(e.ctx(), &ecs.StopTaskInput{Cluster: aws.String("stop"), Task: aws.String(arn)}); err != nil {
		t.Fatalf("stop task: %v", err)
	}
	task := e.pollTask("stop", arn, 60*time.Second, "STOPPED", func(t types.Task) bool {
		return aws.ToString(t.LastStatus) == "STOPPED"
	}, nil)
	took := time.Since(start)
	if task.StopCode != types.TaskStopCodeUserInitiated {
		t.Errorf("stopCode %q, want UserInitiated: %s", task.StopCode, taskSummary(task))
	}
	if c := findContainer(task, "db"); c.ExitCode == nil || *c.ExitCode != 0 {
		t.Errorf("db: want exit code 0 (it exits on SIGTERM): %s", taskSummary(task))
	}
	if c := findContainer(task, "app"); c.ExitCode != nil || aws.ToString(c.LastStatus) != "STOPPED" {
		t.Errorf("app: want STOPPED, never started: %s", taskSummary(task))
	}
	if took > 15*time.Second {
		t.Errorf("stop took %v", took)
	}
	if log := e.containerLogs("stop", arn, "app"); strings.Contains(log, "app ran") {
		t.Errorf("app ran: %q", log)
	}
}
