package protocol

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultMaxBodyBytes is the largest request body the Router reads for an
// AWS-protocol request unless WithMaxBodyBytes says otherwise.
const DefaultMaxBodyBytes = 10 << 20

// JSONHandler serves one awsJson operation. body is the raw request (decode
// it with Decode); ctx carries the caller's Identity and the request id. The
// result is marshalled with encoding/json (nil means "{}"; return a
// json.RawMessage to send pre-encoded JSON). Return an *Error (or wrap one)
// for a client-visible failure; any other error is logged and answered with
// an opaque 500.
type JSONHandler func(ctx context.Context, body []byte) (any, error)

// JSONService is an awsJson1_1 service: the operations behind one
// X-Amz-Target prefix.
type JSONService struct {
	// TargetPrefix is the part of X-Amz-Target before the '.', e.g.
	// "AmazonEC2ContainerServiceV20141113".
	TargetPrefix string
	// SigningName is the service the credential scope must name, e.g. "ecs".
	// Empty accepts any.
	SigningName string
	// Ops maps operation names ("ListClusters") to handlers.
	Ops map[string]JSONHandler
	// InternalErrorCode is the code an internal failure is reported with,
	// e.g. "ServerException" for ECS (its model's 500 error, which the SDK
	// maps to a typed error and retries). Default "InternalFailure".
	InternalErrorCode string
}

// Option configures a Router.
type Option func(*Router)

// WithRegisterer registers the Router's metrics with reg instead of
// prometheus.DefaultRegisterer; nil keeps them unregistered. Routers sharing
// a registry share the series.
func WithRegisterer(reg prometheus.Registerer) Option {
	return func(r *Router) { r.registerer, r.registererSet = reg, true }
}

// WithClock sets the clock that signature timestamps are checked against.
func WithClock(now func() time.Time) Option {
	return func(r *Router) { r.verifier.now = now }
}

// WithMaxBodyBytes sets the largest AWS-protocol request body accepted.
func WithMaxBodyBytes(n int64) Option {
	return func(r *Router) { r.maxBody = n }
}

// CallLimiter rate-limits authenticated calls (throttle.Policy implements
// it): AllowCall takes a token of the operation's bucket of that account and
// Region and reports whether the call may go on.
type CallLimiter interface {
	AllowCall(account, region, service, operation string) bool
}

// WithCallLimiter throttles every authenticated call of a known operation
// through l (nil: no throttling). A refused call is answered with the
// protocol's throttling error (ThrottlingException, "Rate exceeded"; the
// query protocol's codes are mapped in queryAuthError) before the
// operation runs, and counted in berth_api_requests_total with that code.
func WithCallLimiter(l CallLimiter) Option {
	return func(r *Router) { r.limiter = l }
}

// Router is berth's single HTTP endpoint. It serves path-prefix routes
// registered with Handle as they are, and everything else as an AWS-protocol
// request: authenticated with SigV4, dispatched to the registered service,
// answered and metered in the protocol's own shape. A Router is safe for
// concurrent use; register services and routes before serving.
type Router struct {
	logger        *slog.Logger
	verifier      verifier
	maxBody       int64
	registerer    prometheus.Registerer
	registererSet bool
	metrics       *metrics
	limiter       CallLimiter

	mu     sync.RWMutex
	json   map[string]JSONService  // by TargetPrefix
	query  map[string]QueryService // by Version
	routes []prefixRoute           // longest prefix first
}

type prefixRoute struct {
	prefix string
	h      http.Handler
}

// NewRouter returns a Router that authenticates callers with auth and logs to
// logger (nil discards). Metrics go to prometheus.DefaultRegisterer unless
// WithRegisterer says otherwise.
func NewRouter(auth Authenticator, logger *slog.Logger, opts ...Option) *Router {
	if auth == nil {
		panic("protocol: NewRouter with nil Authenticator")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r := &Router{
		logger:   logger,
		verifier: verifier{auth: auth, now: time.Now},
		maxBody:  DefaultMaxBodyBytes,
		json:     make(map[string]JSONService),
		query:    make(map[string]QueryService),
	}
	for _, o := range opts {
		o(r)
	}
	if !r.registererSet {
		r.registerer = prometheus.DefaultRegisterer
	}
	r.metrics = newMetrics(r.registerer, logger)
	return r
}

// AddJSONService registers an awsJson service. It panics on an empty or
// already registered TargetPrefix: that is a wiring bug.
func (r *Router) AddJSONService(s JSONService) {
	if s.TargetPrefix == "" || strings.Contains(s.TargetPrefix, ".") {
		panic(fmt.Sprintf("protocol: invalid awsJson target prefix %q", s.TargetPrefix))
	}
	ops := make(map[string]JSONHandler, len(s.Ops))
	for name, h := range s.Ops {
		if h == nil {
			panic(fmt.Sprintf("protocol: nil handler for %s.%s", s.TargetPrefix, name))
		}
		ops[name] = h
	}
	s.Ops = ops
	if s.InternalErrorCode == "" {
		s.InternalErrorCode = CodeInternalFailure
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.json[s.TargetPrefix]; dup {
		panic(fmt.Sprintf("protocol: awsJson target prefix %q registered twice", s.TargetPrefix))
	}
	r.json[s.TargetPrefix] = s
}

// Handle mounts h for every path starting with pathPrefix (e.g. "/v2/",
// "/_berth/", "/metrics"); the longest matching prefix wins. These routes are
// not AWS protocols: they get no SigV4 check, request id or API metrics, and
// do their own authentication. "/" is reserved for the AWS protocols.
func (r *Router) Handle(pathPrefix string, h http.Handler) {
	if !strings.HasPrefix(pathPrefix, "/") || pathPrefix == "/" || h == nil {
		panic(fmt.Sprintf("protocol: invalid route %q", pathPrefix))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rt := range r.routes {
		if rt.prefix == pathPrefix {
			panic(fmt.Sprintf("protocol: route %q registered twice", pathPrefix))
		}
	}
	r.routes = append(r.routes, prefixRoute{prefix: pathPrefix, h: h})
	sort.SliceStable(r.routes, func(i, j int) bool { return len(r.routes[i].prefix) > len(r.routes[j].prefix) })
}

// ServeHTTP routes req: a path-prefix route if one matches, else the AWS
// protocols. A request with X-Amz-Target is awsJson; one without it is a
// query request if it is a form-encoded POST
// (application/x-www-form-urlencoded) or a GET whose query string has an
// Action; anything else is answered UnknownOperationException.
//
// Design note: both protocols share everything up to the decode — the
// request id, the body limit, SigV4 (verifier.verify is protocol-neutral),
// the Identity in the context, metrics and logging (serveAWS). awsJson
// dispatches by the X-Amz-Target prefix (AddJSONService) and answers JSON.
// The query protocol dispatches by the form's Version, then Action
// (AddQueryService), hands the handler the form (see QueryList and the other
// Query* helpers), and answers XML in the service's QueryStyle: EC2's
// <ActionResponse><requestId/>… and <Response><Errors>…, or ELBv2/IAM's
// <ActionResponse><ActionResult>… and <ErrorResponse>…. Authentication
// failures are reported with the query protocol's own codes
// (queryAuthError). In both, the signature is verified before the operation
// is looked at, so an unauthenticated caller learns nothing.
func (r *Router) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if h := r.route(req.URL.Path); h != nil {
		h.ServeHTTP(w, req)
		return
	}
	r.serveAWS(w, req)
}

func (r *Router) route(path string) http.Handler {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, rt := range r.routes {
		if strings.HasPrefix(path, rt.prefix) {
			return rt.h
		}
	}
	return nil
}

// call is what one AWS-protocol request learned about itself, for metrics
// and the log.
type call struct {
	service      string
	operation    string
	internalCode string
	identity     Identity
	code         string
	status       int
	// query is set for a query request: errors are written in its shape.
	query *queryShape
}

func (r *Router) serveAWS(w http.ResponseWriter, req *http.Request) {
	start := time.Now()
	id := newRequestID()
	w.Header()["x-amzn-RequestId"] = []string{id} // AWS's spelling, not Go's canonical form
	ctx := WithRequestID(req.Context(), id)
	scheme := "http"
	if req.TLS != nil {
		scheme = "https"
	}
	ctx = WithEndpoint(ctx, Endpoint{Scheme: scheme, Host: req.Host})
	c := &call{service: labelUnknown, operation: labelUnknown, code: labelOK, status: http.StatusOK}

	var err error
	switch target := req.Header.Get("X-Amz-Target"); {
	case target != "":
		err = r.serveJSON(ctx, w, req, target, c)
	case isQueryRequest(req):
		err = r.serveQuery(ctx, w, req, c)
	default:
		err = NewError(CodeUnknownOperation, http.StatusBadRequest,
			"Unknown operation: requests must name one with X-Amz-Target")
	}
	if err != nil {
		e := r.wireError(ctx, err, c)
		if c.query != nil {
			e = queryAuthError(c.query.style, err, e)
			writeQueryError(w, c.query, e, id)
		} else {
			writeJSONError(w, e)
		}
		c.code, c.status = e.Code, e.HTTPStatus()
	}

	elapsed := time.Since(start)
	r.metrics.observe(c.service, c.operation, c.code, elapsed.Seconds())
	r.logger.DebugContext(ctx, "api request",
		"request_id", id,
		"service", c.service,
		"operation", c.operation,
		"status", c.status,
		"code", c.code,
		"account", c.identity.AccountID,
		"access_key", c.identity.AccessKeyID,
		"region", c.identity.Region,
		"remote", req.RemoteAddr,
		"duration", elapsed,
	)
}

// wireError turns err into what the client sees: the *Error in its chain, or
// an opaque internal error (the detail is logged here, never sent).
func (r *Router) wireError(ctx context.Context, err error, c *call) *Error {
	if e := asAPIError(err); e != nil {
		return e
	}
	r.logger.ErrorContext(ctx, "api request failed",
		"request_id", RequestIDFrom(ctx),
		"service", c.service,
		"operation", c.operation,
		"account", c.identity.AccountID,
		"err", err,
	)
	return internalError(c.internalCode)
}

// serveJSON serves an awsJson1_1 request. It writes the reply on success and
// returns the error to be written otherwise.
func (r *Router) serveJSON(ctx context.Context, w http.ResponseWriter, req *http.Request, target string, c *call) error {
	prefix, op := splitTarget(target)
	r.mu.RLock()
	svc, known := r.json[prefix]
	r.mu.RUnlock()
	var h JSONHandler
	if known {
		c.service, c.internalCode = svc.SigningName, svc.InternalErrorCode
		if c.service == "" {
			c.service = svc.TargetPrefix
		}
		if h = svc.Ops[op]; h != nil {
			c.operation = op
		}
	}

	body, err := r.readBody(req)
	if err != nil {
		return err
	}
	// Authenticate before routing further: a caller without valid
	// credentials learns nothing, not even whether an operation exists.
	ctx, err = r.authenticate(ctx, req, body, svc.SigningName, c)
	if err != nil {
		return err
	}

	if h == nil || req.Method != http.MethodPost {
		return NewError(CodeUnknownOperation, http.StatusBadRequest, "Unknown operation %s", truncate(target, 128))
	}
	if err := r.throttle(c); err != nil {
		return err
	}
	out, err := invoke(ctx, h, body)
	if err != nil {
		return err
	}
	return writeJSON(w, out)
}

// authenticate verifies req's signature (scoped to signingName unless it
// is empty) and returns ctx with the caller's Identity, which c records.
func (r *Router) authenticate(ctx context.Context, req *http.Request, body []byte, signingName string, c *call) (context.Context, error) {
	id, canonical, err := r.verifier.verify(ctx, req, body, signingName)
	if err != nil {
		if canonical != "" {
			r.logger.DebugContext(ctx, "signature mismatch",
				"request_id", RequestIDFrom(ctx), "canonical_request", redactToken(canonical))
		}
		return ctx, err
	}
	c.identity = id
	return WithIdentity(ctx, id), nil
}

// throttle asks the CallLimiter about c's call, which is authenticated and
// names a known operation.
func (r *Router) throttle(c *call) error {
	if r.limiter == nil || r.limiter.AllowCall(c.identity.AccountID, c.identity.Region, c.service, c.operation) {
		return nil
	}
	return Throttled()
}

// splitTarget splits "Prefix.Operation" at the last '.'.
func splitTarget(target string) (prefix, op string) {
	i := strings.LastIndexByte(target, '.')
	if i < 0 {
		return target, ""
	}
	return target[:i], target[i+1:]
}

// readBody reads the whole body, refusing more than the limit.
func (r *Router) readBody(req *http.Request) ([]byte, error) {
	tooLarge := NewError(CodeRequestEntityTooLarge, http.StatusRequestEntityTooLarge,
		"Request body is larger than the limit of %d bytes", r.maxBody)
	if req.ContentLength > r.maxBody {
		return nil, tooLarge
	}
	if req.Body == nil { // a client-side request handed to ServeHTTP directly
		return nil, nil
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, r.maxBody+1))
	if err != nil {
		return nil, NewError(CodeSerialization, http.StatusBadRequest, "Could not read the request body")
	}
	if int64(len(body)) > r.maxBody {
		return nil, tooLarge
	}
	return body, nil
}

// invoke calls h, turning a panic into an internal error so one bad request
// cannot take the endpoint down or leak a stack trace.
func invoke[In any](ctx context.Context, h func(context.Context, In) (any, error), in In) (out any, err error) {
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			err = fmt.Errorf("handler panic: %v\n%s", p, debug.Stack())
		}
	}()
	return h(ctx, in)
}

// writeJSON writes a successful awsJson reply.
func writeJSON(w http.ResponseWriter, out any) error {
	body := []byte("{}")
	if out != nil {
		b, err := json.Marshal(out)
		if err != nil {
			return fmt.Errorf("encode response: %w", err)
		}
		if string(b) != "null" {
			body = b
		}
	}
	h := w.Header()
	h.Set("Content-Type", jsonContentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
	return nil
}

// redactToken hides a session token's value (a header line, or a presigned
// query parameter) in a canonical request before it is logged.
func redactToken(canonical string) string {
	const header, param = "x-amz-security-token:", "X-Amz-Security-Token="
	lines := strings.Split(canonical, "\n")
	for i, l := range lines {
		if strings.HasPrefix(strings.ToLower(l), header) {
			lines[i] = l[:len(header)] + "REDACTED"
			continue
		}
		if j := strings.Index(l, param); j >= 0 {
			rest := l[j+len(param):]
			end := strings.IndexByte(rest, '&')
			if end < 0 {
				end = len(rest)
			}
			lines[i] = l[:j+len(param)] + "REDACTED" + rest[end:]
		}
	}
	return strings.Join(lines, "\n")
}

// VerifySignature authenticates a request that is not routed as an AWS
// operation (berth's agent protocol lets a host join a user's cluster with
// that user's credentials): the same SigV4 check, scoped to signingName, on a
// body already read. Errors are *Error for what the caller got wrong.
func (r *Router) VerifySignature(ctx context.Context, req *http.Request, body []byte, signingName string) (Identity, error) {
	id, _, err := r.verifier.verify(ctx, req, body, signingName)
	return id, err
}
