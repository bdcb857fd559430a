package daemon

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/smithy-go"

	"github.com/berthdev/berth/internal/throttle"
)

// TestServerThrottle: ServerConfig.Throttle reaches the router; a throttled
// call is a ThrottlingException and shows in /metrics. Without a Throttle
// nothing is limited.
func TestServerThrottle(t *testing.T) {
	// A refill of one token every 1000 s: nothing refills during the test.
	cfg, err := throttle.Config{}.Apply("ecs:ListClusters=0.001/2")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name      string
		cfg       throttle.Config
		wantCodes []string
	}{
		{"limited", cfg, []string{"", "", "ThrottlingException"}},
		{"unlimited", nil, []string{"", "", ""}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			srv, err := StartServer(ctx, ServerConfig{DataDir: t.TempDir(), Listen: "127.0.0.1:0", Dev: true, Throttle: tt.cfg,
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			client := ecs.NewFromConfig(aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL), RetryMaxAttempts: 1,
				Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")})
			for i, want := range tt.wantCodes {
				_, err := client.ListClusters(ctx, &ecs.ListClustersInput{})
				var ae smithy.APIError
				got := ""
				if errors.As(err, &ae) {
					got = ae.ErrorCode()
				} else if err != nil {
					t.Fatal(err)
				}
				if got != want {
					t.Fatalf("call %d: code %q, want %q", i, got, want)
				}
			}
			resp, err := http.Get(srv.URL + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			line := `berth_api_requests_total{code="ThrottlingException",operation="ListClusters",service="ecs"} 1`
			if got := strings.Contains(string(b), line); got != (tt.cfg != nil) {
				t.Fatalf("/metrics has %s: %v", line, got)
			}
		})
	}
}
