package iam

import (
	"errors"
	"net/http"

	"github.com/berthdev/berth/internal/protocol"
)

// IAM error codes (botocore's iam model) with their HTTP statuses. Every
// client-visible error of the API is built here, worded as IAM words it.
const (
	codeNoSuchEntity       = "NoSuchEntity"
	codeEntityExists       = "EntityAlreadyExists"
	codeValidation         = "ValidationError"
	codeMalformedPolicy    = "MalformedPolicyDocument"
	codeInvalidInput       = "InvalidInput"
	codeLimitExceeded      = "LimitExceeded"
	codeAccessDenied       = "AccessDenied"
	maxTrustPolicyLength   = 2048 // IAM's default quota for a role trust policy
	maxPolicyDocumentBytes = 131072
)

func errAccessDenied() error {
	return protocol.NewError(codeAccessDenied, http.StatusForbidden, "Unable to determine the caller's account.")
}

func errNoSuchRole(name string) error {
	return protocol.NewError(codeNoSuchEntity, http.StatusNotFound, "The role with name %s cannot be found.", name)
}

func errRoleExists(name string) error {
	return protocol.NewError(codeEntityExists, http.StatusConflict, "Role with name %s already exists.", name)
}

func errValidation(format string, args ...any) error {
	return protocol.NewError(codeValidation, http.StatusBadRequest, format, args...)
}

// errMissing is the message of an absent required member.
func errMissing(member string) error {
	return errValidation("1 validation error detected: Value null at '%s' failed to satisfy constraint: Member must not be null", member)
}

func errPattern(value, member, pattern string) error {
	return errValidation("1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: Member must satisfy regular expression pattern: %s", value, member, pattern)
}

func errLength(value, member string, min, max int) error {
	if len(value) < min {
		return errValidation("1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: Member must have length greater than or equal to %d", value, member, min)
	}
	return errValidation("1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: Member must have length less than or equal to %d", value, member, max)
}

func errMalformedPolicy(msg string) error {
	return protocol.NewError(codeMalformedPolicy, http.StatusBadRequest, "%s", msg)
}

func errInvalidInput(format string, args ...any) error {
	return protocol.NewError(codeInvalidInput, http.StatusBadRequest, format, args...)
}

func errLimitExceeded(format string, args ...any) error {
	return protocol.NewError(codeLimitExceeded, http.StatusConflict, format, args...)
}

// ErrNotAssumable is returned (wrapped) by AssumableByTasks for a role that
// does not exist in the account or whose trust policy does not let the
// service assume it.
var ErrNotAssumable = errors.New("role cannot be assumed")
