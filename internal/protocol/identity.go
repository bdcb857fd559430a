package protocol

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
)

// Identity is the authenticated caller of an AWS-protocol request.
type Identity struct {
	// AccountID owns every resource the request reads or writes.
	AccountID string
	// AccessKeyID is the key the request was signed with.
	AccessKeyID string
	// Region is the region named in the signature's credential scope: the
	// region the client believes it is talking to.
	Region string
}

// Authenticator looks up an access key. It returns ErrUnknownKey for a key it
// does not know; any other error is an internal failure (logged, and a 500
// for the client).
type Authenticator interface {
	Lookup(ctx context.Context, accessKeyID string) (secret string, accountID string, err error)
}

// SessionAuthenticator is implemented by Authenticators that also accept
// temporary credentials (a key, secret and session token, as task roles
// hand out). A request carrying X-Amz-Security-Token is authenticated with
// LookupSession; if the Authenticator does not implement it, such requests
// are rejected as UnrecognizedClientException. LookupSession returns
// ErrUnknownKey for an unknown key or token and ErrExpiredToken for an
// expired one.
type SessionAuthenticator interface {
	LookupSession(ctx context.Context, accessKeyID, sessionToken string) (secret string, accountID string, err error)
}

var (
	// ErrUnknownKey is returned by an Authenticator for a key (or session
	// token) it does not know.
	ErrUnknownKey = errors.New("unknown access key")
	// ErrExpiredToken is returned by a SessionAuthenticator for a session
	// token that has expired.
	ErrExpiredToken = errors.New("expired session token")
)

type ctxKey int

const (
	identityKey ctxKey = iota
	requestIDKey
	endpointKey
)

// Endpoint is berth's endpoint as the client addressed it, for replies that
// name it (an ECR repositoryUri, a proxyEndpoint).
type Endpoint struct {
	Scheme string // "http" or "https"
	Host   string // the request's Host: host or host:port
}

// WithEndpoint returns a context carrying e.
func WithEndpoint(ctx context.Context, e Endpoint) context.Context {
	return context.WithValue(ctx, endpointKey, e)
}

// EndpointFrom returns the endpoint stored in ctx by the Router.
func EndpointFrom(ctx context.Context) (Endpoint, bool) {
	e, ok := ctx.Value(endpointKey).(Endpoint)
	return e, ok
}

// WithIdentity returns a context carrying id.
func WithIdentity(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, identityKey, id)
}

// IdentityFrom returns the authenticated caller stored in ctx by the Router.
func IdentityFrom(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(identityKey).(Identity)
	return id, ok
}

// WithRequestID returns a context carrying the request id.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey, id)
}

// RequestIDFrom returns the id the Router gave the request (the value of the
// x-amzn-RequestId reply header), or "" if there is none.
func RequestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// newRequestID returns a random version-4 UUID, the shape AWS request ids
// have.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go ≥1.24).
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return string(s[:])
}
