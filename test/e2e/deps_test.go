package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// The dependsOn tests observe order two ways: while polling DescribeTasks,
// a dependent container must never be RUNNING before its condition holds;
// and each container prints the host's /proc/uptime (shared by all
// containers, 10 ms resolution) when it starts and when it reaches the
// point its dependents wait for, so the logs order the events. Dependents
// are listed before their dependencies, so definition order alone would
// start them first.

// stamp is a shell command printing "marker <uptime> <idle>".
func stamp(marker string) string { return `echo "` + marker + ` $(cat /proc/uptime)"` }

func dependsOn(c types.ContainerDefinition, on string, cond types.ContainerCondition) types.ContainerDefinition {
	c.DependsOn = append(c.DependsOn, types.ContainerDependency{ContainerName: aws.String(on), Condition: cond})
	return c
}

// uptimeIn waits for a marker in a container's log and returns its uptime.
func (e *devEnv) uptimeIn(cluster, arn, name, marker string) float64 {
	e.t.Helper()
	log := e.waitContainerLog(cluster, arn, name, marker+" ", 30*time.Second)
	v := uptimeAfter(log, marker)
	if v < 0 {
		e.t.Fatalf("container %s: no uptime after %q in log:\n%s", name, marker, log)
	}
	return v
}

func running(t types.Task, name string) bool {
	return aws.ToString(findContainer(t, name).LastStatus) == "RUNNING"
}

// TestDependsOnStart: b (condition START on a) starts once a has started.
func TestDependsOnStart(t *testing.T) {
	e := startDev(t)
	b := dependsOn(e.container("b", "sh", "-c", stamp("b-start")+"; exec sleep 300"), "a", types.ContainerConditionStart)
	a := e.container("a", "sh", "-c", stamp("a-start")+"; exec sleep 300")
	arn := e.runTask("deps", e.registerTask("start", "256", "512", b, a))
	task := e.pollTask("deps", arn, 60*time.Second, "RUNNING", func(t types.Task) bool {
		return aws.ToString(t.LastStatus) == "RUNNING" || aws.ToString(t.LastStatus) == "STOPPED"
	}, func(task types.Task) {
		if running(task, "b") && !running(task, "a") {
			t.Errorf("b RUNNING before a: %s", taskSummary(task))
		}
	})
	if aws.ToString(task.LastStatus) != "RUNNING" || !running(task, "a") || !running(task, "b") {
		t.Fatalf("want the task and both containers RUNNING: %s", taskSummary(task))
	}
	if at, bt := e.uptimeIn("deps", arn, "a", "a-start"), e.uptimeIn("deps", arn, "b", "b-start"); bt < at {
		t.Errorf("b started at uptime %.2f, before a at %.2f", bt, at)
	}
}

// TestDependsOnComplete: an init container that exits (even non-zero) lets
// the app that waits for its COMPLETE start; the app waited for it.
func TestDependsOnComplete(t *testing.T) {
	e := startDev(t)
	app := dependsOn(e.container("app", "sh", "-c", stamp("app-start")+"; exec sleep 300"), "init", types.ContainerConditionComplete)
	init := e.container("init", "sh", "-c", stamp("init-start")+"; echo init > /dev/null; sleep 2; "+stamp("init-end")+"; exit 1")
	init.Essential = aws.Bool(false)
	arn := e.runTask("deps", e.registerTask("complete", "256", "512", app, init))
	task := e.pollTask("deps", arn, 60*time.Second, "with app RUNNING", func(t types.Task) bool {
		return running(t, "app") || aws.ToString(t.LastStatus) == "STOPPED"
	}, func(task types.Task) {
		if running(task, "app") && findContainer(task, "init").ExitCode == nil {
			t.Errorf("app RUNNING while init has not completed: %s", taskSummary(task))
		}
	})
	if !running(task, "app") {
		t.Fatalf("app never started: %s", taskSummary(task))
	}
	if c := findContainer(task, "init"); c.ExitCode == nil || *c.ExitCode != 1 {
		t.Fatalf("init: want exit code 1: %s", taskSummary(task))
	}
	task = e.waitStatus("deps", arn, "RUNNING", 30*time.Second)
	if aws.ToString(task.LastStatus) != "RUNNING" {
		t.Fatalf("task: %s, want RUNNING (init is not essential)", taskSummary(task))
	}
	if end, start := e.uptimeIn("deps", arn, "init", "init-end"), e.uptimeIn("deps", arn, "app", "app-start"); start < end {
		t.Errorf("app started at uptime %.2f, before init completed at %.2f", start, end)
	}
}

// TestDependsOnSuccess: an init container that exits 0 lets the app start;
// one that exits 1 fails the task: STOPPED, TaskFailedToStart, with a reason
// naming the dependency, and the app never started.
func TestDependsOnSuccess(t *testing.T) {
	e := startDev(t)
	def := func(family, code string) string {
		app := dependsOn(e.container("app", "sh", "-c", stamp("app-start")+"; exec sleep 300"), "migrate", types.ContainerConditionSuccess)
		migrate := e.container("migrate", "sh", "-c", "sleep 1; "+stamp("migrate-end")+"; exit "+code)
		migrate.Essential = aws.Bool(false)
		return e.registerTask(family, "256", "512", app, migrate)
	}
	good := e.runTask("deps", def("success-ok", "0"))
	bad := e.runTask("deps", def("success-fail", "1"))

	task := e.pollTask("deps", good, 60*time.Second, "with app RUNNING", func(t types.Task) bool {
		return running(t, "app") || aws.ToString(t.LastStatus) == "STOPPED"
	}, func(task types.Task) {
		if running(task, "app") && findContainer(task, "migrate").ExitCode == nil {
			t.Errorf("app RUNNING while migrate has not exited: %s", taskSummary(task))
		}
	})
	if c := findContainer(task, "migrate"); !running(task, "app") || c.ExitCode == nil || *c.ExitCode != 0 {
		t.Fatalf("exit 0: want migrate exited 0 and app RUNNING: %s", taskSummary(task))
	}
	if end, start := e.uptimeIn("deps", good, "migrate", "migrate-end"), e.uptimeIn("deps", good, "app", "app-start"); start < end {
		t.Errorf("app started at uptime %.2f, before migrate exited at %.2f", start, end)
	}

	task = e.waitStatus("deps", bad, "STOPPED", 60*time.Second)
	if aws.ToString(task.LastStatus) != "STOPPED" || task.StopCode != types.TaskStopCodeTaskFailedToStart {
		t.Fatalf("exit 1: want STOPPED with TaskFailedToStart: %s", taskSummary(task))
	}
	if r := aws.ToString(task.StoppedReason); !strings.Contains(r, "migrate") {
		t.Errorf("stoppedReason %q does not name the dependency migrate", r)
	}
	if c := findContainer(task, "migrate"); c.ExitCode == nil || *c.ExitCode != 1 {
		t.Errorf("migrate: want exit code 1: %s", taskSummary(task))
	}
	if c := findContainer(task, "app"); c.ExitCode != nil || aws.ToString(c.LastStatus) != "STOPPED" {
		t.Errorf("app: want STOPPED without an exit code (never started): %s", taskSummary(task))
	}
	if log := e.containerLogs("deps", bad, "app"); strings.Contains(log, "app-start") {
		t.Errorf("app ran although its SUCCESS dependency failed: %q", log)
	}
}

// TestDependsOnHealthy: the app waits until its dependency's health check
// passes; a dependency that turns UNHEALTHY fails the task.
func TestDependsOnHealthy(t *testing.T) {
	e := startDev(t)
	// The db's file appears after 3 s; the first probe (at 1 s) fails
	// within the start period and does not count.
	def := func(family, check string, startPeriod int32) string {
		app := dependsOn(e.container("app", "sh", "-c", stamp("app-start")+"; exec sleep 300"), "db", types.ContainerConditionHealthy)
		db := e.container("db", "sh", "-c", stamp("db-start")+"; sleep 3; touch /tmp/ready; "+stamp("db-ready")+"; exec sleep 300")
		db.HealthCheck = &types.HealthCheck{Command: []string{"CMD-SHELL", check},
			Interval: aws.Int32(5), Timeout: aws.Int32(2), Retries: aws.Int32(1), StartPeriod: aws.Int32(startPeriod)}
		return e.registerTask(family, "256", "512", app, db)
	}
	good := e.runTask("deps", def("healthy", "test -f /tmp/ready", 10))
	bad := e.runTask("deps", def("unhealthy", "exit 1", 0))

	var sawDBUnknown bool
	task := e.pollTask("deps", good, 60*time.Second, "with app RUNNING", func(t types.Task) bool {
		return running(t, "app") || aws.ToString(t.LastStatus) == "STOPPED"
	}, func(task types.Task) {
		db := findContainer(task, "db")
		if running(task, "db") && db.HealthStatus != types.HealthStatusHealthy {
			sawDBUnknown = true
		}
		if running(task, "app") && db.HealthStatus != types.HealthStatusHealthy {
			t.Errorf("app RUNNING while db is %s: %s", db.HealthStatus, taskSummary(task))
		}
	})
	if !running(task, "app") || findContainer(task, "db").HealthStatus != types.HealthStatusHealthy {
		t.Fatalf("want db HEALTHY and app RUNNING: %s", taskSummary(task))
	}
	if !sawDBUnknown {
		t.Errorf("never saw db running and not yet HEALTHY: the check was not waited for")
	}
	if ready, start := e.uptimeIn("deps", good, "db", "db-ready"), e.uptimeIn("deps", good, "app", "app-start"); start < ready {
		t.Errorf("app started at uptime %.2f, before db was ready at %.2f", start, ready)
	}

	task = e.waitStatus("deps", bad, "STOPPED", 60*time.Second)
	if task.StopCode != types.TaskStopCodeTaskFailedToStart || !strings.Contains(aws.ToString(task.StoppedReason), "db") {
		t.Fatalf("unhealthy dependency: want STOPPED, TaskFailedToStart, a reason naming db: %s", taskSummary(task))
	}
	if c := findContainer(task, "app"); c.ExitCode != nil {
		t.Errorf("app ran although db never became HEALTHY: %s", taskSummary(task))
	}
}
