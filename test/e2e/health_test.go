package e2e

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// withHealth adds a health check (interval, timeout, retries, startPeriod in
// seconds) to a container definition.
func withHealth(c types.ContainerDefinition, cmd []string, interval, timeout, retries, startPeriod int32) types.ContainerDefinition {
	c.HealthCheck = &types.HealthCheck{Command: cmd, Interval: aws.Int32(interval), Timeout: aws.Int32(timeout),
		Retries: aws.Int32(retries), StartPeriod: aws.Int32(startPeriod)}
	return c
}

func health(t types.Task, name string) types.HealthStatus { return findContainer(t, name).HealthStatus }

// TestHealthCheckHealthy: passing checks in both forms, CMD-SHELL and CMD,
// make each container HEALTHY, and so the task.
func TestHealthCheckHealthy(t *testing.T) {
	e := startDev(t)
	shell := withHealth(e.container("shell", "sleep", "300"), []string{"CMD-SHELL", "true"}, 5, 2, 1, 0)
	cmd := withHealth(e.container("cmd", "sleep", "300"), []string{"CMD", "/bin/true"}, 5, 2, 1, 0)
	arn := e.runTask("health", e.registerTask("healthy", "256", "512", shell, cmd))
	var sawUnknown bool
	task := e.pollTask("health", arn, 60*time.Second, "HEALTHY", func(t types.Task) bool {
		return t.HealthStatus == types.HealthStatusHealthy || aws.ToString(t.LastStatus) == "STOPPED"
	}, func(task types.Task) {
		if task.HealthStatus == types.HealthStatusUnknown {
			sawUnknown = true
		}
		if task.HealthStatus == types.HealthStatusHealthy && (health(task, "shell") != types.HealthStatusHealthy || health(task, "cmd") != types.HealthStatusHealthy) {
			t.Errorf("task HEALTHY before both containers are: %s", taskSummary(task))
		}
	})
	if aws.ToString(task.LastStatus) != "RUNNING" || task.HealthStatus != types.HealthStatusHealthy {
		t.Fatalf("want a RUNNING, HEALTHY task: %s", taskSummary(task))
	}
	for _, name := range []string{"shell", "cmd"} {
		if h := health(task, name); h != types.HealthStatusHealthy {
			t.Errorf("container %s: health %s, want HEALTHY", name, h)
		}
	}
	if !sawUnknown {
		t.Errorf("the task was never UNKNOWN before its first checks")
	}
}

// TestHealthCheckUnhealthy: failing checks make their containers and the
// task UNHEALTHY, honouring retries (consecutive failures needed), timeout
// (a probe running longer fails) and startPeriod (failures within it do not
// count). The task keeps running: an unhealthy standalone task is reported,
// not stopped.
func TestHealthCheckUnhealthy(t *testing.T) {
	e := startDev(t)
	// Probes run 1 s after start and then every interval (5 s).
	once := withHealth(e.container("once", "sleep", "300"), []string{"CMD", "/bin/false"}, 5, 2, 1, 0)
	twice := withHealth(e.container("twice", "sleep", "300"), []string{"CMD-SHELL", "exit 1"}, 5, 2, 2, 0)
	slow := withHealth(e.container("slow", "sleep", "300"), []string{"CMD-SHELL", "sleep 10"}, 5, 2, 1, 0)
	grace := withHealth(e.container("grace", "sleep", "300"), []string{"CMD-SHELL", "exit 1"}, 5, 2, 1, 60)
	arn := e.runTask("health", e.registerTask("unhealthy", "256", "512", once, twice, slow, grace))

	var onceAt, twiceAt time.Time
	start := time.Now()
	task := e.pollTask("health", arn, 60*time.Second, "with twice UNHEALTHY", func(t types.Task) bool {
		return health(t, "twice") == types.HealthStatusUnhealthy || aws.ToString(t.LastStatus) == "STOPPED"
	}, func(task types.Task) {
		now := time.Now()
		if onceAt.IsZero() && health(task, "once") == types.HealthStatusUnhealthy {
			onceAt = now
			if health(task, "twice") == types.HealthStatusUnhealthy {
				t.Errorf("twice (retries 2) UNHEALTHY as soon as once (retries 1): %s", taskSummary(task))
			}
		}
		if twiceAt.IsZero() && health(task, "twice") == types.HealthStatusUnhealthy {
			twiceAt = now
		}
		if h := health(task, "grace"); h == types.HealthStatusUnhealthy || h == types.HealthStatusHealthy {
			t.Errorf("grace: %s within its 60 s start period, want UNKNOWN", h)
		}
	})
	t.Logf("once UNHEALTHY after %v, twice after %v", onceAt.Sub(start).Round(time.Millisecond), twiceAt.Sub(start).Round(time.Millisecond))
	if aws.ToString(task.LastStatus) != "RUNNING" {
		t.Fatalf("task: %s, want RUNNING", taskSummary(task))
	}
	if onceAt.IsZero() {
		t.Fatalf("once never seen UNHEALTHY: %s", taskSummary(task))
	}
	// The second consecutive failure comes one interval (5 s) after the first.
	if d := twiceAt.Sub(onceAt); d < 2*time.Second {
		t.Errorf("twice went UNHEALTHY %v after once: retries 2 should take another 5 s interval", d)
	}
	// slow's probe is killed after its 2 s timeout, long before the 10 s sleep.
	task = e.pollTask("health", arn, 20*time.Second, "with slow UNHEALTHY", func(t types.Task) bool {
		return health(t, "slow") == types.HealthStatusUnhealthy || aws.ToString(t.LastStatus) == "STOPPED"
	}, nil)
	for name, want := range map[string]types.HealthStatus{"once": types.HealthStatusUnhealthy, "twice": types.HealthStatusUnhealthy,
		"slow": types.HealthStatusUnhealthy, "grace": types.HealthStatusUnknown} {
		if h := health(task, name); h != want {
			t.Errorf("container %s: health %s, want %s", name, h, want)
		}
	}
	if task.HealthStatus != types.HealthStatusUnhealthy {
		t.Errorf("task health %s, want UNHEALTHY", task.HealthStatus)
	}
	if aws.ToString(task.LastStatus) != "RUNNING" {
		t.Errorf("task: %s, want RUNNING (unhealthy is reported, not stopped)", taskSummary(task))
	}
}

// TestHealthCheckTurnsUnhealthy: a container that was HEALTHY becomes
// UNHEALTHY when its check starts failing, and the task follows.
func TestHealthCheckTurnsUnhealthy(t *testing.T) {
	e := startDev(t)
	// Healthy at the first probe (1 s); /tmp/sick appears at 3 s; the
	// next probe (6 s) fails.
	c := withHealth(e.container("turns", "sh", "-c", "sleep 3; touch /tmp/sick; exec sleep 300"),
		[]string{"CMD-SHELL", "test ! -f /tmp/sick"}, 5, 2, 1, 0)
	arn := e.runTask("health", e.registerTask("turns", "256", "512", c))
	task := e.pollTask("health", arn, 60*time.Second, "HEALTHY", func(t types.Task) bool {
		return t.HealthStatus == types.HealthStatusHealthy || t.HealthStatus == types.HealthStatusUnhealthy ||
			aws.ToString(t.LastStatus) == "STOPPED"
	}, nil)
	if task.HealthStatus != types.HealthStatusHealthy || health(task, "turns") != types.HealthStatusHealthy {
		t.Fatalf("want HEALTHY first: %s", taskSummary(task))
	}
	task = e.pollTask("health", arn, 30*time.Second, "UNHEALTHY", func(t types.Task) bool {
		return t.HealthStatus == types.HealthStatusUnhealthy || aws.ToString(t.LastStatus) == "STOPPED"
	}, nil)
	if task.HealthStatus != types.HealthStatusUnhealthy || health(task, "turns") != types.HealthStatusUnhealthy {
		t.Fatalf("want UNHEALTHY after the check starts failing: %s", taskSummary(task))
	}
	if aws.ToString(task.LastStatus) != "RUNNING" {
		t.Errorf("task: %s, want RUNNING", taskSummary(task))
	}
}
