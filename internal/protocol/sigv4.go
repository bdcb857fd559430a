package protocol

// SigV4 verification.
//
// The expected signature is computed here, by hand, from the canonical
// request, rather than by re-signing a copy of the request with the SDK's
// signer: that signer only signs, and it decides for itself which headers to
// sign, how to escape the path and where the host comes from, so a re-signed
// copy does not reproduce what other clients (botocore, the JS and Java SDKs)
// signed. A verifier must instead follow exactly what the client says it
// signed:
//
//   - method, then the canonical URI: the path as it arrived on the wire
//     (percent-encoded), URI-encoded once more, as AWS specifies for every
//     service but S3 ("each path segment is encoded twice");
//   - the canonical query string: every name and value decoded, RFC 3986
//     encoded (space as %20), sorted by encoded name then encoded value,
//     without X-Amz-Signature when the request is presigned;
//   - only the headers listed in SignedHeaders, in that order, each
//     "name:value" with all values joined by ",", trimmed and with runs of
//     spaces collapsed; host comes from req.Host (Go moves it out of
//     req.Header) and content-length from req.ContentLength if the header
//     was consumed;
//   - the SignedHeaders list itself;
//   - the payload hash: x-amz-content-sha256 if the client sent it (it must
//     then equal the SHA-256 of the body we received), else the SHA-256 of
//     the body.
//
// The string to sign is "AWS4-HMAC-SHA256\n<amz-date>\n<scope>\n<hex sha256 of
// the canonical request>", the key is derived from the secret by the HMAC
// chain date→region→service→"aws4_request", and the result is compared with
// hmac.Equal.

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

const (
	sigV4Algorithm   = "AWS4-HMAC-SHA256"
	sigV4Terminator  = "aws4_request"
	amzDateLayout    = "20060102T150405Z"
	scopeDateLayout  = "20060102"
	maxClockSkew     = 15 * time.Minute
	maxPresignExpiry = 7 * 24 * time.Hour

	headerAuthorization   = "Authorization"
	headerAmzDate         = "X-Amz-Date"
	headerSecurityToken   = "X-Amz-Security-Token"
	headerContentSHA256   = "X-Amz-Content-Sha256"
	queryAlgorithm        = "X-Amz-Algorithm"
	queryCredential       = "X-Amz-Credential"
	queryDate             = "X-Amz-Date"
	queryExpires          = "X-Amz-Expires"
	querySignedHeaders    = "X-Amz-SignedHeaders"
	querySignature        = "X-Amz-Signature"
	querySecurityToken    = "X-Amz-Security-Token"
	emptyPayloadSHA256Hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
)

// sigV4 is what a request claims about its own signature, read from the
// Authorization header or, for a presigned request, the query string.
type sigV4 struct {
	AccessKeyID   string
	ScopeDate     string // YYYYMMDD
	Region        string
	Service       string
	SignedHeaders []string // as listed by the client (lower case by the spec)
	Signature     string   // hex
	Presigned     bool
	Expires       time.Duration // presigned only; 0 when absent
}

// scope is the credential scope: date/region/service/aws4_request.
func (s sigV4) scope() string {
	return s.ScopeDate + "/" + s.Region + "/" + s.Service + "/" + sigV4Terminator
}

func incomplete(format string, args ...any) *Error {
	return NewError(CodeIncompleteSignature, http.StatusBadRequest, format, args...)
}

func invalidSignature(format string, args ...any) *Error {
	return NewError(CodeInvalidSignature, http.StatusBadRequest, format, args...)
}

// parseAuthorization parses an Authorization header of the form
//
//	AWS4-HMAC-SHA256 Credential=AKID/20261125/us-east-1/ecs/aws4_request, SignedHeaders=host;x-amz-date, Signature=<hex>
//
// Errors are *Error (IncompleteSignatureException or
// InvalidSignatureException) with AWS-like messages.
func parseAuthorization(v string) (sigV4, error) {
	v = strings.TrimSpace(v)
	alg, rest, _ := strings.Cut(v, " ")
	if alg != sigV4Algorithm {
		return sigV4{}, incomplete("Unsupported Authorization Type: only %s is accepted", sigV4Algorithm)
	}
	var cred, signed, sig string
	var haveCred, haveSigned, haveSig bool
	for part := range strings.SplitSeq(rest, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, val, ok := strings.Cut(part, "=")
		if !ok {
			return sigV4{}, incomplete("Authorization header parameter %q is not a 'key=value' pair.", truncate(part, 64))
		}
		switch strings.TrimSpace(k) {
		case "Credential":
			cred, haveCred = strings.TrimSpace(val), true
		case "SignedHeaders":
			signed, haveSigned = strings.TrimSpace(val), true
		case "Signature":
			sig, haveSig = strings.TrimSpace(val), true
		}
	}
	var missing []string
	if !haveCred {
		missing = append(missing, "Authorization header requires 'Credential' parameter.")
	}
	if !haveSigned {
		missing = append(missing, "Authorization header requires 'SignedHeaders' parameter.")
	}
	if !haveSig {
		missing = append(missing, "Authorization header requires 'Signature' parameter.")
	}
	if len(missing) > 0 {
		return sigV4{}, incomplete("%s", strings.Join(missing, " "))
	}
	return buildSigV4(cred, signed, sig)
}

// parsePresigned reads a signature from the query string (X-Amz-Algorithm,
// X-Amz-Credential, …), as presigned URLs carry it.
func parsePresigned(q url.Values) (sigV4, error) {
	if alg := q.Get(queryAlgorithm); alg != sigV4Algorithm {
		return sigV4{}, incomplete("X-Amz-Algorithm must be %s", sigV4Algorithm)
	}
	for _, k := range []string{queryCredential, querySignedHeaders, querySignature, queryDate} {
		if q.Get(k) == "" {
			return sigV4{}, incomplete("AWS query-string parameters must include '%s'. Re-examine the query-string parameters.", k)
		}
	}
	s, err := buildSigV4(q.Get(queryCredential), q.Get(querySignedHeaders), q.Get(querySignature))
	if err != nil {
		return sigV4{}, err
	}
	s.Presigned = true
	if e := q.Get(queryExpires); e != "" {
		n, err := strconv.ParseInt(e, 10, 64)
		if err != nil || n <= 0 || time.Duration(n)*time.Second > maxPresignExpiry {
			return sigV4{}, incomplete("X-Amz-Expires must be an integer between 1 and %d seconds", int64(maxPresignExpiry/time.Second))
		}
		s.Expires = time.Duration(n) * time.Second
	}
	return s, nil
}

func buildSigV4(cred, signedHeaders, signature string) (sigV4, error) {
	var s sigV4
	parts := strings.Split(cred, "/")
	if len(parts) != 5 {
		return sigV4{}, incomplete("Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '%s'", truncate(cred, 128))
	}
	s.AccessKeyID, s.ScopeDate, s.Region, s.Service = parts[0], parts[1], parts[2], parts[3]
	if s.AccessKeyID == "" || len(s.AccessKeyID) > 128 {
		return sigV4{}, incomplete("Credential must name an access key id.")
	}
	if _, err := time.Parse(scopeDateLayout, s.ScopeDate); err != nil || len(s.ScopeDate) != 8 {
		return sigV4{}, invalidSignature("Credential should be scoped to a valid date (YYYYMMDD), not '%s'.", truncate(s.ScopeDate, 32))
	}
	// The region ends up in ARNs and storage keys: accept only what region
	// names look like.
	if !isScopeToken(s.Region) {
		return sigV4{}, invalidSignature("Credential should be scoped to a valid region.")
	}
	if !isScopeToken(s.Service) {
		return sigV4{}, invalidSignature("Credential should be scoped to a valid service.")
	}
	if parts[4] != sigV4Terminator {
		return sigV4{}, invalidSignature("Credential should be scoped with a valid terminator: '%s', not '%s'.", sigV4Terminator, truncate(parts[4], 32))
	}
	if signedHeaders == "" {
		return sigV4{}, incomplete("SignedHeaders must not be empty.")
	}
	s.SignedHeaders = strings.Split(signedHeaders, ";")
	hasHost := false
	for _, h := range s.SignedHeaders {
		if h == "" {
			return sigV4{}, incomplete("SignedHeaders must be a ';'-separated list of header names.")
		}
		if strings.EqualFold(h, "host") {
			hasHost = true
		}
	}
	if !hasHost {
		return sigV4{}, invalidSignature("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
	}
	if signature == "" {
		return sigV4{}, incomplete("Signature must not be empty.")
	}
	s.Signature = signature
	return s, nil
}

// isScopeToken reports whether s looks like a region or service name:
// 1-64 characters of [a-z0-9-].
func isScopeToken(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// verifier checks SigV4 signatures against an Authenticator.
type verifier struct {
	auth Authenticator
	now  func() time.Time
}

// verify authenticates req, whose body has already been read into body.
// wantService, if not empty, is the signing name the credential scope must
// carry. It returns the caller's Identity, an *Error for anything the client
// got wrong, or another error for an internal failure (the Authenticator's
// backend failing). debug receives the canonical request when the signature
// does not match, for the log.
func (v *verifier) verify(ctx context.Context, req *http.Request, body []byte, wantService string) (Identity, string, error) {
	query, qerr := url.ParseQuery(req.URL.RawQuery)
	var (
		sig sigV4
		err error
	)
	switch {
	case req.Header.Get(headerAuthorization) != "":
		sig, err = parseAuthorization(req.Header.Get(headerAuthorization))
	case qerr == nil && (query.Has(queryAlgorithm) || query.Has(queryCredential) || query.Has(querySignature)):
		sig, err = parsePresigned(query)
	default:
		return Identity{}, "", NewError(CodeMissingAuthenticationToken, http.StatusBadRequest, msgMissingAuthenticationToken)
	}
	if err != nil {
		return Identity{}, "", err
	}

	amzDate, signedAt, err := requestTime(req, query, sig.Presigned)
	if err != nil {
		return Identity{}, "", err
	}
	if amzDate[:8] != sig.ScopeDate {
		return Identity{}, "", invalidSignature("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%s', from '%s'.", sig.ScopeDate, amzDate[:8], amzDate)
	}
	if err := checkTime(signedAt, v.now().UTC(), sig); err != nil {
		return Identity{}, "", &authError{err: err, kind: authRequestTime}
	}
	if wantService != "" && sig.Service != wantService {
		return Identity{}, "", invalidSignature("Credential should be scoped to correct service: '%s'. ", wantService)
	}

	token := req.Header.Get(headerSecurityToken)
	if sig.Presigned && token == "" {
		token = query.Get(querySecurityToken)
	}
	secret, account, err := v.lookup(ctx, sig.AccessKeyID, token)
	if err != nil {
		return Identity{}, "", err
	}

	payloadHash, err := payloadHash(req, body)
	if err != nil {
		return Identity{}, "", err
	}
	canonical := canonicalRequest(req, sig.SignedHeaders, payloadHash, sig.Presigned)
	want := signatureFor(secret, sig, amzDate, canonical)
	if !hmac.Equal([]byte(want), []byte(sig.Signature)) {
		return Identity{}, canonical, &authError{err: invalidSignature("%s", msgSignatureMismatch), kind: authSignatureMismatch}
	}
	return Identity{AccountID: account, AccessKeyID: sig.AccessKeyID, Region: sig.Region}, "", nil
}

// authKind tells apart InvalidSignatureException failures that the query
// protocol reports with different codes (see queryAuthError).
type authKind int

const (
	// authSignatureMismatch: the signature is well formed but wrong.
	authSignatureMismatch authKind = iota + 1
	// authRequestTime: the request was signed too long ago, or ahead.
	authRequestTime
)

// authError marks a verifier *Error with its kind. It unwraps to the *Error,
// so awsJson writes it unchanged.
type authError struct {
	err  *Error
	kind authKind
}

func (a *authError) Error() string { return a.err.Error() }
func (a *authError) Unwrap() error { return a.err }

// lookup resolves the key (and session token, if any) to its secret and
// account.
func (v *verifier) lookup(ctx context.Context, akid, token string) (secret, account string, err error) {
	if token != "" {
		sa, ok := v.auth.(SessionAuthenticator)
		if !ok {
			return "", "", NewError(CodeUnrecognizedClient, http.StatusBadRequest, msgUnrecognizedClient)
		}
		secret, account, err = sa.LookupSession(ctx, akid, token)
	} else {
		secret, account, err = v.auth.Lookup(ctx, akid)
	}
	switch {
	case err == nil && secret != "":
		return secret, account, nil
	case err == nil, errors.Is(err, ErrUnknownKey):
		return "", "", NewError(CodeUnrecognizedClient, http.StatusBadRequest, msgUnrecognizedClient)
	case errors.Is(err, ErrExpiredToken):
		return "", "", NewError(CodeExpiredToken, http.StatusBadRequest, msgExpiredToken)
	default:
		return "", "", fmt.Errorf("look up access key %q: %w", akid, err)
	}
}

// requestTime returns the signing timestamp as the client wrote it (it is part
// of the string to sign) and parsed. It comes from X-Amz-Date (the query
// parameter for a presigned request), else from the Date header.
func requestTime(req *http.Request, query url.Values, presigned bool) (string, time.Time, error) {
	raw := req.Header.Get(headerAmzDate)
	if presigned {
		raw = query.Get(queryDate)
	}
	if raw == "" {
		d := req.Header.Get("Date")
		if d == "" {
			return "", time.Time{}, incomplete("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
		}
		t, err := http.ParseTime(d)
		if err != nil {
			return "", time.Time{}, incomplete("Date header must be an HTTP date, got '%s'.", truncate(d, 64))
		}
		return t.UTC().Format(amzDateLayout), t.UTC(), nil
	}
	t, err := time.Parse(amzDateLayout, raw)
	if err != nil || len(raw) != len(amzDateLayout) {
		return "", time.Time{}, incomplete("X-Amz-Date must be in ISO-8601 basic format (YYYYMMDD'T'HHMMSS'Z'), got '%s'.", truncate(raw, 64))
	}
	return raw, t, nil
}

// checkTime enforces the validity window: ±15 minutes around now for a
// signed request; [signedAt-15m, signedAt+Expires] for a presigned one.
func checkTime(signedAt, now time.Time, sig sigV4) *Error {
	f := func(t time.Time) string { return t.Format(amzDateLayout) }
	if signedAt.After(now.Add(maxClockSkew)) {
		return invalidSignature("Signature not yet current: %s is still later than %s (%s + 15 min.)",
			f(signedAt), f(now.Add(maxClockSkew)), f(now))
	}
	if sig.Presigned && sig.Expires > 0 {
		if until := signedAt.Add(sig.Expires); now.After(until) {
			return invalidSignature("Signature expired: %s is now earlier than %s (%s - %d sec.)",
				f(until), f(now), f(signedAt), int64(sig.Expires/time.Second))
		}
		return nil
	}
	if signedAt.Before(now.Add(-maxClockSkew)) {
		return invalidSignature("Signature expired: %s is now earlier than %s (%s - 15 min.)",
			f(signedAt), f(now.Add(-maxClockSkew)), f(now))
	}
	return nil
}

// payloadHash returns the hash that goes into the canonical request. A client
// may declare it in x-amz-content-sha256; the declaration must then be the
// real SHA-256 of the body. UNSIGNED-PAYLOAD and the streaming variants are S3
// features no berth AWS-protocol service accepts.
func payloadHash(req *http.Request, body []byte) (string, error) {
	sum := sha256.Sum256(body)
	actual := hex.EncodeToString(sum[:])
	declared := req.Header.Get(headerContentSHA256)
	if declared == "" {
		return actual, nil
	}
	if !strings.EqualFold(declared, actual) {
		return "", invalidSignature("The provided 'x-amz-content-sha256' header does not match what was computed.")
	}
	return declared, nil
}

// signatureFor computes the hex signature of canonical under sig's scope.
func signatureFor(secret string, sig sigV4, amzDate, canonical string) string {
	sum := sha256.Sum256([]byte(canonical))
	stringToSign := sigV4Algorithm + "\n" + amzDate + "\n" + sig.scope() + "\n" + hex.EncodeToString(sum[:])
	key := hmacSHA256([]byte("AWS4"+secret), sig.ScopeDate)
	key = hmacSHA256(key, sig.Region)
	key = hmacSHA256(key, sig.Service)
	key = hmacSHA256(key, sigV4Terminator)
	return hex.EncodeToString(hmacSHA256(key, stringToSign))
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// canonicalRequest builds the SigV4 canonical request for req (see the file
// comment for the rules).
func canonicalRequest(req *http.Request, signedHeaders []string, payloadHash string, presigned bool) string {
	var b strings.Builder
	b.WriteString(req.Method)
	b.WriteByte('\n')
	b.WriteString(canonicalURI(req.URL))
	b.WriteByte('\n')
	b.WriteString(canonicalQuery(req.URL.RawQuery, presigned))
	b.WriteByte('\n')
	for _, name := range signedHeaders {
		b.WriteString(name)
		b.WriteByte(':')
		b.WriteString(canonicalHeaderValue(req, name))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(strings.Join(signedHeaders, ";"))
	b.WriteByte('\n')
	b.WriteString(payloadHash)
	return b.String()
}

// canonicalURI is the path as sent (percent-encoded) and then URI-encoded
// again, keeping '/'; "/" when empty. Go's SDK and botocore both encode the
// already-escaped path once more for every service but S3.
func canonicalURI(u *url.URL) string {
	p := u.EscapedPath()
	if p == "" {
		p = "/"
	}
	return uriEncode(p, false)
}

// canonicalQuery decodes each name and value of the raw query, encodes them
// the SigV4 way and sorts the pairs after encoding.
func canonicalQuery(raw string, presigned bool) string {
	if raw == "" {
		return ""
	}
	type pair struct{ k, v string }
	var pairs []pair
	for part := range strings.SplitSeq(raw, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		k, v = queryUnescape(k), queryUnescape(v)
		if presigned && k == querySignature {
			continue
		}
		pairs = append(pairs, pair{uriEncode(k, true), uriEncode(v, true)})
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].k != pairs[j].k {
			return pairs[i].k < pairs[j].k
		}
		return pairs[i].v < pairs[j].v
	})
	var b strings.Builder
	for i, p := range pairs {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.k)
		b.WriteByte('=')
		b.WriteString(p.v)
	}
	return b.String()
}

// queryUnescape decodes like url.ParseQuery ('+' is a space); a malformed
// escape is kept as written, so it is signed as the bytes that were sent.
func queryUnescape(s string) string {
	u, err := url.QueryUnescape(s)
	if err != nil {
		return s
	}
	return u
}

// uriEncode percent-encodes every byte outside RFC 3986's unreserved set
// (A-Z a-z 0-9 - . _ ~) with upper-case hex; '/' too when encodeSlash.
func uriEncode(s string, encodeSlash bool) string {
	const hexUpper = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || (c == '/' && !encodeSlash) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexUpper[c>>4])
		b.WriteByte(hexUpper[c&15])
	}
	return b.String()
}

// canonicalHeaderValue returns the canonical value of the named header: all
// its values, each trimmed with inner runs of spaces collapsed, joined by
// ",". Go's server moves Host into req.Host and may consume Content-Length
// into req.ContentLength; both are restored here.
func canonicalHeaderValue(req *http.Request, name string) string {
	switch strings.ToLower(name) {
	case "host":
		return collapseSpaces(req.Host)
	case "content-length":
		if req.Header.Get("Content-Length") == "" && req.ContentLength >= 0 {
			return strconv.FormatInt(req.ContentLength, 10)
		}
	}
	values := req.Header.Values(name)
	if len(values) == 0 {
		// A name Go did not canonicalise (e.g. one with '_' or a space).
		for k, vs := range req.Header {
			if strings.EqualFold(k, name) {
				values = vs
				break
			}
		}
	}
	if len(values) == 1 {
		return collapseSpaces(values[0])
	}
	out := make([]string, len(values))
	for i, v := range values {
		out[i] = collapseSpaces(v)
	}
	return strings.Join(out, ",")
}

// collapseSpaces trims leading and trailing white space and collapses each
// run of spaces inside to one (SigV4's "Trimall", as the Go SDK does it).
func collapseSpaces(s string) string {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "  ") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	prevSpace := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == ' ' {
			if prevSpace {
				continue
			}
			prevSpace = true
		} else {
			prevSpace = false
		}
		b.WriteByte(c)
	}
	return b.String()
}
