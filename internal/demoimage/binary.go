package demoimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"path"
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

// Binary is an image of one static binary (the benchmarks' backends, the
// tests' in-task clients): a single layer holding bin as /<name> (0755,
// mtime 0), its entrypoint, PATH=/, for this host's architecture.
func Binary(bin, name, createdBy string) (v1.Image, error) {
	data, err := os.ReadFile(bin)
	if err != nil {
		return nil, fmt.Errorf("binary image: %w", err)
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	epoch := time.Unix(0, 0)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(data)), ModTime: epoch,
		Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
		return nil, fmt.Errorf("binary image layer: %w", err)
	}
	if _, err := tw.Write(data); err != nil {
		return nil, fmt.Errorf("binary image layer: %w", err)
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("binary image layer: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("binary image layer: %w", err)
	}
	layerBytes := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerBytes)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("binary image layer: %w", err)
	}
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.Append(base, mutate.Addendum{Layer: layer,
		History: v1.History{Created: v1.Time{Time: epoch}, CreatedBy: createdBy}})
	if err != nil {
		return nil, fmt.Errorf("binary image: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("binary image config: %w", err)
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS = runtime.GOARCH, "linux"
	cf.Created = v1.Time{Time: epoch}
	cf.Config.Entrypoint = []string{path.Join("/", name)}
	cf.Config.Env = []string{"PATH=/"}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return nil, fmt.Errorf("binary image config: %w", err)
	}
	return img, nil
}

// PushBinary pushes Binary(bin, …) to registryHost/repo:latest over plain
// HTTP without credentials (berth dev's registry takes anonymous pushes)
// and returns the reference.
func PushBinary(ctx context.Context, registryHost, repo, bin, name, createdBy string) (string, error) {
	target := registryHost + "/" + repo + ":latest"
	ref, err := name2tag(target)
	if err != nil {
		return "", err
	}
	img, err := Binary(bin, name, createdBy)
	if err != nil {
		return "", err
	}
	if err := remote.Write(ref, img, remote.WithContext(ctx), remote.WithAuth(authn.Anonymous)); err != nil {
		return "", fmt.Errorf("push %s: %w", ref, err)
	}
	return target, nil
}

func name2tag(s string) (name.Tag, error) {
	ref, err := name.NewTag(s, name.Insecure, name.StrictValidation)
	if err != nil {
		return name.Tag{}, fmt.Errorf("image reference %q: %w", s, err)
	}
	return ref, nil
}
