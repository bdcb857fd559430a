package ecr

import (
	"fmt"

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
