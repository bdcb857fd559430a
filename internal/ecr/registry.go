// Package ecr is berth's Elastic Container Registry. It owns the registry
// data plane: an OCI Distribution v2 registry served under /v2/ on berth's
// one endpoint, built by embedding CNCF Distribution
// (github.com/distribution/distribution/v3) with its filesystem storage
// driver rooted in berth's data dir. Repositories, images and auth tokens
// (the ECR API, service.go; lifecycle policies later) build on top of it;
// the seams for them are RegistryConfig.Authorize and RegistryConfig.Resolve.
//
// Embedding notes (what Distribution is told, and why):
//
//   - No HTTP server of its own: Registry is an http.Handler mounted by the
//     caller at "/v2/" (without stripping the prefix).
//   - Relative URLs in Location headers, so an upload started at
//     127.0.0.1:4566 continues at 127.0.0.1:4566 whatever Host or
//     X-Forwarded-* headers say, and containerd never drops credentials
//     because an upload "moved" to another host.
//   - No redirects to storage, delete enabled (BatchDeleteImage), a random
//     http.secret per process (upload state tokens do not survive a restart,
//     which clients handle by restarting the upload).
//   - No blob descriptor cache: the ECR API reads and deletes through a
//     second Namespace over the same driver (Registry.repository), and
//     server replicas share storage; a per-process cache would serve
//     descriptors another writer has deleted.
//   - Names can be rewritten per request (RegistryConfig.Resolve): the
//     client's /v2/NAME/... is served from the stored name (ECR keeps each
//     account's repositories in a namespace of its own), and Location and
//     Link headers and the tags list's "name" are rewritten back.
//   - No health checks, no notifications endpoints. Distribution's own
//     upload purger is disabled; Registry runs its own, stopped by Close.
//     One goroutine cannot be stopped: handlers.NewApp starts an events
//     broadcaster (docker/go-events) it keeps unexported and never closes.
//     It idles in a select; one per Registry, so one per berth process.
//   - Names Distribution's router accepts but reference rules reject (too
//     long) are answered NAME_INVALID here; Distribution would send a 500.
//   - Distribution logs through logrus's process-wide standard logger; it is
//     bridged to each Registry's slog.Logger at low levels (see logbridge.go).
package ecr

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/distribution/distribution/v3"
	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/api/errcode"
	v2 "github.com/distribution/distribution/v3/registry/api/v2"
	"github.com/distribution/distribution/v3/registry/handlers"
	"github.com/distribution/distribution/v3/registry/storage"
	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/reference"
	// The filesystem driver also registers its factory in init, which is how
	// handlers.NewApp finds it by name.
	"github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
)

// Actions passed to RegistryConfig.Authorize.
const (
	ActionPull = "pull" // GET, HEAD
	ActionPush = "push" // POST, PUT, PATCH, DELETE
)

// Upload purging: incomplete uploads older than purgeAge are removed, first
// after purgeFirstDelay and then every purgeInterval (Distribution's
// defaults, without its random jitter of up to an hour).
const (
	purgeAge        = 7 * 24 * time.Hour
	purgeInterval   = 24 * time.Hour
	purgeFirstDelay = 10 * time.Minute
)

// catalogMaxEntries caps one page of /v2/_catalog (Distribution's default;
// a zero value would make every catalog empty).
const catalogMaxEntries = 1000

// RegistryConfig configures an embedded registry.
type RegistryConfig struct {
	// RootDir is the filesystem storage root (e.g. <data-dir>/registry).
	// It is created if missing.
	RootDir string
	// Logger receives Distribution's logs at low levels; nil discards them.
	Logger *slog.Logger
	// Authorize is the seam for ECR auth. It is called for every /v2/
	// request with the repository name ("" for /v2/ and /v2/_catalog) and
	// the action (ActionPull or ActionPush, by HTTP method). A cross-repository
	// blob mount also asks for ActionPull on the source repository; if that is
	// refused the mount is dropped and the client gets a plain upload.
	//
	// A non-nil error refuses the request in the registry's error shape:
	// ErrDenied gives 403 DENIED, ErrNameUnknown 404 NAME_UNKNOWN, an
	// errcode.Error is served as is, anything else (ErrUnauthorized included)
	// 401 UNAUTHORIZED with a Basic challenge. The error's text is sent to
	// the client as the message.
	//
	// nil allows everything (berth dev's explicit anonymous opt-in).
	Authorize func(r *http.Request, repo string, action string) error
	// Resolve replaces Authorize when set: it decides like Authorize (same
	// errors, same answers) and also names the repository in storage, so
	// the request for a.Repo is served from the returned name. A
	// cross-repository mount's source is resolved with ActionPull too.
	Resolve func(r *http.Request, a Access) (stored string, err error)
}

// Access is one registry request as Resolve sees it.
type Access struct {
	// Repo is the repository as the client named it; "" for /v2/ and
	// /v2/_catalog.
	Repo string
	// Action is ActionPull or ActionPush (by HTTP method).
	Action string
	// Route is Distribution's route name (v2.RouteNameManifest, …), "" for
	// a mount source.
	Route string
	// Reference is the tag or digest of a manifest route.
	Reference string
}

// Registry is an embedded OCI Distribution v2 registry. It is an
// http.Handler for /v2/...; Close stops its background work.
type Registry struct {
	app     *handlers.App
	log     *slog.Logger
	resolve func(r *http.Request, a Access) (string, error) // nil: allow all, names as given
	// ns reads, writes and deletes for the ECR API, on the app's storage
	// driver, validating manifests as the app does (an index's images must
	// exist).
	ns     distribution.Namespace
	driver storagedriver.StorageDriver
	root   string // the filesystem driver's root directory
	// instanceID tags Distribution's log entries so the logrus bridge can
	// route them to this Registry's logger.
	instanceID string
	unregister func()

	stop      context.CancelFunc
	purgeDone chan struct{}
	closeOnce sync.Once
	closed    chan struct{}
}

// NewRegistry builds the registry over cfg.RootDir. ctx bounds construction
// and supplies values; the registry lives until Close.
func NewRegistry(ctx context.Context, cfg RegistryConfig) (*Registry, error) {
	if cfg.RootDir == "" {
		return nil, fmt.Errorf("new registry: RootDir is required")
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("new registry: %w", err)
	}
	if err := os.MkdirAll(cfg.RootDir, 0o700); err != nil {
		return nil, fmt.Errorf("new registry: create root %s: %w", cfg.RootDir, err)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "registry")

	id, err := randomHex(8)
	if err != nil {
		return nil, fmt.Errorf("new registry: instance id: %w", err)
	}
	secret, err := randomHex(32)
	if err != nil {
		return nil, fmt.Errorf("new registry: http secret: %w", err)
	}

	r := &Registry{
		log:        logger,
		resolve:    cfg.Resolve,
		instanceID: id,
		purgeDone:  make(chan struct{}),
		closed:     make(chan struct{}),
	}
	if r.resolve == nil && cfg.Authorize != nil {
		authorize := cfg.Authorize
		r.resolve = func(req *http.Request, a Access) (string, error) {
			return a.Repo, authorize(req, a.Repo, a.Action)
		}
	}
	r.unregister = bridge.register(id, logger)

	// The app's context outlives ctx (construction only) and is canceled by
	// Close through app.Shutdown.
	appCtx := withInstanceID(context.WithoutCancel(ctx), id)
	app, err := newApp(appCtx, distributionConfig(cfg.RootDir, secret))
	if err != nil {
		r.unregister()
		return nil, fmt.Errorf("new registry at %s: %w", cfg.RootDir, err)
	}
	r.app = app

	driver, err := filesystem.FromParameters(map[string]any{"rootdirectory": cfg.RootDir})
	if err != nil {
		_ = app.Shutdown()
		r.unregister()
		return nil, fmt.Errorf("new registry at %s: purge driver: %w", cfg.RootDir, err)
	}
	r.driver, r.root = driver, cfg.RootDir
	if r.ns, err = storage.NewRegistry(appCtx, driver, storage.EnableDelete, storage.EnableValidateImageIndexImagesExist); err != nil {
		_ = app.Shutdown()
		r.unregister()
		return nil, fmt.Errorf("new registry at %s: namespace: %w", cfg.RootDir, err)
	}
	purgeCtx, stop := context.WithCancel(appCtx)
	r.stop = stop
	go r.purgeLoop(purgeCtx, driver)

	logger.Debug("registry ready", "root", cfg.RootDir)
	return r, nil
}

// distributionConfig is the Distribution configuration for embedding (see
// the package doc).
func distributionConfig(root, secret string) *configuration.Configuration {
	cfg := &configuration.Configuration{
		Version: "0.1",
		Storage: configuration.Storage{
			"filesystem": configuration.Parameters{"rootdirectory": root},
			"delete":     configuration.Parameters{"enabled": true},
			"redirect":   configuration.Parameters{"disable": true},
			"maintenance": configuration.Parameters{
				"uploadpurging": map[any]any{"enabled": false},
			},
		},
	}
	cfg.HTTP.Secret = secret
	cfg.HTTP.RelativeURLs = true
	cfg.HTTP.Headers = http.Header{"X-Content-Type-Options": []string{"nosniff"}}
	cfg.Catalog.MaxEntries = catalogMaxEntries
	// Non-distributable layers name where to fetch them; any http(s) URL is
	// accepted, as ECR and the OCI spec allow.
	cfg.Validation.Manifests.URLs.Allow = []string{`^https?://`}
	return cfg
}

// newApp calls handlers.NewApp, which reports configuration errors by
// panicking, and turns such a panic into an error.
func newApp(ctx context.Context, cfg *configuration.Configuration) (app *handlers.App, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("configure distribution: %v", p)
		}
	}()
	return handlers.NewApp(ctx, cfg), nil
}

// ServeHTTP serves /v2/... . Every request is first put to Authorize.
func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	select {
	case <-r.closed:
		writeRegistryError(w, req, errClosed)
		return
	default:
	}
	req = req.WithContext(withInstanceID(req.Context(), r.instanceID))
	if a, ref, ok := referrersAccess(req); ok {
		r.serveReferrersFor(w, req, a, ref)
		return
	}
	a := accessOf(req)
	if a.Repo != "" {
		// Distribution answers an invalid name with a 500 and a doubled
		// WriteHeader; answer it here, before Resolve sees the name.
		if _, err := reference.WithName(a.Repo); err != nil {
			writeRegistryError(w, req, errcode.ErrorCodeNameInvalid.WithDetail(err.Error()))
			return
		}
	}
	stored := a.Repo
	if r.resolve != nil {
		var ok bool
		if req, stored, ok = r.authorized(w, req, a); !ok {
			return
		}
	}
	if a.Route == v2.RouteNameBlob || a.Route == v2.RouteNameBlobUpload {
		r.touchBlob(req)
	}
	if a.Route == v2.RouteNameManifest && req.Method == http.MethodPut {
		subject, err := subjectOf(req)
		if err != nil {
			writeRegistryError(w, req, err)
			return
		}
		if subject != "" {
			w = subjectWriter{ResponseWriter: w, subject: subject}
		}
	}
	if stored == a.Repo {
		r.app.ServeHTTP(w, req)
		return
	}
	rw := &renamingWriter{ResponseWriter: w, from: "/v2/" + stored + "/", to: "/v2/" + a.Repo + "/"}
	if a.Route == v2.RouteNameTags {
		rw.tagsName = &renamedTags{stored: stored, repo: a.Repo}
	}
	r.app.ServeHTTP(rw, renamed(req, a.Repo, stored))
	rw.finish()
}

// serveReferrersFor authorises a referrers request like a pull and serves it.
func (r *Registry) serveReferrersFor(w http.ResponseWriter, req *http.Request, a Access, ref string) {
	if _, err := reference.WithName(a.Repo); err != nil {
		writeRegistryError(w, req, errcode.ErrorCodeNameInvalid.WithDetail(err.Error()))
		return
	}
	stored := a.Repo
	if r.resolve != nil {
		var ok bool
		if req, stored, ok = r.authorized(w, req, a); !ok {
			return
		}
	}
	r.serveReferrers(w, req, stored, ref)
}

// Close stops the upload purger and shuts the Distribution app down. It is
// safe to call more than once. Requests still in flight finish; later ones
// get 503 UNAVAILABLE.
func (r *Registry) Close() error {
	var err error
	r.closeOnce.Do(func() {
		close(r.closed)
		r.stop()
		<-r.purgeDone
		if e := r.app.Shutdown(); e != nil {
			err = fmt.Errorf("close registry: %w", e)
		}
		r.unregister()
	})
	return err
}

// purgeLoop removes abandoned uploads until ctx is canceled.
func (r *Registry) purgeLoop(ctx context.Context, driver *filesystem.Driver) {
	defer close(r.purgeDone)
	timer := time.NewTimer(purgeFirstDelay)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		deleted, errs := storage.PurgeUploads(ctx, driver, time.Now().Add(-purgeAge), true)
		if len(deleted) > 0 || len(errs) > 0 {
			r.log.Info("purged abandoned uploads", "deleted", len(deleted), "errors", len(errs))
		}
		for _, e := range errs {
			r.log.Debug("purge uploads", "err", e)
		}
		timer.Reset(purgeInterval)
	}
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}
