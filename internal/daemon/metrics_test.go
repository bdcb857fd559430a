package daemon

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/costexplorer"
	"github.com/aws/aws-sdk-go-v2/service/costexplorer/types"
)

// The server's /metrics has the process and Go collectors, the API
// requests by operation and error code (Cost Explorer's among them), and
// the tasks by state.
func TestServerMetrics(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := StartServer(ctx, ServerConfig{DataDir: t.TempDir(), Listen: "127.0.0.1:0", Dev: true,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ce := costexplorer.NewFromConfig(aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")})
	day := time.Now().UTC().Format(time.DateOnly)
	if _, err := ce.GetCostAndUsage(ctx, &costexplorer.GetCostAndUsageInput{Granularity: types.GranularityDaily, Metrics: []string{"UnblendedCost"},
		TimePeriod: &types.DateInterval{Start: aws.String(day), End: aws.String(day)}}); err == nil {
		t.Fatal("an empty period was accepted")
	}
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		"process_resident_memory_bytes", "go_goroutines",
		`berth_api_requests_total{code="ValidationException",operation="GetCostAndUsage",service="ce"} 1`,
		`berth_api_request_duration_seconds_count{operation="GetCostAndUsage",service="ce"} 1`,
		`berth_tasks{state="RUNNING"} 0`, "berth_task_launch_seconds_count 0",
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
