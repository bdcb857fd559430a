package registry

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	crand "crypto/rand"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// jobs is how many blobs a push or a pull moves at once (go-containerregistry's
// default for pushes, and what containerd does for pulls).
const jobs = 4

// randomTar is an uncompressed tar holding one file of size bytes of
// random data (a fresh ChaCha8 stream, so every call gives new digests).
func randomTar(size int64) []byte {
	var seed [32]byte
	_, _ = crand.Read(seed[:])
	data := make([]byte, size)
	_, _ = rand.NewChaCha8(seed).Read(data)
	var b bytes.Buffer
	b.Grow(int(size) + 4096)
	tw := tar.NewWriter(&b)
	_ = tw.WriteHeader(&tar.Header{Name: "random.bin", Typeflag: tar.TypeReg, Mode: 0o644, Size: size, ModTime: time.Unix(0, 0)})
	_, _ = tw.Write(data)
	_ = tw.Close()
	return b.Bytes()
}

// throughputImage is an OCI image of n uncompressed layers of random data,
// each layerSize bytes of file content. Digests are computed here, before
// any timing starts.
func throughputImage(n int, layerSize int64) (v1.Image, int64, error) {
	var adds []mutate.Addendum
	for range n {
		adds = append(adds, mutate.Addendum{Layer: static.NewLayer(randomTar(layerSize), types.OCIUncompressedLayer)})
	}
	return finish(mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON), adds)
}

// coldImage is base plus one gzip layer (fastest level) of size bytes of
// random data: a runnable image none of whose new layer is on any host.
func coldImage(base v1.Image, size int64) (v1.Image, int64, error) {
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	if err != nil {
		return nil, 0, err
	}
	if _, err := zw.Write(randomTar(size)); err != nil {
		return nil, 0, err
	}
	if err := zw.Close(); err != nil {
		return nil, 0, err
	}
	blob := gz.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(blob)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, 0, fmt.Errorf("cold image layer: %w", err)
	}
	return finish(base, []mutate.Addendum{{Layer: layer}})
}

// finish appends the layers and returns the image with the bytes a push
// moves: layers, config and manifest.
func finish(base v1.Image, adds []mutate.Addendum) (v1.Image, int64, error) {
	img, err := mutate.Append(base, adds...)
	if err != nil {
		return nil, 0, fmt.Errorf("build image: %w", err)
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, 0, fmt.Errorf("build image: %w", err)
	}
	raw, err := img.RawManifest()
	if err != nil {
		return nil, 0, fmt.Errorf("build image: %w", err)
	}
	total := m.Config.Size + int64(len(raw))
	for _, l := range m.Layers {
		total += l.Size
	}
	// Compute every digest now (static layers hash lazily).
	if _, err := img.Digest(); err != nil {
		return nil, 0, fmt.Errorf("build image: %w", err)
	}
	return img, total, nil
}

// registryClient pushes and pulls to one registry.
type registryClient struct {
	name string // "berth", "docker-registry"
	host string // 127.0.0.1:PORT
	auth authn.Authenticator
	tr   http.RoundTripper
}

func newClient(name, host string, auth authn.Authenticator) *registryClient {
	return &registryClient{name: name, host: host, auth: auth, tr: remote.DefaultTransport.(*http.Transport).Clone()}
}

func (c *registryClient) ref(repo, tag string) (name.Tag, error) {
	t, err := name.NewTag(c.host+"/"+repo+":"+tag, name.Insecure, name.StrictValidation)
	if err != nil {
		return name.Tag{}, fmt.Errorf("%s: reference: %w", c.name, err)
	}
	return t, nil
}

// push writes img as repo:tag and times it.
func (c *registryClient) push(ctx context.Context, repo, tag string, img v1.Image) (time.Duration, error) {
	ref, err := c.ref(repo, tag)
	if err != nil {
		return 0, err
	}
	t0 := time.Now()
	if err := remote.Write(ref, img, remote.WithContext(ctx), remote.WithAuth(c.auth), remote.WithTransport(c.tr), remote.WithJobs(jobs)); err != nil {
		return 0, fmt.Errorf("%s: push %s: %w", c.name, ref, err)
	}
	return time.Since(t0), nil
}

// pull fetches repo:tag's manifest, config and every layer (digests
// verified, bytes discarded), jobs layers at a time, and times it.
func (c *registryClient) pull(ctx context.Context, repo, tag string) (time.Duration, int64, error) {
	ref, err := c.ref(repo, tag)
	if err != nil {
		return 0, 0, err
	}
	t0 := time.Now()
	img, err := remote.Image(ref, remote.WithContext(ctx), remote.WithAuth(c.auth), remote.WithTransport(c.tr))
	if err != nil {
		return 0, 0, fmt.Errorf("%s: pull %s: %w", c.name, ref, err)
	}
	raw, err := img.RawManifest()
	if err != nil {
		return 0, 0, fmt.Errorf("%s: pull %s: manifest: %w", c.name, ref, err)
	}
	cfg, err := img.RawConfigFile()
	if err != nil {
		return 0, 0, fmt.Errorf("%s: pull %s: config: %w", c.name, ref, err)
	}
	layers, err := img.Layers()
	if err != nil {
		return 0, 0, fmt.Errorf("%s: pull %s: layers: %w", c.name, ref, err)
	}
	var (
		mu    sync.Mutex
		total = int64(len(raw) + len(cfg))
		first error
		wg    sync.WaitGroup
		sem   = make(chan struct{}, jobs)
	)
	for _, l := range layers {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			n, err := fetchLayer(l)
			mu.Lock()
			defer mu.Unlock()
			total += n
			if err != nil && first == nil {
				first = err
			}
		})
	}
	wg.Wait()
	if first != nil {
		return 0, 0, fmt.Errorf("%s: pull %s: %w", c.name, ref, first)
	}
	return time.Since(t0), total, nil
}

// fetchLayer reads one layer's blob to the end; go-containerregistry
// verifies its digest as it reads.
func fetchLayer(l v1.Layer) (int64, error) {
	rc, err := l.Compressed()
	if err != nil {
		return 0, fmt.Errorf("layer: %w", err)
	}
	defer rc.Close()
	n, err := io.Copy(io.Discard, rc)
	if err != nil {
		return n, fmt.Errorf("layer: %w", err)
	}
	return n, nil
}
