package cli

import (
	"archive/tar"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func TestParseImageRef(t *testing.T) {
	dg := "sha256:" + strings.Repeat("ab", 32)
	for _, c := range []struct {
		in, repo, tag, digest, err string
	}{
		{in: "app:v1", repo: "app", tag: "v1"},
		{in: "team/app", repo: "team/app", tag: "latest"},
		{in: "team/app@" + dg, repo: "team/app", digest: dg},
		{in: "app@sha256:abc", err: "64 hex digits"},
		{in: "@" + dg, err: "NAME@sha256"},
		{in: "app:", err: "NAME:TAG"},
	} {
		repo, id, err := parseImageRef(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: err %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || repo != c.repo || aws.ToString(id.ImageTag) != c.tag || aws.ToString(id.ImageDigest) != c.digest {
			t.Errorf("%q: %q %q %q %v", c.in, repo, aws.ToString(id.ImageTag), aws.ToString(id.ImageDigest), err)
		}
	}
}

func TestHumanFormats(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 999: "999 B", 1500: "1.5 kB", 104857600: "105 MB", 2_500_000_000: "2.5 GB"} {
		if got := humanSize(n); got != want {
			t.Errorf("humanSize(%d) = %q, want %q", n, got, want)
		}
	}
	for d, want := range map[time.Duration]string{0: "just now", time.Second: "1 second ago", 3 * time.Minute: "3 minutes ago",
		5 * time.Hour: "5 hours ago", 72 * time.Hour: "3 days ago"} {
		if got := humanAgo(d); got != want {
			t.Errorf("humanAgo(%s) = %q, want %q", d, got, want)
		}
	}
	if got := shortDigest("sha256:" + strings.Repeat("0123456789", 6) + "abcd"); got != "sha256:012345678901" {
		t.Errorf("shortDigest = %q", got)
	}
}

func TestWriteImageTable(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var b strings.Builder
	err := writeImageTable(&b, []ecrtypes.ImageDetail{
		{RepositoryName: aws.String("app"), ImageTags: []string{"v2", "latest"}, ImageDigest: aws.String("sha256:" + strings.Repeat("a", 64)),
			ImageSizeInBytes: aws.Int64(2_000_000), ImagePushedAt: aws.Time(now.Add(-2 * time.Minute))},
		{RepositoryName: aws.String("app"), ImageDigest: aws.String("sha256:" + strings.Repeat("b", 64)), ImageSizeInBytes: aws.Int64(10)},
	}, now)
	if err != nil {
		t.Fatal(err)
	}
	want := "REPOSITORY  TAG     DIGEST               SIZE  PUSHED\n" +
		"app         latest  sha256:aaaaaaaaaaaa  2 MB  2 minutes ago\n" +
		"app         v2      sha256:aaaaaaaaaaaa  2 MB  2 minutes ago\n" +
		"app         <none>  sha256:bbbbbbbbbbbb  10 B  -\n"
	if b.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestProgressBarLine(t *testing.T) {
	var b strings.Builder
	p := &progressBar{w: &b}
	for _, c := range []int64{0, 30, 50, 100} {
		p.update(v1.Update{Total: 100, Complete: c})
	}
	p.finish()
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 3 || !strings.HasSuffix(lines[2], "100 B / 100 B 100%") || !strings.HasPrefix(lines[2], "[====") {
		t.Fatalf("progress lines %q", lines)
	}
}

func TestProgressBarTTY(t *testing.T) {
	var b strings.Builder
	p := &progressBar{w: &b, tty: true}
	for _, c := range []int64{0, 50, 100, 100} {
		p.update(v1.Update{Total: 100, Complete: c})
	}
	p.finish()
	if got := strings.Count(b.String(), "\r"); got != 3 || !strings.HasSuffix(b.String(), "100%\n") {
		t.Fatalf("tty progress %q: %d redraws, want 3 (50%%, 100%%, the final line)", b.String(), got)
	}
}

// TestOpenImageSource reads the three kinds of source push accepts.
func TestOpenImageSource(t *testing.T) {
	img, err := random.Image(256, 2)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	dir := t.TempDir()
	lp, err := layout.Write(filepath.Join(dir, "layout"), empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	// An OCI archive: the layout's files in a tar.
	archive := filepath.Join(dir, "oci.tar")
	writeTar(t, archive, string(lp))
	dockerTar := filepath.Join(dir, "docker.tar")
	if err := tarball.WriteToFile(dockerTar, name.MustParseReference("example.com/x:y"), img); err != nil {
		t.Fatal(err)
	}
	for _, src := range []string{string(lp), archive, dockerTar} {
		s, cleanup, err := openImageSource(src)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		if s.img == nil {
			t.Fatalf("%s: no image", src)
		}
		if got, _ := s.img.Digest(); src != dockerTar && got != want {
			t.Errorf("%s: digest %s, want %s", src, got, want)
		}
		if layers, err := s.img.Layers(); err != nil || len(layers) != 2 {
			t.Errorf("%s: %d layers, %v", src, len(layers), err)
		}
		cleanup()
	}
	// Not an image, and an archive escaping its directory.
	bad := filepath.Join(dir, "bad.tar")
	f, _ := os.Create(bad)
	tw := tar.NewWriter(f)
	for _, n := range []string{"oci-layout", "../escape"} {
		_ = tw.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: 0o644, Size: 2})
		_, _ = tw.Write([]byte("{}"))
	}
	_ = tw.Close()
	_ = f.Close()
	if _, _, err := openImageSource(bad); err == nil || !strings.Contains(err.Error(), "leaves the archive") {
		t.Errorf("escaping archive: %v", err)
	}
	if _, _, err := openImageSource(filepath.Join(string(lp), "index.json")); err == nil || !strings.Contains(err.Error(), "not an OCI layout directory nor a tarball") {
		t.Errorf("json file: %v", err)
	}
}

// writeTar tars the files below dir into path.
func writeTar(t *testing.T, path, dir string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Name: rel, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(b))}); err != nil {
			return err
		}
		_, err = tw.Write(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
}
