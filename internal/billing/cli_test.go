package billing

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The real AWS CLI against Cost Explorer through berth's protocol router:
// it must send what the handler reads (signing as ce) and parse the reply.

const awsCLI = "/usr/bin/aws"

// awsCLIv1 is AWS CLI v1 where a pyenv install put it (optional).
const awsCLIv1 = "/root/.pyenv/shims/aws"

func (e *env) aws(args ...string) (string, string, error) { return e.awsWith(awsCLI, args...) }

func (e *env) awsWith(bin string, args ...string) (string, string, error) {
	e.t.Helper()
	home := e.t.TempDir()
	if err := os.WriteFile(filepath.Join(home, "config"), []byte("[default]\nregion = us-east-1\n"), 0o600); err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append(args, "--endpoint-url", e.endpoint, "--output", "json")...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "AWS_CONFIG_FILE=" + filepath.Join(home, "config"),
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "credentials"), "AWS_ACCESS_KEY_ID=a", "AWS_SECRET_ACCESS_KEY=secret",
		"AWS_DEFAULT_REGION=us-east-1", "AWS_EC2_METADATA_DISABLED=true", "AWS_PAGER="}
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

func TestGetCostAndUsageCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the AWS CLI")
	}
	if _, err := os.Stat(awsCLI); err != nil {
		t.Skipf("AWS CLI not installed at %s", awsCLI)
	}
	e := newEnv(t)
	now := time.Now().UTC()
	pull := now.Add(-30 * time.Minute).Truncate(time.Hour).Add(10 * time.Minute) // the run lies in one hour
	if _, err := e.s.Record(context.Background(), e.task("t1", "prod", "service:api", pull, pull.Add(3*time.Second))); err != nil {
		t.Fatal(err)
	}
	start, end := now.Format(time.DateOnly), now.AddDate(0, 0, 1).Format(time.DateOnly)
	if pull.Format(time.DateOnly) != start { // just after midnight
		start = pull.Format(time.DateOnly)
	}
	out, errOut, err := e.aws("ce", "get-cost-and-usage", "--time-period", "Start="+start+",End="+end,
		"--granularity", "DAILY", "--metrics", "UnblendedCost", "UsageQuantity",
		"--group-by", "Type=TAG,Key=aws:ecs:clusterName", "Type=DIMENSION,Key=USAGE_TYPE")
	if err != nil {
		t.Fatalf("aws ce get-cost-and-usage: %v: %s", err, errOut)
	}
	var reply struct {
		ResultsByTime []struct {
			Estimated bool
			Groups    []struct {
				Keys    []string
				Metrics map[string]struct{ Amount, Unit string }
			}
		}
		GroupDefinitions []struct{ Type, Key string }
	}
	if err := json.Unmarshal([]byte(out), &reply); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	got := map[string]string{}
	for _, r := range reply.ResultsByTime {
		for _, g := range r.Groups {
			got[strings.Join(g.Keys, " ")] = g.Metrics["UnblendedCost"].Amount + " " + g.Metrics["UnblendedCost"].Unit
		}
	}
	want := map[string]string{
		"aws:ecs:clusterName$prod USE1-Fargate-vCPU-Hours:perCPU": amount(0.25*60/3600*0.04048) + " USD",
		"aws:ecs:clusterName$prod USE1-Fargate-GB-Hours":          amount(0.5*60/3600*0.004445) + " USD",
	}
	if len(got) != len(want) || len(reply.GroupDefinitions) != 2 {
		t.Fatalf("groups %v, want %v (%s)", got, want, out)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %s, want %s", k, got[k], v)
		}
	}

	// HOURLY, with hours in the period.
	hourStart := pull.Truncate(time.Hour)
	out, errOut, err = e.aws("ce", "get-cost-and-usage", "--time-period",
		"Start="+hourStart.Format("2006-01-02T15:04:05Z")+",End="+hourStart.Add(2*time.Hour).Format("2006-01-02T15:04:05Z"),
		"--granularity", "HOURLY", "--metrics", "UnblendedCost")
	if err != nil {
		t.Fatalf("hourly: %v: %s", err, errOut)
	}
	var hourly struct {
		ResultsByTime []struct {
			TimePeriod struct{ Start, End string }
			Total      map[string]struct{ Amount, Unit string }
		}
	}
	if err := json.Unmarshal([]byte(out), &hourly); err != nil || len(hourly.ResultsByTime) != 2 {
		t.Fatalf("hourly: %v: %s", err, out)
	}
	if r := hourly.ResultsByTime[0]; r.TimePeriod.Start != hourStart.Format("2006-01-02T15:04:05Z") ||
		r.Total["UnblendedCost"].Amount != amount(0.25*60/3600*0.04048+0.5*60/3600*0.004445) {
		t.Errorf("hourly: %+v", hourly.ResultsByTime)
	}

	// An error prints in the CLI's way.
	_, errOut, err = e.aws("ce", "get-cost-and-usage", "--time-period", "Start="+end+",End="+start,
		"--granularity", "DAILY", "--metrics", "UnblendedCost")
	if err == nil || !strings.Contains(errOut, "An error occurred (ValidationException) when calling the GetCostAndUsage operation") {
		t.Errorf("end before start: %v: %s", err, errOut)
	}
}

// CLI v1 sends and reads the same.
func TestGetCostAndUsageCLIv1(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the AWS CLI")
	}
	if _, err := os.Stat(awsCLIv1); err != nil {
		t.Skipf("AWS CLI v1 not installed at %s", awsCLIv1)
	}
	e := newEnv(t)
	pull := time.Now().UTC().Add(-30 * time.Minute).Truncate(time.Hour).Add(10 * time.Minute)
	if _, err := e.s.Record(context.Background(), e.task("t1", "prod", "family:web", pull, pull.Add(time.Second))); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := e.awsWith(awsCLIv1, "ce", "get-cost-and-usage", "--time-period",
		"Start="+pull.Format(time.DateOnly)+",End="+pull.AddDate(0, 0, 1).Format(time.DateOnly),
		"--granularity", "DAILY", "--metrics", "UnblendedCost", "--group-by", "Type=TAG,Key=aws:ecs:clusterName")
	if err != nil {
		t.Fatalf("aws (v1) ce get-cost-and-usage: %v: %s", err, errOut)
	}
	want := `"aws:ecs:clusterName$prod"`
	if !strings.Contains(out, want) || !strings.Contains(out, amount(0.25*60/3600*0.04048+0.5*60/3600*0.004445)) {
		t.Errorf("reply lacks %s and the minimum charge: %s", want, out)
	}
}
