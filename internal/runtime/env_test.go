package runtime

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"log"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sys/unix"

	"github.com/berthdev/berth/internal/runtime/logdriver"
)

// TestMain lets the test binary serve as the containers' log driver.
func TestMain(m *testing.M) {
	logdriver.MaybeRun()
	os.Exit(m.Run())
}

// requireRoot skips tests that need root, containerd and cgroups.
func requireRoot(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs root, containerd and cgroups v1; skipped in -short mode")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// uniqueID returns a name no other test run uses.
func uniqueID(prefix string) string { return prefix + "-" + randomHex(4) }

// busyboxApplets are linked to /bin/busybox in the test image.
var busyboxApplets = []string{
	"sh", "echo", "sleep", "cat", "true", "false", "dd", "id", "pwd",
	"touch", "grep", "hostname", "ls", "env", "head", "wc", "readlink",
}

var (
	testImageOnce sync.Once
	testImage     v1.Image
	testImageErr  error
)

// busyboxImage builds (once) a single-layer OCI image with the host's
// static busybox and its applet links; CMD is ["sh"].
func busyboxImage(t *testing.T) v1.Image {
	t.Helper()
	testImageOnce.Do(func() { testImage, testImageErr = buildBusyboxImage() })
	if testImageErr != nil {
		t.Fatalf("build test image: %v", testImageErr)
	}
	return testImage
}

func buildBusyboxImage() (v1.Image, error) {
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, d := range []struct {
		name string
		mode int64
	}{{"bin/", 0o755}, {"etc/", 0o755}, {"tmp/", 0o1777}, {"root/", 0o700}, {"proc/", 0o555}, {"sys/", 0o555}, {"dev/", 0o755}, {"run/", 0o755}} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d.name, Mode: d.mode}); err != nil {
			return nil, err
		}
	}
	files := []struct {
		name string
		mode int64
		data []byte
	}{
		{"bin/busybox", 0o755, bb},
		{"etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")},
		{"etc/group", 0o644, []byte("root:x:0:\nnobody:x:65534:\n")},
	}
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: f.mode, Size: int64(len(f.data))}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	for _, a := range busyboxApplets {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + a, Linkname: "busybox", Mode: 0o777}); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	layerBytes := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerBytes)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	base := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	img, err := mutate.AppendLayers(base, layer)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS = "linux"
	cf.Architecture = goruntime.GOARCH
	cf.Config.Cmd = []string{"sh"}
	cf.Config.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "FROM_IMAGE=1"}
	return mutate.ConfigFile(img, cf)
}

// startRegistry serves an in-memory registry on 127.0.0.1 holding the
// busybox test image and returns the image's reference.
func startRegistry(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	ref := strings.TrimPrefix(srv.URL, "http://") + "/test/busybox:latest"
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, busyboxImage(t)); err != nil {
		t.Fatalf("push test image: %v", err)
	}
	return ref
}

// testEnv is a private containerd in a temporary directory, with the test
// image pulled and a task cgroup for the test's containers.
type testEnv struct {
	t       *testing.T
	dataDir string
	cfg     Config
	rt      *Runtime // replaced by tests that restart the runtime
	image   string
	cgroup  string // default CgroupParent, removed on cleanup
}

func newTestEnv(t *testing.T) *testEnv {
	t.Helper()
	requireRoot(t)
	ctx := testContext(t)
	ref := startRegistry(t)
	e := &testEnv{t: t, dataDir: t.TempDir()}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	e.cfg = Config{DataDir: e.dataDir, Namespace: "berth-test", Logger: testLogger(t), LogDriver: exe}
	e.cgroup = "/" + uniqueID("berthtest")
	if err := CreateTaskCgroup(e.cgroup, 0, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.cleanup)
	rt, err := Start(ctx, e.cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	e.rt = rt
	img, err := rt.Pull(ctx, ref)
	if err != nil {
		t.Fatalf("Pull: %v", err)
	}
	e.image = img.Ref
	return e
}

// spec returns a container spec for the test image in the env's cgroup,
// logging to a file in the data directory.
func (e *testEnv) spec(command ...string) ContainerSpec {
	id := uniqueID("c")
	return ContainerSpec{
		ID:           id,
		Image:        e.image,
		Command:      command,
		CgroupParent: e.cgroup,
		LogPath:      filepath.Join(e.dataDir, "logs", id+".log"),
	}
}

// run starts a container and deletes it when t ends.
func (e *testEnv) run(t *testing.T, ctx context.Context, spec ContainerSpec) uint32 {
	t.Helper()
	t.Cleanup(func() {
		if err := e.rt.Delete(context.WithoutCancel(ctx), spec.ID); err != nil {
			t.Errorf("delete %s: %v", spec.ID, err)
		}
	})
	pid, err := e.rt.Run(ctx, spec)
	if err != nil {
		t.Fatalf("Run %s: %v", spec.ID, err)
	}
	return pid
}

// cleanup deletes every container, stops containerd, kills the shims it
// left and removes the test cgroup, whatever state the test left.
func (e *testEnv) cleanup() {
	t := e.t
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if e.rt != nil {
		rt := e.rt
		// The test may have closed its runtime: connect afresh.
		if fresh, err := Start(ctx, e.cfg); err == nil {
			rt.Close()
			rt = fresh
		}
		if cs, err := rt.List(ctx); err == nil {
			for _, c := range cs {
				if err := rt.Delete(ctx, c.ID); err != nil {
					t.Errorf("cleanup: delete %s: %v", c.ID, err)
				}
			}
		}
		if err := rt.Shutdown(ctx); err != nil {
			t.Errorf("cleanup: shutdown: %v", err)
		}
	}
	killProcessesMentioning(t, filepath.Join(e.dataDir, "containerd.sock"))
	unmountUnder(t, e.dataDir)
	// Log drivers (in the task's cpu cgroups) end a moment after their
	// shims: give them a few seconds on a loaded machine.
	var err error
	for range 50 {
		if err = DeleteTaskCgroup(e.cgroup); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("cleanup: %v", err)
}

// killProcessesMentioning SIGKILLs every process whose command line
// contains s (the shims carry the daemon's socket path).
func killProcessesMentioning(t *testing.T, s string) {
	entries, _ := os.ReadDir("/proc")
	for _, ent := range entries {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "cmdline"))
		if err != nil || !bytes.Contains(cmdline, []byte(s)) {
			continue
		}
		t.Logf("cleanup: killing leftover process %d: %s", pid, bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}))
		_ = unix.Kill(pid, unix.SIGKILL)
	}
}

// unmountUnder detaches mounts left below dir (container root file systems
// of killed shims), deepest first.
func unmountUnder(t *testing.T, dir string) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var mounts []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			mounts = append(mounts, f[4])
		}
	}
	for i := len(mounts) - 1; i >= 0; i-- {
		if err := unix.Unmount(mounts[i], unix.MNT_DETACH); err != nil {
			t.Logf("cleanup: unmount %s: %v", mounts[i], err)
		}
	}
}

func readLog(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read log: %v", err)
	}
	return string(b)
}
