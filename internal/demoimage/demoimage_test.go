package demoimage

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/berthdev/berth/internal/ecr"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

func needBusybox(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(DefaultBusyboxPath); err != nil {
		t.Skipf("busybox-static not installed: %v", err)
	}
}

func TestImageDeterministic(t *testing.T) {
	needBusybox(t)
	var digests []v1.Hash
	for range 2 {
		img, err := Image(Options{})
		if err != nil {
			t.Fatalf("Image: %v", err)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, d)
	}
	if digests[0] != digests[1] {
		t.Errorf("two builds differ: %s, %s", digests[0], digests[1])
	}
}

// fileInfo is what the test checks of one layer entry.
type fileInfo struct {
	typ      byte
	mode     int64
	linkname string
	body     string
	uid, gid int
}

func layerFiles(t *testing.T, img v1.Image) map[string]fileInfo {
	t.Helper()
	rc := mutate.Extract(img)
	t.Cleanup(func() { _ = rc.Close() })
	files := map[string]fileInfo{}
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("read layer: %v", err)
		}
		fi := fileInfo{typ: hdr.Typeflag, mode: hdr.Mode, linkname: hdr.Linkname, uid: hdr.Uid, gid: hdr.Gid}
		if hdr.Typeflag == tar.TypeReg && hdr.Size < 4096 {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			fi.body = string(b)
		}
		if !hdr.ModTime.Equal(epoch) {
			t.Errorf("%s: mtime %v, want %v", hdr.Name, hdr.ModTime, epoch)
		}
		files[strings.TrimSuffix(hdr.Name, "/")] = fi
	}
	return files
}

func TestImageContents(t *testing.T) {
	needBusybox(t)
	img, err := Image(Options{})
	if err != nil {
		t.Fatalf("Image: %v", err)
	}
	files := layerFiles(t, img)

	tests := []struct {
		path  string
		check func(fileInfo) error
	}{
		{"bin/busybox", want(tar.TypeReg, 0o755, "")},
		{"bin/sh", want(tar.TypeSymlink, 0o777, "busybox")},
		{"bin/sleep", want(tar.TypeSymlink, 0o777, "busybox")},
		{"bin/httpd", want(tar.TypeSymlink, 0o777, "busybox")},
		{"bin/wget", want(tar.TypeSymlink, 0o777, "busybox")},
		{"tmp", want(tar.TypeDir, 0o1777, "")},
		{"root", want(tar.TypeDir, 0o700, "")},
		{"www/index.html", body("hello from berth\n")},
		{"etc/passwd", contains("root:x:0:0:", "nobody:x:65534:65534:")},
		{"etc/group", contains("root:x:0:", "nobody:x:65534:")},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			fi, ok := files[tt.path]
			if !ok {
				t.Fatalf("%s missing from the layer", tt.path)
			}
			if fi.uid != 0 || fi.gid != 0 {
				t.Errorf("owner %d:%d, want 0:0", fi.uid, fi.gid)
			}
			if err := tt.check(fi); err != nil {
				t.Error(err)
			}
		})
	}

	t.Run("config", func(t *testing.T) {
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cf.OS != "linux" || cf.Architecture != runtime.GOARCH {
			t.Errorf("platform %s/%s, want linux/%s", cf.OS, cf.Architecture, runtime.GOARCH)
		}
		if want := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}; !slices.Equal(cf.Config.Env, want) {
			t.Errorf("Env = %v, want %v", cf.Config.Env, want)
		}
		if want := []string{"sh"}; !slices.Equal(cf.Config.Cmd, want) {
			t.Errorf("Cmd = %v, want %v", cf.Config.Cmd, want)
		}
		if got := cf.Config.Labels["org.opencontainers.image.title"]; got != "berth-demo" {
			t.Errorf("title label = %q", got)
		}
		if !cf.Created.Equal(epoch) {
			t.Errorf("Created = %v, want %v", cf.Created, epoch)
		}
		mt, err := img.MediaType()
		if err != nil || mt != "application/vnd.oci.image.manifest.v1+json" {
			t.Errorf("media type %q (%v), want OCI manifest", mt, err)
		}
	})
}

func want(typ byte, mode int64, linkname string) func(fileInfo) error {
	return func(fi fileInfo) error {
		if fi.typ != typ || fi.mode != mode || fi.linkname != linkname {
			return fmt.Errorf("type %q mode %o link %q, want type %q mode %o link %q",
				fi.typ, fi.mode, fi.linkname, typ, mode, linkname)
		}
		return nil
	}
}

func body(s string) func(fileInfo) error {
	return func(fi fileInfo) error {
		if fi.body != s {
			return fmt.Errorf("body %q, want %q", fi.body, s)
		}
		return nil
	}
}

func contains(subs ...string) func(fileInfo) error {
	return func(fi fileInfo) error {
		for _, s := range subs {
			if !strings.Contains(fi.body, s) {
				return fmt.Errorf("body %q lacks %q", fi.body, s)
			}
		}
		return nil
	}
}

func TestBusyboxErrors(t *testing.T) {
	tests := []struct {
		name string
		path string
		want string
	}{
		{"missing", filepath.Join(t.TempDir(), "busybox"), "busybox-static is not installed"},
		{"not ELF", writeFile(t, "#!/bin/sh\n"), "not an ELF executable"},
	}
	if _, err := os.Stat("/bin/ls"); err == nil {
		// Debian's coreutils are dynamically linked.
		tests = append(tests, struct{ name, path, want string }{"dynamic", "/bin/ls", "dynamically linked"})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Image(Options{BusyboxPath: tt.path})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Image(%s) error = %v, want it to mention %q", tt.path, err, tt.want)
			}
		})
	}
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "busybox")
	if err := os.WriteFile(p, []byte(content), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// startRegistry runs internal/ecr's registry behind an httptest server and
// returns its host:port.
func startRegistry(t *testing.T, authorize func(*http.Request, string, string) error) string {
	t.Helper()
	reg, err := ecr.NewRegistry(t.Context(), ecr.RegistryConfig{
		RootDir:   t.TempDir(),
		Logger:    slog.New(slog.DiscardHandler),
		Authorize: authorize,
	})
	if err != nil {
		t.Fatalf("NewRegistry: %v", err)
	}
	t.Cleanup(func() { _ = reg.Close() })
	srv := httptest.NewServer(reg)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func TestBuild(t *testing.T) {
	needBusybox(t)
	basicOnly := func(r *http.Request, _, _ string) error {
		if u, p, ok := r.BasicAuth(); !ok || u != "AWS" || p != "token" {
			return fmt.Errorf("no basic auth credentials: %w", ecr.ErrUnauthorized)
		}
		return nil
	}
	tests := []struct {
		name      string
		authorize func(*http.Request, string, string) error
		auth      authn.Authenticator
		wantErr   bool
	}{
		{"anonymous", nil, nil, false},
		{"basic auth", basicOnly, &authn.Basic{Username: "AWS", Password: "token"}, false},
		{"missing credentials", basicOnly, nil, true},
	}
	img, err := Image(Options{})
	if err != nil {
		t.Fatal(err)
	}
	wantDigest, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host := startRegistry(t, tt.authorize)
			got, err := Build(t.Context(), host, "berth/demo", "latest", Options{Auth: tt.auth})
			if tt.wantErr {
				if err == nil {
					t.Fatalf("Build succeeded, want an error")
				}
				return
			}
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			if want := host + "/berth/demo@" + wantDigest.String(); got != want {
				t.Errorf("Build = %q, want %q", got, want)
			}
			auth := tt.auth
			if auth == nil {
				auth = authn.Anonymous
			}
			tag, err := name.NewTag(host+"/berth/demo:latest", name.Insecure)
			if err != nil {
				t.Fatal(err)
			}
			desc, err := remote.Get(tag, remote.WithContext(t.Context()), remote.WithAuth(auth))
			if err != nil {
				t.Fatalf("pull manifest: %v", err)
			}
			if desc.Digest != wantDigest {
				t.Errorf("pulled manifest digest %s, want %s", desc.Digest, wantDigest)
			}
			// The local image fails validate's structural manifest check only
			// because tarball layers carry an empty (not nil) annotations map;
			// the pushed image is checked in full.
			pulled, err := desc.Image()
			if err != nil {
				t.Fatal(err)
			}
			if err := validate.Image(pulled); err != nil {
				t.Errorf("pulled image invalid: %v", err)
			}
		})
	}
}
