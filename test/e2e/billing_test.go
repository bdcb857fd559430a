package e2e

import (
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestBilling runs a short task and a service task for real, stops them,
// and finds their cost — the one-minute minimum each, to the dollar
// fraction — in Cost Explorer (the real AWS CLI), in `berth bill`, and in
// the billing counter on /metrics.
func TestBilling(t *testing.T) {
	t.Parallel() // mostly waits on its tasks; its own berth dev and address pools
	e := startDev(t)
	cli := newAWSCLI(t, e)
	const cluster = "billing"
	cli.call(nil, "ecs", "create-cluster", "--cluster-name", cluster)
	short := cli.register("bill-short", cliTaskDef("bill-short", e.Image, "sleep", "2"))
	long := cli.register("bill-svc", cliTaskDef("bill-svc", e.Image, "sleep", "600"))

	// A task that runs two seconds and exits.
	shortArn := cli.runTask(cluster, short)

	// A service task, stopped a few seconds after it runs.
	cli.call(nil, "ecs", "create-service", "--cluster", cluster, "--service-name", "svc", "--task-definition", long,
		"--desired-count", "1", "--launch-type", "FARGATE", "--network-configuration", cli.network())
	var svcArn string
	waitUntil(t, "the service's task", time.Minute, func() bool {
		var list struct {
			TaskArns []string `json:"taskArns"`
		}
		cli.call(&list, "ecs", "list-tasks", "--cluster", cluster, "--service-name", "svc")
		if len(list.TaskArns) == 1 {
			svcArn = list.TaskArns[0]
		}
		return svcArn != ""
	})
	if task := cli.waitStatus(cluster, svcArn, "RUNNING", time.Minute); task.LastStatus != "RUNNING" {
		t.Fatalf("service task %s before running: %+v", task.LastStatus, task)
	}
	// While it runs, the agent reports its CPU and memory from its cgroup.
	svcID := svcArn[strings.LastIndexByte(svcArn, '/')+1:]
	for _, name := range []string{"berth_agent_task_memory_bytes", "berth_agent_task_cpu_seconds_total"} {
		series := name + `{cluster="` + cluster + `",family="bill-svc",task_id="` + svcID + `"}`
		if m := getMetrics(t, e); !strings.Contains(m, series) {
			t.Errorf("/metrics lacks %s while the task runs", series)
		}
	}
	time.Sleep(3 * time.Second)
	cli.call(nil, "ecs", "update-service", "--cluster", cluster, "--service", "svc", "--desired-count", "0")

	// Each task is billed from its pull to STOPPED, rounded up to the
	// second, at least a minute: 0.25 vCPU and 0.5 GB.
	want := 0.0
	var first time.Time
	for _, arn := range []string{shortArn, svcArn} {
		task := cli.waitStatus(cluster, arn, "STOPPED", 2*time.Minute)
		if task.LastStatus != "STOPPED" {
			t.Fatalf("task %s: %s", arn, task.LastStatus)
		}
		pull, err1 := time.Parse(time.RFC3339Nano, task.PullStartedAt)
		stop, err2 := time.Parse(time.RFC3339Nano, task.StoppedAt)
		if err1 != nil || err2 != nil {
			t.Fatalf("task %s timestamps %q %q", arn, task.PullStartedAt, task.StoppedAt)
		}
		secs := max(60, math.Ceil(stop.Sub(pull).Seconds()))
		want += 0.25*secs/3600*0.04048 + 0.5*secs/3600*0.004445
		if first.IsZero() || pull.Before(first) {
			first = pull
		}
	}
	t.Logf("expected cost %.10f USD", want)

	// Cost Explorer, grouped by the cluster tag.
	start := first.UTC().Format(time.DateOnly)
	end := time.Now().UTC().AddDate(0, 0, 1).Format(time.DateOnly)
	var got float64
	waitUntil(t, "the cost in Cost Explorer", 30*time.Second, func() bool {
		var reply struct {
			ResultsByTime []struct {
				Groups []struct {
					Keys    []string                                 `json:"Keys"`
					Metrics map[string]struct{ Amount, Unit string } `json:"Metrics"`
				} `json:"Groups"`
			} `json:"ResultsByTime"`
		}
		cli.call(&reply, "ce", "get-cost-and-usage", "--time-period", "Start="+start+",End="+end, "--granularity", "DAILY",
			"--metrics", "UnblendedCost", "--group-by", "Type=TAG,Key=aws:ecs:clusterName",
			"--filter", `{"Dimensions":{"Key":"SERVICE","Values":["Amazon Elastic Container Service"]}}`)
		got = 0
		for _, r := range reply.ResultsByTime {
			for _, g := range r.Groups {
				if len(g.Keys) == 1 && g.Keys[0] == "aws:ecs:clusterName$"+cluster && g.Metrics["UnblendedCost"].Unit == "USD" {
					v, _ := strconv.ParseFloat(g.Metrics["UnblendedCost"].Amount, 64)
					got += v
				}
			}
		}
		return math.Abs(got-want) < 1e-9
	})

	// berth bill: a row of the cluster's service and one of the short task's family.
	out := e.berth("bill", "--since", start)
	t.Logf("berth bill:\n%s", out)
	var svcRow, shortRow bool
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 6 && f[0] == cluster && f[1] == "svc" && f[2] == "bill-svc" {
			svcRow = true
		}
		if len(f) == 6 && f[0] == cluster && f[1] == "-" && f[2] == "bill-short" && f[3] == "0.0042" && f[4] == "0.0083" {
			shortRow = true
		}
	}
	if !svcRow || !shortRow {
		t.Errorf("berth bill lacks the rows of the service (%v) or the short task (%v)", svcRow, shortRow)
	}

	// /metrics: the billing counter, tasks by state, the launch histogram.
	metrics := getMetrics(t, e)
	if strings.Contains(metrics, `task_id="`+svcID+`"`) {
		t.Errorf("/metrics still has the series of the stopped task %s", svcID)
	}
	for _, want := range []string{
		`berth_billing_cost_usd_total{account="000000000000",cluster="billing"}`,
		`berth_billing_vcpu_seconds_total{account="000000000000",cluster="billing"} 30`,
		`berth_tasks{state="STOPPED"} 2`,
		`berth_task_launch_seconds_count 2`,
		`berth_api_requests_total{code="OK",operation="GetCostAndUsage",service="ce"}`,
		`process_resident_memory_bytes`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if t.Failed() {
		for _, l := range strings.Split(metrics, "\n") {
			if strings.HasPrefix(l, "berth_billing") || strings.HasPrefix(l, "berth_tasks") || strings.HasPrefix(l, "berth_task_launch_seconds_count") {
				t.Log(l)
			}
		}
	}
}

func getMetrics(t *testing.T, e *devEnv) string {
	t.Helper()
	resp, err := http.Get(e.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}

// TestBillingAcrossRestart kills berth dev while a task runs: the task is
// billed once, for its whole run, from its pull before the restart to its
// STOPPED after it.
func TestBillingAcrossRestart(t *testing.T) {
	t.Parallel() // mostly waits on its tasks; its own berth dev and address pools
	e := startDev(t)
	cli := newAWSCLI(t, e)
	const cluster = "billing-restart"
	cli.call(nil, "ecs", "create-cluster", "--cluster-name", cluster)
	td := cli.register("bill-restart", cliTaskDef("bill-restart", e.Image, "sleep", "65"))
	arn := cli.runTask(cluster, td)
	if task := cli.waitStatus(cluster, arn, "RUNNING", time.Minute); task.LastStatus != "RUNNING" {
		t.Fatalf("task %s before running", task.LastStatus)
	}
	e.kill()
	time.Sleep(2 * time.Second)
	e.start()
	task := cli.waitStatus(cluster, arn, "STOPPED", 3*time.Minute)
	if task.LastStatus != "STOPPED" {
		t.Fatalf("task %s", task.LastStatus)
	}
	pull, err1 := time.Parse(time.RFC3339Nano, task.PullStartedAt)
	stop, err2 := time.Parse(time.RFC3339Nano, task.StoppedAt)
	if err1 != nil || err2 != nil {
		t.Fatalf("timestamps %q %q", task.PullStartedAt, task.StoppedAt)
	}
	secs := max(60, math.Ceil(stop.Sub(pull).Seconds()))
	if secs <= 60 {
		t.Fatalf("the task ran %s: too short to tell its whole run from the minimum", stop.Sub(pull))
	}
	want := 0.25*secs/3600*0.04048 + 0.5*secs/3600*0.004445
	var got float64
	waitUntil(t, "the cost in Cost Explorer", 30*time.Second, func() bool {
		var reply struct {
			ResultsByTime []struct {
				Total map[string]struct{ Amount, Unit string } `json:"Total"`
			} `json:"ResultsByTime"`
		}
		cli.call(&reply, "ce", "get-cost-and-usage", "--time-period",
			"Start="+pull.UTC().Format(time.DateOnly)+",End="+time.Now().UTC().AddDate(0, 0, 1).Format(time.DateOnly),
			"--granularity", "MONTHLY", "--metrics", "UnblendedCost",
			"--filter", `{"Tags":{"Key":"aws:ecs:clusterName","Values":["`+cluster+`"]}}`)
		got = 0
		for _, r := range reply.ResultsByTime {
			v, _ := strconv.ParseFloat(r.Total["UnblendedCost"].Amount, 64)
			got += v
		}
		return math.Abs(got-want) < 1e-9
	})
	t.Logf("billed %.0f s: %.10f USD", secs, got)
}
