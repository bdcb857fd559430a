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

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"
)

const (
	awsCLIPath = "/usr/bin/aws"
	skopeoBin  = "/usr/bin/skopeo"
)

// TestAWSCLIAndSkopeo is issue 3's acceptance path with real clients: the
// AWS CLI creates a repository and hands out a password, skopeo pushes with
// it, the CLI sees and deletes the image and the repository. The CLI is
// always given --endpoint-url and an empty config, so it never reaches AWS.
func TestAWSCLIAndSkopeo(t *testing.T) {
	if testing.Short() {
		t.Skip("AWS CLI test skipped in -short mode")
	}
	for _, bin := range []string{awsCLIPath, skopeoBin} {
		if _, err := os.Stat(bin); err != nil {
			t.Skipf("%s not installed: %v", bin, err)
		}
	}
	e := newEnv(t, false)
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
	run := func(bin string, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if bin == awsCLIPath {
			args = append(args, "--endpoint-url", e.url, "--output", "json")
		}
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env, cmd.Dir = env, dir
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", filepath.Base(bin), args, err, stderr.String())
		}
		return string(out)
	}
	decode := func(s string, v any) {
		t.Helper()
		if err := json.Unmarshal([]byte(s), v); err != nil {
			t.Fatalf("decode %q: %v", s, err)
		}
	}

	var created struct {
		Repository struct{ RepositoryUri, RepositoryArn string }
	}
	decode(run(awsCLIPath, "ecr", "create-repository", "--repository-name", "cli/web"), &created)
	if want := e.host + "/cli/web"; created.Repository.RepositoryUri != want {
		t.Errorf("repositoryUri %q, want %q", created.Repository.RepositoryUri, want)
	}
	password := strings.TrimSpace(run(awsCLIPath, "ecr", "get-login-password"))
	if password == "" {
		t.Fatal("get-login-password printed nothing")
	}

	img, err := random.Image(4096, 2)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	oci := filepath.Join(dir, "layout")
	lp, err := layout.Write(oci, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	run(skopeoBin, "--insecure-policy", "copy", "--preserve-digests", "--dest-tls-verify=false",
		"--dest-creds", "AWS:"+password, "oci:"+oci, "docker://"+created.Repository.RepositoryUri+":v1")

	var described struct {
		ImageDetails []struct {
			ImageDigest string
			ImageTags   []string
		}
	}
	decode(run(awsCLIPath, "ecr", "describe-images", "--repository-name", "cli/web"), &described)
	if len(described.ImageDetails) != 1 || described.ImageDetails[0].ImageDigest != want.String() ||
		strings.Join(described.ImageDetails[0].ImageTags, ",") != "v1" {
		t.Errorf("describe-images %+v, want %s v1", described, want)
	}

	var deleted struct {
		ImageIds []struct{ ImageDigest, ImageTag string }
		Failures []any
	}
	decode(run(awsCLIPath, "ecr", "batch-delete-image", "--repository-name", "cli/web", "--image-ids", "imageTag=v1"), &deleted)
	if len(deleted.ImageIds) != 1 || deleted.ImageIds[0].ImageDigest != want.String() || len(deleted.Failures) != 0 {
		t.Errorf("batch-delete-image %+v", deleted)
	}
	decode(run(awsCLIPath, "ecr", "describe-images", "--repository-name", "cli/web"), &described)
	if len(described.ImageDetails) != 0 {
		t.Errorf("images left after batch-delete-image: %+v", described)
	}
	run(skopeoBin, "--insecure-policy", "copy", "--dest-tls-verify=false",
		"--dest-creds", "AWS:"+password, "oci:"+oci, "docker://"+created.Repository.RepositoryUri+":v2")
	run(awsCLIPath, "ecr", "delete-repository", "--repository-name", "cli/web", "--force")
	var repos struct{ Repositories []any }
	decode(run(awsCLIPath, "ecr", "describe-repositories"), &repos)
	if len(repos.Repositories) != 0 {
		t.Errorf("repositories left: %+v", repos)
	}
}
