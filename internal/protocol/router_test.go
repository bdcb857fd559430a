package protocol

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/smithy-go"
	"github.com/prometheus/client_golang/prometheus"
)

// newECSClient returns an SDK ECS client for the endpoint at url; an empty
// akid makes it send unsigned requests.
func newECSClient(url, akid, secret, token string) *ecs.Client {
	var creds aws.CredentialsProvider = credentials.NewStaticCredentialsProvider(akid, secret, token)
	if akid == "" {
		creds = aws.AnonymousCredentials{}
	}
	return ecs.New(ecs.Options{
		Region:           "us-west-2",
		BaseEndpoint:     aws.String(url),
		Credentials:      creds,
		RetryMaxAttempts: 1, // a 500 must surface, not be retried
	})
}

// TestSDKClient drives the Router with the real aws-sdk-go-v2 ECS client:
// its signatures must verify, and every error must come back as the SDK
// error the code names.
func TestSDKClient(t *testing.T) {
	srv, _, _, logs := newTestServer(t)
	ctx := context.Background()
	good := newECSClient(srv.URL, testKey, testSecret, "")

	describe := func(names ...string) func(*ecs.Client) error {
		return func(c *ecs.Client) error {
			out, err := c.DescribeClusters(ctx, &ecs.DescribeClustersInput{Clusters: names})
			if err != nil {
				return err
			}
			if len(out.Clusters) != len(names) {
				t.Errorf("DescribeClusters returned %d clusters, want %d", len(out.Clusters), len(names))
			}
			return nil
		}
	}
	listClusters := func(c *ecs.Client) error {
		out, err := c.ListClusters(ctx, &ecs.ListClustersInput{MaxResults: aws.Int32(10)})
		if err != nil {
			return err
		}
		// The region comes from the credential scope, the account from
		// the Authenticator.
		want := "arn:aws:ecs:us-west-2:" + testAccount + ":cluster/default"
		if len(out.ClusterArns) != 1 || out.ClusterArns[0] != want {
			t.Errorf("ClusterArns = %v, want [%s]", out.ClusterArns, want)
		}
		return nil
	}

	tests := []struct {
		name       string
		client     *ecs.Client
		call       func(*ecs.Client) error
		wantCode   string // "" = success
		wantStatus int
		wantMsg    string
		wantTyped  any // pointer to a typed SDK error the error must be
	}{
		{name: "list clusters", client: good, call: listClusters},
		{name: "describe clusters", client: good, call: describe("a", "b")},
		{name: "nil result is {}", client: good, call: func(c *ecs.Client) error {
			_, err := c.DeleteCluster(ctx, &ecs.DeleteClusterInput{Cluster: aws.String("x")})
			return err
		}},
		{name: "session token", client: newECSClient(srv.URL, testKey, testSecret, testToken), call: listClusters},
		{
			name: "wrong secret", client: newECSClient(srv.URL, testKey, "wrong", ""), call: listClusters,
			wantCode: CodeInvalidSignature, wantStatus: 400, wantMsg: msgSignatureMismatch,
		},
		{
			name: "unknown key", client: newECSClient(srv.URL, "AKIDNOBODY", testSecret, ""), call: listClusters,
			wantCode: CodeUnrecognizedClient, wantStatus: 400, wantMsg: msgUnrecognizedClient,
		},
		{
			name: "unknown session token", client: newECSClient(srv.URL, testKey, testSecret, "forged"), call: listClusters,
			wantCode: CodeUnrecognizedClient, wantStatus: 400,
		},
		{
			name: "expired session token", client: newECSClient(srv.URL, testKey, testSecret, "expired"), call: listClusters,
			wantCode: CodeExpiredToken, wantStatus: 400,
		},
		{
			name: "missing auth", client: newECSClient(srv.URL, "", "", ""), call: listClusters,
			wantCode: CodeMissingAuthenticationToken, wantStatus: 400, wantMsg: msgMissingAuthenticationToken,
		},
		{
			name: "handler *Error passes through", client: good, call: describe("missing"),
			wantCode: "ClusterNotFoundException", wantStatus: 400, wantMsg: "Cluster not found.",
			wantTyped: new(*types.ClusterNotFoundException),
		},
		{
			name: "wrapped *Error keeps its status", client: good, call: describe("busy"),
			wantCode: "ResourceInUseException", wantStatus: 409, wantMsg: "The cluster busy is busy.",
		},
		{
			name: "plain error is an opaque 500", client: good, call: describe("boom"),
			wantCode: "ServerException", wantStatus: 500, wantMsg: msgInternal,
			wantTyped: new(*types.ServerException),
		},
		{
			name: "panic is an opaque 500", client: good, call: describe("panic"),
			wantCode: "ServerException", wantStatus: 500, wantMsg: msgInternal,
		},
		{
			name: "auth backend failure is an opaque 500", client: newECSClient(srv.URL, brokenKey, "x", ""), call: listClusters,
			wantCode: "ServerException", wantStatus: 500, wantMsg: msgInternal,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call(tt.client)
			if tt.wantCode == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
			} else {
				checkSDKError(t, err, tt.wantCode, tt.wantStatus, tt.wantMsg)
				if tt.wantTyped != nil && !errors.As(err, tt.wantTyped) {
					t.Errorf("error %T is not %T", err, tt.wantTyped)
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Errorf("internal detail leaked to the client: %v", err)
				}
			}
			// The server keeps serving after every outcome.
			if err := listClusters(good); err != nil {
				t.Fatalf("server stopped serving: %v", err)
			}
		})
	}
	if !strings.Contains(logs.String(), "hunter2") {
		t.Errorf("internal error detail was not logged; log:\n%s", logs.String())
	}
}

func checkSDKError(t *testing.T, err error, code string, status int, msg string) {
	t.Helper()
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("error %v (%T) is not a smithy.APIError", err, err)
	}
	if apiErr.ErrorCode() != code {
		t.Errorf("ErrorCode = %q, want %q (%v)", apiErr.ErrorCode(), code, err)
	}
	if msg != "" && apiErr.ErrorMessage() != msg {
		t.Errorf("ErrorMessage = %q, want %q", apiErr.ErrorMessage(), msg)
	}
	var respErr *awshttp.ResponseError
	if !errors.As(err, &respErr) {
		t.Fatalf("error %v has no HTTP response", err)
	}
	if got := respErr.HTTPStatusCode(); got != status {
		t.Errorf("HTTP status = %d, want %d", got, status)
	}
	if respErr.ServiceRequestID() == "" {
		t.Errorf("no request id on the error reply")
	}
}

// TestRawRequests covers what the SDK will not send: hand-built requests,
// signed with the SDK's signer and then, in some cases, spoilt.
func TestRawRequests(t *testing.T) {
	srv, _, _, _ := newTestServer(t, WithMaxBodyBytes(1024))
	now := time.Now()
	list := ecsPrefix + ".ListClusters"
	describe := ecsPrefix + ".DescribeClusters"

	tests := []struct {
		name       string
		target     string
		body       string
		noSign     bool
		service    string        // signing name; "ecs" if empty
		at         time.Duration // signing time relative to now
		mutate     func(*http.Request)
		wantStatus int
		wantCode   string // "" = success
		wantMsg    string // substring
	}{
		{name: "ok", target: list, body: `{}`, wantStatus: 200},
		{name: "empty body is {}", target: list, body: ``, wantStatus: 200},
		{name: "missing auth", target: list, body: `{}`, noSign: true, wantStatus: 400,
			wantCode: CodeMissingAuthenticationToken, wantMsg: msgMissingAuthenticationToken},
		{name: "malformed JSON", target: describe, body: `{"clusters": [`, wantStatus: 400,
			wantCode: CodeSerialization, wantMsg: "Malformed JSON"},
		{name: "wrong field type names the field", target: describe, body: `{"clusters": "a"}`, wantStatus: 400,
			wantCode: CodeSerialization, wantMsg: "'clusters'"},
		{name: "unknown fields ignored", target: describe, body: `{"clusters": ["a"], "nonsense": {"x": 1}}`, wantStatus: 200},
		{name: "unknown operation", target: ecsPrefix + ".LaunchRocket", body: `{}`, wantStatus: 400,
			wantCode: CodeUnknownOperation},
		{name: "unknown prefix", target: "AmazonNothing_20990101.ListClusters", body: `{}`, wantStatus: 400,
			wantCode: CodeUnknownOperation},
		{name: "target without operation", target: ecsPrefix, body: `{}`, wantStatus: 400,
			wantCode: CodeUnknownOperation},
		{name: "no target", target: "", body: `Action=DescribeVpcs&Version=2016-11-15`, wantStatus: 400,
			wantCode: CodeUnknownOperation},
		{name: "unknown op still needs auth", target: ecsPrefix + ".LaunchRocket", body: `{}`, noSign: true,
			wantStatus: 400, wantCode: CodeMissingAuthenticationToken},
		{name: "body too large", target: list, body: `{"x":"` + strings.Repeat("a", 2000) + `"}`, wantStatus: 413,
			wantCode: CodeRequestEntityTooLarge},
		{name: "body changed after signing", target: list, body: `{}`,
			mutate: func(r *http.Request) {
				r.Body = io.NopCloser(strings.NewReader(`{"maxResults":1}`))
				r.ContentLength = 16
			},
			wantStatus: 400, wantCode: CodeInvalidSignature, wantMsg: msgSignatureMismatch},
		{name: "signed header changed", target: list, body: `{}`,
			mutate:     func(r *http.Request) { r.Header.Set("X-Amz-Target", describe) },
			wantStatus: 400, wantCode: CodeInvalidSignature},
		{name: "query added after signing", target: list, body: `{}`,
			mutate:     func(r *http.Request) { r.URL.RawQuery = "a=b" },
			wantStatus: 400, wantCode: CodeInvalidSignature},
		{name: "content sha256 mismatch", target: list, body: `{}`,
			mutate:     func(r *http.Request) { r.Header.Set("X-Amz-Content-Sha256", sha256Hex([]byte("other"))) },
			wantStatus: 400, wantCode: CodeInvalidSignature, wantMsg: "x-amz-content-sha256"},
		{name: "signed 20 minutes ago", target: list, body: `{}`, at: -20 * time.Minute,
			wantStatus: 400, wantCode: CodeInvalidSignature, wantMsg: "Signature expired: "},
		{name: "signed 20 minutes ahead", target: list, body: `{}`, at: 20 * time.Minute,
			wantStatus: 400, wantCode: CodeInvalidSignature, wantMsg: "Signature not yet current: "},
		{name: "signed 10 minutes ago is fine", target: list, body: `{}`, at: -10 * time.Minute, wantStatus: 200},
		{name: "scoped to another service", target: list, body: `{}`, service: "ecr",
			wantStatus: 400, wantCode: CodeInvalidSignature, wantMsg: "Credential should be scoped to correct service: 'ecs'."},
		{name: "garbage authorization", target: list, body: `{}`, noSign: true,
			mutate:     func(r *http.Request) { r.Header.Set("Authorization", "Bearer abc") },
			wantStatus: 400, wantCode: CodeIncompleteSignature},
		{name: "GET is not an operation", target: list, body: ``,
			mutate:     func(r *http.Request) { r.Method = http.MethodGet },
			wantStatus: 400, wantCode: CodeInvalidSignature}, // the method is signed
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := jsonRequest(t, srv.URL+"/", tt.target, tt.body)
			if !tt.noSign {
				svc := tt.service
				if svc == "" {
					svc = "ecs"
				}
				signRequest(t, req, []byte(tt.body), testCreds, svc, "us-east-1", now.Add(tt.at))
			}
			if tt.mutate != nil {
				tt.mutate(req)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			checkJSONReply(t, resp, body, tt.wantStatus, tt.wantCode, tt.wantMsg)
		})
	}
}

// checkJSONReply checks the awsJson reply shape: request id, content type,
// status and, for errors, the code in both the header and the body.
func checkJSONReply(t *testing.T, resp *http.Response, body []byte, status int, code, msg string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Errorf("status = %d, want %d; body %s", resp.StatusCode, status, body)
	}
	if resp.Header.Get("X-Amzn-Requestid") == "" {
		t.Errorf("no x-amzn-RequestId header")
	}
	if ct := resp.Header.Get("Content-Type"); ct != jsonContentType {
		t.Errorf("Content-Type = %q", ct)
	}
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("reply is not a JSON object: %q", body)
	}
	if code == "" {
		if _, isErr := doc["__type"]; isErr {
			t.Errorf("success reply has __type: %s", body)
		}
		return
	}
	if doc["__type"] != code || resp.Header.Get("X-Amzn-Errortype") != code {
		t.Errorf("__type = %v, x-amzn-ErrorType = %q, want %q; body %s", doc["__type"], resp.Header.Get("X-Amzn-Errortype"), code, body)
	}
	if m, _ := doc["message"].(string); !strings.Contains(m, msg) {
		t.Errorf("message = %q, want it to contain %q", m, msg)
	}
}

func TestPresignedRequest(t *testing.T) {
	srv, _, _, _ := newTestServer(t)
	body := `{}`
	tests := []struct {
		name     string
		expires  string
		signedAt time.Duration
		wantCode string
		wantMsg  string
	}{
		{name: "valid", expires: "300"},
		{name: "no expiry", expires: ""},
		{name: "expired", expires: "60", signedAt: -2 * time.Minute, wantCode: CodeInvalidSignature, wantMsg: "Signature expired: "},
		{name: "expiry too long", expires: "999999999", wantCode: CodeIncompleteSignature, wantMsg: "X-Amz-Expires"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := jsonRequest(t, srv.URL+"/", ecsPrefix+".ListClusters", body)
			if tt.expires != "" {
				req.URL.RawQuery = "X-Amz-Expires=" + tt.expires
			}
			uri, hdr, err := newPresigner().PresignHTTP(context.Background(), testCreds, req, sha256Hex([]byte(body)),
				"ecs", "us-east-1", time.Now().Add(tt.signedAt),
				// Keep X-Amz-Target a header: the router reads it there.
				func(o *v4.SignerOptions) { o.DisableHeaderHoisting = true })
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(uri, "X-Amz-Signature=") || hdr.Get("Authorization") != "" {
				t.Fatalf("not a presigned request: %s %v", uri, hdr)
			}
			preq, _ := http.NewRequest(http.MethodPost, uri, strings.NewReader(body))
			for k, v := range hdr {
				if k != "Host" {
					preq.Header[k] = v
				}
			}
			resp, err := http.DefaultClient.Do(preq)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			rb, _ := io.ReadAll(resp.Body)
			status := 200
			if tt.wantCode != "" {
				status = 400
			}
			checkJSONReply(t, resp, rb, status, tt.wantCode, tt.wantMsg)
		})
	}
}

func TestPrefixRoutes(t *testing.T) {
	r, _, _ := newTestRouter(t)
	mk := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, name) })
	}
	r.Handle("/v2/", mk("registry"))
	r.Handle("/_berth/", mk("agent"))
	r.Handle("/_berth/admin/", mk("admin"))
	r.Handle("/metrics", mk("metrics"))

	tests := []struct {
		path, want string
	}{
		{"/v2/", "registry"},
		{"/v2/library/nginx/manifests/latest", "registry"},
		{"/_berth/agent/stream", "agent"},
		{"/_berth/admin/keys", "admin"}, // longest prefix wins
		{"/metrics", "metrics"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			r.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tt.path, nil))
			if rec.Body.String() != tt.want {
				t.Errorf("%s served by %q, want %q", tt.path, rec.Body.String(), tt.want)
			}
			if rec.Header().Get("X-Amzn-Requestid") != "" {
				t.Errorf("prefix route got an AWS request id")
			}
		})
	}
	// Everything else is the AWS endpoint.
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", strings.NewReader("{}")))
	if rec.Code != 400 || rawHeader(rec.Header(), "x-amzn-ErrorType")[0] != CodeUnknownOperation {
		t.Errorf("POST / without target: %d %v", rec.Code, rec.Header())
	}
	if got := rawHeader(rec.Header(), "x-amzn-RequestId"); len(got) != 1 || len(got[0]) != 36 {
		t.Errorf("x-amzn-RequestId = %v, want one uuid in AWS's spelling", got)
	}
}

func TestRegistrationPanics(t *testing.T) {
	tests := []struct {
		name string
		f    func(r *Router)
	}{
		{"duplicate prefix", func(r *Router) { r.AddJSONService(fakeECS()) }},
		{"empty prefix", func(r *Router) { r.AddJSONService(JSONService{}) }},
		{"nil handler", func(r *Router) {
			r.AddJSONService(JSONService{TargetPrefix: "X", Ops: map[string]JSONHandler{"A": nil}})
		}},
		{"root route", func(r *Router) { r.Handle("/", http.NotFoundHandler()) }},
		{"duplicate route", func(r *Router) {
			r.Handle("/v2/", http.NotFoundHandler())
			r.Handle("/v2/", http.NotFoundHandler())
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _, _ := newTestRouter(t)
			defer func() {
				if recover() == nil {
					t.Errorf("no panic")
				}
			}()
			tt.f(r)
		})
	}
}

func TestMetrics(t *testing.T) {
	srv, _, reg, _ := newTestServer(t)
	c := newECSClient(srv.URL, testKey, testSecret, "")
	ctx := context.Background()
	for range 3 {
		if _, err := c.ListClusters(ctx, &ecs.ListClustersInput{}); err != nil {
			t.Fatal(err)
		}
	}
	_, _ = c.DescribeClusters(ctx, &ecs.DescribeClustersInput{Clusters: []string{"missing"}})
	_, _ = newECSClient(srv.URL, testKey, "wrong", "").ListClusters(ctx, &ecs.ListClustersInput{})

	count := func(service, op, code string) float64 {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != "berth_api_requests_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				l := map[string]string{}
				for _, lp := range m.GetLabel() {
					l[lp.GetName()] = lp.GetValue()
				}
				if l["service"] == service && l["operation"] == op && l["code"] == code {
					return m.GetCounter().GetValue()
				}
			}
		}
		return 0
	}
	tests := []struct {
		service, op, code string
		want              float64
	}{
		{"ecs", "ListClusters", "OK", 3},
		{"ecs", "DescribeClusters", "ClusterNotFoundException", 1},
		{"ecs", "ListClusters", CodeInvalidSignature, 1},
	}
	for _, tt := range tests {
		if got := count(tt.service, tt.op, tt.code); got != tt.want {
			t.Errorf("requests{%s,%s,%s} = %v, want %v", tt.service, tt.op, tt.code, got, tt.want)
		}
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "berth_api_request_duration_seconds" && len(mf.GetMetric()) != 2 {
			t.Errorf("duration series = %d, want 2 (ListClusters, DescribeClusters)", len(mf.GetMetric()))
		}
	}
}

// TestNewRouterManyTimes: routers sharing a registry (the default one
// included) must not panic on duplicate registration.
func TestNewRouterManyTimes(t *testing.T) {
	reg := prometheus.NewRegistry()
	for range 3 {
		NewRouter(fakeAuth{}, nil, WithRegisterer(reg))
		NewRouter(fakeAuth{}, nil)
		NewRouter(fakeAuth{}, nil, WithRegisterer(nil))
	}
}

func TestSessionTokenNeedsSessionAuthenticator(t *testing.T) {
	r := NewRouter(keysOnlyAuth{}, nil, WithRegisterer(nil))
	r.AddJSONService(fakeECS())
	srv := httptest.NewServer(r)
	defer srv.Close()
	ctx := context.Background()
	_, err := newECSClient(srv.URL, testKey, testSecret, testToken).ListClusters(ctx, &ecs.ListClustersInput{})
	checkSDKError(t, err, CodeUnrecognizedClient, 400, msgUnrecognizedClient)
	if _, err := newECSClient(srv.URL, testKey, testSecret, "").ListClusters(ctx, &ecs.ListClustersInput{}); err != nil {
		t.Fatalf("plain keys must still work: %v", err)
	}
}

// FuzzServeHTTP throws arbitrary requests at the Router, half of them signed
// correctly so the fuzzer reaches decoding and the handlers. Whatever comes
// in, the reply is a well-formed awsJson reply and nothing internal leaks.
func FuzzServeHTTP(f *testing.F) {
	f.Add(ecsPrefix+".ListClusters", []byte(`{}`), true, "")
	f.Add(ecsPrefix+".DescribeClusters", []byte(`{"clusters":["a","missing"]}`), true, "")
	f.Add(ecsPrefix+".DescribeClusters", []byte(`{"clusters":[1]}`), true, "")
	f.Add(ecsPrefix+".DescribeClusters", []byte(`{"clusters":`), true, "")
	f.Add(ecsPrefix+".Nope", []byte(`{}`), true, "")
	f.Add("", []byte(`Action=DescribeVpcs`), false, "")
	f.Add(ecsPrefix+".ListClusters", []byte(`{}`), false,
		"AWS4-HMAC-SHA256 Credential=AKIDTEST/20261125/us-east-1/ecs/aws4_request, SignedHeaders=host;x-amz-date, Signature=00")
	f.Add(ecsPrefix+".ListClusters", []byte(`{}`), false, "AWS4-HMAC-SHA256 Credential=/////, SignedHeaders=;;, Signature=")
	// No log capture: a long fuzz run would pile it up in memory.
	r := NewRouter(fakeAuth{}, nil, WithRegisterer(nil), WithMaxBodyBytes(4096))
	r.AddJSONService(fakeECS())
	f.Fuzz(func(t *testing.T, target string, body []byte, sign bool, authz string) {
		req := httptest.NewRequest(http.MethodPost, "http://berth.test/", strings.NewReader(string(body)))
		req.Header.Set("Content-Type", jsonContentType)
		req.Header.Set("X-Amz-Target", target)
		if sign {
			signRequest(t, req, body, testCreds, "ecs", "us-east-1", time.Now())
		} else if authz != "" {
			req.Header.Set("Authorization", authz)
			req.Header.Set("X-Amz-Date", time.Now().UTC().Format(amzDateLayout))
		}
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, req)
		if len(rawHeader(rec.Header(), "x-amzn-RequestId")) != 1 {
			t.Fatalf("no request id")
		}
		var doc map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
			t.Fatalf("reply is not a JSON object: %q", rec.Body.String())
		}
		if strings.Contains(rec.Body.String(), "hunter2") {
			t.Fatalf("leak: %s", rec.Body.String())
		}
		switch {
		case rec.Code == 200:
		case rec.Code >= 400 && rec.Code < 600:
			code, _ := doc["__type"].(string)
			if code == "" || rawHeader(rec.Header(), "x-amzn-ErrorType")[0] != code {
				t.Fatalf("error reply without a code: %d %q", rec.Code, rec.Body.String())
			}
			if rec.Code >= 500 && code != "ServerException" {
				t.Fatalf("unexpected 5xx: %d %q", rec.Code, rec.Body.String())
			}
		default:
			t.Fatalf("status %d", rec.Code)
		}
	})
}
