package e2e

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// A task whose container uses the awslogs driver ships its output to
// berth's CloudWatch Logs: `aws logs get-log-events`, `aws logs tail` and
// `berth logs` return every line once, in order, and FilterLogEvents finds
// a line by a term. A missing group without awslogs-create-group stops the
// task with ECS's reason.
func TestAWSLogs(t *testing.T) {
	t.Parallel() // mostly waits on its tasks; its own berth dev and address pools
	e := startDev(t)
	cli := newAWSCLI(t, e)
	const group, lines = "/ecs/e2e-awslogs", 10000
	c := e.container("main", "sh", "-c", "seq 1 "+strconv.Itoa(lines))
	c.LogConfiguration = &types.LogConfiguration{LogDriver: types.LogDriverAwslogs, Options: map[string]string{
		"awslogs-group": group, "awslogs-region": "us-east-1", "awslogs-stream-prefix": "app", "awslogs-create-group": "true",
	}}
	td := e.registerTask("awslogs", "256", "512", c)
	arn := e.runTask("logs", td)
	task := e.waitStatus("logs", arn, "STOPPED", 3*time.Minute)
	if code := findContainer(task, "main").ExitCode; code == nil || *code != 0 {
		t.Fatalf("container exit %v, reason %q", code, aws.ToString(task.StoppedReason))
	}
	stream := "app/main/" + idFromArn(arn)

	want := make([]string, lines)
	for i := range want {
		want[i] = strconv.Itoa(i + 1)
	}
	check := func(what string, got []string) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: %d lines, want %d (first %q)", what, len(got), len(want), got[:min(len(got), 5)])
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%s: line %d is %q, want %q", what, i, got[i], want[i])
			}
		}
	}

	// get-log-events from the head, 1,000 at a time, until the forward
	// token comes back unchanged. The task is STOPPED: its output was
	// shipped before it got there.
	var got []string
	token := ""
	for pages := 0; ; pages++ {
		args := []string{"logs", "get-log-events", "--log-group-name", group, "--log-stream-name", stream,
			"--start-from-head", "--limit", "1000"}
		if token != "" {
			args = append(args, "--next-token", token)
		}
		var out struct {
			Events []struct {
				Message   string `json:"message"`
				Timestamp int64  `json:"timestamp"`
			} `json:"events"`
			NextForwardToken string `json:"nextForwardToken"`
		}
		cli.call(&out, args...)
		for _, ev := range out.Events {
			got = append(got, ev.Message)
		}
		if out.NextForwardToken == token || pages > 20 {
			break
		}
		token = out.NextForwardToken
	}
	check("get-log-events", got)

	// aws logs tail (FilterLogEvents, paginated by the CLI): "TIME STREAM MESSAGE".
	stdout, stderr, err := cli.run("logs", "tail", group, "--since", "1h")
	if err != nil {
		t.Fatalf("aws logs tail: %v\n%s", err, stderr)
	}
	got = got[:0]
	for _, l := range strings.Split(strings.TrimSpace(stdout), "\n") {
		f := strings.Fields(l)
		if len(f) != 3 || f[1] != stream {
			t.Fatalf("aws logs tail printed %q", l)
		}
		got = append(got, f[2])
	}
	check("aws logs tail", got)

	// filter-log-events by a term.
	var filtered struct {
		Events []struct {
			Message       string `json:"message"`
			LogStreamName string `json:"logStreamName"`
			EventID       string `json:"eventId"`
		} `json:"events"`
	}
	cli.call(&filtered, "logs", "filter-log-events", "--log-group-name", group, "--filter-pattern", "7777")
	if len(filtered.Events) != 1 || filtered.Events[0].Message != "7777" || filtered.Events[0].LogStreamName != stream {
		t.Fatalf("filter-log-events 7777: %+v", filtered.Events)
	}

	// berth logs reads the same stream through GetLogEvents.
	out := e.berth("logs", "--cluster", "logs", idFromArn(arn))
	check("berth logs", strings.Split(strings.TrimSuffix(out, "\n"), "\n"))

	// No group and no awslogs-create-group: the task fails to start.
	bad := e.container("main", "sh", "-c", "echo never")
	bad.LogConfiguration = &types.LogConfiguration{LogDriver: types.LogDriverAwslogs, Options: map[string]string{
		"awslogs-group": "/ecs/missing", "awslogs-region": "us-east-1", "awslogs-stream-prefix": "app",
	}}
	arn = e.runTask("logs", e.registerTask("awslogs-missing", "256", "512", bad))
	task = e.waitStatus("logs", arn, "STOPPED", 2*time.Minute)
	reason := aws.ToString(task.StoppedReason)
	if string(task.StopCode) != "TaskFailedToStart" ||
		!strings.Contains(reason, "ResourceInitializationError: failed to validate logger args") ||
		!strings.Contains(reason, "The specified log group does not exist") {
		t.Fatalf("task with a missing group: stopCode %s, reason %q", task.StopCode, reason)
	}
}

// SIGKILL of berth dev while a container logs through awslogs: the
// container keeps writing (its log driver outlives berth), the restarted
// agent resumes shipping where the stream ends, and every line is in the
// stream exactly once, in order.
func TestAWSLogsSurvivesRestart(t *testing.T) {
	t.Parallel() // mostly waits on its tasks; its own berth dev and address pools
	e := startDev(t)
	const lines = 20000
	c := e.container("main", "sh", "-c", "for j in $(seq 0 39); do seq $((j*500+1)) $((j*500+500)); sleep 0.25; done")
	c.LogConfiguration = &types.LogConfiguration{LogDriver: types.LogDriverAwslogs, Options: map[string]string{
		"awslogs-group": "/ecs/restart", "awslogs-region": "us-east-1", "awslogs-stream-prefix": "app", "awslogs-create-group": "true",
	}}
	arn := e.runTask("logs", e.registerTask("awslogs-restart", "256", "512", c))
	e.waitStatus("logs", arn, "RUNNING", time.Minute)
	time.Sleep(3 * time.Second)
	e.kill()
	time.Sleep(2 * time.Second)
	e.start()
	e.waitStatus("logs", arn, "STOPPED", 2*time.Minute)

	cw := cloudwatchlogs.NewFromConfig(e.awsConfig())
	var got []string
	token := ""
	for pages := 0; pages < 100; pages++ {
		in := &cloudwatchlogs.GetLogEventsInput{LogGroupName: aws.String("/ecs/restart"),
			LogStreamName: aws.String("app/main/" + idFromArn(arn)), StartFromHead: aws.Bool(true)}
		if token != "" {
			in.NextToken = aws.String(token)
		}
		out, err := cw.GetLogEvents(e.ctx(), in)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range out.Events {
			got = append(got, aws.ToString(ev.Message))
		}
		if aws.ToString(out.NextForwardToken) == token {
			break
		}
		token = aws.ToString(out.NextForwardToken)
	}
	if len(got) != lines {
		t.Fatalf("%d lines after a restart, want %d", len(got), lines)
	}
	for i, m := range got {
		if m != strconv.Itoa(i+1) {
			t.Fatalf("line %d is %q", i, m)
		}
	}
}
