package alb

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// serverPkg is the backend's package, built for the image.
const serverPkg = "github.com/berthdev/berth/bench/alb/benchhttp"

// buildServer compiles the static backend (CGO_ENABLED=0) into dir. It
// runs the go command of the toolchain that built this program, from the
// working directory, which must be inside berth's module (as `make bench`
// and `go run ./bench/cmd/berthbench` are).
func buildServer(ctx context.Context, dir string) (string, error) {
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		goBin = "go"
	}
	out := filepath.Join(dir, "benchhttp")
	cmd := exec.CommandContext(ctx, goBin, "build", "-trimpath", "-ldflags=-s -w", "-o", out, serverPkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build the backend (%s build %s; run from berth's module): %w\n%s", goBin, serverPkg, err, b)
	}
	return out, nil
}

// pushServerImage builds a one-layer image holding the binary at bin as
// /benchhttp (its entrypoint) and pushes it anonymously over plain HTTP to
// registryHost as repo:latest. It returns the tag reference.
func pushServerImage(ctx context.Context, registryHost, repo, bin string) (string, error) {
	target := registryHost + "/" + repo + ":latest"
	ref, err := name.NewTag(target, name.Insecure, name.StrictValidation)
	if err != nil {
		return "", fmt.Errorf("image reference %q: %w", target, err)
	}
	img, err := serverImage(bin)
	if err != nil {
		return "", err
	}
	if err := remote.Write(ref, img, remote.WithContext(ctx), remote.WithAuth(authn.Anonymous)); err != nil {
		return "", fmt.Errorf("push %s: %w", ref, err)
	}
	return target, nil
}

// serverImage is the backend's image: its binary, nothing else.
func serverImage(bin string) (v1.Image, error) {
	data, err := os.ReadFile(bin)
	if err != nil {
		return nil, fmt.Errorf("backend image: %w", err)
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	epoch := time.Unix(0, 0)
	if err := tw.WriteHeader(&tar.Header{Name: "benchhttp", Mode: 0o755, Size: int64(len(data)), ModTime: epoch,
		Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
		return nil, fmt.Errorf("backend image layer: %w", err)
	}
	if _, err := tw.Write(data); err != nil {
		return nil, fmt.Errorf("backend image layer: %w", err)
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("backend image layer: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("backend image layer: %w", err)
	}
	layerBytes := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerBytes)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("backend image layer: %w", err)
	}
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.Append(base, mutate.Addendum{Layer: layer,
		History: v1.History{Created: v1.Time{Time: epoch}, CreatedBy: "berth bench/alb: static benchhttp"}})
	if err != nil {
		return nil, fmt.Errorf("backend image: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("backend image config: %w", err)
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS = runtime.GOARCH, "linux"
	cf.Created = v1.Time{Time: epoch}
	cf.Config.Entrypoint = []string{"/benchhttp"}
	cf.Config.Env = []string{"PATH=/"}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return nil, fmt.Errorf("backend image config: %w", err)
	}
	return img, nil
}
