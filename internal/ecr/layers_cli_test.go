package ecr_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// TestAWSCLILayerPush pushes an image with the real AWS CLI's layer-upload
// commands only (no registry client), then checks it is there.
func TestAWSCLILayerPush(t *testing.T) {
	if testing.Short() {
		t.Skip("AWS CLI test skipped in -short mode")
	}
	if _, err := os.Stat(awsCLIPath); err != nil {
		t.Skipf("%s not installed: %v", awsCLIPath, err)
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
	// aws runs the CLI; it returns the parsed JSON output, or the error
	// output when the command fails and wantErr is set.
	aws := func(wantErr bool, args ...string) map[string]any {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, awsCLIPath, append(append([]string{"ecr"}, args...), "--endpoint-url", e.url, "--output", "json")...)
		cmd.Env, cmd.Dir = env, dir
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if wantErr {
			if err == nil {
				t.Fatalf("aws ecr %v succeeded: %s", args[0], out)
			}
			return map[string]any{"stderr": stderr.String()}
		}
		if err != nil {
			t.Fatalf("aws ecr %v: %v\n%s", args[0], err, stderr.String())
		}
		var v map[string]any
		if len(out) > 0 {
			if err := json.Unmarshal(out, &v); err != nil {
				t.Fatalf("aws ecr %v: output %q: %v", args[0], out, err)
			}
		}
		return v
	}
	e.create(t, e.a, "cli/push", "")
	cfg := []byte(`{"architecture":"amd64","os":"linux"}`)
	layer := randomBytes(t, 6*mib)
	file := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return "fileb://" + p
	}
	push := func(data []byte) {
		id := aws(false, "initiate-layer-upload", "--repository-name", "cli/push")["uploadId"].(string)
		for off := 0; off < len(data); off += 5 * mib {
			end := min(off+5*mib, len(data))
			out := aws(false, "upload-layer-part", "--repository-name", "cli/push", "--upload-id", id,
				"--part-first-byte", strconv.Itoa(off), "--part-last-byte", strconv.Itoa(end-1),
				"--layer-part-blob", file("part", data[off:end]))
			if got := out["lastByteReceived"].(float64); int(got) != end-1 {
				t.Fatalf("lastByteReceived %v, want %d", got, end-1)
			}
		}
		aws(false, "complete-layer-upload", "--repository-name", "cli/push", "--upload-id", id,
			"--layer-digests", digest.FromBytes(data).String())
	}
	push(layer)
	push(cfg)
	// Out of order: the CLI shows ECR's exception.
	id := aws(false, "initiate-layer-upload", "--repository-name", "cli/push")["uploadId"].(string)
	out := aws(true, "upload-layer-part", "--repository-name", "cli/push", "--upload-id", id,
		"--part-first-byte", "10", "--part-last-byte", "19", "--layer-part-blob", file("part", layer[:10]))
	if s := out["stderr"].(string); !strings.Contains(s, "InvalidLayerPartException") {
		t.Errorf("out-of-order part: %s", s)
	}
	avail := aws(false, "batch-check-layer-availability", "--repository-name", "cli/push", "--layer-digests",
		digest.FromBytes(layer).String(), digest.FromBytes(cfg).String())
	if layers := avail["layers"].([]any); len(layers) != 2 || layers[0].(map[string]any)["layerAvailability"] != "AVAILABLE" {
		t.Errorf("batch-check-layer-availability: %v", avail)
	}
	manifest := manifestOf(cfg, layer)
	put := aws(false, "put-image", "--repository-name", "cli/push", "--image-tag", "v1", "--image-manifest", manifest)
	if got := put["image"].(map[string]any)["imageId"].(map[string]any)["imageDigest"]; got != digest.FromString(manifest).String() {
		t.Errorf("put-image digest %v", got)
	}
	desc := aws(false, "describe-images", "--repository-name", "cli/push")
	if details := desc["imageDetails"].([]any); len(details) != 1 || details[0].(map[string]any)["imageTags"].([]any)[0] != "v1" {
		t.Errorf("describe-images: %v", desc)
	}
	dl := aws(false, "get-download-url-for-layer", "--repository-name", "cli/push", "--layer-digest", digest.FromBytes(cfg).String())
	if status, body := fetch(t, dl["downloadUrl"].(string), e.password(t, e.a)); status != 200 || string(body) != string(cfg) {
		t.Errorf("download %v: %d %q", dl["downloadUrl"], status, body)
	}
}
