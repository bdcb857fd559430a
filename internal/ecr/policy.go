//lint:file-ignore ST1005 policy errors are shown to users in AWS's wording, which names fields first.

package ecr

// Repository policies (SetRepositoryPolicy, GetRepositoryPolicy,
// DeleteRepositoryPolicy) and cross-account access to repositories.
//
// A repository policy is an IAM resource policy: Statement[] with Effect
// Allow or Deny, Principal ("*", {"AWS": "*" | "ACCOUNT" |
// "arn:aws:iam::ACCOUNT:root" | [...]}) and Action ("ecr:BatchGetImage",
// "ecr:*", wildcards). It decides what other accounts may do with the
// repository: a Deny that matches wins, then an Allow that matches, and
// nothing else is allowed. The owning account is not subject to its own
// repository policy (berth has no IAM users to restrict), so a policy can
// never lock the owner out.
//
// Naming another account's repository. Clients name repositories without
// their account (the registry puts every request in the caller's own
// namespace), so another account's repository is named with that account's
// 12-digit id as the first path component: HOST/222222222222/web:v1 is
// account 222222222222's repository "web" in the caller's region. Such a
// request is served only when the owner's repository policy allows the
// caller's account the ECR action the request stands for (see
// registryAction); a repository that does not exist is refused the same
// way, so nobody learns what another account holds. Because of this form,
// repositories whose first path component is 12 digits cannot be created.
// The caller's own account id as prefix names its own repository.
//
// Conditions, NotAction, NotPrincipal and NotResource are refused as
// InvalidParameterException rather than ignored: ignoring them would grant
// or deny more than the policy says. Principals other than accounts (IAM
// users and roles, services) are accepted but match no caller, since
// berth's callers are whole accounts.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/distribution/distribution/v3/registry/api/errcode"
	v2 "github.com/distribution/distribution/v3/registry/api/v2"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/berthdev/berth/internal/protocol"
	"github.com/berthdev/berth/internal/store"
)

// maxPolicyBytes is ECR's limit on policyText.
const maxPolicyBytes = 10240

var accountRE = regexp.MustCompile(`^[0-9]{12}$`)

// policyRecord is a policy document bound to one repository generation:
// it applies only while the repository created at RepoCreatedAt exists, so
// a repository deleted and created again starts without the old policy.
type policyRecord struct {
	Text          string    `json:"text"`
	RepoCreatedAt time.Time `json:"repoCreatedAt"`
}

func repoPolicyKey(sc scope, name string) string {
	return store.ScopedPrefix(sc.account, sc.region, "ecr", "repo-policies") + name
}

// statement is one parsed policy statement.
type statement struct {
	allow      bool
	principals []string // "*" or 12-digit accounts; "" for principals that match no caller
	actions    []string // lower-cased patterns
}

// rawStatement is a statement as JSON carries it.
type rawStatement struct {
	Sid          string          `json:"Sid"`
	Effect       string          `json:"Effect"`
	Principal    json.RawMessage `json:"Principal"`
	Action       json.RawMessage `json:"Action"`
	Resource     json.RawMessage `json:"Resource"`
	Condition    json.RawMessage `json:"Condition"`
	NotAction    json.RawMessage `json:"NotAction"`
	NotPrincipal json.RawMessage `json:"NotPrincipal"`
	NotResource  json.RawMessage `json:"NotResource"`
}

func invalidPolicy(format string, args ...any) error {
	return invalidParam("Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Invalid repository policy provided: %s'", fmt.Sprintf(format, args...))
}

// parseRepoPolicy validates a repository policy document.
func parseRepoPolicy(text string) ([]statement, error) {
	if len(text) == 0 || len(text) > maxPolicyBytes {
		return nil, constraint("policyText", fmt.Sprintf("Member must have length between 0 and %d", maxPolicyBytes))
	}
	var doc struct {
		Version   string          `json:"Version"`
		ID        string          `json:"Id"`
		Statement json.RawMessage `json:"Statement"`
	}
	dec := json.NewDecoder(strings.NewReader(text))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return nil, invalidPolicy("%v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, invalidPolicy("unexpected data after the policy")
	}
	if doc.Version != "" && doc.Version != "2012-10-17" && doc.Version != "2008-10-17" {
		return nil, invalidPolicy("unsupported Version %q", doc.Version)
	}
	var raws []rawStatement
	if err := oneOrMany(doc.Statement, &raws); err != nil || len(raws) == 0 {
		return nil, invalidPolicy("Statement must be a statement or a non-empty list of statements")
	}
	out := make([]statement, 0, len(raws))
	for i, r := range raws {
		st, err := parseStatement(r)
		if err != nil {
			return nil, invalidPolicy("Statement[%d]: %v", i, err)
		}
		out = append(out, st)
	}
	return out, nil
}

func parseStatement(r rawStatement) (statement, error) {
	var st statement
	for name, v := range map[string]json.RawMessage{"Condition": r.Condition, "NotAction": r.NotAction,
		"NotPrincipal": r.NotPrincipal, "NotResource": r.NotResource} {
		if v != nil {
			return st, fmt.Errorf("%s is not supported", name)
		}
	}
	switch r.Effect {
	case "Allow":
		st.allow = true
	case "Deny":
	default:
		return st, fmt.Errorf("Effect must be Allow or Deny")
	}
	if r.Principal == nil {
		return st, fmt.Errorf("Principal is required")
	}
	var star string
	if json.Unmarshal(r.Principal, &star) == nil {
		if star != "*" {
			return st, fmt.Errorf("Principal must be \"*\" or an object")
		}
		st.principals = []string{"*"}
	} else {
		var byType map[string]json.RawMessage
		if err := json.Unmarshal(r.Principal, &byType); err != nil || len(byType) == 0 {
			return st, fmt.Errorf("Principal must be \"*\" or an object")
		}
		for typ, v := range byType {
			var ids []string
			if err := oneOrMany(v, &ids); err != nil || len(ids) == 0 {
				return st, fmt.Errorf("Principal %s must be a string or a list of strings", typ)
			}
			for _, id := range ids {
				p, err := principalAccount(typ, id)
				if err != nil {
					return st, err
				}
				st.principals = append(st.principals, p)
			}
		}
	}
	var actions []string
	if err := oneOrMany(r.Action, &actions); err != nil || len(actions) == 0 {
		return st, fmt.Errorf("Action must be a string or a non-empty list of strings")
	}
	for _, a := range actions {
		if a != "*" && !strings.HasPrefix(strings.ToLower(a), "ecr:") {
			return st, fmt.Errorf("Action %q is not an ecr action", a)
		}
		st.actions = append(st.actions, strings.ToLower(a))
	}
	return st, nil
}

// principalAccount maps a principal to the account it matches: "*", an
// account id, or "" (matches no caller).
func principalAccount(typ, id string) (string, error) {
	if typ != "AWS" {
		if typ == "Service" || typ == "Federated" || typ == "CanonicalUser" {
			return "", nil
		}
		return "", fmt.Errorf("unknown principal type %q", typ)
	}
	if id == "*" || accountRE.MatchString(id) {
		return id, nil
	}
	// arn:aws:iam::ACCOUNT:root, or a user or role of ACCOUNT.
	parts := strings.SplitN(id, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "iam" || !accountRE.MatchString(parts[4]) {
		return "", fmt.Errorf("invalid principal %q", id)
	}
	if parts[5] == "root" {
		return parts[4], nil
	}
	return "", nil
}

// oneOrMany decodes a JSON value that is one T or a list of them.
func oneOrMany[T any](raw json.RawMessage, out *[]T) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return fmt.Errorf("missing")
	}
	if raw[0] == '[' {
		return json.Unmarshal(raw, out)
	}
	var one T
	if err := json.Unmarshal(raw, &one); err != nil {
		return err
	}
	*out = []T{one}
	return nil
}

// allows evaluates a policy for account doing action ("ecr:BatchGetImage").
func allows(stmts []statement, account, action string) bool {
	action = strings.ToLower(action)
	allowed := false
	for _, st := range stmts {
		if !matchesPrincipal(st.principals, account) || !matchesAction(st.actions, action) {
			continue
		}
		if !st.allow {
			return false
		}
		allowed = true
	}
	return allowed
}

func matchesPrincipal(ps []string, account string) bool {
	for _, p := range ps {
		if p == "*" || (p != "" && p == account) {
			return true
		}
	}
	return false
}

func matchesAction(patterns []string, action string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, action); ok {
			return true
		}
	}
	return false
}

// repoPolicy reads the policy of a repository generation; nil without one.
func (s *Service) repoPolicy(ctx context.Context, sc scope, rec *repoRecord) (*policyRecord, error) {
	return s.readPolicy(ctx, repoPolicyKey(sc, rec.Name), rec)
}

// permitted reports whether account may do action on owner's repository
// name: always for the owner, otherwise as the repository's policy says.
// A repository that does not exist permits nothing.
func (s *Service) permitted(ctx context.Context, owner scope, name, account, action string) (bool, error) {
	if account == owner.account {
		return true, nil
	}
	rec, err := s.getRepo(ctx, owner, name)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	p, err := s.repoPolicy(ctx, owner, rec)
	if err != nil || p == nil {
		return false, err
	}
	stmts, err := parseRepoPolicy(p.Text)
	if err != nil {
		return false, nil // stored policies were validated; a bad one grants nothing
	}
	return allows(stmts, account, action), nil
}

// splitRegistry recognises the cross-account form ACCOUNT/NAME: the
// repository NAME of ACCOUNT in the caller's region.
func splitRegistry(caller scope, repo string) (scope, string, bool) {
	acct, name, ok := strings.Cut(repo, "/")
	if !ok || !accountRE.MatchString(acct) {
		return scope{}, "", false
	}
	return scope{account: acct, region: caller.region}, name, true
}

// validateNewRepoName refuses names in the cross-account form.
func validateNewRepoName(name string) error {
	if acct, _, ok := strings.Cut(name, "/"); ok && accountRE.MatchString(acct) {
		return invalidParam("Invalid parameter at 'repositoryName' failed to satisfy constraint: 'a repository name cannot start with a 12-digit path component (that form names another account's repository)'")
	}
	return nil
}

// registryAction is the ECR action a registry request stands for.
func registryAction(method string, a Access) string {
	switch a.Route {
	case "": // the source of a cross-repository mount
		return "ecr:GetDownloadUrlForLayer"
	case v2.RouteNameManifest:
		switch method {
		case http.MethodGet, http.MethodHead:
			return "ecr:BatchGetImage"
		case http.MethodDelete:
			return "ecr:BatchDeleteImage"
		}
		return "ecr:PutImage"
	case v2.RouteNameBlob:
		switch method {
		case http.MethodGet:
			return "ecr:GetDownloadUrlForLayer"
		case http.MethodHead:
			return "ecr:BatchCheckLayerAvailability"
		}
		return "ecr:BatchDeleteImage"
	case v2.RouteNameBlobUpload:
		return "ecr:InitiateLayerUpload"
	case v2.RouteNameBlobUploadChunk:
		switch method {
		case http.MethodPut:
			return "ecr:CompleteLayerUpload"
		case http.MethodPatch:
			return "ecr:UploadLayerPart"
		}
		return "ecr:InitiateLayerUpload"
	case v2.RouteNameTags:
		return "ecr:ListImages"
	}
	if a.Action == ActionPull {
		return "ecr:BatchGetImage"
	}
	return "ecr:PutImage"
}

// authorizeRegistry decides a registry request for another account's
// repository (see the file comment). A blob HEAD is also allowed to whoever
// may download the layer.
func (s *Service) authorizeRegistry(ctx context.Context, c caller, owner scope, name, method string, a Access) error {
	if owner.account == c.account {
		return nil
	}
	action := registryAction(method, a)
	ok, err := s.permitted(ctx, owner, name, c.account, action)
	if err == nil && !ok && action == "ecr:BatchCheckLayerAvailability" {
		ok, err = s.permitted(ctx, owner, name, c.account, "ecr:GetDownloadUrlForLayer")
	}
	if err != nil {
		return errcode.ErrorCodeUnavailable.WithMessage("repository policy lookup failed: " + err.Error())
	}
	if !ok {
		return errcode.ErrorCodeDenied.WithMessage(notAuthorizedMessage(c.account, action, owner.arn(name)))
	}
	return nil
}

func notAuthorizedMessage(account, action, arn string) string {
	return fmt.Sprintf("User: arn:aws:iam::%s:root is not authorized to perform: %s on resource: %s because no resource-based policy allows the %s action",
		account, action, arn, action)
}

// policyInput is the input of the repository policy operations.
type policyInput struct {
	RegistryID     string `json:"registryId"`
	RepositoryName string `json:"repositoryName"`
	PolicyText     string `json:"policyText"`
	Force          bool   `json:"force"`
}

type policyOutput struct {
	RegistryID     string `json:"registryId"`
	RepositoryName string `json:"repositoryName"`
	PolicyText     string `json:"policyText,omitempty"`
}

// openPolicy decodes a repository policy call and reads its repository.
func (s *Service) openPolicy(ctx context.Context, body []byte) (scope, *policyInput, *repoRecord, error) {
	var in policyInput
	sc, rec, err := openOwnRepo(ctx, s, body, &in, func(in *policyInput) (string, string) { return in.RegistryID, in.RepositoryName })
	return sc, &in, rec, err
}

// openOwnRepo decodes a call about one repository of the caller's own
// account into in, and reads that repository; ids names the registryId and
// repositoryName of the input.
func openOwnRepo[T any](ctx context.Context, s *Service, body []byte, in *T, ids func(*T) (string, string)) (scope, *repoRecord, error) {
	sc, err := scopeOf(ctx)
	if err != nil {
		return sc, nil, err
	}
	if err := protocol.Decode(body, in); err != nil {
		return sc, nil, err
	}
	registryID, name := ids(in)
	if err := checkRegistryID(sc, registryID); err != nil {
		return sc, nil, err
	}
	rec, err := s.requireRepo(ctx, sc, name)
	return sc, rec, err
}

func (s *Service) setRepositoryPolicy(ctx context.Context, body []byte) (any, error) {
	sc, in, rec, err := s.openPolicy(ctx, body)
	if err != nil {
		return nil, err
	}
	if _, err := parseRepoPolicy(in.PolicyText); err != nil {
		return nil, err
	}
	if err := s.st.Put(ctx, repoPolicyKey(sc, rec.Name), policyRecord{Text: in.PolicyText, RepoCreatedAt: rec.CreatedAt}); err != nil {
		return nil, err
	}
	return policyOutput{RegistryID: sc.account, RepositoryName: rec.Name, PolicyText: in.PolicyText}, nil
}

func (s *Service) getRepositoryPolicy(ctx context.Context, body []byte) (any, error) {
	sc, _, rec, err := s.openPolicy(ctx, body)
	if err != nil {
		return nil, err
	}
	p, err := s.repoPolicy(ctx, sc, rec)
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, repoPolicyNotFound(sc, rec.Name)
	}
	return policyOutput{RegistryID: sc.account, RepositoryName: rec.Name, PolicyText: p.Text}, nil
}

func (s *Service) deleteRepositoryPolicy(ctx context.Context, body []byte) (any, error) {
	sc, _, rec, err := s.openPolicy(ctx, body)
	if err != nil {
		return nil, err
	}
	p, err := s.repoPolicy(ctx, sc, rec)
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, repoPolicyNotFound(sc, rec.Name)
	}
	if err := s.st.Delete(ctx, repoPolicyKey(sc, rec.Name)); err != nil {
		return nil, err
	}
	return policyOutput{RegistryID: sc.account, RepositoryName: rec.Name, PolicyText: p.Text}, nil
}

// apiScope is the registry an ECR API call on repository name works in:
// the caller's own (registryId empty or the caller's account), or another
// account's in the caller's region when that account's repository policy
// allows the caller action. A repository that does not exist is refused
// like one whose policy does not allow it.
func (s *Service) apiScope(ctx context.Context, sc scope, registryID, name, action string) (scope, error) {
	if registryID == "" || registryID == sc.account {
		return sc, nil
	}
	if !accountRE.MatchString(registryID) {
		return sc, constraint("registryId", "Member must satisfy regular expression pattern: [0-9]{12}")
	}
	owner := scope{account: registryID, region: sc.region}
	ok, err := s.permitted(ctx, owner, name, sc.account, action)
	if err != nil {
		return sc, err
	}
	if !ok {
		return sc, accessDenied(sc.account, action, owner.arn(name))
	}
	return owner, nil
}

// deletePolicies removes the policies of a deleted repository generation:
// its repository policy, lifecycle policy and preview. Each goes only if it
// still belongs to that generation (a new repository of the same name may
// have its own by now). Failures are logged: a policy left behind is bound
// to the old generation and never applied.
func (s *Service) deletePolicies(ctx context.Context, sc scope, rec *repoRecord) {
	for _, key := range []string{repoPolicyKey(sc, rec.Name), lifecycleKey(sc, rec.Name), previewKey(sc, rec.Name)} {
		if err := s.deleteStalePolicy(ctx, key, rec.CreatedAt); err != nil {
			s.log.Warn("removing the policy of a deleted repository", "key", key, "err", err)
		}
	}
}

// deleteStalePolicy deletes the policyRecord at key if it is bound to the
// repository generation created at createdAt, unless it changed meanwhile.
func (s *Service) deleteStalePolicy(ctx context.Context, key string, createdAt time.Time) error {
	resp, err := s.st.C.Get(ctx, key)
	if err != nil || len(resp.Kvs) == 0 {
		return err
	}
	kv := resp.Kvs[0]
	var p policyRecord
	if json.Unmarshal(kv.Value, &p) == nil && !p.RepoCreatedAt.Equal(createdAt) {
		return nil
	}
	_, err = s.st.C.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", kv.ModRevision)).
		Then(clientv3.OpDelete(key)).Commit()
	return err
}
