package protocol

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/prometheus/client_golang/prometheus"
)

const (
	testAccount = "123456789012"
	testKey     = "AKIDTEST"
	testSecret  = "test-secret/with+chars"
	testToken   = "session-token-value"
	// brokenKey makes fakeAuth fail as a broken backend would.
	brokenKey = "AKIDBROKEN"
	// leakyDetail is what failing handlers put in their errors; it must
	// reach the log and never the wire.
	leakyDetail = "etcd at 10.0.0.7 said: password hunter2 rejected"

	ecsPrefix = "AmazonEC2ContainerServiceV20141113"
)

// fakeAuth knows testKey, and testKey with testToken as a session.
type fakeAuth struct{}

func (fakeAuth) Lookup(_ context.Context, akid string) (string, string, error) {
	switch akid {
	case testKey:
		return testSecret, testAccount, nil
	case brokenKey:
		return "", "", errors.New(leakyDetail)
	}
	return "", "", ErrUnknownKey
}

func (fakeAuth) LookupSession(_ context.Context, akid, token string) (string, string, error) {
	switch {
	case akid == testKey && token == testToken:
		return testSecret, testAccount, nil
	case akid == testKey && token == "expired":
		return "", "", ErrExpiredToken
	}
	return "", "", ErrUnknownKey
}

// keysOnlyAuth knows keys but not sessions: it is not a SessionAuthenticator.
type keysOnlyAuth struct{}

func (keysOnlyAuth) Lookup(ctx context.Context, akid string) (string, string, error) {
	return fakeAuth{}.Lookup(ctx, akid)
}

// fakeECS is a tiny awsJson service in ECS's shape.
func fakeECS() JSONService {
	type describeIn struct {
		Clusters []string `json:"clusters"`
		Include  []string `json:"include"`
	}
	type cluster struct {
		ClusterName string `json:"clusterName"`
		ClusterArn  string `json:"clusterArn"`
		Status      string `json:"status"`
	}
	arn := func(ctx context.Context, name string) string {
		id, _ := IdentityFrom(ctx)
		return fmt.Sprintf("arn:aws:ecs:%s:%s:cluster/%s", id.Region, id.AccountID, name)
	}
	return JSONService{
		TargetPrefix:      ecsPrefix,
		SigningName:       "ecs",
		InternalErrorCode: "ServerException",
		Ops: map[string]JSONHandler{
			"ListClusters": func(ctx context.Context, body []byte) (any, error) {
				var in struct {
					MaxResults *int32 `json:"maxResults"`
				}
				if err := Decode(body, &in); err != nil {
					return nil, err
				}
				return map[string]any{"clusterArns": []string{arn(ctx, "default")}}, nil
			},
			"DescribeClusters": func(ctx context.Context, body []byte) (any, error) {
				var in describeIn
				if err := Decode(body, &in); err != nil {
					return nil, err
				}
				out := struct {
					Clusters []cluster `json:"clusters"`
				}{Clusters: []cluster{}}
				for _, name := range in.Clusters {
					switch name {
					case "missing":
						return nil, NewError("ClusterNotFoundException", 0, "Cluster not found.")
					case "busy":
						return nil, fmt.Errorf("describe %s: %w", name,
							NewError("ResourceInUseException", http.StatusConflict, "The cluster %s is busy.", name))
					case "boom":
						return nil, fmt.Errorf("describe %s: %s", name, leakyDetail)
					case "panic":
						panic(leakyDetail)
					}
					out.Clusters = append(out.Clusters, cluster{ClusterName: name, ClusterArn: arn(ctx, name), Status: "ACTIVE"})
				}
				return out, nil
			},
			"DeleteCluster": func(context.Context, []byte) (any, error) { return nil, nil },
		},
	}
}

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newTestRouter returns a Router with fakeAuth and fakeECS, its own metrics
// registry and a debug log captured in the returned buffer.
func newTestRouter(t testing.TB, opts ...Option) (*Router, *prometheus.Registry, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	reg := prometheus.NewRegistry()
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r := NewRouter(fakeAuth{}, logger, append([]Option{WithRegisterer(reg)}, opts...)...)
	r.AddJSONService(fakeECS())
	return r, reg, logs
}

func newTestServer(t testing.TB, opts ...Option) (*httptest.Server, *Router, *prometheus.Registry, *syncBuffer) {
	t.Helper()
	r, reg, logs := newTestRouter(t, opts...)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return srv, r, reg, logs
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// signRequest signs req (whose body is body) the way the Go SDK would.
func signRequest(t testing.TB, req *http.Request, body []byte, creds aws.Credentials, service, region string, at time.Time) {
	t.Helper()
	err := v4.NewSigner().SignHTTP(context.Background(), creds, req, sha256Hex(body), service, region, at)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
}

// jsonRequest builds an awsJson request to url for target with body.
func jsonRequest(t testing.TB, url, target, body string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", jsonContentType)
	if target != "" {
		req.Header.Set("X-Amz-Target", target)
	}
	return req
}

func newPresigner() *v4.Signer { return v4.NewSigner() }

var testCreds = aws.Credentials{AccessKeyID: testKey, SecretAccessKey: testSecret}

// rawHeader returns the values stored under name exactly as spelt: the
// Router writes x-amzn-RequestId and x-amzn-ErrorType in AWS's spelling,
// which Get (canonicalising the name) would not find.
func rawHeader(h http.Header, name string) []string { return h[name] }
