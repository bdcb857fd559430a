package ecr_test

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

// TestAWSCLIPolicies: the real AWS CLI puts and reads a lifecycle policy
// that expires untagged images (which a reconciler run then removes) and a
// repository policy.
func TestAWSCLIPolicies(t *testing.T) {
	if testing.Short() {
		t.Skip("AWS CLI test skipped in -short mode")
	}
	if _, err := os.Stat(awsCLIPath); err != nil {
		t.Skipf("%s not installed: %v", awsCLIPath, err)
	}
	e, svc := newSvcEnv(t, -1)
	dir := t.TempDir()
	config, creds := filepath.Join(dir, "config"), filepath.Join(dir, "credentials")
	for _, f := range []string{config, creds} {
		if err := os.WriteFile(f, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "AWS_ACCESS_KEY_ID=a", "AWS_SECRET_ACCESS_KEY=a",
		"AWS_DEFAULT_REGION=us-east-1", "AWS_EC2_METADATA_DISABLED=true", "AWS_CONFIG_FILE=" + config,
		"AWS_SHARED_CREDENTIALS_FILE=" + creds, "AWS_PAGER="}
	run := func(args ...string) (string, error) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, awsCLIPath, append(args, "--endpoint-url", e.url, "--output", "json")...)
		cmd.Env, cmd.Dir = env, dir
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return stderr.String(), err
		}
		return string(out), nil
	}
	must := func(args ...string) string {
		t.Helper()
		out, err := run(args...)
		if err != nil {
			t.Fatalf("aws %v: %v\n%s", args, err, out)
		}
		return out
	}
	must("ecr", "create-repository", "--repository-name", "cli/app")
	pw := strings.TrimSpace(must("ecr", "get-login-password"))
	old := e.pushed(t, pw, "cli/app:latest")
	mid := e.pushed(t, pw, "cli/app:latest")
	cur := e.pushed(t, pw, "cli/app:latest")

	policy := `{"rules":[{"rulePriority":1,"description":"expire untagged",` +
		`"selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`
	must("ecr", "put-lifecycle-policy", "--repository-name", "cli/app", "--lifecycle-policy-text", policy)
	var got struct{ LifecyclePolicyText, RegistryId string }
	if err := json.Unmarshal([]byte(must("ecr", "get-lifecycle-policy", "--repository-name", "cli/app")), &got); err != nil ||
		got.LifecyclePolicyText != policy || got.RegistryId != accountA {
		t.Errorf("get-lifecycle-policy: %+v %v", got, err)
	}
	e.skew.Store(3600) // past the grace period of fresh untagged images
	runLifecycle(t, svc)
	if got, w := imageSet(t, e.a, "cli/app"), want(mid+"=", cur+"=latest"); strings.Join(got, " ") != strings.Join(w, " ") {
		t.Errorf("after the run %v, want %v (%s expired)", got, w, old)
	}
	if out, err := run("ecr", "put-lifecycle-policy", "--repository-name", "cli/app", "--lifecycle-policy-text",
		strings.Replace(policy, `"tagStatus":"untagged"`, `"tagStatus":"sometimes"`, 1)); err == nil ||
		!strings.Contains(out, "InvalidParameterException") {
		t.Errorf("an invalid lifecycle policy: %v %s", err, out)
	}
	must("ecr", "delete-lifecycle-policy", "--repository-name", "cli/app")

	must("ecr", "set-repository-policy", "--repository-name", "cli/app", "--policy-text", allowBPull)
	var rp struct{ PolicyText string }
	if err := json.Unmarshal([]byte(must("ecr", "get-repository-policy", "--repository-name", "cli/app")), &rp); err != nil || rp.PolicyText != allowBPull {
		t.Errorf("get-repository-policy: %+v %v", rp, err)
	}
	if err := e.pull(t, e.password(t, e.b), accountA+"/cli/app:latest"); err != nil {
		t.Errorf("B pulls with the policy the CLI set: %v", err)
	}
	must("ecr", "delete-repository-policy", "--repository-name", "cli/app")
	if out, err := run("ecr", "get-repository-policy", "--repository-name", "cli/app"); err == nil ||
		!strings.Contains(out, "RepositoryPolicyNotFoundException") {
		t.Errorf("get-repository-policy after delete: %v %s", err, out)
	}
}
