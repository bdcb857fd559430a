package ecr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/registry/api/errcode"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// testRegistry is a Registry behind an httptest server.
type testRegistry struct {
	reg  *Registry
	srv  *httptest.Server
	host string // 127.0.0.1:PORT
	logs *recordHandler
}

func newTestRegistry(t *testing.T, root string, authorize func(*http.Request, string, string) error) *testRegistry {
	t.Helper()
	if root == "" {
		root = t.TempDir()
	}
	logs := &recordHandler{}
	reg, err := NewRegistry(t.Context(), RegistryConfig{
		RootDir:   root,
		Logger:    slog.New(logs),
		Authorize: authorize,
	})
	if err != nil {
		t.Fatalf("NewRegistry: %v", err)
	}
	t.Cleanup(func() {
		if err := reg.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	mux := http.NewServeMux()
	mux.Handle("/v2/", reg)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &testRegistry{reg: reg, srv: srv, host: strings.TrimPrefix(srv.URL, "http://"), logs: logs}
}

func (tr *testRegistry) ref(t *testing.T, s string) name.Reference {
	t.Helper()
	ref, err := name.ParseReference(tr.host+"/"+s, name.Insecure)
	if err != nil {
		t.Fatalf("parse %s: %v", s, err)
	}
	return ref
}

// do sends a raw request to the registry.
func (tr *testRegistry) do(t *testing.T, method, path string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, tr.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := tr.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	t.Cleanup(func() { _ = resp.Body.Close() })
	return resp
}

// wireErrors decodes the registry's error body.
func wireErrors(t *testing.T, resp *http.Response) []errcode.Error {
	t.Helper()
	var body struct {
		Errors []errcode.Error `json:"errors"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("decode error body: %v", err)
	}
	return body.Errors
}

func pushRandom(t *testing.T, ref name.Reference) v1.Image {
	t.Helper()
	img, err := random.Image(2048, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithContext(t.Context())); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	return img
}

func TestPushPull(t *testing.T) {
	tr := newTestRegistry(t, "", nil)
	tests := []struct {
		name string
		ref  string
	}{
		{"single component", "demo:latest"},
		{"nested", "team/app/web:v1.2.3"},
		{"component named like a route", "a/manifests/blobs:x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ref := tr.ref(t, tt.ref)
			img := pushRandom(t, ref)
			want, err := img.Digest()
			if err != nil {
				t.Fatal(err)
			}
			got, err := remote.Image(ref, remote.WithContext(t.Context()))
			if err != nil {
				t.Fatalf("pull %s: %v", ref, err)
			}
			gotDigest, err := got.Digest()
			if err != nil {
				t.Fatal(err)
			}
			if gotDigest != want {
				t.Errorf("pulled digest %s, pushed %s", gotDigest, want)
			}
			if err := validate.Image(got); err != nil {
				t.Errorf("pulled image invalid: %v", err)
			}
			// And by digest.
			byDigest := ref.Context().Digest(want.String())
			if _, err := remote.Head(byDigest, remote.WithContext(t.Context())); err != nil {
				t.Errorf("head %s: %v", byDigest, err)
			}
		})
	}
}

func TestListTagsAndCatalog(t *testing.T) {
	tr := newTestRegistry(t, "", nil)
	for _, tag := range []string{"v2", "v1", "latest"} {
		pushRandom(t, tr.ref(t, "lib/tags:"+tag))
	}
	pushRandom(t, tr.ref(t, "other:1"))

	repo := tr.ref(t, "lib/tags:v1").Context()
	tags, err := remote.List(repo, remote.WithContext(t.Context()))
	if err != nil {
		t.Fatalf("list tags: %v", err)
	}
	slices.Sort(tags)
	if want := []string{"latest", "v1", "v2"}; !slices.Equal(tags, want) {
		t.Errorf("tags = %v, want %v", tags, want)
	}

	reg, err := name.NewRegistry(tr.host, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	repos, err := remote.Catalog(t.Context(), reg)
	if err != nil {
		t.Fatalf("catalog: %v", err)
	}
	if want := []string{"lib/tags", "other"}; !slices.Equal(repos, want) {
		t.Errorf("catalog = %v, want %v", repos, want)
	}
}

func TestMissing(t *testing.T) {
	tr := newTestRegistry(t, "", nil)
	pushRandom(t, tr.ref(t, "exists:v1"))
	tests := []struct {
		name   string
		method string
		path   string
		status int
		codes  []errcode.ErrorCode // any of
	}{
		{"manifest in missing repo", http.MethodGet, "/v2/nope/manifests/latest", 404,
			[]errcode.ErrorCode{errcode.ErrorCodeNameUnknown, errcode.ErrorCodeManifestUnknown}},
		{"missing tag", http.MethodGet, "/v2/exists/manifests/nope", 404,
			[]errcode.ErrorCode{errcode.ErrorCodeManifestUnknown}},
		{"tags of missing repo", http.MethodGet, "/v2/nope/tags/list", 404,
			[]errcode.ErrorCode{errcode.ErrorCodeNameUnknown}},
		{"missing blob", http.MethodGet, "/v2/exists/blobs/sha256:" + strings.Repeat("0", 64), 404,
			[]errcode.ErrorCode{errcode.ErrorCodeBlobUnknown}},
		{"name too long", http.MethodGet, "/v2/" + strings.Repeat("a", 256) + "/manifests/latest", 400,
			[]errcode.ErrorCode{errcode.ErrorCodeNameInvalid}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := tr.do(t, tt.method, tt.path)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			errs := wireErrors(t, resp)
			if len(errs) == 0 || !slices.Contains(tt.codes, errs[0].Code) {
				t.Errorf("errors = %+v, want one of %v", errs, tt.codes)
			}
		})
	}
}

func TestAuthorizeErrors(t *testing.T) {
	tests := []struct {
		name      string
		err       error
		status    int
		code      errcode.ErrorCode
		message   string
		challenge bool
	}{
		{"unclassified", errors.New("no basic auth credentials"), 401, errcode.ErrorCodeUnauthorized, "no basic auth credentials", true},
		{"unauthorized wrapped", fmt.Errorf("token expired: %w", ErrUnauthorized), 401, errcode.ErrorCodeUnauthorized, "token expired: authentication required", true},
		{"denied", fmt.Errorf("account 1 may not pull from account 2: %w", ErrDenied), 403, errcode.ErrorCodeDenied, "account 1 may not pull from account 2: requested access to the resource is denied", false},
		{"name unknown", fmt.Errorf("repository foo in account 1: %w", ErrNameUnknown), 404, errcode.ErrorCodeNameUnknown, "repository foo in account 1: repository name not known to registry", false},
		{"errcode passthrough", fmt.Errorf("throttled: %w", errcode.ErrorCodeTooManyRequests.WithMessage("slow down")), 429, errcode.ErrorCodeTooManyRequests, "slow down", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTestRegistry(t, "", func(*http.Request, string, string) error { return tt.err })
			for _, path := range []string{"/v2/", "/v2/foo/manifests/latest"} {
				resp := tr.do(t, http.MethodGet, path)
				if resp.StatusCode != tt.status {
					t.Fatalf("GET %s: status %d, want %d", path, resp.StatusCode, tt.status)
				}
				if got := resp.Header.Get("Docker-Distribution-API-Version"); got != "registry/2.0" {
					t.Errorf("Docker-Distribution-API-Version = %q", got)
				}
				wantChallenge := ""
				if tt.challenge {
					wantChallenge = fmt.Sprintf(`Basic realm="http://%s/",service="ecr.amazonaws.com"`, tr.host)
				}
				if got := resp.Header.Get("WWW-Authenticate"); got != wantChallenge {
					t.Errorf("WWW-Authenticate = %q, want %q", got, wantChallenge)
				}
				errs := wireErrors(t, resp)
				if len(errs) != 1 || errs[0].Code != tt.code || errs[0].Message != tt.message {
					t.Errorf("errors = %+v, want %s %q", errs, tt.code, tt.message)
				}
			}
			// A client sees the refusal as an error, not a hang or a crash.
			if _, err := remote.Image(tr.ref(t, "foo:latest"), remote.WithContext(t.Context()),
				remote.WithRetryStatusCodes()); err == nil {
				t.Error("pull succeeded through a refusing Authorize")
			}
		})
	}
}

// authCall is one call of Authorize.
type authCall struct{ repo, action string }

func TestAuthorizeArguments(t *testing.T) {
	var mu sync.Mutex
	var calls []authCall
	tr := newTestRegistry(t, "", func(_ *http.Request, repo, action string) error {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, authCall{repo, action})
		return nil
	})
	digest := "sha256:" + strings.Repeat("a", 64)
	tests := []struct {
		method, path string
		want         authCall
	}{
		{http.MethodGet, "/v2/", authCall{"", ActionPull}},
		{http.MethodGet, "/v2/_catalog", authCall{"", ActionPull}},
		{http.MethodGet, "/v2/a/b/manifests/latest", authCall{"a/b", ActionPull}},
		{http.MethodHead, "/v2/a/manifests/manifests/latest", authCall{"a/manifests", ActionPull}},
		{http.MethodGet, "/v2/x/tags/list", authCall{"x", ActionPull}},
		{http.MethodGet, "/v2/x/blobs/" + digest, authCall{"x", ActionPull}},
		{http.MethodPost, "/v2/x/y/blobs/uploads/", authCall{"x/y", ActionPush}},
		{http.MethodPut, "/v2/x/manifests/v1", authCall{"x", ActionPush}},
		{http.MethodDelete, "/v2/x/manifests/" + digest, authCall{"x", ActionPush}},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			mu.Lock()
			calls = nil
			mu.Unlock()
			tr.do(t, tt.method, tt.path)
			mu.Lock()
			defer mu.Unlock()
			if len(calls) != 1 || calls[0] != tt.want {
				t.Errorf("Authorize calls = %+v, want [%+v]", calls, tt.want)
			}
		})
	}
}

func TestCrossRepositoryMount(t *testing.T) {
	tests := []struct {
		name       string
		allowFrom  bool
		wantStatus int
	}{
		{"source readable: mounted", true, http.StatusCreated},
		{"source refused: plain upload", false, http.StatusAccepted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTestRegistry(t, "", func(r *http.Request, repo, action string) error {
				// Only pushers to "public" are refused reads of "private".
				if strings.HasPrefix(r.URL.Path, "/v2/public/") && repo == "private" && !tt.allowFrom {
					return ErrDenied
				}
				return nil
			})
			img := pushRandom(t, tr.ref(t, "private:v1"))
			layers, err := img.Layers()
			if err != nil {
				t.Fatal(err)
			}
			d, err := layers[0].Digest()
			if err != nil {
				t.Fatal(err)
			}
			resp := tr.do(t, http.MethodPost, "/v2/public/blobs/uploads/?mount="+d.String()+"&from=private")
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("mount: status %d, want %d", resp.StatusCode, tt.wantStatus)
			}
		})
	}
}

func TestUploadLocationIsRelative(t *testing.T) {
	tr := newTestRegistry(t, "", nil)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, tr.srv.URL+"/v2/loc/blobs/uploads/", nil)
	if err != nil {
		t.Fatal(err)
	}
	// A Host or X-Forwarded-Host the client did not connect to must not leak
	// into the upload URL.
	req.Host = "registry.example:443"
	req.Header.Set("X-Forwarded-Host", "evil.example")
	resp, err := tr.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = resp.Body.Close() })
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status %d, want 202", resp.StatusCode)
	}
	if loc := resp.Header.Get("Location"); !strings.HasPrefix(loc, "/v2/loc/blobs/uploads/") {
		t.Errorf("Location = %q, want a path under /v2/loc/blobs/uploads/", loc)
	}
}

func TestPersistsAcrossRestart(t *testing.T) {
	root := t.TempDir()
	first := newTestRegistry(t, root, nil)
	want, err := pushRandom(t, first.ref(t, "keep:v1")).Digest()
	if err != nil {
		t.Fatal(err)
	}
	first.srv.Close()
	if err := first.reg.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	second := newTestRegistry(t, root, nil)
	desc, err := remote.Head(second.ref(t, "keep:v1"), remote.WithContext(t.Context()))
	if err != nil {
		t.Fatalf("head after restart: %v", err)
	}
	if desc.Digest != want {
		t.Errorf("digest after restart %s, want %s", desc.Digest, want)
	}
}

func TestClose(t *testing.T) {
	tr := newTestRegistry(t, "", nil)
	if err := tr.reg.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case <-tr.reg.purgeDone:
	case <-time.After(5 * time.Second):
		t.Fatal("purger still running after Close")
	}
	if err := tr.reg.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	resp := tr.do(t, http.MethodGet, "/v2/")
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("after Close: status %d, want 503", resp.StatusCode)
	}
}

func TestNewRegistryErrors(t *testing.T) {
	canceled, cancel := context.WithCancel(t.Context())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		cfg  RegistryConfig
	}{
		{"no root", t.Context(), RegistryConfig{}},
		{"canceled", canceled, RegistryConfig{RootDir: t.TempDir()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg, err := NewRegistry(tt.ctx, tt.cfg)
			if err == nil {
				_ = reg.Close()
				t.Fatal("NewRegistry succeeded")
			}
		})
	}
}

func TestLogsGoToOwnLogger(t *testing.T) {
	a := newTestRegistry(t, "", nil)
	b := newTestRegistry(t, "", nil)
	a.do(t, http.MethodGet, "/v2/only-a/manifests/latest")
	b.do(t, http.MethodGet, "/v2/")

	if !a.logs.has(slog.LevelDebug, "response completed with error") {
		t.Errorf("registry a did not log its 404 at debug: %v", a.logs.messages())
	}
	if b.logs.has(slog.LevelDebug, "response completed with error") {
		t.Errorf("registry b got registry a's log entry: %v", b.logs.messages())
	}
	for _, tr := range []*testRegistry{a, b} {
		if tr.logs.maxLevel() > slog.LevelDebug {
			t.Errorf("entries above debug for plain traffic: %v", tr.logs.messages())
		}
	}
}

// recordHandler is a slog.Handler that keeps records.
type recordHandler struct {
	mu      sync.Mutex
	records []slog.Record
}

func (h *recordHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, r.Clone())
	return nil
}
func (h *recordHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordHandler) WithGroup(string) slog.Handler      { return h }

func (h *recordHandler) has(level slog.Level, msg string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.ContainsFunc(h.records, func(r slog.Record) bool { return r.Level == level && r.Message == msg })
}

func (h *recordHandler) maxLevel() slog.Level {
	h.mu.Lock()
	defer h.mu.Unlock()
	max := slog.LevelDebug - 4
	for _, r := range h.records {
		if r.Level > max {
			max = r.Level
		}
	}
	return max
}

func (h *recordHandler) messages() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, r := range h.records {
		out = append(out, r.Level.String()+" "+r.Message)
	}
	return out
}
