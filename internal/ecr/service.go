package ecr

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/berthdev/berth/internal/protocol"
	"github.com/berthdev/berth/internal/store"
)

// TargetPrefix is the ECR API's X-Amz-Target prefix.
const TargetPrefix = "AmazonEC2ContainerRegistry_V20150921"

// DefaultTokenTTL is how long a GetAuthorizationToken password is good
// for: 12 hours, as in ECR.
const DefaultTokenTTL = 12 * time.Hour

// Config configures the ECR service and its registry.
type Config struct {
	Store *store.Store
	// RootDir is the registry's filesystem storage root.
	RootDir string
	Logger  *slog.Logger
	// Anonymous lets callers without credentials use the registry as
	// AnonymousAccount in AnonymousRegion: berth dev's explicit opt-in. As a
	// dev-only convenience an anonymous push to a repository that does not
	// exist creates it (so `berth image build-demo` needs no API call first);
	// a caller presenting a token gets ECR's NAME_UNKNOWN even then.
	Anonymous        bool
	AnonymousAccount string // default 000000000000
	AnonymousRegion  string // default us-east-1
	// TokenTTL is the lifetime of registry passwords (default 12 h).
	TokenTTL time.Duration
	// Now is the clock (tests may replace it).
	Now func() time.Time
	// LifecycleInterval is how often lifecycle policies are applied
	// (default DefaultLifecycleInterval; negative: never, RunLifecycle only).
	LifecycleInterval time.Duration
}

// Service implements the ECR API and guards the registry with ECR's
// account-scoped auth. Each account's repositories are kept in Distribution
// under the stored name ACCOUNT/REGION/NAME (storedName); clients name them
// as NAME, and the registry rewrites their requests to the namespace of the
// account their token belongs to.
type Service struct {
	cfg Config
	st  *store.Store
	log *slog.Logger
	reg *Registry

	secretMu sync.Mutex
	secret   []byte // the token signing key, read from etcd once

	lifecycle *lifecycleLoop // the lifecycle policy reconciler (lifecycle.go)
}

// New creates the ECR service and its embedded registry. ctx bounds
// construction; Close stops the registry.
func New(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.Store == nil {
		return nil, fmt.Errorf("new ecr service: Store is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.AnonymousAccount == "" {
		cfg.AnonymousAccount = "000000000000"
	}
	if cfg.AnonymousRegion == "" {
		cfg.AnonymousRegion = "us-east-1"
	}
	if cfg.TokenTTL == 0 {
		cfg.TokenTTL = DefaultTokenTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Service{cfg: cfg, st: cfg.Store, log: cfg.Logger}
	reg, err := NewRegistry(ctx, RegistryConfig{RootDir: cfg.RootDir, Logger: cfg.Logger, Resolve: s.resolve})
	if err != nil {
		return nil, fmt.Errorf("new ecr service: %w", err)
	}
	s.reg = reg
	s.lifecycle = s.startLifecycle()
	return s, nil
}

// Close stops the lifecycle reconciler and the registry.
func (s *Service) Close() error {
	s.lifecycle.close()
	return s.reg.Close()
}

// Handler serves the registry under /v2/ (mount it without stripping the
// prefix): Distribution behind ECR's auth, and /v2/_catalog from the
// caller's repositories.
func (s *Service) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/_catalog" {
			s.serveCatalog(w, r)
			return
		}
		s.reg.ServeHTTP(w, r)
	})
}

// JSONService returns the ECR API operations for the protocol router.
func (s *Service) JSONService() protocol.JSONService {
	return protocol.JSONService{
		TargetPrefix:      TargetPrefix,
		SigningName:       "ecr",
		InternalErrorCode: codeServer,
		Ops: map[string]protocol.JSONHandler{
			"CreateRepository":      s.createRepository,
			"DescribeRepositories":  s.describeRepositories,
			"DeleteRepository":      s.deleteRepository,
			"PutImageTagMutability": s.putImageTagMutability,
			"ListImages":            s.listImages,
			"DescribeImages":        s.describeImages,
			"BatchGetImage":         s.batchGetImage,
			"BatchDeleteImage":      s.batchDeleteImage,
			"GetAuthorizationToken": s.getAuthorizationToken,
			"TagResource":           s.tagResource,
			"UntagResource":         s.untagResource,
			"ListTagsForResource":   s.listTagsForResource,
			// lifecycle.go, policy.go
			"PutLifecyclePolicy":          s.putLifecyclePolicy,
			"GetLifecyclePolicy":          s.getLifecyclePolicy,
			"DeleteLifecyclePolicy":       s.deleteLifecyclePolicy,
			"StartLifecyclePolicyPreview": s.startLifecyclePolicyPreview,
			"GetLifecyclePolicyPreview":   s.getLifecyclePolicyPreview,
			"SetRepositoryPolicy":         s.setRepositoryPolicy,
			"GetRepositoryPolicy":         s.getRepositoryPolicy,
			"DeleteRepositoryPolicy":      s.deleteRepositoryPolicy,
			// layers.go, push.go
			"InitiateLayerUpload":         s.initiateLayerUpload,
			"UploadLayerPart":             s.uploadLayerPart,
			"CompleteLayerUpload":         s.completeLayerUpload,
			"PutImage":                    s.putImage,
			"BatchCheckLayerAvailability": s.batchCheckLayerAvailability,
			"GetDownloadUrlForLayer":      s.getDownloadURLForLayer,
		},
	}
}

// scope is an account's registry in one region.
type scope struct{ account, region string }

func scopeOf(ctx context.Context) (scope, error) {
	id, ok := protocol.IdentityFrom(ctx)
	if !ok || id.AccountID == "" {
		return scope{}, protocol.NewError("AccessDeniedException", 400, "The request is not authenticated.")
	}
	region := id.Region
	if region == "" {
		region = "us-east-1"
	}
	return scope{account: id.AccountID, region: region}, nil
}

func (sc scope) arn(name string) string {
	return "arn:aws:ecr:" + sc.region + ":" + sc.account + ":repository/" + name
}

// storedName is the name a repository has inside Distribution.
func (sc scope) storedName(name string) string {
	return sc.account + "/" + sc.region + "/" + name
}

// endpointOf is berth's endpoint as the API caller addressed it.
func endpointOf(ctx context.Context) protocol.Endpoint {
	e, ok := protocol.EndpointFrom(ctx)
	if !ok || e.Host == "" {
		return protocol.Endpoint{Scheme: "http", Host: "localhost"}
	}
	return e
}

// epoch is a time as ECR's JSON carries it: seconds since the epoch.
func epoch(t time.Time) float64 {
	return float64(t.UnixNano()) / 1e9
}
