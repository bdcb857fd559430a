package ecr

import (
	"context"
	"errors"
	"fmt"
	"path"
	"regexp"
	"strconv"
	"sync"

	"github.com/distribution/distribution/v3"
	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berthdev/berth/internal/protocol"
)

// The ECR layer-upload API (InitiateLayerUpload, UploadLayerPart,
// CompleteLayerUpload) writes through Distribution's own upload sessions on
// the registry's storage, the ones /v2/ uploads use:
//
//   - The uploadId is the session's id: the random UUID Distribution gives
//     it, kept in Distribution's upload state under the repository's stored
//     name (_uploads/<uuid>/). Nothing about an upload lives in etcd or in a
//     process, so an upload continues across a server restart and on any
//     replica sharing the storage, and the registry's purge of abandoned
//     uploads removes abandoned API uploads too. The stored name includes
//     the account, so an uploadId is only good in its own repository.
//   - Parts append to the session's data through the blob writer, which
//     keeps the running sha256 state next to it; a part must start at the
//     byte after the last one received (the data's size).
//   - CompleteLayerUpload commits with the digests the client named: the
//     blob writer verifies the content against them before it moves the
//     blob into place and links it, so content that does not match is never
//     stored; the session is then removed.
//
// Two parts of one upload sent at once to one process are serialised; sent
// to two replicas at once they may interleave, which leaves a session whose
// content no longer matches its digest, refused at CompleteLayerUpload.

// minLayerPartSize is the smallest part ECR accepts, except the last one.
const minLayerPartSize = 5 << 20

// layerPartSize is InitiateLayerUpload's partSize: the part size clients are
// asked to use. A part is sent base64-encoded in a JSON body, which must fit
// the API's request limit (protocol.DefaultMaxBodyBytes, 10 MiB).
const layerPartSize = minLayerPartSize

// uploadIDRE is Distribution's upload id: a UUID. Checking it keeps an
// uploadId from naming any other path in storage.
var uploadIDRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// lastPartFile records, in the session's directory, the size of the last
// part received, so the next part can refuse a short one before it.
const lastPartFile = "ecr-lastpart"

// layerInput is the input the layer operations share.
type layerInput struct {
	RegistryID     string   `json:"registryId"`
	RepositoryName string   `json:"repositoryName"`
	UploadID       string   `json:"uploadId"`
	PartFirstByte  *int64   `json:"partFirstByte"`
	PartLastByte   *int64   `json:"partLastByte"`
	LayerPartBlob  []byte   `json:"layerPartBlob"`
	LayerDigests   []string `json:"layerDigests"`
	LayerDigest    string   `json:"layerDigest"`
}

// layerRepo is the repository a layer operation works on.
type layerRepo struct {
	caller scope // who calls
	sc     scope // whose repository it is
	rec    *repoRecord
	stored string
	repo   distribution.Repository
}

// openLayerRepo decodes body into in and opens the repository it names: the
// caller's, or another account's whose repository policy allows the caller
// action (apiScope, policy.go).
func (s *Service) openLayerRepo(ctx context.Context, body []byte, in *layerInput, action string) (*layerRepo, error) {
	caller, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	if err := protocol.Decode(body, in); err != nil {
		return nil, err
	}
	sc, err := s.apiScope(ctx, caller, in.RegistryID, in.RepositoryName, action)
	if err != nil {
		return nil, err
	}
	rec, err := s.requireRepo(ctx, sc, in.RepositoryName)
	if err != nil {
		return nil, err
	}
	lr := &layerRepo{caller: caller, sc: sc, rec: rec, stored: sc.storedName(rec.Name)}
	if lr.repo, err = s.reg.repo(ctx, lr.stored); err != nil {
		return nil, err
	}
	return lr, nil
}

func (s *Service) initiateLayerUpload(ctx context.Context, body []byte) (any, error) {
	var in layerInput
	lr, err := s.openLayerRepo(ctx, body, &in, "ecr:InitiateLayerUpload")
	if err != nil {
		return nil, err
	}
	bw, err := lr.repo.Blobs(ctx).Create(ctx)
	if err != nil {
		return nil, fmt.Errorf("initiate layer upload in %s: %w", lr.stored, err)
	}
	id := bw.ID()
	if err := bw.Close(); err != nil {
		return nil, fmt.Errorf("initiate layer upload in %s: %w", lr.stored, err)
	}
	return struct {
		UploadID string `json:"uploadId"`
		PartSize int64  `json:"partSize"`
	}{id, layerPartSize}, nil
}

// resume opens an upload session, answering UploadNotFoundException for an
// id that is not one of the repository's uploads.
func (lr *layerRepo) resume(ctx context.Context, id string) (distribution.BlobWriter, error) {
	if id == "" {
		return nil, constraint("uploadId", "Member must not be null")
	}
	if !uploadIDRE.MatchString(id) {
		return nil, uploadNotFound(lr.sc, lr.rec.Name, id)
	}
	bw, err := lr.repo.Blobs(ctx).Resume(ctx, id)
	if errors.Is(err, distribution.ErrBlobUploadUnknown) || isPathNotFound(err) {
		return nil, uploadNotFound(lr.sc, lr.rec.Name, id)
	}
	if err != nil {
		return nil, fmt.Errorf("resume upload %s in %s: %w", id, lr.stored, err)
	}
	return bw, nil
}

func (lr *layerRepo) lastPartPath(id string) string {
	return path.Join(repositoriesRoot, lr.stored, "_uploads", id, lastPartFile)
}

func (s *Service) uploadLayerPart(ctx context.Context, body []byte) (any, error) {
	var in layerInput
	lr, err := s.openLayerRepo(ctx, body, &in, "ecr:UploadLayerPart")
	if err != nil {
		return nil, err
	}
	switch {
	case in.PartFirstByte == nil:
		return nil, constraint("partFirstByte", "Member must not be null")
	case in.PartLastByte == nil:
		return nil, constraint("partLastByte", "Member must not be null")
	case *in.PartFirstByte < 0:
		return nil, constraint("partFirstByte", "Member must have value greater than or equal to 0")
	case *in.PartLastByte < 0:
		return nil, constraint("partLastByte", "Member must have value greater than or equal to 0")
	case len(in.LayerPartBlob) == 0:
		return nil, constraint("layerPartBlob", "Member must have length greater than or equal to 1")
	}
	unlock := uploadLocks.lock(lr.stored + "\x00" + in.UploadID)
	defer unlock()
	bw, err := lr.resume(ctx, in.UploadID)
	if err != nil {
		return nil, err
	}
	received := bw.Size()
	first, last := *in.PartFirstByte, *in.PartLastByte
	if first != received || last < first || last-first+1 != int64(len(in.LayerPartBlob)) {
		_ = bw.Close()
		return nil, invalidLayerPart(lr.sc, lr.rec.Name, in.UploadID, received-1)
	}
	if received > 0 {
		prev, err := s.reg.driver.GetContent(ctx, lr.lastPartPath(in.UploadID))
		if err == nil {
			if n, perr := strconv.ParseInt(string(prev), 10, 64); perr == nil && n < minLayerPartSize {
				_ = bw.Close()
				return nil, layerPartTooSmall()
			}
		} else if !isPathNotFound(err) {
			_ = bw.Close()
			return nil, fmt.Errorf("upload %s in %s: %w", in.UploadID, lr.stored, err)
		}
	}
	if _, err := bw.Write(in.LayerPartBlob); err != nil {
		_ = bw.Close()
		return nil, fmt.Errorf("upload %s in %s: write part: %w", in.UploadID, lr.stored, err)
	}
	if err := bw.Close(); err != nil {
		return nil, fmt.Errorf("upload %s in %s: %w", in.UploadID, lr.stored, err)
	}
	size := strconv.Itoa(len(in.LayerPartBlob))
	if err := s.reg.driver.PutContent(ctx, lr.lastPartPath(in.UploadID), []byte(size)); err != nil {
		return nil, fmt.Errorf("upload %s in %s: %w", in.UploadID, lr.stored, err)
	}
	return struct {
		RegistryID       string `json:"registryId"`
		RepositoryName   string `json:"repositoryName"`
		UploadID         string `json:"uploadId"`
		LastByteReceived int64  `json:"lastByteReceived"`
	}{lr.sc.account, lr.rec.Name, in.UploadID, last}, nil
}

func (s *Service) completeLayerUpload(ctx context.Context, body []byte) (any, error) {
	var in layerInput
	lr, err := s.openLayerRepo(ctx, body, &in, "ecr:CompleteLayerUpload")
	if err != nil {
		return nil, err
	}
	if len(in.LayerDigests) == 0 || len(in.LayerDigests) > 100 {
		return nil, constraint("layerDigests", "Member must have length between 1 and 100")
	}
	unlock := uploadLocks.lock(lr.stored + "\x00" + in.UploadID)
	defer unlock()
	bw, err := lr.resume(ctx, in.UploadID)
	if err != nil {
		return nil, err
	}
	if bw.Size() == 0 {
		_ = bw.Close()
		return nil, emptyUpload(lr.sc, lr.rec.Name, in.UploadID)
	}
	want, err := digest.Parse(in.LayerDigests[0])
	for _, d := range in.LayerDigests[1:] {
		if err == nil && d != want.String() {
			err = fmt.Errorf("layer digests differ: %s, %s", want, d)
		}
	}
	if err != nil {
		return nil, s.discard(ctx, lr, bw, invalidLayer(lr.sc, lr.rec.Name, in.UploadID, err.Error()))
	}
	blobs := lr.repo.Blobs(ctx)
	if _, err := blobs.Stat(ctx, want); err == nil {
		return nil, s.discard(ctx, lr, bw, layerAlreadyExists(lr.sc, lr.rec.Name, want))
	} else if !errors.Is(err, distribution.ErrBlobUnknown) {
		_ = bw.Close()
		return nil, fmt.Errorf("complete upload %s in %s: %w", in.UploadID, lr.stored, err)
	}
	// Commit verifies the content against want before the blob is moved
	// into place and linked into the repository.
	_, err = bw.Commit(ctx, v1.Descriptor{Digest: want})
	var invalid distribution.ErrBlobInvalidDigest
	if errors.As(err, &invalid) {
		if err := s.removeUpload(ctx, lr, in.UploadID); err != nil {
			return nil, err
		}
		return nil, invalidLayer(lr.sc, lr.rec.Name, in.UploadID,
			"the layer digest calculated upon receipt does not match the digest specified")
	}
	if err != nil {
		return nil, fmt.Errorf("complete upload %s in %s: %w", in.UploadID, lr.stored, err)
	}
	return struct {
		RegistryID     string `json:"registryId"`
		RepositoryName string `json:"repositoryName"`
		UploadID       string `json:"uploadId"`
		LayerDigest    string `json:"layerDigest"`
	}{lr.sc.account, lr.rec.Name, in.UploadID, want.String()}, nil
}

// discard closes and removes an upload and returns apiErr (or the removal's
// failure).
func (s *Service) discard(ctx context.Context, lr *layerRepo, bw distribution.BlobWriter, apiErr error) error {
	_ = bw.Close()
	if err := s.removeUpload(ctx, lr, bw.ID()); err != nil {
		return err
	}
	return apiErr
}

// removeUpload removes an upload session's directory, as the blob writer's
// Cancel does (which would also log a spurious close error), and as the
// purge of abandoned uploads does.
func (s *Service) removeUpload(ctx context.Context, lr *layerRepo, id string) error {
	p := path.Join(repositoriesRoot, lr.stored, "_uploads", id)
	if err := s.reg.driver.Delete(ctx, p); err != nil && !isPathNotFound(err) {
		return fmt.Errorf("remove upload %s in %s: %w", id, lr.stored, err)
	}
	return nil
}

// keyedLocks serialises work on one key within the process.
type keyedLocks struct {
	mu    sync.Mutex
	locks map[string]*keyedLock
}

type keyedLock struct {
	mu   sync.Mutex
	refs int
}

var uploadLocks = &keyedLocks{locks: map[string]*keyedLock{}}

// lock takes key's lock and returns its release.
func (k *keyedLocks) lock(key string) func() {
	k.mu.Lock()
	l := k.locks[key]
	if l == nil {
		l = &keyedLock{}
		k.locks[key] = l
	}
	l.refs++
	k.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		k.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
}
