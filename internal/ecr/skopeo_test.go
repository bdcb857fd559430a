package ecr

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

const skopeoPath = "/usr/bin/skopeo"

// TestSkopeo drives the registry with a real client that is not
// go-containerregistry: copy in from an OCI layout, copy between
// repositories (pull and push), inspect.
func TestSkopeo(t *testing.T) {
	if testing.Short() {
		t.Skip("skopeo test skipped in -short mode")
	}
	if _, err := os.Stat(skopeoPath); err != nil {
		t.Skipf("skopeo not installed: %v", err)
	}
	tr := newTestRegistry(t, "", nil)

	img, err := random.Image(4096, 3)
	if err != nil {
		t.Fatal(err)
	}
	want, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "layout")
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(img); err != nil {
		t.Fatal(err)
	}

	skopeo := func(args ...string) []byte {
		t.Helper()
		cmd := exec.CommandContext(t.Context(), skopeoPath, append([]string{"--insecure-policy"}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("skopeo %v: %v\n%s", args, err, out)
		}
		return out
	}

	src := "docker://" + tr.host + "/skopeo/src:v1"
	dst := "docker://" + tr.host + "/skopeo/dst:v1"
	tests := []struct {
		name string
		args []string
	}{
		{"copy from layout", []string{"copy", "--preserve-digests", "--dest-tls-verify=false", "oci:" + dir, src}},
		{"copy between repositories", []string{"copy", "--preserve-digests", "--src-tls-verify=false", "--dest-tls-verify=false", src, dst}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			skopeo(tt.args...)
		})
	}

	for _, ref := range []string{src, dst} {
		t.Run("inspect "+ref, func(t *testing.T) {
			var got struct{ Digest string }
			if err := json.Unmarshal(skopeo("inspect", "--tls-verify=false", ref), &got); err != nil {
				t.Fatalf("decode inspect: %v", err)
			}
			if got.Digest != want.String() {
				t.Errorf("inspect digest %s, want %s", got.Digest, want)
			}
		})
	}

	pulled, err := remote.Image(tr.ref(t, "skopeo/dst:v1"), remote.WithContext(t.Context()))
	if err != nil {
		t.Fatalf("pull what skopeo pushed: %v", err)
	}
	if d, err := pulled.Digest(); err != nil || d != want {
		t.Errorf("pulled digest %v (%v), want %s", d, err, want)
	}
}
