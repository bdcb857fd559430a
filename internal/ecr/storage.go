package ecr

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sort"
	"time"

	"github.com/distribution/distribution/v3"
	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// The ECR API reads and deletes images through Distribution's Go API on
// the registry's own storage driver (Registry.ns), never over HTTP. Where
// Distribution has no API (when a manifest was pushed, removing a
// repository) it touches its documented storage layout:
//
//	/docker/registry/v2/repositories/<name>/
//	├── _manifests/revisions/sha256/<hex>/link   one per manifest; its mtime is the push time
//	├── _manifests/tags/<tag>/…
//	├── _layers/…                                 links to the blobs the repository holds
//	└── _uploads/…                                uploads in flight
const repositoriesRoot = "/docker/registry/v2/repositories"

// errNoSuchTag reports a tag that a repository does not have.
var errNoSuchTag = errors.New("no such tag")

// repo opens a repository by its stored name.
func (r *Registry) repo(ctx context.Context, stored string) (distribution.Repository, error) {
	named, err := reference.WithName(stored)
	if err != nil {
		return nil, fmt.Errorf("repository %s: %w", stored, err)
	}
	repo, err := r.ns.Repository(ctx, named)
	if err != nil {
		return nil, fmt.Errorf("open repository %s: %w", stored, err)
	}
	return repo, nil
}

// manifestDigests lists the manifests a repository holds, sorted.
func (r *Registry) manifestDigests(ctx context.Context, stored string) ([]digest.Digest, error) {
	repo, err := r.repo(ctx, stored)
	if err != nil {
		return nil, err
	}
	ms, err := repo.Manifests(ctx)
	if err != nil {
		return nil, fmt.Errorf("manifests of %s: %w", stored, err)
	}
	enum, ok := ms.(distribution.ManifestEnumerator)
	if !ok {
		return nil, fmt.Errorf("manifests of %s: storage cannot enumerate", stored)
	}
	var out []digest.Digest
	err = enum.Enumerate(ctx, func(d digest.Digest) error {
		out = append(out, d)
		return nil
	})
	if err != nil && !isPathNotFound(err) {
		return nil, fmt.Errorf("enumerate manifests of %s: %w", stored, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}

// tagMap returns a repository's tags by the digest they point at.
func (r *Registry) tagMap(ctx context.Context, stored string) (map[digest.Digest][]string, error) {
	repo, err := r.repo(ctx, stored)
	if err != nil {
		return nil, err
	}
	ts := repo.Tags(ctx)
	tags, err := ts.All(ctx)
	var unknown distribution.ErrRepositoryUnknown
	if errors.As(err, &unknown) || isPathNotFound(err) {
		return map[digest.Digest][]string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("tags of %s: %w", stored, err)
	}
	out := make(map[digest.Digest][]string, len(tags))
	for _, tag := range tags {
		desc, err := ts.Get(ctx, tag)
		if errors.As(err, new(distribution.ErrTagUnknown)) {
			continue // untagged meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("tag %s of %s: %w", tag, stored, err)
		}
		out[desc.Digest] = append(out[desc.Digest], tag)
	}
	for _, ts := range out {
		sort.Strings(ts)
	}
	return out, nil
}

// tagDigest returns the digest a tag points at, or errNoSuchTag.
func (r *Registry) tagDigest(ctx context.Context, stored, tag string) (digest.Digest, error) {
	repo, err := r.repo(ctx, stored)
	if err != nil {
		return "", err
	}
	desc, err := repo.Tags(ctx).Get(ctx, tag)
	if errors.As(err, new(distribution.ErrTagUnknown)) || isPathNotFound(err) {
		return "", errNoSuchTag
	}
	if err != nil {
		return "", fmt.Errorf("tag %s of %s: %w", tag, stored, err)
	}
	return desc.Digest, nil
}

// manifest reads a manifest's media type and bytes.
func (r *Registry) manifest(ctx context.Context, stored string, d digest.Digest) (string, []byte, error) {
	repo, err := r.repo(ctx, stored)
	if err != nil {
		return "", nil, err
	}
	ms, err := repo.Manifests(ctx)
	if err != nil {
		return "", nil, fmt.Errorf("manifests of %s: %w", stored, err)
	}
	m, err := ms.Get(ctx, d)
	if err != nil {
		return "", nil, fmt.Errorf("manifest %s of %s: %w", d, stored, err)
	}
	mt, payload, err := m.Payload()
	if err != nil {
		return "", nil, fmt.Errorf("manifest %s of %s: %w", d, stored, err)
	}
	return mt, payload, nil
}

// pushedAt is when a manifest was put into a repository.
func (r *Registry) pushedAt(ctx context.Context, stored string, d digest.Digest) (time.Time, error) {
	p := path.Join(repositoriesRoot, stored, "_manifests", "revisions", d.Algorithm().String(), d.Encoded(), "link")
	fi, err := r.driver.Stat(ctx, p)
	if err != nil {
		return time.Time{}, fmt.Errorf("stat %s: %w", p, err)
	}
	return fi.ModTime(), nil
}

// untag removes a tag.
func (r *Registry) untag(ctx context.Context, stored, tag string) error {
	repo, err := r.repo(ctx, stored)
	if err != nil {
		return err
	}
	if err := repo.Tags(ctx).Untag(ctx, tag); err != nil {
		return fmt.Errorf("untag %s of %s: %w", tag, stored, err)
	}
	return nil
}

// deleteManifest removes a manifest's revision link; the caller removes
// its tags first. Blobs stay in storage until garbage collection.
func (r *Registry) deleteManifest(ctx context.Context, stored string, d digest.Digest) error {
	repo, err := r.repo(ctx, stored)
	if err != nil {
		return err
	}
	ms, err := repo.Manifests(ctx)
	if err != nil {
		return fmt.Errorf("manifests of %s: %w", stored, err)
	}
	if err := ms.Delete(ctx, d); err != nil {
		return fmt.Errorf("delete manifest %s of %s: %w", d, stored, err)
	}
	return nil
}

// repoEmpty reports whether a repository holds no manifest.
func (r *Registry) repoEmpty(ctx context.Context, stored string) (bool, error) {
	ds, err := r.manifestDigests(ctx, stored)
	return len(ds) == 0, err
}

// removeRepo removes a repository's manifests, tags, layer links and
// uploads; repositories nested under its name are kept.
func (r *Registry) removeRepo(ctx context.Context, stored string) error {
	for _, dir := range []string{"_manifests", "_layers", "_uploads"} {
		p := path.Join(repositoriesRoot, stored, dir)
		if err := r.driver.Delete(ctx, p); err != nil && !isPathNotFound(err) {
			return fmt.Errorf("remove %s: %w", p, err)
		}
	}
	return nil
}

func isPathNotFound(err error) bool {
	var pnf storagedriver.PathNotFoundError
	return errors.As(err, &pnf)
}

// ociManifest is what the ECR API reads from a manifest: enough of the
// image manifest and index shapes (OCI and Docker) for sizes and types.
type ociManifest struct {
	MediaType string          `json:"mediaType"`
	Config    *v1.Descriptor  `json:"config"`
	Layers    []v1.Descriptor `json:"layers"`
	Manifests []v1.Descriptor `json:"manifests"`
}
