package demoimage

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// TestImageRunsInChroot unpacks the image and runs its Cmd's shell in a
// chroot: the symlinks, PATH and files work without anything from the host.
func TestImageRunsInChroot(t *testing.T) {
	needBusybox(t)
	if testing.Short() {
		t.Skip("chroot test skipped in -short mode")
	}
	if os.Geteuid() != 0 {
		t.Skip("chroot needs root")
	}
	img, err := Image(Options{})
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	rc := mutate.Extract(img)
	t.Cleanup(func() { _ = rc.Close() })
	unpack(t, rc, root)

	tests := []struct {
		name   string
		uid    uint32
		script string
		want   string
	}{
		{"applets via PATH", 0, "echo hi; ls /www", "hi\nindex.html\n"},
		{"index.html", 0, "cat /www/index.html", "hello from berth\n"},
		{"root user", 0, "id -un; id -gn", "root\nroot\n"},
		{"nobody user", 65534, "id -un; id -gn", "nobody\nnobody\n"},
		{"tmp is writable by nobody", 65534, "echo x > /tmp/f && cat /tmp/f", "x\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.CommandContext(t.Context(), "/bin/sh", "-c", tt.script)
			cmd.Env = []string{"PATH=" + Path}
			cmd.Dir = "/"
			cmd.SysProcAttr = &syscall.SysProcAttr{
				Chroot:     root,
				Credential: &syscall.Credential{Uid: tt.uid, Gid: tt.uid},
			}
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("sh -c %q: %v\n%s", tt.script, err, out)
			}
			if string(out) != tt.want {
				t.Errorf("output %q, want %q", out, tt.want)
			}
		})
	}
}

// unpack writes a flattened image filesystem under root.
func unpack(t *testing.T, r io.Reader, root string) {
	t.Helper()
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatalf("read layer: %v", err)
		}
		name := filepath.Clean(hdr.Name)
		if strings.HasPrefix(name, "..") || filepath.IsAbs(name) {
			t.Fatalf("unsafe path %q", hdr.Name)
		}
		p := filepath.Join(root, name)
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, hdr.FileInfo().Mode()); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, hdr.FileInfo().Mode())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(f, tr); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
		case tar.TypeSymlink:
			if err := os.Symlink(hdr.Linkname, p); err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatalf("unexpected entry type %q for %s", hdr.Typeflag, hdr.Name)
		}
	}
}
