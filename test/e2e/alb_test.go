package e2e

import (
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// TestServiceBehindALB: a service of 3 web tasks behind an ALB, registered
// in its target group by the service scheduler, becomes stable once its
// targets are healthy, and the ALB's DNS name, resolved through /etc/hosts
// on the host, serves every task. Then, with requests going through the
// ALB all along, not one of them fails while
//   - one task's container is killed and the service replaces it, and
//   - the service is updated to a new revision (minimumHealthyPercent 100,
//     maximumPercent 200): the old tasks drain and stop.
func TestServiceBehindALB(t *testing.T) {
	t.Parallel() // waits on health checks and rollouts: overlaps with the other service tests (own env, own address pools)
	e := startDev(t)
	ctx := e.ctx()
	app := newALBApp(e, "alb", "web", 3, "v1")
	app.waitStable()
	ips := app.waitHealthy(3)

	client := &http.Client{Timeout: 5 * time.Second}
	seen := map[string]int{}
	for range 30 {
		code, body, err := app.get(client)
		if err != nil || code != http.StatusOK {
			t.Fatalf("GET http://%s/: %d %q %v", app.dns, code, body, err)
		}
		seen[strings.TrimPrefix(body, "v1 ")]++
	}
	for ip := range ips {
		if seen[ip] == 0 {
			t.Errorf("no request reached task %s (answers %v)", ip, seen)
		}
	}

	// Kill one task's container: the service replaces it.
	tasks := app.tasks()
	victim := tasks[0]
	id := victim[strings.LastIndex(victim, "/")+1:]
	loop := app.startLoop()
	time.Sleep(500 * time.Millisecond)
	pids := taskPids(id)
	if len(pids) == 0 {
		t.Fatalf("task %s has no processes", id)
	}
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	t.Logf("killed %v of task %s", pids, id)
	waitUntil(t, "the killed task replaced", 90*time.Second, func() bool {
		now := app.tasks()
		return len(now) == 3 && !strings.Contains(strings.Join(now, " "), id)
	})
	app.waitStable()
	app.waitHealthy(3)
	loop.end(t, "while a task was killed and replaced")
	out, err := e.ECS.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String("alb"), Tasks: []string{victim}})
	if err != nil || len(out.Tasks) != 1 || out.Tasks[0].StopCode != types.TaskStopCodeEssentialContainerExited {
		t.Errorf("killed task: %v %+v", err, out)
	}

	// Roll out v2: the loop never fails and ends up seeing v2 only.
	old := app.tasks()
	v2 := app.register("v2")
	loop = app.startLoop()
	time.Sleep(500 * time.Millisecond)
	start := time.Now()
	if _, err := e.ECS.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("alb"), Service: aws.String("web"),
		TaskDefinition: aws.String(v2)}); err != nil {
		t.Fatal(err)
	}
	deactivating := map[string]bool{}
	waitUntil(t, "v2 serving every request", 3*time.Minute, func() bool {
		out, err := e.ECS.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String("alb"), Tasks: old})
		if err == nil {
			for _, tk := range out.Tasks {
				if aws.ToString(tk.LastStatus) == "DEACTIVATING" {
					deactivating[aws.ToString(tk.TaskArn)] = true
				}
			}
		}
		return loop.onlyServing("v2", 30)
	})
	t.Logf("v2 served 100%% of requests %v after UpdateService; old tasks seen DEACTIVATING: %d of %d", time.Since(start).Round(time.Millisecond), len(deactivating), len(old))
	app.waitStable()
	loop.end(t, "during the rollout to v2")
	svc, err := e.ECS.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("alb"), Services: []string{"web"}})
	if err != nil || len(svc.Services) != 1 || aws.ToString(svc.Services[0].TaskDefinition) != v2 || len(svc.Services[0].Deployments) != 1 {
		t.Fatalf("after the rollout: %v\n%s", err, app.describe())
	}
	out, err = e.ECS.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String("alb"), Tasks: old})
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range out.Tasks {
		if aws.ToString(tk.LastStatus) != "STOPPED" || tk.StopCode != types.TaskStopCodeServiceSchedulerInitiated {
			t.Errorf("old task %s: %s %s", aws.ToString(tk.TaskArn), aws.ToString(tk.LastStatus), tk.StopCode)
		}
	}
}

// tasks lists the service's tasks that are meant to run.
func (a *albApp) tasks() []string {
	out, err := a.e.ECS.ListTasks(a.e.ctx(), &ecs.ListTasksInput{Cluster: aws.String(a.cluster), ServiceName: aws.String(a.name),
		DesiredStatus: types.DesiredStatusRunning})
	if err != nil {
		a.e.t.Fatal(err)
	}
	return out.TaskArns
}
