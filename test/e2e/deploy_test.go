package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
)

// TestDeploy: `berth deploy` takes the demo image to a URL behind a load
// balancer; `berth service ls` and `berth service scale` see and change the
// service; a deploy with another command rolls the service to a new revision
// that alone answers once the deploy returns; a deploy with the same
// arguments registers nothing new.
func TestDeploy(t *testing.T) {
	t.Parallel() // waits on health checks and rollouts: overlaps with the other service tests (own env, own address pools)
	e := startDev(t)
	ctx := e.ctx()
	// The page names its version and the task's address.
	web := func(version string) []string {
		return []string{"sh", "-c", `mkdir -p /www && echo "` + version + ` $(ip -4 -o addr show dev eth0 | sed 's/.*inet \([0-9.]*\).*/\1/')" > /www/index.html && exec httpd -f -p 8080 -h /www`}
	}
	deploy := func(extra []string, command []string) string {
		t.Helper()
		args := append([]string{"deploy", e.Image, "--name", "hello", "--port", "8080"}, extra...)
		stdout := e.berthLogged(append(append(args, "--"), command...)...)
		lines := strings.Split(strings.TrimSpace(stdout), "\n")
		url := lines[len(lines)-1]
		if !regexp.MustCompile(`^http://[a-z0-9.-]+/$`).MatchString(url) {
			t.Fatalf("deploy: last line of stdout %q is not a URL (stdout %q)", url, stdout)
		}
		return url
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	// pages GETs url n times and returns how often each page answered.
	pages := func(url string, n int) map[string]int {
		t.Helper()
		seen := map[string]int{}
		for range n {
			resp, err := client.Get(url)
			if err != nil {
				t.Fatalf("GET %s: %v", url, err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET %s: %s %q", url, resp.Status, b)
			}
			seen[strings.TrimSpace(string(b))]++
		}
		return seen
	}
	onlyVersion := func(seen map[string]int, version string) {
		t.Helper()
		for page := range seen {
			if !strings.HasPrefix(page, version+" ") {
				t.Fatalf("pages %v: want only %s", seen, version)
			}
		}
	}
	service := func() (desired, running int32, taskDef string) {
		t.Helper()
		out, err := e.ECS.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("default"), Services: []string{"hello"}})
		if err != nil || len(out.Services) != 1 {
			t.Fatalf("describe service hello: %v %v", err, out)
		}
		s := out.Services[0]
		return s.DesiredCount, s.RunningCount, aws.ToString(s.TaskDefinition)
	}

	// From nothing to a URL.
	url := deploy([]string{"--count", "2"}, web("v1"))
	seen := pages(url, 20)
	onlyVersion(seen, "v1")
	t.Logf("v1 pages: %v", seen)
	if len(seen) != 2 {
		t.Errorf("pages %v: want both tasks to answer", seen)
	}

	// service ls shows it at 2 of 2.
	ls := e.berth("service", "ls")
	row := regexp.MustCompile(`(?m)^hello\s+ACTIVE\s+2\s+2\s+0\s+hello:1\s+COMPLETED\s*$`)
	if !row.MatchString(ls) {
		t.Fatalf("service ls:\n%s\nwant hello ACTIVE 2 2 0 hello:1 COMPLETED", ls)
	}

	// Scale to 3 and wait.
	e.berthLogged("service", "scale", "hello", "3", "--wait")
	if desired, running, _ := service(); desired != 3 || running != 3 {
		t.Fatalf("after scale: desired %d running %d, want 3 and 3", desired, running)
	}

	// A new command: a new revision, and only it answers once deploy returns.
	url2 := deploy(nil, web("v2"))
	if url2 != url {
		t.Errorf("second deploy printed %s, first %s", url2, url)
	}
	seen = pages(url, 30)
	onlyVersion(seen, "v2")
	t.Logf("v2 pages: %v", seen)
	desired, running, td := service()
	if desired != 3 || running != 3 || !strings.HasSuffix(td, "task-definition/hello:2") {
		t.Fatalf("after the second deploy: desired %d running %d %s, want 3, 3, hello:2", desired, running, td)
	}

	// The same again: nothing new is registered.
	deploy(nil, web("v2"))
	if _, _, td3 := service(); td3 != td {
		t.Errorf("third deploy with the same arguments: task definition %s, want %s", td3, td)
	}
	tds, err := e.ECS.ListTaskDefinitions(ctx, &ecs.ListTaskDefinitionsInput{FamilyPrefix: aws.String("hello")})
	if err != nil {
		t.Fatal(err)
	}
	if len(tds.TaskDefinitionArns) != 2 {
		t.Errorf("task definitions of hello: %v, want 2 revisions", tds.TaskDefinitionArns)
	}
	onlyVersion(pages(url, 10), "v2")
}

// berthLogged runs a CLI verb like berth, logging its stderr (the verbs'
// progress) to the test log.
func (e *devEnv) berthLogged(args ...string) string {
	e.t.Helper()
	cmd := exec.Command(berthBin, append([]string{"--data-dir", e.DataDir, "--endpoint", e.URL}, args...)...)
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	out, err := cmd.Output()
	e.t.Logf("berth %s (%s):\n%s", strings.Join(args[:min(len(args), 4)], " "), time.Since(start).Round(time.Millisecond), stderr.String())
	if err != nil {
		e.t.Fatalf("berth %v: %v\n%s", args, err, fmt.Sprint(string(out)))
	}
	return string(out)
}
