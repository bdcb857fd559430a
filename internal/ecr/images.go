package ecr

import (
	"context"
	"encoding/json"
	"slices"
	"sort"

	"github.com/opencontainers/go-digest"

	"github.com/berthdev/berth/internal/protocol"
)

// Tag status filters of ListImages and DescribeImages.
const (
	tagStatusTagged   = "TAGGED"
	tagStatusUntagged = "UNTAGGED"
	tagStatusAny      = "ANY"
)

// ImageIdentifier is ECR's ImageIdentifier shape.
type ImageIdentifier struct {
	ImageDigest string `json:"imageDigest,omitempty"`
	ImageTag    string `json:"imageTag,omitempty"`
}

type imageFailure struct {
	ImageID       ImageIdentifier `json:"imageId"`
	FailureCode   string          `json:"failureCode"`
	FailureReason string          `json:"failureReason"`
}

// imageDetail is ECR's ImageDetail shape.
type imageDetail struct {
	RegistryID             string   `json:"registryId"`
	RepositoryName         string   `json:"repositoryName"`
	ImageDigest            string   `json:"imageDigest"`
	ImageTags              []string `json:"imageTags,omitempty"`
	ImageSizeInBytes       int64    `json:"imageSizeInBytes"`
	ImagePushedAt          float64  `json:"imagePushedAt"`
	ImageManifestMediaType string   `json:"imageManifestMediaType,omitempty"`
	ArtifactMediaType      string   `json:"artifactMediaType,omitempty"`
}

// imageInput is the input the image operations share.
type imageInput struct {
	RegistryID         string            `json:"registryId"`
	RepositoryName     string            `json:"repositoryName"`
	ImageIDs           []ImageIdentifier `json:"imageIds"`
	NextToken          string            `json:"nextToken"`
	MaxResults         *int              `json:"maxResults"`
	AcceptedMediaTypes []string          `json:"acceptedMediaTypes"`
	Filter             *struct {
		TagStatus string `json:"tagStatus"`
	} `json:"filter"`
}

// repoImages is one repository's images as an operation sees them.
type repoImages struct {
	sc     scope
	name   string
	stored string
	// digests are the manifests, sorted; tags maps each to its tags.
	digests []digest.Digest
	tags    map[digest.Digest][]string
}

// openImages decodes body into in, checks the repository and reads its
// manifests and tags. A registryId of another account names its repository
// when its policy allows the caller action (apiScope, policy.go).
func (s *Service) openImages(ctx context.Context, body []byte, in *imageInput, action string) (*repoImages, error) {
	sc, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	if err := protocol.Decode(body, in); err != nil {
		return nil, err
	}
	if sc, err = s.apiScope(ctx, sc, in.RegistryID, in.RepositoryName, action); err != nil {
		return nil, err
	}
	if in.Filter != nil {
		switch in.Filter.TagStatus {
		case "", tagStatusTagged, tagStatusUntagged, tagStatusAny:
		default:
			return nil, constraint("filter.tagStatus", "Member must satisfy enum value set: [TAGGED, UNTAGGED, ANY]")
		}
	}
	rec, err := s.requireRepo(ctx, sc, in.RepositoryName)
	if err != nil {
		return nil, err
	}
	ri := &repoImages{sc: sc, name: rec.Name, stored: sc.storedName(rec.Name)}
	if ri.digests, err = s.reg.manifestDigests(ctx, ri.stored); err != nil {
		return nil, err
	}
	if ri.tags, err = s.reg.tagMap(ctx, ri.stored); err != nil {
		return nil, err
	}
	return ri, nil
}

// wants reports whether a filter's tag status admits an image with tags.
func wants(in *imageInput, tags []string) bool {
	if in.Filter == nil {
		return true
	}
	switch in.Filter.TagStatus {
	case tagStatusTagged:
		return len(tags) > 0
	case tagStatusUntagged:
		return len(tags) == 0
	}
	return true
}

// find resolves an image id: its digest and the tag named (if any). ok is
// false with the failure otherwise.
func (ri *repoImages) find(id ImageIdentifier) (digest.Digest, *imageFailure) {
	fail := func(code, reason string) (digest.Digest, *imageFailure) {
		return "", &imageFailure{ImageID: id, FailureCode: code, FailureReason: reason}
	}
	if id.ImageDigest == "" && id.ImageTag == "" {
		return fail(failureMissingDigestAndTag, failureReasonMissingDigest)
	}
	var byTag digest.Digest
	if id.ImageTag != "" {
		for d, tags := range ri.tags {
			if slices.Contains(tags, id.ImageTag) {
				byTag = d
			}
		}
		if byTag == "" {
			return fail(failureImageNotFound, failureReasonImageNotFound)
		}
	}
	if id.ImageDigest == "" {
		return byTag, nil
	}
	d, err := digest.Parse(id.ImageDigest)
	if err != nil {
		return fail(failureInvalidImageDigest, "Invalid request parameters: image digest should satisfy the regex '[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+'")
	}
	if byTag != "" && byTag != d {
		return fail(failureImageTagDoesNotMatch, failureReasonTagDoesNotMatch)
	}
	if _, ok := slices.BinarySearch(ri.digests, d); !ok {
		return fail(failureImageNotFound, failureReasonImageNotFound)
	}
	return d, nil
}

func (s *Service) listImages(ctx context.Context, body []byte) (any, error) {
	var in imageInput
	ri, err := s.openImages(ctx, body, &in, "ecr:ListImages")
	if err != nil {
		return nil, err
	}
	ids := []ImageIdentifier{}
	for _, d := range ri.digests {
		tags := ri.tags[d]
		if !wants(&in, tags) {
			continue
		}
		if len(tags) == 0 {
			ids = append(ids, ImageIdentifier{ImageDigest: d.String()})
		}
		for _, t := range tags {
			ids = append(ids, ImageIdentifier{ImageDigest: d.String(), ImageTag: t})
		}
	}
	pageIDs, next, err := page(ids, func(id ImageIdentifier) string { return id.ImageDigest + "\x00" + id.ImageTag }, in.NextToken, in.MaxResults)
	if err != nil {
		return nil, err
	}
	return struct {
		ImageIDs  []ImageIdentifier `json:"imageIds"`
		NextToken string            `json:"nextToken,omitempty"`
	}{pageIDs, next}, nil
}

func (s *Service) describeImages(ctx context.Context, body []byte) (any, error) {
	var in imageInput
	ri, err := s.openImages(ctx, body, &in, "ecr:DescribeImages")
	if err != nil {
		return nil, err
	}
	var digests []digest.Digest
	if len(in.ImageIDs) > 0 {
		if in.MaxResults != nil || in.NextToken != "" {
			return nil, invalidParam("Invalid parameter: maxResults and nextToken cannot be used with imageIds")
		}
		for _, id := range in.ImageIDs {
			d, fail := ri.find(id)
			if fail != nil {
				if fail.FailureCode == failureImageNotFound {
					return nil, imageNotFound(ri.sc, ri.name, id)
				}
				return nil, invalidParam("%s", fail.FailureReason)
			}
			if !slices.Contains(digests, d) {
				digests = append(digests, d)
			}
		}
		sort.Slice(digests, func(i, j int) bool { return digests[i] < digests[j] })
	} else {
		for _, d := range ri.digests {
			if wants(&in, ri.tags[d]) {
				digests = append(digests, d)
			}
		}
	}
	pageDigests, next, err := page(digests, func(d digest.Digest) string { return d.String() }, in.NextToken, in.MaxResults)
	if err != nil {
		return nil, err
	}
	details := []imageDetail{}
	for _, d := range pageDigests {
		det, err := s.detail(ctx, ri, d)
		if err != nil {
			return nil, err
		}
		details = append(details, det)
	}
	return struct {
		ImageDetails []imageDetail `json:"imageDetails"`
		NextToken    string        `json:"nextToken,omitempty"`
	}{details, next}, nil
}

// detail describes one image: ECR's size is the sum of its layers
// (compressed, as pushed); an index's is the largest of its images that
// the repository holds.
func (s *Service) detail(ctx context.Context, ri *repoImages, d digest.Digest) (imageDetail, error) {
	det := imageDetail{RegistryID: ri.sc.account, RepositoryName: ri.name, ImageDigest: d.String(), ImageTags: ri.tags[d]}
	mt, payload, err := s.reg.manifest(ctx, ri.stored, d)
	if err != nil {
		return det, err
	}
	det.ImageManifestMediaType = mt
	var m ociManifest
	if err := json.Unmarshal(payload, &m); err != nil {
		return det, nil // a manifest Distribution accepted but we cannot read: no size
	}
	if m.Config != nil {
		det.ArtifactMediaType = m.Config.MediaType
	}
	det.ImageSizeInBytes = layersSize(m)
	for _, child := range m.Manifests {
		if _, ok := slices.BinarySearch(ri.digests, child.Digest); !ok {
			continue
		}
		_, cp, err := s.reg.manifest(ctx, ri.stored, child.Digest)
		if err != nil {
			return det, err
		}
		var cm ociManifest
		if json.Unmarshal(cp, &cm) == nil {
			det.ImageSizeInBytes = max(det.ImageSizeInBytes, layersSize(cm))
		}
	}
	at, err := s.reg.pushedAt(ctx, ri.stored, d)
	if err != nil {
		return det, err
	}
	det.ImagePushedAt = epoch(at)
	return det, nil
}

func layersSize(m ociManifest) int64 {
	var n int64
	for _, l := range m.Layers {
		n += l.Size
	}
	return n
}

func (s *Service) batchGetImage(ctx context.Context, body []byte) (any, error) {
	var in imageInput
	ri, err := s.openImages(ctx, body, &in, "ecr:BatchGetImage")
	if err != nil {
		return nil, err
	}
	if len(in.ImageIDs) == 0 || len(in.ImageIDs) > 100 {
		return nil, constraint("imageIds", "Member must have length between 1 and 100")
	}
	type image struct {
		RegistryID             string          `json:"registryId"`
		RepositoryName         string          `json:"repositoryName"`
		ImageID                ImageIdentifier `json:"imageId"`
		ImageManifest          string          `json:"imageManifest"`
		ImageManifestMediaType string          `json:"imageManifestMediaType"`
	}
	out := struct {
		Images   []image        `json:"images"`
		Failures []imageFailure `json:"failures"`
	}{Images: []image{}, Failures: []imageFailure{}}
	for _, id := range in.ImageIDs {
		d, fail := ri.find(id)
		if fail != nil {
			out.Failures = append(out.Failures, *fail)
			continue
		}
		mt, payload, err := s.reg.manifest(ctx, ri.stored, d)
		if err != nil {
			return nil, err
		}
		if len(in.AcceptedMediaTypes) > 0 && !slices.Contains(in.AcceptedMediaTypes, mt) {
			out.Failures = append(out.Failures, imageFailure{ImageID: id, FailureCode: "UnsupportedImageType",
				FailureReason: "The image's manifest media type " + mt + " is not among the accepted media types"})
			continue
		}
		out.Images = append(out.Images, image{RegistryID: ri.sc.account, RepositoryName: ri.name,
			ImageID: ImageIdentifier{ImageDigest: d.String(), ImageTag: id.ImageTag}, ImageManifest: string(payload),
			ImageManifestMediaType: mt})
	}
	return out, nil
}

// batchDeleteImage deletes images as ECR does: an id with a digest deletes
// the manifest and every tag on it; an id with only a tag removes the tag,
// and the image with it when that was its last tag.
func (s *Service) batchDeleteImage(ctx context.Context, body []byte) (any, error) {
	var in imageInput
	ri, err := s.openImages(ctx, body, &in, "ecr:BatchDeleteImage")
	if err != nil {
		return nil, err
	}
	if len(in.ImageIDs) == 0 || len(in.ImageIDs) > 100 {
		return nil, constraint("imageIds", "Member must have length between 1 and 100")
	}
	out := struct {
		ImageIDs []ImageIdentifier `json:"imageIds"`
		Failures []imageFailure    `json:"failures"`
	}{ImageIDs: []ImageIdentifier{}, Failures: []imageFailure{}}
	for _, id := range in.ImageIDs {
		d, fail := ri.find(id)
		if fail != nil {
			out.Failures = append(out.Failures, *fail)
			continue
		}
		untag := ri.tags[d]
		if id.ImageDigest == "" {
			untag = []string{id.ImageTag}
		}
		for _, t := range untag {
			if err := s.reg.untag(ctx, ri.stored, t); err != nil {
				return nil, err
			}
			out.ImageIDs = append(out.ImageIDs, ImageIdentifier{ImageDigest: d.String(), ImageTag: t})
		}
		ri.tags[d] = slices.DeleteFunc(ri.tags[d], func(t string) bool { return slices.Contains(untag, t) })
		if len(ri.tags[d]) > 0 {
			continue
		}
		if err := s.reg.deleteManifest(ctx, ri.stored, d); err != nil {
			return nil, err
		}
		ri.digests = slices.DeleteFunc(ri.digests, func(x digest.Digest) bool { return x == d })
		if len(untag) == 0 {
			out.ImageIDs = append(out.ImageIDs, ImageIdentifier{ImageDigest: d.String()})
		}
	}
	return out, nil
}
