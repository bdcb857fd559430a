package ecr

import (
	"fmt"

	"github.com/opencontainers/go-digest"

	"github.com/berthdev/berth/internal/protocol"
)

// ECR exception names. Every error the ECR API returns is one of these,
// made here and nowhere else; the messages follow ECR's wording.
const (
	codeInvalidParameter         = "InvalidParameterException"
	codeRepositoryNotFound       = "RepositoryNotFoundException"
	codeRepositoryAlreadyExists  = "RepositoryAlreadyExistsException"
	codeRepositoryNotEmpty       = "RepositoryNotEmptyException"
	codeImageNotFound            = "ImageNotFoundException"
	codeImageTagAlreadyExists    = "ImageTagAlreadyExistsException"
	codeLimitExceeded            = "LimitExceededException"
	codeInvalidTagParameter      = "InvalidTagParameterException"
	codeTooManyTags              = "TooManyTagsException"
	codeServer                   = "ServerException"
	failureImageNotFound         = "ImageNotFound"
	failureMissingDigestAndTag   = "MissingDigestAndTag"
	failureImageTagDoesNotMatch  = "ImageTagDoesNotMatchDigest"
	failureInvalidImageDigest    = "InvalidImageDigest"
	failureInvalidImageTag       = "InvalidImageTag"
	failureReasonImageNotFound   = "Requested image not found"
	failureReasonMissingDigest   = "Invalid request parameters: both tag and digest cannot be null"
	failureReasonTagDoesNotMatch = "Invalid request parameters: image tag digest mismatch"
)

func invalidParam(format string, args ...any) error {
	return protocol.NewError(codeInvalidParameter, 400, format, args...)
}

// constraint is ECR's wording for a parameter that fails its model's rule.
func constraint(param, rule string) error {
	return invalidParam("Invalid parameter at '%s' failed to satisfy constraint: '%s'", param, rule)
}

func repoNotFound(sc scope, name string) error {
	return protocol.NewError(codeRepositoryNotFound, 400,
		"The repository with name '%s' does not exist in the registry with id '%s'", name, sc.account)
}

func repoExists(sc scope, name string) error {
	return protocol.NewError(codeRepositoryAlreadyExists, 400,
		"The repository with name '%s' already exists in the registry with id '%s'", name, sc.account)
}

func repoNotEmpty(sc scope, name string) error {
	return protocol.NewError(codeRepositoryNotEmpty, 400,
		"The repository with name '%s' in registry with id '%s' cannot be deleted because it still contains images",
		name, sc.account)
}

func imageNotFound(sc scope, name string, id ImageIdentifier) error {
	return protocol.NewError(codeImageNotFound, 400,
		"The image with imageId {imageDigest:'%s', imageTag:'%s'} does not exist within the repository with name '%s' in the registry with id '%s'",
		orNull(id.ImageDigest), orNull(id.ImageTag), name, sc.account)
}

func limitExceeded(format string, args ...any) error {
	return protocol.NewError(codeLimitExceeded, 400, format, args...)
}

func tooManyTags() error {
	return protocol.NewError(codeTooManyTags, 400, "A resource can have at most %d tags.", maxTags)
}

func invalidTag(format string, args ...any) error {
	return protocol.NewError(codeInvalidTagParameter, 400, format, args...)
}

// immutableTagMessage is ECR's message for a push over an immutable tag,
// used both by the registry (TAG_INVALID) and the API.
func immutableTagMessage(tag, repo string) string {
	return fmt.Sprintf("The image tag '%s' already exists in the '%s' repository and cannot be overwritten because the repository is immutable.", tag, repo)
}

func orNull(s string) string {
	if s == "" {
		return "null"
	}
	return s
}

// Errors of the layer-upload operations and PutImage (layers.go, push.go).
const (
	codeUploadNotFound              = "UploadNotFoundException"
	codeInvalidLayerPart            = "InvalidLayerPartException"
	codeLayerPartTooSmall           = "LayerPartTooSmallException"
	codeEmptyUpload                 = "EmptyUploadException"
	codeInvalidLayer                = "InvalidLayerException"
	codeLayerAlreadyExists          = "LayerAlreadyExistsException"
	codeLayersNotFound              = "LayersNotFoundException"
	codeLayerInaccessible           = "LayerInaccessibleException"
	codeReferencedImagesNotFound    = "ReferencedImagesNotFoundException"
	codeImageAlreadyExists          = "ImageAlreadyExistsException"
	codeImageDigestDoesNotMatch     = "ImageDigestDoesNotMatchException"
	failureInvalidLayerDigest       = "InvalidLayerDigest"
	failureMissingLayerDigest       = "MissingLayerDigest"
	failureReasonMissingLayer       = "Could not find layer"
	failureReasonInvalidLayerDigest = "Invalid layer digest"
)

func uploadNotFound(sc scope, name, id string) error {
	return protocol.NewError(codeUploadNotFound, 400,
		"Upload with id '%s' is not found in the repository with name '%s' in registry with id '%s'", id, name, sc.account)
}

// invalidLayerPart carries the upload's last valid byte, as ECR's
// InvalidLayerPartException does (-1: nothing received yet).
func invalidLayerPart(sc scope, name, id string, lastValid int64) error {
	e := protocol.NewError(codeInvalidLayerPart, 400,
		"The layer part size is not valid, or the first byte specified is not consecutive to the last byte of a previous layer part upload; last valid byte received: %d", lastValid)
	e.Fields = map[string]any{"registryId": sc.account, "repositoryName": name, "uploadId": id, "lastValidByteReceived": lastValid}
	return e
}

func layerPartTooSmall() error {
	return protocol.NewError(codeLayerPartTooSmall, 400, "Layer parts must be at least %d bytes in size, except the last one.", minLayerPartSize)
}

func emptyUpload(sc scope, name, id string) error {
	return protocol.NewError(codeEmptyUpload, 400,
		"The layer upload with id '%s' in the repository with name '%s' in registry with id '%s' does not contain any layer parts", id, name, sc.account)
}

func invalidLayer(sc scope, name, id, why string) error {
	return protocol.NewError(codeInvalidLayer, 400,
		"Invalid layer in upload with id '%s' to the repository with name '%s' in registry with id '%s': %s", id, name, sc.account, why)
}

func layerAlreadyExists(sc scope, name string, d digest.Digest) error {
	return protocol.NewError(codeLayerAlreadyExists, 400,
		"Layer with digest '%s' already exists in the repository with name '%s' in registry with id '%s'", d, name, sc.account)
}

func layersNotFound(sc scope, name string, ds []digest.Digest) error {
	return protocol.NewError(codeLayersNotFound, 400,
		"Layers with digests '%v' required for pushing image into repository with name '%s' in registry with id '%s' do not exist", ds, name, sc.account)
}

func layerNotFound(sc scope, name string, d digest.Digest) error {
	return protocol.NewError(codeLayersNotFound, 400,
		"The layer with digest '%s' does not exist in the repository with name '%s' in registry with id '%s'", d, name, sc.account)
}

func layerInaccessible(sc scope, name string, d digest.Digest) error {
	return protocol.NewError(codeLayerInaccessible, 400,
		"The layer with digest '%s' in the repository with name '%s' in registry with id '%s' is not associated with an image", d, name, sc.account)
}

func referencedImagesNotFound(sc scope, name string, ds []digest.Digest) error {
	return protocol.NewError(codeReferencedImagesNotFound, 400,
		"Images with digests '%v' referenced by the manifest list do not exist in the repository with name '%s' in registry with id '%s'", ds, name, sc.account)
}

func imageAlreadyExists(sc scope, name string, d digest.Digest, tag string) error {
	return protocol.NewError(codeImageAlreadyExists, 400,
		"Image with digest '%s' and tag '%s' already exists in the repository with name '%s' in registry with id '%s'", d, orNull(tag), name, sc.account)
}

func imageDigestDoesNotMatch(given string, d digest.Digest) error {
	return protocol.NewError(codeImageDigestDoesNotMatch, 400,
		"Invalid parameter: the image digest '%s' does not match the digest '%s' calculated for the manifest", given, d)
}

func imageTagAlreadyExists(tag, name string) error {
	return protocol.NewError(codeImageTagAlreadyExists, 400, "%s", immutableTagMessage(tag, name))
}

// Errors of the lifecycle and repository policy operations (lifecycle.go,
// policy.go).
const (
	codeLifecyclePolicyNotFound        = "LifecyclePolicyNotFoundException"
	codeLifecyclePolicyPreviewNotFound = "LifecyclePolicyPreviewNotFoundException"
	codeRepositoryPolicyNotFound       = "RepositoryPolicyNotFoundException"
)

func lifecyclePolicyNotFound(sc scope, name string) error {
	return protocol.NewError(codeLifecyclePolicyNotFound, 400,
		"Lifecycle policy does not exist for the repository with name '%s' in the registry with id '%s'", name, sc.account)
}

func lifecyclePreviewNotFound(sc scope, name string) error {
	return protocol.NewError(codeLifecyclePolicyPreviewNotFound, 400,
		"There is no lifecycle policy preview for the repository with name '%s' in the registry with id '%s'", name, sc.account)
}

func repoPolicyNotFound(sc scope, name string) error {
	return protocol.NewError(codeRepositoryPolicyNotFound, 400,
		"Repository policy does not exist for the repository with name '%s' in the registry with id '%s'", name, sc.account)
}

// accessDenied is IAM's refusal of a cross-account call that no repository
// policy allows.
func accessDenied(account, action, arn string) error {
	return protocol.NewError("AccessDeniedException", 400, "%s", notAuthorizedMessage(account, action, arn))
}
