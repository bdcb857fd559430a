package ecr

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"

	"github.com/distribution/distribution/v3/registry/api/errcode"
	v2 "github.com/distribution/distribution/v3/registry/api/v2"
	"github.com/opencontainers/go-digest"

	"github.com/berthdev/berth/internal/store"
)

// maxManifestBytes bounds the manifest body read to check an immutable tag
// (Distribution's own limit for manifests is 4 MiB).
const maxManifestBytes = 4 << 20

// caller is who a registry request comes from.
type caller struct {
	scope
	anonymous bool
}

// callerOf authenticates a registry request: HTTP Basic AWS:<password> with
// a password from GetAuthorizationToken, or, when the server opted in,
// nobody (the anonymous account).
func (s *Service) callerOf(r *http.Request) (caller, error) {
	user, pass, ok := r.BasicAuth()
	if !ok {
		if s.cfg.Anonymous && r.Header.Get("Authorization") == "" {
			return caller{scope: scope{account: s.cfg.AnonymousAccount, region: s.cfg.AnonymousRegion}, anonymous: true}, nil
		}
		return caller{}, errcode.ErrorCodeUnauthorized.WithMessage("Not Authorized")
	}
	if user != "AWS" {
		return caller{}, errcode.ErrorCodeUnauthorized.WithMessage(errTokenInvalid.Error())
	}
	sc, err := s.verifyToken(r.Context(), pass)
	switch {
	case errors.Is(err, errTokenInvalid), errors.Is(err, errTokenExpired):
		return caller{}, errcode.ErrorCodeUnauthorized.WithMessage(err.Error())
	case err != nil:
		return caller{}, errcode.ErrorCodeUnavailable.WithMessage("authorization is unavailable: " + err.Error())
	}
	return caller{scope: sc}, nil
}

// resolve is the registry's RegistryConfig.Resolve: it authenticates the
// caller, requires the repository to exist in the caller's account (ECR does
// not create repositories on push; anonymous dev pushes do, see Config),
// enforces immutable tags, and names the repository in the caller's
// namespace.
func (s *Service) resolve(r *http.Request, a Access) (string, error) {
	c, err := s.callerOf(r)
	if err != nil {
		return "", err
	}
	if a.Repo == "" {
		return "", nil
	}
	ctx := r.Context()
	// ACCOUNT/NAME names another account's repository (policy.go).
	if owner, name, ok := splitRegistry(c.scope, a.Repo); ok {
		if err := s.authorizeRegistry(ctx, c, owner, name, r.Method, a); err != nil {
			return "", err
		}
		c, a.Repo = caller{scope: owner}, name
	}
	rec, err := s.getRepo(ctx, c.scope, a.Repo)
	if errors.Is(err, store.ErrNotFound) && c.anonymous && a.Action == ActionPush && a.Route != "" {
		if verr := validateRepoName(c.scope, a.Repo); verr != nil {
			return "", errcode.ErrorCodeNameInvalid.WithMessage(verr.Error())
		}
		rec, err = s.createRepo(ctx, c.scope, newRepoRecord(a.Repo, mutabilityMutable, s.cfg.Now()))
		if errors.Is(err, store.ErrExists) {
			rec, err = s.getRepo(ctx, c.scope, a.Repo)
		}
		if err == nil {
			s.log.Info("repository created by an anonymous push (dev)", "repository", a.Repo, "account", c.account)
		}
	}
	if errors.Is(err, store.ErrNotFound) {
		return "", errcode.ErrorCodeNameUnknown.WithMessage(fmt.Sprintf(
			"The repository with name '%s' does not exist in the registry with id '%s'", a.Repo, c.account))
	}
	if err != nil {
		return "", errcode.ErrorCodeUnavailable.WithMessage("repository lookup failed: " + err.Error())
	}
	stored := c.storedName(a.Repo)
	if a.Route == v2.RouteNameManifest && r.Method == http.MethodPut && rec.ImageTagMutability == mutabilityImmutable {
		if err := s.checkImmutableTag(ctx, r, stored, a); err != nil {
			return "", err
		}
	}
	return stored, nil
}

// checkImmutableTag refuses a manifest PUT that would move an existing tag
// of an immutable repository to another manifest. Pushing the same manifest
// again is allowed (the tag does not change). The check and the write are
// not one transaction: two concurrent pushes of different manifests to a
// new tag can both succeed, the later one winning.
func (s *Service) checkImmutableTag(ctx context.Context, r *http.Request, stored string, a Access) error {
	if _, err := digest.Parse(a.Reference); err == nil {
		return nil // by digest: no tag moves
	}
	current, err := s.reg.tagDigest(ctx, stored, a.Reference)
	if errors.Is(err, errNoSuchTag) {
		return nil
	}
	if err != nil {
		return errcode.ErrorCodeUnavailable.WithMessage("tag lookup failed: " + err.Error())
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxManifestBytes+1))
	if err != nil {
		return errcode.ErrorCodeManifestInvalid.WithMessage("reading the manifest: " + err.Error())
	}
	_ = r.Body.Close()
	if len(body) > maxManifestBytes {
		return errcode.ErrorCodeManifestInvalid.WithMessage("manifest too large")
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	if digest.FromBytes(body) == current {
		return nil
	}
	return errcode.ErrorCodeTagInvalid.WithMessage(immutableTagMessage(a.Reference, a.Repo))
}

// serveCatalog answers /v2/_catalog with the caller's repositories, paged
// by n and last as the distribution spec says.
func (s *Service) serveCatalog(w http.ResponseWriter, r *http.Request) {
	select {
	case <-s.reg.closed:
		writeRegistryError(w, r, errClosed)
		return
	default:
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeRegistryError(w, r, errcode.ErrorCodeUnsupported.WithMessage("The operation is unsupported."))
		return
	}
	c, err := s.callerOf(r)
	if err != nil {
		writeRegistryError(w, r, err)
		return
	}
	recs, err := s.listRepos(r.Context(), c.scope)
	if err != nil {
		s.log.Warn("catalog", "account", c.account, "err", err)
		writeRegistryError(w, r, errcode.ErrorCodeUnknown.WithMessage("listing repositories failed"))
		return
	}
	names := make([]string, 0, len(recs))
	for _, rec := range recs {
		names = append(names, rec.Name)
	}
	sort.Strings(names)
	q := r.URL.Query()
	limit := catalogMaxEntries
	if n := q.Get("n"); n != "" {
		v, err := strconv.Atoi(n)
		if err != nil || v < 0 {
			writeRegistryError(w, r, errcode.ErrorCodePaginationNumberInvalid.WithDetail(map[string]string{"n": n}))
			return
		}
		limit = min(v, catalogMaxEntries)
	}
	if last := q.Get("last"); last != "" {
		names = names[sort.SearchStrings(names, last+"\x00"):]
	}
	h := w.Header()
	h.Set("Docker-Distribution-API-Version", "registry/2.0")
	h.Set("Content-Type", "application/json")
	if len(names) > limit {
		names = names[:limit]
		if limit > 0 {
			next := url.Values{"n": {strconv.Itoa(limit)}, "last": {names[limit-1]}}
			h.Set("Link", fmt.Sprintf(`</v2/_catalog?%s>; rel="next"`, next.Encode()))
		}
	}
	body, _ := json.Marshal(map[string][]string{"repositories": names})
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}
