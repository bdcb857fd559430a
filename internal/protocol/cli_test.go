package protocol

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const awsCLI = "/usr/bin/aws"

// TestAWSCLI runs the real AWS CLI (Debian's package; v1 or v2) against the
// Router: its SigV4 signatures must verify, and its view of our errors must
// be the ones we sent.
func TestAWSCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("runs an external binary")
	}
	if _, err := os.Stat(awsCLI); err != nil {
		t.Skipf("%s not installed", awsCLI)
	}
	srv, _, _, _ := newTestServer(t) // closed by t.Cleanup, after the parallel subtests

	tests := []struct {
		name       string
		args       []string
		secret     string
		token      string
		wantExit0  bool
		wantStdout func(*testing.T, string)
		wantStderr string
	}{
		{
			name: "list clusters", args: []string{"ecs", "list-clusters"}, secret: testSecret, wantExit0: true,
			wantStdout: func(t *testing.T, out string) {
				var doc struct{ ClusterArns []string }
				if err := json.Unmarshal([]byte(out), &doc); err != nil {
					t.Fatalf("output is not JSON: %q", out)
				}
				want := "arn:aws:ecs:us-east-1:" + testAccount + ":cluster/default"
				if len(doc.ClusterArns) != 1 || doc.ClusterArns[0] != want {
					t.Errorf("clusterArns = %v, want [%s]", doc.ClusterArns, want)
				}
			},
		},
		{
			name: "session credentials", args: []string{"ecs", "list-clusters"}, secret: testSecret, token: testToken,
			wantExit0: true,
		},
		{
			name: "describe with a body", args: []string{"ecs", "describe-clusters", "--clusters", "a b", "c"},
			secret: testSecret, wantExit0: true,
			wantStdout: func(t *testing.T, out string) {
				if !strings.Contains(out, `"clusterName": "a b"`) || !strings.Contains(out, `"clusterName": "c"`) {
					t.Errorf("output: %s", out)
				}
			},
		},
		{
			name: "wrong secret", args: []string{"ecs", "list-clusters"}, secret: "wrong",
			wantStderr: "(InvalidSignatureException) when calling the ListClusters operation: " + msgSignatureMismatch,
		},
		{
			name: "service error", args: []string{"ecs", "describe-clusters", "--clusters", "missing"}, secret: testSecret,
			wantStderr: "An error occurred (ClusterNotFoundException) when calling the DescribeClusters operation: Cluster not found.",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel() // the CLI takes seconds to start
			stdout, stderr, err := runAWSCLI(t, srv.URL, tt.secret, tt.token, tt.args...)
			if tt.wantExit0 {
				if err != nil {
					t.Fatalf("aws %v: %v\nstderr: %s", tt.args, err, stderr)
				}
			} else {
				var exitErr *exec.ExitError
				if !errors.As(err, &exitErr) {
					t.Fatalf("aws %v: want a non-zero exit, got %v\nstdout: %s", tt.args, err, stdout)
				}
			}
			if tt.wantStdout != nil {
				tt.wantStdout(t, stdout)
			}
			if !strings.Contains(stderr, tt.wantStderr) {
				t.Errorf("stderr = %q, want it to contain %q", stderr, tt.wantStderr)
			}
		})
	}
}

// runAWSCLI runs the CLI against endpoint with a clean environment: only the
// given credentials, no profile, no metadata service.
func runAWSCLI(t *testing.T, endpoint, secret, token string, args ...string) (string, string, error) {
	t.Helper()
	home := t.TempDir()
	config := filepath.Join(home, "config")
	if err := os.WriteFile(config, []byte("[default]\nregion = us-east-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, awsCLI, append(args, "--endpoint-url", endpoint, "--output", "json")...)
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"AWS_CONFIG_FILE=" + config,
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "credentials"),
		"AWS_ACCESS_KEY_ID=" + testKey,
		"AWS_SECRET_ACCESS_KEY=" + secret,
		"AWS_DEFAULT_REGION=us-east-1",
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_PAGER=",
	}
	if token != "" {
		cmd.Env = append(cmd.Env, "AWS_SESSION_TOKEN="+token)
	}
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}
