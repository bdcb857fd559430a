package ecr

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/distribution/distribution/v3/registry/api/errcode"
	v2 "github.com/distribution/distribution/v3/registry/api/v2"
	"github.com/distribution/reference"
	"github.com/gorilla/mux"
)

// Errors an Authorize func returns to choose the registry's answer. Wrap
// them to say more: the wrapped error's text is the message on the wire.
var (
	// ErrUnauthorized asks for credentials: 401 UNAUTHORIZED with a Basic
	// challenge. Unclassified errors are answered the same way.
	ErrUnauthorized = errors.New("authentication required")
	// ErrDenied refuses authenticated callers: 403 DENIED.
	ErrDenied = errors.New("requested access to the resource is denied")
	// ErrNameUnknown reports a repository that does not exist (ECR refuses
	// pushes to repositories not created through its API): 404 NAME_UNKNOWN.
	ErrNameUnknown = errors.New("repository name not known to registry")
)

// errClosed answers requests that arrive after Close.
var errClosed = errcode.ErrorCodeUnavailable.WithMessage("registry is shutting down")

// ecrService is the service parameter of ECR's Basic challenge.
const ecrService = "ecr.amazonaws.com"

// authorized puts req to r.resolve. It returns the request to serve (a
// refused cross-repository mount is turned into a plain upload, an allowed
// one names its source's stored name), the stored name of a.Repo, and false
// if the request was refused and answered.
func (r *Registry) authorized(w http.ResponseWriter, req *http.Request, a Access) (*http.Request, string, bool) {
	stored, err := r.resolve(req, a)
	if err != nil {
		r.log.Debug("request refused", "method", req.Method, "path", req.URL.Path,
			"repo", a.Repo, "action", a.Action, "err", err)
		writeRegistryError(w, req, err)
		return req, "", false
	}
	if a.Route != v2.RouteNameBlobUpload || req.Method != http.MethodPost {
		return req, stored, true
	}
	q := req.URL.Query()
	from := q.Get("from")
	if from == "" || q.Get("mount") == "" {
		return req, stored, true
	}
	storedFrom, err := "", nil
	if _, err = reference.WithName(from); err == nil {
		storedFrom, err = r.resolve(req, Access{Repo: from, Action: ActionPull})
	}
	if err != nil {
		// The spec lets a registry decline a mount with a plain upload
		// (202); the client then pushes the blob itself.
		r.log.Debug("cross-repository mount refused", "repo", a.Repo, "from", from, "err", err)
		q.Del("from")
		q.Del("mount")
	} else {
		q.Set("from", storedFrom)
	}
	req = req.Clone(req.Context())
	req.URL.RawQuery = q.Encode()
	req.RequestURI = req.URL.RequestURI()
	return req, stored, true
}

// accessOf names the repository, Distribution route and reference of a
// /v2/ request, and its action; Repo and Route are "" for paths outside
// the API.
func accessOf(req *http.Request) Access {
	a := Access{Action: actionOf(req.Method)}
	var m mux.RouteMatch
	if !v2.Router().Match(req, &m) || m.Route == nil {
		return a
	}
	a.Repo, a.Route, a.Reference = m.Vars["name"], m.Route.GetName(), m.Vars["reference"]
	return a
}

// actionOf maps an HTTP method to an Authorize action: reads pull,
// everything else pushes.
func actionOf(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return ActionPull
	default:
		return ActionPush
	}
}

// writeRegistryError answers a refused request in the registry's error
// shape: {"errors":[{"code":…,"message":…}]} with the code's status, and a
// Basic challenge on 401.
func writeRegistryError(w http.ResponseWriter, req *http.Request, err error) {
	e := toErrcode(err)
	h := w.Header()
	h.Set("Docker-Distribution-API-Version", "registry/2.0")
	if e.Code == errcode.ErrorCodeUnauthorized {
		h.Set("WWW-Authenticate", fmt.Sprintf("Basic realm=%q,service=%q", realmOf(req), ecrService))
	}
	// ServeJSON writes the body after the status; for HEAD, net/http drops it.
	_ = errcode.ServeJSON(w, e)
}

// toErrcode classifies an Authorize error.
func toErrcode(err error) errcode.Error {
	var ce errcode.Error
	switch {
	case errors.As(err, &ce):
		return ce
	case errors.Is(err, ErrDenied):
		return errcode.ErrorCodeDenied.WithMessage(err.Error())
	case errors.Is(err, ErrNameUnknown):
		return errcode.ErrorCodeNameUnknown.WithMessage(err.Error())
	default:
		return errcode.ErrorCodeUnauthorized.WithMessage(err.Error())
	}
}

// realmOf is the Basic realm, as ECR words it: the registry's own URL.
func realmOf(req *http.Request) string {
	scheme := "http"
	if req.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + req.Host + "/"
}

// instanceIDKey is the context key Distribution reads ("instance.id", a
// plain string) to tag its log entries; the logrus bridge routes on it.
const instanceIDKey = "instance.id"

func withInstanceID(ctx context.Context, id string) context.Context {
	//lint:ignore SA1029 Distribution looks this key up as a plain string.
	return context.WithValue(ctx, instanceIDKey, id)
}
