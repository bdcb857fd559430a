package ecr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"

	"github.com/distribution/distribution/v3"
	"github.com/distribution/distribution/v3/manifest/manifestlist"
	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berthdev/berth/internal/protocol"
)

// PutImage, BatchCheckLayerAvailability and GetDownloadUrlForLayer: the
// rest of a push through the ECR API (layers.go uploads the blobs), on
// Distribution's Go API over the registry's storage.

// tagRE is a tag Distribution can store (ECR allows up to 300 characters;
// the registry's limit of 128 is the one that holds here).
var tagRE = regexp.MustCompile(`^[\w][\w.-]{0,127}$`)

// pushInput is PutImage's input.
type pushInput struct {
	RegistryID             string `json:"registryId"`
	RepositoryName         string `json:"repositoryName"`
	ImageManifest          string `json:"imageManifest"`
	ImageManifestMediaType string `json:"imageManifestMediaType"`
	ImageTag               string `json:"imageTag"`
	ImageDigest            string `json:"imageDigest"`
}

// putImage stores a manifest, and tags it, as a /v2/ manifest PUT would:
// Distribution's manifest service verifies that everything the manifest
// references is in the repository first.
func (s *Service) putImage(ctx context.Context, body []byte) (any, error) {
	sc, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	var in pushInput
	if err := protocol.Decode(body, &in); err != nil {
		return nil, err
	}
	if sc, err = s.apiScope(ctx, sc, in.RegistryID, in.RepositoryName, "ecr:PutImage"); err != nil {
		return nil, err
	}
	rec, err := s.requireRepo(ctx, sc, in.RepositoryName)
	if err != nil {
		return nil, err
	}
	switch {
	case in.ImageManifest == "":
		return nil, constraint("imageManifest", "Member must have length greater than or equal to 1")
	case len(in.ImageManifest) > maxManifestBytes:
		return nil, constraint("imageManifest", fmt.Sprintf("Member must have length less than or equal to %d", maxManifestBytes))
	case in.ImageTag != "" && !tagRE.MatchString(in.ImageTag):
		return nil, constraint("imageTag", "must satisfy regular expression '"+tagRE.String()+"'")
	}
	payload := []byte(in.ImageManifest)
	d := digest.FromBytes(payload)
	if in.ImageDigest != "" && in.ImageDigest != d.String() {
		return nil, imageDigestDoesNotMatch(in.ImageDigest, d)
	}
	m, mt, err := parseManifest(payload, in.ImageManifestMediaType)
	if err != nil {
		return nil, err
	}
	stored := sc.storedName(rec.Name)
	repo, err := s.reg.repo(ctx, stored)
	if err != nil {
		return nil, err
	}
	ms, err := repo.Manifests(ctx)
	if err != nil {
		return nil, fmt.Errorf("manifests of %s: %w", stored, err)
	}
	// ECR refuses a push that changes nothing, and a tag of an immutable
	// repository that would move. As for /v2/ pushes (checkImmutableTag),
	// the check and the write are not one transaction.
	if in.ImageTag != "" {
		current, err := s.reg.tagDigest(ctx, stored, in.ImageTag)
		switch {
		case err == nil && current == d:
			return nil, imageAlreadyExists(sc, rec.Name, d, in.ImageTag)
		case err == nil && rec.ImageTagMutability == mutabilityImmutable:
			return nil, imageTagAlreadyExists(in.ImageTag, rec.Name)
		case err != nil && !errors.Is(err, errNoSuchTag):
			return nil, err
		}
	} else {
		exists, err := ms.Exists(ctx, d)
		if err != nil && !isPathNotFound(err) {
			return nil, fmt.Errorf("manifest %s of %s: %w", d, stored, err)
		}
		if exists {
			return nil, imageAlreadyExists(sc, rec.Name, d, "")
		}
	}
	if _, err := ms.Put(ctx, m); err != nil {
		return nil, manifestRefused(sc, rec.Name, mt, err)
	}
	if in.ImageTag != "" {
		desc := v1.Descriptor{MediaType: mt, Digest: d, Size: int64(len(payload))}
		if err := repo.Tags(ctx).Tag(ctx, in.ImageTag, desc); err != nil {
			return nil, fmt.Errorf("tag %s of %s: %w", in.ImageTag, stored, err)
		}
	}
	type image struct {
		RegistryID             string          `json:"registryId"`
		RepositoryName         string          `json:"repositoryName"`
		ImageID                ImageIdentifier `json:"imageId"`
		ImageManifest          string          `json:"imageManifest"`
		ImageManifestMediaType string          `json:"imageManifestMediaType"`
	}
	return struct {
		Image image `json:"image"`
	}{image{RegistryID: sc.account, RepositoryName: rec.Name, ImageID: ImageIdentifier{ImageDigest: d.String(), ImageTag: in.ImageTag},
		ImageManifest: in.ImageManifest, ImageManifestMediaType: mt}}, nil
}

// parseManifest unmarshals a manifest with Distribution's handlers. The
// media type is the one given, else the manifest's own mediaType, else the
// OCI type its shape says (an index if it has manifests).
func parseManifest(payload []byte, given string) (distribution.Manifest, string, error) {
	var probe struct {
		MediaType string            `json:"mediaType"`
		Manifests []json.RawMessage `json:"manifests"`
	}
	if err := json.Unmarshal(payload, &probe); err != nil {
		return nil, "", invalidParam("Invalid parameter at 'ImageManifest' failed to satisfy constraint: 'Invalid JSON syntax'")
	}
	mt := given
	switch {
	case mt != "" && probe.MediaType != "" && mt != probe.MediaType:
		return nil, "", invalidParam("Invalid parameter at 'imageManifestMediaType': '%s' does not match the manifest's mediaType '%s'", mt, probe.MediaType)
	case mt == "" && probe.MediaType != "":
		mt = probe.MediaType
	case mt == "" && probe.Manifests != nil:
		mt = v1.MediaTypeImageIndex
	case mt == "":
		mt = v1.MediaTypeImageManifest
	}
	m, _, err := distribution.UnmarshalManifest(mt, payload)
	if err != nil {
		return nil, "", invalidParam("Invalid parameter at 'ImageManifest' failed to satisfy constraint: '%s'", err.Error())
	}
	return m, mt, nil
}

// manifestRefused turns Distribution's refusal of a manifest into ECR's
// error: references it does not hold are LayersNotFoundException (an
// image) or ReferencedImagesNotFoundException (an index).
func manifestRefused(sc scope, name, mt string, err error) error {
	var verr distribution.ErrManifestVerification
	if !errors.As(err, &verr) {
		return fmt.Errorf("put manifest in %s: %w", sc.storedName(name), err)
	}
	var missing []digest.Digest
	var other []string
	for _, e := range verr {
		var unknown distribution.ErrManifestBlobUnknown
		if errors.As(e, &unknown) {
			if !slices.Contains(missing, unknown.Digest) {
				missing = append(missing, unknown.Digest)
			}
			continue
		}
		other = append(other, e.Error())
	}
	switch {
	case len(missing) > 0 && (mt == v1.MediaTypeImageIndex || mt == manifestlist.MediaTypeManifestList):
		return referencedImagesNotFound(sc, name, missing)
	case len(missing) > 0:
		return layersNotFound(sc, name, missing)
	}
	return invalidParam("Invalid parameter at 'ImageManifest' failed to satisfy constraint: '%v'", other)
}

// layerUse maps the blobs a repository's manifests reference (configs and
// layers) to the media type the manifest gives them.
func (s *Service) layerUse(ctx context.Context, stored string) (map[digest.Digest]string, error) {
	ds, err := s.reg.manifestDigests(ctx, stored)
	if err != nil {
		return nil, err
	}
	use := map[digest.Digest]string{}
	for _, d := range ds {
		_, payload, err := s.reg.manifest(ctx, stored, d)
		if err != nil {
			return nil, err
		}
		var m ociManifest
		if json.Unmarshal(payload, &m) != nil {
			continue
		}
		if m.Config != nil {
			use[m.Config.Digest] = m.Config.MediaType
		}
		for _, l := range m.Layers {
			use[l.Digest] = l.MediaType
		}
	}
	return use, nil
}

func (s *Service) batchCheckLayerAvailability(ctx context.Context, body []byte) (any, error) {
	var in layerInput
	lr, err := s.openLayerRepo(ctx, body, &in, "ecr:BatchCheckLayerAvailability")
	if err != nil {
		return nil, err
	}
	if len(in.LayerDigests) == 0 || len(in.LayerDigests) > 100 {
		return nil, constraint("layerDigests", "Member must have length between 1 and 100")
	}
	type layer struct {
		LayerDigest       string `json:"layerDigest"`
		LayerAvailability string `json:"layerAvailability"`
		LayerSize         int64  `json:"layerSize"`
		MediaType         string `json:"mediaType,omitempty"`
	}
	type failure struct {
		LayerDigest   string `json:"layerDigest"`
		FailureCode   string `json:"failureCode"`
		FailureReason string `json:"failureReason"`
	}
	out := struct {
		Layers   []layer   `json:"layers"`
		Failures []failure `json:"failures"`
	}{Layers: []layer{}, Failures: []failure{}}
	blobs := lr.repo.Blobs(ctx)
	var use map[digest.Digest]string
	for _, raw := range in.LayerDigests {
		d, err := digest.Parse(raw)
		if err != nil {
			out.Failures = append(out.Failures, failure{raw, failureInvalidLayerDigest, failureReasonInvalidLayerDigest})
			continue
		}
		desc, err := blobs.Stat(ctx, d)
		if errors.Is(err, distribution.ErrBlobUnknown) {
			out.Failures = append(out.Failures, failure{raw, failureMissingLayerDigest, failureReasonMissingLayer})
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("layer %s of %s: %w", d, lr.stored, err)
		}
		if use == nil {
			if use, err = s.layerUse(ctx, lr.stored); err != nil {
				return nil, err
			}
		}
		out.Layers = append(out.Layers, layer{LayerDigest: d.String(), LayerAvailability: "AVAILABLE", LayerSize: desc.Size, MediaType: use[d]})
	}
	return out, nil
}

// getDownloadURLForLayer answers the registry's own blob URL on the
// endpoint the caller used. Unlike ECR's presigned S3 URL it needs the
// registry's auth (Basic AWS:<GetAuthorizationToken password>), which also
// names the account whose repository NAME is; another account's repository
// is named ACCOUNT/NAME, as the registry's cross-account form.
func (s *Service) getDownloadURLForLayer(ctx context.Context, body []byte) (any, error) {
	var in layerInput
	lr, err := s.openLayerRepo(ctx, body, &in, "ecr:GetDownloadUrlForLayer")
	if err != nil {
		return nil, err
	}
	if in.LayerDigest == "" {
		return nil, constraint("layerDigest", "Member must not be null")
	}
	d, err := digest.Parse(in.LayerDigest)
	if err != nil {
		return nil, constraint("layerDigest", "must satisfy regular expression '[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+'")
	}
	if _, err := lr.repo.Blobs(ctx).Stat(ctx, d); errors.Is(err, distribution.ErrBlobUnknown) {
		return nil, layerNotFound(lr.sc, lr.rec.Name, d)
	} else if err != nil {
		return nil, fmt.Errorf("layer %s of %s: %w", d, lr.stored, err)
	}
	use, err := s.layerUse(ctx, lr.stored)
	if err != nil {
		return nil, err
	}
	if _, ok := use[d]; !ok {
		return nil, layerInaccessible(lr.sc, lr.rec.Name, d)
	}
	name := lr.rec.Name
	if lr.sc.account != lr.caller.account {
		name = lr.sc.account + "/" + name // the registry's cross-account form (splitRegistry)
	}
	e := endpointOf(ctx)
	return struct {
		DownloadURL string `json:"downloadUrl"`
		LayerDigest string `json:"layerDigest"`
	}{e.Scheme + "://" + e.Host + "/v2/" + name + "/blobs/" + d.String(), d.String()}, nil
}
