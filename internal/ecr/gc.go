package ecr

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path"
	"strings"
	"time"

	"github.com/distribution/distribution/v3"
	"github.com/distribution/distribution/v3/registry/storage"
	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
)

// Garbage collection frees the disk space of blobs no manifest references
// any more (deleted images, expired ones, abandoned pushes), while the
// registry keeps serving. Distribution's own MarkAndSweep wants the registry
// read-only, because a push uploads its blobs before the manifest that
// references them; berth's sweep is safe while serving instead:
//
//   - it removes only blobs untouched for a grace period: written more than
//     grace ago, and not looked at (HEAD, which a client sends to learn
//     whether it must upload a blob, or a cross-repository mount) since, so a
//     push in flight keeps every blob it wrote or decided not to write;
//   - marking lists every repository's manifests, so a blob is kept as long
//     as any account's image refers to it.
//
// Several replicas sweeping the same storage at once is harmless: each
// removal is idempotent.

// DefaultGCGrace is how long an unreferenced blob is kept.
const DefaultGCGrace = time.Hour

// blobDataPath is where Distribution's filesystem layout keeps a blob.
func blobDataPath(d digest.Digest) string {
	hex := d.Encoded()
	if len(hex) < 2 {
		return ""
	}
	return path.Join("/docker/registry/v2/blobs", d.Algorithm().String(), hex[:2], hex, "data")
}

// GCResult says what one sweep removed.
type GCResult struct {
	Blobs int
	Bytes int64
}

// CollectGarbage removes the blobs no manifest references that were neither
// written nor looked at within grace.
func (r *Registry) CollectGarbage(ctx context.Context, grace time.Duration) (GCResult, error) {
	var res GCResult
	marked, err := r.mark(ctx)
	if err != nil {
		return res, fmt.Errorf("gc: mark: %w", err)
	}
	enum := r.ns.Blobs()
	var unmarked []digest.Digest
	if err := enum.Enumerate(ctx, func(d digest.Digest) error {
		if !marked[d] {
			unmarked = append(unmarked, d)
		}
		return nil
	}); err != nil && !isPathNotFound(err) {
		return res, fmt.Errorf("gc: list blobs: %w", err)
	}
	vacuum := storage.NewVacuum(ctx, r.driver)
	cutoff := time.Now().Add(-grace)
	for _, d := range unmarked {
		fi, err := r.driver.Stat(ctx, blobDataPath(d))
		if err != nil || fi.ModTime().After(cutoff) {
			continue
		}
		if err := vacuum.RemoveBlob(d.String()); err != nil {
			var nf storagedriver.PathNotFoundError
			if errors.As(err, &nf) {
				continue
			}
			return res, fmt.Errorf("gc: remove %s: %w", d, err)
		}
		res.Blobs++
		res.Bytes += fi.Size()
	}
	if res.Blobs > 0 {
		r.log.Info("registry garbage collected", "blobs", res.Blobs, "bytes", res.Bytes)
	}
	return res, nil
}

// mark lists every blob some manifest of some repository refers to, and the
// manifests themselves.
func (r *Registry) mark(ctx context.Context) (map[digest.Digest]bool, error) {
	marked := map[digest.Digest]bool{}
	repos, ok := r.ns.(distribution.RepositoryEnumerator)
	if !ok {
		return nil, errors.New("the storage cannot list its repositories")
	}
	err := repos.Enumerate(ctx, func(name string) error {
		named, err := reference.WithName(name)
		if err != nil {
			return nil
		}
		repo, err := r.ns.Repository(ctx, named)
		if err != nil {
			return err
		}
		ms, err := repo.Manifests(ctx)
		if err != nil {
			return err
		}
		menum, ok := ms.(distribution.ManifestEnumerator)
		if !ok {
			return errors.New("the storage cannot list manifests")
		}
		err = menum.Enumerate(ctx, func(d digest.Digest) error {
			marked[d] = true
			m, err := ms.Get(ctx, d)
			if err != nil {
				return nil // deleted meanwhile: nothing to keep
			}
			for _, ref := range m.References() {
				marked[ref.Digest] = true
			}
			return nil
		})
		if err != nil && !isPathNotFound(err) {
			return err
		}
		return nil
	})
	if err != nil && !isPathNotFound(err) {
		return nil, err
	}
	return marked, nil
}

// touchBlob records that a client looked at a blob (HEAD, mount), so the
// sweep keeps it for another grace period.
func (r *Registry) touchBlob(req *http.Request) {
	if r.root == "" {
		return
	}
	var raw string
	if i := strings.LastIndex(req.URL.Path, "/blobs/"); i >= 0 && req.Method == http.MethodHead {
		raw = req.URL.Path[i+len("/blobs/"):]
	} else if req.Method == http.MethodPost {
		raw = req.URL.Query().Get("mount")
	}
	d, err := digest.Parse(raw)
	if err != nil {
		return
	}
	p := blobDataPath(d)
	if p == "" {
		return
	}
	now := time.Now()
	_ = os.Chtimes(r.root+p, now, now)
}

// CollectGarbage sweeps the registry's unreferenced blobs now (the
// lifecycle loop also does it after applying lifecycle policies).
func (s *Service) CollectGarbage(ctx context.Context, grace time.Duration) (GCResult, error) {
	return s.reg.CollectGarbage(ctx, grace)
}
