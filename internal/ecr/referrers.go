package ecr

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"

	"github.com/distribution/distribution/v3"
	"github.com/distribution/distribution/v3/registry/api/errcode"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
)

// The OCI distribution-spec v1.1 referrers API, which Distribution v3 lacks
// and ECR has: GET /v2/<name>/referrers/<digest> answers with an image index
// of the manifests whose subject is that digest, and a manifest PUT whose
// manifest has a subject answers with the OCI-Subject header. Hand-written
// because no maintained Go registry library embeds it; the index is computed
// from the repository's manifests on each request, so it can never disagree
// with what is stored (a later index in etcd can make it cheaper).

const (
	ociIndexMediaType = "application/vnd.oci.image.index.v1+json"
	routeReferrers    = "referrers"
)

var referrersPath = regexp.MustCompile(`^/v2/(.+)/referrers/([^/]+)$`)

// referrersAccess recognises a referrers request.
func referrersAccess(req *http.Request) (Access, string, bool) {
	m := referrersPath.FindStringSubmatch(req.URL.Path)
	if m == nil || (req.Method != http.MethodGet && req.Method != http.MethodHead) {
		return Access{}, "", false
	}
	return Access{Repo: m[1], Action: ActionPull, Route: routeReferrers}, m[2], true
}

// descriptor is an entry of the referrers index.
type descriptor struct {
	MediaType    string            `json:"mediaType"`
	Digest       digest.Digest     `json:"digest"`
	Size         int64             `json:"size"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
}

// manifestFields are the parts of a manifest the referrers API reads.
type manifestFields struct {
	SchemaVersion int    `json:"schemaVersion"`
	MediaType     string `json:"mediaType"`
	ArtifactType  string `json:"artifactType"`
	Config        struct {
		MediaType string `json:"mediaType"`
	} `json:"config"`
	Subject *struct {
		Digest digest.Digest `json:"digest"`
	} `json:"subject"`
	Annotations map[string]string `json:"annotations"`
}

// serveReferrers answers GET /v2/<name>/referrers/<digest> for the
// repository stored as stored.
func (r *Registry) serveReferrers(w http.ResponseWriter, req *http.Request, stored, ref string) {
	subject, err := digest.Parse(ref)
	if err != nil {
		writeRegistryError(w, req, errcode.ErrorCodeDigestInvalid.WithDetail(err.Error()))
		return
	}
	list, err := r.referrers(req.Context(), stored, subject, req.URL.Query().Get("artifactType"))
	if err != nil {
		writeRegistryError(w, req, err)
		return
	}
	body, err := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": ociIndexMediaType, "manifests": list})
	if err != nil {
		writeRegistryError(w, req, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", ociIndexMediaType)
	h.Set("Docker-Distribution-API-Version", "registry/2.0")
	if req.URL.Query().Get("artifactType") != "" {
		h.Set("OCI-Filters-Applied", "artifactType")
	}
	w.WriteHeader(http.StatusOK)
	if req.Method == http.MethodGet {
		_, _ = w.Write(body)
	}
}

// referrers lists the manifests of a repository whose subject is subject,
// optionally only those of one artifact type.
func (r *Registry) referrers(ctx context.Context, stored string, subject digest.Digest, artifactType string) ([]descriptor, error) {
	named, err := reference.WithName(stored)
	if err != nil {
		return nil, errcode.ErrorCodeUnknown.WithDetail(err.Error())
	}
	repo, err := r.ns.Repository(ctx, named)
	if err != nil {
		return nil, err
	}
	ms, err := repo.Manifests(ctx)
	if err != nil {
		return nil, err
	}
	enum, ok := ms.(distribution.ManifestEnumerator)
	if !ok {
		return nil, errcode.ErrorCodeUnsupported.WithDetail("manifest enumeration")
	}
	list := []descriptor{}
	err = enum.Enumerate(ctx, func(d digest.Digest) error {
		m, err := ms.Get(ctx, d)
		if err != nil {
			return nil // deleted meanwhile
		}
		mediaType, payload, err := m.Payload()
		if err != nil {
			return nil
		}
		var f manifestFields
		if json.Unmarshal(payload, &f) != nil || f.Subject == nil || f.Subject.Digest != subject {
			return nil
		}
		at := f.ArtifactType
		if at == "" {
			at = f.Config.MediaType
		}
		if artifactType != "" && at != artifactType {
			return nil
		}
		list = append(list, descriptor{MediaType: mediaType, Digest: d, Size: int64(len(payload)), ArtifactType: at, Annotations: f.Annotations})
		return nil
	})
	var pathErr distribution.ErrRepositoryUnknown
	if err != nil && !errors.As(err, &pathErr) && !isPathNotFound(err) {
		return nil, err
	}
	return list, nil
}

// subjectOf reads the subject of a manifest being PUT, leaving the body for
// the registry to read again. A manifest whose schemaVersion is not 2 is
// refused with MANIFEST_INVALID here: Distribution answers it with a 500.
func subjectOf(req *http.Request) (digest.Digest, error) {
	body, err := io.ReadAll(io.LimitReader(req.Body, maxManifestBytes+1))
	if err != nil {
		return "", errcode.ErrorCodeUnknown.WithDetail(err.Error())
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	var f manifestFields
	if json.Unmarshal(body, &f) != nil {
		return "", nil // Distribution explains what is wrong with it
	}
	if f.SchemaVersion != 2 {
		return "", errcode.ErrorCodeManifestInvalid.WithDetail(fmt.Sprintf("unsupported schemaVersion %d: only schema 2 (OCI and Docker v2.2) manifests are accepted", f.SchemaVersion))
	}
	if f.Subject == nil {
		return "", nil
	}
	return f.Subject.Digest, nil
}

// subjectWriter adds OCI-Subject to a successful manifest PUT's answer.
type subjectWriter struct {
	http.ResponseWriter
	subject digest.Digest
}

func (w subjectWriter) WriteHeader(status int) {
	if status >= 200 && status < 300 {
		w.Header().Set("OCI-Subject", w.subject.String())
	}
	w.ResponseWriter.WriteHeader(status)
}
