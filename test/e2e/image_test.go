package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/berthdev/berth/internal/demoimage"
)

// TestImagePushLsRunRm drives the image verbs of the human CLI: push an OCI
// layout and a docker tarball, list them, run a task from the pushed image,
// remove the tags, and see them gone.
func TestImagePushLsRunRm(t *testing.T) {
	e := startDev(t)
	host := strings.TrimPrefix(e.URL, "http://")
	img, err := demoimage.Image(demoimage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	digest, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	lp, err := layout.Write(filepath.Join(dir, "layout"), empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	tarPath := filepath.Join(dir, "image.tar")
	if err := tarball.WriteToFile(tarPath, name.MustParseReference("example.com/pushed:tar"), img); err != nil {
		t.Fatal(err)
	}
	// A docker tarball holds a Docker schema 2 manifest: another digest.
	fromTar, err := tarball.ImageFromPath(tarPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	tarDigest, err := fromTar.Digest()
	if err != nil {
		t.Fatal(err)
	}

	// Push the layout; the progress bar goes to stderr, the reference to stdout.
	out, err := e.berthErr("image", "push", string(lp), "pushed/app:v1")
	if err != nil {
		t.Fatalf("image push layout: %v\n%s", err, out)
	}
	want := host + "/pushed/app@" + digest.String()
	if strings.TrimSpace(out) != want {
		t.Fatalf("image push printed %q, want %q", out, want)
	}
	// The tarball under a second tag of the same repository, with the full name.
	if out := e.berth("image", "push", "-q", tarPath, host+"/pushed/app:from-tar"); strings.TrimSpace(out) != host+"/pushed/app@"+tarDigest.String() {
		t.Fatalf("image push tarball printed %q, want %q", out, host+"/pushed/app@"+tarDigest.String())
	}

	ls := e.berth("image", "ls")
	short, tarShort := "sha256:"+digest.Hex[:12], "sha256:"+tarDigest.Hex[:12]
	if !lsHas(ls, "pushed/app", "v1", short) || !lsHas(ls, "pushed/app", "from-tar", tarShort) {
		t.Fatalf("image ls lacks pushed/app:v1 %s or pushed/app:from-tar %s:\n%s", short, tarShort, ls)
	}
	if !lsHas(ls, "busybox", "latest", "") {
		t.Fatalf("image ls lacks the demo image:\n%s", ls)
	}
	if one := e.berth("image", "ls", "pushed/app"); strings.Contains(one, "busybox") || !lsHas(one, "pushed/app", "v1", short) {
		t.Fatalf("image ls pushed/app:\n%s", one)
	}

	// A task runs from the pushed image.
	out, err = e.berthErr("run", "--wait", host+"/pushed/app:v1", "cat", "/www/index.html")
	if err != nil {
		t.Fatalf("berth run from the pushed image: %v\n%s", err, out)
	}
	id := strings.TrimSpace(strings.Split(out, "\n")[0])
	if logs := e.berth("logs", id); !strings.Contains(logs, strings.TrimSpace(demoimage.IndexHTML)) {
		t.Fatalf("task logs %q lack the image's index.html", logs)
	}

	// Remove one image by tag, then the other by digest.
	if out := e.berth("image", "rm", "pushed/app:v1"); !strings.Contains(out, "Untagged: pushed/app:v1") {
		t.Fatalf("image rm tag printed %q", out)
	}
	ls = e.berth("image", "ls")
	if lsHas(ls, "pushed/app", "v1", "") || !lsHas(ls, "pushed/app", "from-tar", tarShort) {
		t.Fatalf("image ls after rm pushed/app:v1:\n%s", ls)
	}
	if out := e.berth("image", "rm", "pushed/app@"+tarDigest.String()); !strings.Contains(out, "Deleted: pushed/app@"+tarDigest.String()) {
		t.Fatalf("image rm digest printed %q", out)
	}
	if ls := e.berth("image", "ls"); strings.Contains(ls, "pushed/app") {
		t.Fatalf("image ls after rm still shows pushed/app:\n%s", ls)
	}

	// Errors say what is wrong.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"image", "rm", "pushed/app:v1"}, "ImageNotFound"},
		{[]string{"image", "rm", "nosuch/repo:v1"}, `repository "nosuch/repo" does not exist`},
		{[]string{"image", "rm", "pushed/app@sha256:abc"}, "want NAME@sha256:<64 hex digits>"},
		{[]string{"image", "ls", "nosuch/repo"}, `repository "nosuch/repo" does not exist`},
		{[]string{"image", "push", filepath.Join(dir, "missing"), "pushed/app:v2"}, "no such file or directory"},
		{[]string{"image", "push", filepath.Join(dir, "layout", "index.json"), "pushed/app:v2"}, "not an OCI layout directory nor a tarball"},
		{[]string{"image", "push", string(lp), "Bad Name:v1"}, "image name"},
	} {
		out, err := e.berthErr(c.args...)
		if err == nil || !strings.Contains(out, c.want) {
			t.Errorf("berth %v: err %v, output %q; want an error with %q", c.args, err, out, c.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "layout", "index.json")); err != nil {
		t.Fatal(err)
	}
}

// lsHas reports whether `berth image ls` output has a row for repo and tag
// (and digest, when not empty).
func lsHas(ls, repo, tag, digest string) bool {
	for _, line := range strings.Split(ls, "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[0] == repo && f[1] == tag && (digest == "" || f[2] == digest) {
			return true
		}
	}
	return false
}
