package protocol

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
)

// Error is an API error: a stable AWS error code, a human message and an HTTP
// status. Services return it (or wrap it with %w) and the Router writes it in
// the protocol's own shape, once, at the edge. Status 0 means 400.
type Error struct {
	Code    string
	Message string
	Status  int
	// Fields are further members of the error document, for exceptions
	// that carry some (ECR's InvalidLayerPartException has
	// lastValidByteReceived); "__type" and "message" cannot be replaced.
	Fields map[string]any
}

// NewError returns an *Error with the given code and HTTP status; the message
// is formatted with fmt.Sprintf.
func NewError(code string, status int, format string, args ...any) *Error {
	msg := format
	if len(args) > 0 {
		msg = fmt.Sprintf(format, args...)
	}
	return &Error{Code: code, Message: msg, Status: status}
}

// Error implements error as "Code: Message".
func (e *Error) Error() string {
	if e.Message == "" {
		return e.Code
	}
	return e.Code + ": " + e.Message
}

// HTTPStatus is the status the error is written with: Status, or 400 when
// Status is unset or is not an error status.
func (e *Error) HTTPStatus() int {
	if e.Status < 400 || e.Status > 599 {
		return http.StatusBadRequest
	}
	return e.Status
}

// Error codes the edge itself produces. The names and messages are AWS's, so
// SDKs map them to their typed errors and users can search for them.
//
// HTTP status: the awsJson services (ECS, ECR, Logs; Coral-based like
// DynamoDB) answer authentication failures with 400, not the 403 that the
// query-protocol "Common Errors" pages list: SDK error reports show
// "UnrecognizedClientException … status code: 400" from ECS and
// "Missing Authentication Token (Status Code: 400; Error Code:
// MissingAuthenticationTokenException)" from ECR. berth follows that for
// awsJson; the query protocol reports the same failures with its own codes
// (InvalidClientTokenId 403, EC2's AuthFailure 401: see queryAuthError).
const (
	CodeMissingAuthenticationToken = "MissingAuthenticationTokenException"
	CodeUnrecognizedClient         = "UnrecognizedClientException"
	CodeInvalidSignature           = "InvalidSignatureException"
	CodeIncompleteSignature        = "IncompleteSignatureException"
	CodeExpiredToken               = "ExpiredTokenException"
	CodeUnknownOperation           = "UnknownOperationException"
	CodeSerialization              = "SerializationException"
	CodeRequestEntityTooLarge      = "RequestEntityTooLargeException"
	CodeInternalFailure            = "InternalFailure"
	// CodeThrottling is what an awsJson service answers a call over its
	// rate with: ECS documents "ThrottlingException", HTTP 400, "Rate
	// exceeded". The SDKs retry it with backoff.
	CodeThrottling = "ThrottlingException"
)

// Throttled is the error a throttled call is answered with, ECS's
// ThrottlingException (the query protocol's services get their own code for
// it: queryAuthError). Services return it too (ECS's RunTask over the task
// launch rate).
func Throttled() *Error {
	return &Error{Code: CodeThrottling, Status: http.StatusBadRequest, Message: "Rate exceeded"}
}

const (
	msgMissingAuthenticationToken = "Missing Authentication Token"
	msgUnrecognizedClient         = "The security token included in the request is invalid."
	msgExpiredToken               = "The security token included in the request is expired"
	msgSignatureMismatch          = "The request signature we calculated does not match the signature you provided. " +
		"Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
	msgInternal = "internal error"
)

// internalError is the opaque error a client sees for any failure that is
// not an *Error: the detail goes to the log, never to the wire.
func internalError(code string) *Error {
	if code == "" {
		code = CodeInternalFailure
	}
	return &Error{Code: code, Message: msgInternal, Status: http.StatusInternalServerError}
}

// asAPIError returns the *Error in err's chain, or nil if there is none.
func asAPIError(err error) *Error {
	var e *Error
	if errors.As(err, &e) && e != nil {
		return e
	}
	return nil
}

// jsonErrorBody is the awsJson error document. The SDKs read the code from
// "__type" (or the x-amzn-ErrorType header) and the message from "message".
type jsonErrorBody struct {
	Type    string `json:"__type"`
	Message string `json:"message,omitempty"`
}

const jsonContentType = "application/x-amz-json-1.1"

// writeJSONError writes e in the awsJson1_1 error shape: the status, the
// x-amzn-ErrorType header and {"__type":…,"message":…}.
func writeJSONError(w http.ResponseWriter, e *Error) {
	var doc any = jsonErrorBody{Type: e.Code, Message: e.Message}
	if len(e.Fields) > 0 {
		m := make(map[string]any, len(e.Fields)+2)
		for k, v := range e.Fields {
			m[k] = v
		}
		m["__type"] = e.Code
		if e.Message != "" {
			m["message"] = e.Message
		}
		doc = m
	}
	body, err := json.Marshal(doc)
	if err != nil {
		// Marshalling two strings cannot fail; keep a valid reply if it does.
		body = []byte(`{"__type":"` + CodeInternalFailure + `"}`)
	}
	h := w.Header()
	h.Set("Content-Type", jsonContentType)
	// AWS's own spelling; Go would canonicalise Set's key to X-Amzn-Errortype.
	h["x-amzn-ErrorType"] = []string{e.Code}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(e.HTTPStatus())
	_, _ = w.Write(body)
}
