package protocol

import (
	"errors"
	"net/http"
)

// Authentication failures in the query protocol.
//
// The verifier speaks awsJson (UnrecognizedClientException, 400, …). Query
// services have their own codes, and EC2 differs from the rest:
//
//	verifier (awsJson)                   EC2                              ELBv2, IAM (StyleStandard)
//	MissingAuthenticationTokenException  MissingAuthenticationToken 401   MissingAuthenticationToken 403
//	UnrecognizedClientException          AuthFailure 401                  InvalidClientTokenId 403
//	InvalidSignatureException, mismatch  AuthFailure 401                  SignatureDoesNotMatch 403
//	InvalidSignatureException, time      RequestExpired 400               SignatureDoesNotMatch 403
//	InvalidSignatureException, other     AuthFailure 401                  SignatureDoesNotMatch 403
//	ExpiredTokenException                RequestExpired 400               ExpiredToken 403
//	IncompleteSignatureException         IncompleteSignature 400          IncompleteSignature 400
//
// EC2 answers a wrong key or signature with AuthFailure "AWS was not able to
// validate the provided access credentials" (HTTP 401), and an expired
// request or session with RequestExpired; the others use the query
// protocol's common errors (InvalidClientTokenId, SignatureDoesNotMatch,
// ExpiredToken with 403). A throttled call (ThrottlingException) is EC2's
// RequestLimitExceeded (HTTP 503, as EC2 answers it) and the others'
// Throttling ("Rate exceeded", 400); the SDKs retry both. The edge's other
// awsJson codes (body too large, unreadable body) get their query names too. Any other code is a service's
// and passes unchanged.
const (
	codeQueryMissingAuthToken = "MissingAuthenticationToken"
	codeEC2AuthFailure        = "AuthFailure"
	codeEC2RequestExpired     = "RequestExpired"
	codeInvalidClientTokenID  = "InvalidClientTokenId"
	codeSignatureDoesNotMatch = "SignatureDoesNotMatch"
	codeQueryExpiredToken     = "ExpiredToken"
	codeQueryIncompleteSig    = "IncompleteSignature"
	codeQueryEntityTooLarge   = "RequestEntityTooLarge"
	codeEC2Throttled          = "RequestLimitExceeded"
	codeQueryThrottled        = "Throttling"

	msgEC2AuthFailure      = "AWS was not able to validate the provided access credentials"
	msgEC2MissingAuthToken = "The request must contain either a valid (registered) AWS access key ID or X.509 certificate."
	msgQueryMissingToken   = "Request is missing Authentication Token"
	msgEC2Throttled        = "Request limit exceeded."
)

// queryAuthError returns e, the error about to be written for a query
// request (err is the chain it came from), with the edge's awsJson codes
// replaced by the query protocol's in the given style. This is the one place
// that mapping lives.
func queryAuthError(style QueryStyle, err error, e *Error) *Error {
	ec2 := style == StyleEC2
	var kind authKind
	var ae *authError
	if errors.As(err, &ae) {
		kind = ae.kind
	}
	pick := func(ec2Code string, ec2Status int, ec2Msg, stdCode string, stdStatus int, stdMsg string) *Error {
		if ec2 {
			return &Error{Code: ec2Code, Status: ec2Status, Message: ec2Msg}
		}
		return &Error{Code: stdCode, Status: stdStatus, Message: stdMsg}
	}
	switch e.Code {
	case CodeMissingAuthenticationToken:
		return pick(codeQueryMissingAuthToken, http.StatusUnauthorized, msgEC2MissingAuthToken,
			codeQueryMissingAuthToken, http.StatusForbidden, msgQueryMissingToken)
	case CodeUnrecognizedClient:
		return pick(codeEC2AuthFailure, http.StatusUnauthorized, msgEC2AuthFailure,
			codeInvalidClientTokenID, http.StatusForbidden, e.Message)
	case CodeInvalidSignature:
		switch kind {
		case authRequestTime:
			return pick(codeEC2RequestExpired, http.StatusBadRequest, e.Message,
				codeSignatureDoesNotMatch, http.StatusForbidden, e.Message)
		case authSignatureMismatch:
			return pick(codeEC2AuthFailure, http.StatusUnauthorized, msgEC2AuthFailure,
				codeSignatureDoesNotMatch, http.StatusForbidden, e.Message)
		}
		// A malformed scope, the wrong service, a bad content hash: the
		// detail helps, so EC2 keeps the message.
		return pick(codeEC2AuthFailure, http.StatusUnauthorized, e.Message,
			codeSignatureDoesNotMatch, http.StatusForbidden, e.Message)
	case CodeExpiredToken:
		return pick(codeEC2RequestExpired, http.StatusBadRequest, "Request has expired.",
			codeQueryExpiredToken, http.StatusForbidden, e.Message)
	case CodeIncompleteSignature:
		return &Error{Code: codeQueryIncompleteSig, Status: http.StatusBadRequest, Message: e.Message}
	case CodeRequestEntityTooLarge:
		return &Error{Code: codeQueryEntityTooLarge, Status: http.StatusRequestEntityTooLarge, Message: e.Message}
	case CodeSerialization:
		return &Error{Code: CodeMalformedQueryString, Status: http.StatusBadRequest, Message: e.Message}
	case CodeThrottling:
		return pick(codeEC2Throttled, http.StatusServiceUnavailable, msgEC2Throttled,
			codeQueryThrottled, http.StatusBadRequest, e.Message)
	}
	return e
}
