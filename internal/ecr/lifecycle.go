package ecr

// Lifecycle policies: PutLifecyclePolicy, GetLifecyclePolicy,
// DeleteLifecyclePolicy, StartLifecyclePolicyPreview and
// GetLifecyclePolicyPreview, and the reconciler that applies them.
//
// The rule language is ECR's: {"rules": [{"rulePriority", "description",
// "selection": {"tagStatus": tagged|untagged|any, "tagPrefixList",
// "tagPatternList", "countType": imageCountMoreThan|sinceImagePushed,
// "countUnit": days, "countNumber"}, "action": {"type": expire}}]}.
// Rules are evaluated as ECR does: lowest rulePriority first; an image is
// claimed by the first rule whose tag selection it matches (whether that
// rule expires it or keeps it) and no later rule sees it; a rule with
// tagStatus any must come last. Untagged manifests younger than
// untaggedGrace are not expired yet. Manifests that an image index in the
// repository refers to are never expired on their own (that would break
// the index); they become candidates once their index is gone.
//
// The reconciler (RunLifecycle, every Config.LifecycleInterval) reads every
// policy, evaluates it against the repository's images and deletes the
// expired manifests and their tags through Distribution's storage API.
// Blobs stay until garbage collection. It is idempotent and safe to run on
// several server replicas at once: deleting what another replica already
// deleted is not an error, and an image whose tags changed since the
// evaluation is left for the next run.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/distribution/distribution/v3"
	"github.com/opencontainers/go-digest"

	"github.com/berthdev/berth/internal/store"
)

// DefaultLifecycleInterval is how often lifecycle policies are applied
// when Config.LifecycleInterval is zero.
const DefaultLifecycleInterval = time.Hour

// untaggedGrace protects untagged manifests younger than this from
// expiry (they still count among the images a rule keeps): a multi-arch
// push puts its per-platform manifests, untagged, before the index that
// refers to them, and expiring them in between would break the push.
const untaggedGrace = 10 * time.Minute

// ECR's limits on lifecyclePolicyText.
const (
	minLifecyclePolicyBytes = 100
	maxLifecyclePolicyBytes = 30720
)

// Lifecycle policies are kept outside the account's own key space, so the
// reconciler finds them all with one listing:
// /berth/v1/ecr/lifecycle/<account>/<region>/<name> (a policyRecord).
func lifecyclePrefix() string { return store.Prefix("ecr", "lifecycle") }

func lifecycleKey(sc scope, name string) string {
	return lifecyclePrefix() + sc.account + "/" + sc.region + "/" + name
}

// Previews: acct/<account>/<region>/ecr/lifecycle-previews/<name>.
func previewKey(sc scope, name string) string {
	return store.ScopedPrefix(sc.account, sc.region, "ecr", "lifecycle-previews") + name
}

type lcPolicy struct {
	Rules []lcRule `json:"rules"`
}

type lcRule struct {
	RulePriority int         `json:"rulePriority"`
	Description  string      `json:"description"`
	Selection    lcSelection `json:"selection"`
	Action       struct {
		Type string `json:"type"`
	} `json:"action"`
	patterns []*regexp.Regexp
}

type lcSelection struct {
	TagStatus      string   `json:"tagStatus"`
	TagPrefixList  []string `json:"tagPrefixList"`
	TagPatternList []string `json:"tagPatternList"`
	CountType      string   `json:"countType"`
	CountUnit      string   `json:"countUnit"`
	CountNumber    int      `json:"countNumber"`
}

func invalidLifecycle(format string, args ...any) error {
	return invalidParam("Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy validation failure: %s'", fmt.Sprintf(format, args...))
}

// parseLifecycle validates a lifecycle policy; its rules come back sorted
// by priority.
func parseLifecycle(text string) ([]lcRule, error) {
	if len(text) < minLifecyclePolicyBytes || len(text) > maxLifecyclePolicyBytes {
		return nil, constraint("lifecyclePolicyText", fmt.Sprintf("Member must have length between %d and %d", minLifecyclePolicyBytes, maxLifecyclePolicyBytes))
	}
	dec := json.NewDecoder(strings.NewReader(text))
	dec.DisallowUnknownFields()
	var p lcPolicy
	if err := dec.Decode(&p); err != nil {
		return nil, invalidLifecycle("%v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, invalidLifecycle("unexpected data after the policy")
	}
	if len(p.Rules) == 0 {
		return nil, invalidLifecycle("the policy must have at least one rule")
	}
	seen := map[int]bool{}
	for i := range p.Rules {
		r := &p.Rules[i]
		if err := validateRule(r); err != nil {
			return nil, invalidLifecycle("rule %d: %v", i, err)
		}
		if seen[r.RulePriority] {
			return nil, invalidLifecycle("rulePriority %d is used by more than one rule", r.RulePriority)
		}
		seen[r.RulePriority] = true
	}
	sort.Slice(p.Rules, func(i, j int) bool { return p.Rules[i].RulePriority < p.Rules[j].RulePriority })
	for i, r := range p.Rules {
		if r.Selection.TagStatus == "any" && i != len(p.Rules)-1 {
			return nil, invalidLifecycle("a rule with tagStatus any must have the highest rulePriority")
		}
	}
	return p.Rules, nil
}

func validateRule(r *lcRule) error {
	sel := r.Selection
	if r.RulePriority < 1 || r.RulePriority > 999 {
		return fmt.Errorf("rulePriority must be between 1 and 999")
	}
	if r.Action.Type != "expire" {
		return fmt.Errorf("action.type must be expire")
	}
	switch sel.TagStatus {
	case "tagged":
		if len(sel.TagPrefixList) == 0 && len(sel.TagPatternList) == 0 {
			return fmt.Errorf("tagPrefixList or tagPatternList is required when tagStatus is tagged")
		}
		if len(sel.TagPrefixList) > 0 && len(sel.TagPatternList) > 0 {
			return fmt.Errorf("tagPrefixList and tagPatternList cannot both be used")
		}
	case "untagged", "any":
		if len(sel.TagPrefixList) > 0 || len(sel.TagPatternList) > 0 {
			return fmt.Errorf("tagPrefixList and tagPatternList can only be used when tagStatus is tagged")
		}
	default:
		return fmt.Errorf("tagStatus must be tagged, untagged or any")
	}
	for _, p := range sel.TagPrefixList {
		if p == "" {
			return fmt.Errorf("tagPrefixList cannot contain an empty prefix")
		}
	}
	for _, p := range sel.TagPatternList {
		if p == "" || strings.Count(p, "*") > 4 {
			return fmt.Errorf("tagPatternList entries must be non-empty with at most 4 wildcards")
		}
		quoted := strings.ReplaceAll(regexp.QuoteMeta(p), `\*`, ".*")
		r.patterns = append(r.patterns, regexp.MustCompile("^"+quoted+"$"))
	}
	if sel.CountNumber < 1 {
		return fmt.Errorf("countNumber must be a positive integer")
	}
	switch sel.CountType {
	case "imageCountMoreThan":
		if sel.CountUnit != "" {
			return fmt.Errorf("countUnit cannot be used with imageCountMoreThan")
		}
	case "sinceImagePushed":
		if sel.CountUnit != "days" {
			return fmt.Errorf("countUnit must be days with sinceImagePushed")
		}
	default:
		return fmt.Errorf("countType must be imageCountMoreThan or sinceImagePushed")
	}
	return nil
}

// lcImage is an image as the rules see it.
type lcImage struct {
	digest   digest.Digest
	tags     []string
	pushedAt time.Time
}

// expiry is an image a rule expires.
type expiry struct {
	lcImage
	rule int // its rulePriority
}

// selects reports whether a rule's tag selection matches an image.
func (r *lcRule) selects(img lcImage) bool {
	switch r.Selection.TagStatus {
	case "untagged":
		return len(img.tags) == 0
	case "any":
		return true
	}
	if len(img.tags) == 0 {
		return false
	}
	for _, p := range r.Selection.TagPrefixList {
		if !slices.ContainsFunc(img.tags, func(t string) bool { return strings.HasPrefix(t, p) }) {
			return false
		}
	}
	for _, re := range r.patterns {
		if !slices.ContainsFunc(img.tags, re.MatchString) {
			return false
		}
	}
	return true
}

// evaluate applies rules (sorted by priority) to images at now.
func evaluate(rules []lcRule, images []lcImage, now time.Time) []expiry {
	claimed := make(map[digest.Digest]bool, len(images))
	var out []expiry
	for i := range rules {
		r := &rules[i]
		var sel []lcImage
		for _, img := range images {
			if !claimed[img.digest] && r.selects(img) {
				claimed[img.digest] = true
				sel = append(sel, img)
			}
		}
		// Newest first.
		sort.Slice(sel, func(i, j int) bool {
			if !sel[i].pushedAt.Equal(sel[j].pushedAt) {
				return sel[i].pushedAt.After(sel[j].pushedAt)
			}
			return sel[i].digest > sel[j].digest
		})
		n := r.Selection.CountNumber
		for k, img := range sel {
			switch r.Selection.CountType {
			case "imageCountMoreThan":
				if k < n {
					continue
				}
			case "sinceImagePushed":
				if !img.pushedAt.Before(now.Add(-time.Duration(n) * 24 * time.Hour)) {
					continue
				}
			}
			if len(img.tags) == 0 && now.Sub(img.pushedAt) < untaggedGrace {
				continue
			}
			out = append(out, expiry{lcImage: img, rule: r.RulePriority})
		}
	}
	return out
}

// lifecycleImages reads a repository's images for evaluation, leaving out
// the manifests an index in the repository refers to.
func (s *Service) lifecycleImages(ctx context.Context, stored string) ([]lcImage, error) {
	digests, err := s.reg.manifestDigests(ctx, stored)
	if err != nil {
		return nil, err
	}
	tags, err := s.reg.tagMap(ctx, stored)
	if err != nil {
		return nil, err
	}
	children := map[digest.Digest]bool{}
	images := make([]lcImage, 0, len(digests))
	for _, d := range digests {
		at, err := s.reg.pushedAt(ctx, stored, d)
		if isPathNotFound(err) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, err
		}
		_, payload, err := s.reg.manifest(ctx, stored, d)
		var gone distribution.ErrManifestUnknownRevision
		if errors.Is(err, distribution.ErrBlobUnknown) || isPathNotFound(err) || errors.As(err, &gone) {
			continue // deleted meanwhile (another replica's lifecycle pass)
		}
		if err != nil {
			return nil, err
		}
		var m ociManifest
		if json.Unmarshal(payload, &m) == nil {
			for _, c := range m.Manifests {
				children[c.Digest] = true
			}
		}
		images = append(images, lcImage{digest: d, tags: tags[d], pushedAt: at})
	}
	return slices.DeleteFunc(images, func(img lcImage) bool { return children[img.digest] }), nil
}

// expire deletes the images a policy expires from one repository and
// returns how many it deleted. Images whose tags changed since they were
// read are skipped; what is already gone is no error.
func (s *Service) expire(ctx context.Context, stored string, exp []expiry) (int, error) {
	if len(exp) == 0 {
		return 0, nil
	}
	now, err := s.reg.tagMap(ctx, stored)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range exp {
		if !slices.Equal(now[e.digest], e.tags) {
			continue
		}
		for _, t := range e.tags {
			if err := s.reg.untag(ctx, stored, t); err != nil && !isPathNotFound(err) {
				return n, err
			}
		}
		err := s.reg.deleteManifest(ctx, stored, e.digest)
		if errors.Is(err, distribution.ErrBlobUnknown) || isPathNotFound(err) {
			continue
		}
		if err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// RunLifecycle applies every repository's lifecycle policy once. Errors
// in one repository do not stop the others; they are returned joined.
func (s *Service) RunLifecycle(ctx context.Context) error {
	type item struct {
		sc   scope
		name string
		rec  policyRecord
	}
	var items []item
	err := s.st.List(ctx, lifecyclePrefix(), func(key string, val []byte) error {
		parts := strings.SplitN(strings.TrimPrefix(key, lifecyclePrefix()), "/", 3)
		var rec policyRecord
		if len(parts) != 3 || json.Unmarshal(val, &rec) != nil {
			s.log.Warn("lifecycle: skipping a malformed record", "key", key)
			return nil
		}
		items = append(items, item{sc: scope{account: parts[0], region: parts[1]}, name: parts[2], rec: rec})
		return nil
	})
	if err != nil {
		return err
	}
	var errs []error
	for _, it := range items {
		if err := ctx.Err(); err != nil {
			return err
		}
		repo, err := s.getRepo(ctx, it.sc, it.name)
		if errors.Is(err, store.ErrNotFound) || (err == nil && !repo.CreatedAt.Equal(it.rec.RepoCreatedAt)) {
			// The policy of a repository that is gone.
			if err := s.deleteStalePolicy(ctx, lifecycleKey(it.sc, it.name), it.rec.RepoCreatedAt); err != nil {
				s.log.Warn("lifecycle: removing a stale policy", "repository", it.name, "err", err)
			}
			continue
		}
		if err == nil {
			err = s.applyLifecycle(ctx, it.sc, it.name, it.rec.Text)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("lifecycle of %s in %s/%s: %w", it.name, it.sc.account, it.sc.region, err))
		}
	}
	return errors.Join(errs...)
}

func (s *Service) applyLifecycle(ctx context.Context, sc scope, name, text string) error {
	rules, err := parseLifecycle(text)
	if err != nil {
		return err
	}
	stored := sc.storedName(name)
	images, err := s.lifecycleImages(ctx, stored)
	if err != nil {
		return err
	}
	n, err := s.expire(ctx, stored, evaluate(rules, images, s.cfg.Now()))
	if n > 0 {
		s.log.Info("lifecycle policy expired images", "account", sc.account, "region", sc.region, "repository", name, "images", n)
	}
	return err
}

// lifecycleLoop runs RunLifecycle periodically until closed.
type lifecycleLoop struct {
	stop context.CancelFunc
	done chan struct{}
}

// startLifecycle starts the reconciler; a negative interval disables it.
func (s *Service) startLifecycle() *lifecycleLoop {
	ctx, stop := context.WithCancel(context.Background())
	l := &lifecycleLoop{stop: stop, done: make(chan struct{})}
	interval := s.cfg.LifecycleInterval
	if interval == 0 {
		interval = DefaultLifecycleInterval
	}
	if interval < 0 {
		close(l.done)
		return l
	}
	go func() {
		defer close(l.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if err := s.RunLifecycle(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("lifecycle policies", "err", err)
			}
			// Then free what deleted and expired images leave behind.
			if _, err := s.reg.CollectGarbage(ctx, DefaultGCGrace); err != nil && ctx.Err() == nil {
				s.log.Warn("registry garbage collection", "err", err)
			}
		}
	}()
	return l
}

// close stops the loop and waits for it; it may be called more than once.
func (l *lifecycleLoop) close() {
	l.stop()
	<-l.done
}

// lifecycleInput is the input of the lifecycle operations.
type lifecycleInput struct {
	RegistryID          string `json:"registryId"`
	RepositoryName      string `json:"repositoryName"`
	LifecyclePolicyText string `json:"lifecyclePolicyText"`
	ImageIDs            []any  `json:"imageIds"`
	NextToken           string `json:"nextToken"`
	MaxResults          *int   `json:"maxResults"`
	Filter              any    `json:"filter"`
}

type lifecycleOutput struct {
	RegistryID          string `json:"registryId"`
	RepositoryName      string `json:"repositoryName"`
	LifecyclePolicyText string `json:"lifecyclePolicyText,omitempty"`
}

func (s *Service) openLifecycle(ctx context.Context, body []byte) (scope, *lifecycleInput, *repoRecord, error) {
	var in lifecycleInput
	sc, rec, err := openOwnRepo(ctx, s, body, &in, func(in *lifecycleInput) (string, string) { return in.RegistryID, in.RepositoryName })
	return sc, &in, rec, err
}

// readPolicy reads a policyRecord of the current repository generation.
func (s *Service) readPolicy(ctx context.Context, key string, rec *repoRecord) (*policyRecord, error) {
	var p policyRecord
	_, err := s.st.Get(ctx, key, &p)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !p.RepoCreatedAt.Equal(rec.CreatedAt)) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &p, nil
}

func (s *Service) putLifecyclePolicy(ctx context.Context, body []byte) (any, error) {
	sc, in, rec, err := s.openLifecycle(ctx, body)
	if err != nil {
		return nil, err
	}
	if _, err := parseLifecycle(in.LifecyclePolicyText); err != nil {
		return nil, err
	}
	if err := s.st.Put(ctx, lifecycleKey(sc, rec.Name), policyRecord{Text: in.LifecyclePolicyText, RepoCreatedAt: rec.CreatedAt}); err != nil {
		return nil, err
	}
	return lifecycleOutput{RegistryID: sc.account, RepositoryName: rec.Name, LifecyclePolicyText: in.LifecyclePolicyText}, nil
}

// openExistingLifecycle opens a lifecycle call on a repository that has a
// lifecycle policy, and reads the policy.
func (s *Service) openExistingLifecycle(ctx context.Context, body []byte) (scope, *repoRecord, *policyRecord, error) {
	sc, _, rec, err := s.openLifecycle(ctx, body)
	if err != nil {
		return sc, nil, nil, err
	}
	p, err := s.readPolicy(ctx, lifecycleKey(sc, rec.Name), rec)
	if err == nil && p == nil {
		err = lifecyclePolicyNotFound(sc, rec.Name)
	}
	return sc, rec, p, err
}

func (s *Service) getLifecyclePolicy(ctx context.Context, body []byte) (any, error) {
	sc, rec, p, err := s.openExistingLifecycle(ctx, body)
	if err != nil {
		return nil, err
	}
	return lifecycleOutput{RegistryID: sc.account, RepositoryName: rec.Name, LifecyclePolicyText: p.Text}, nil
}

func (s *Service) deleteLifecyclePolicy(ctx context.Context, body []byte) (any, error) {
	sc, rec, p, err := s.openExistingLifecycle(ctx, body)
	if err != nil {
		return nil, err
	}
	if err := s.st.Delete(ctx, lifecycleKey(sc, rec.Name)); err != nil {
		return nil, err
	}
	return lifecycleOutput{RegistryID: sc.account, RepositoryName: rec.Name, LifecyclePolicyText: p.Text}, nil
}

// startLifecyclePolicyPreview records the policy to preview (the one given,
// or the repository's); GetLifecyclePolicyPreview evaluates it when asked,
// so a preview is always complete and reflects the images at that moment.
func (s *Service) startLifecyclePolicyPreview(ctx context.Context, body []byte) (any, error) {
	sc, in, rec, err := s.openLifecycle(ctx, body)
	if err != nil {
		return nil, err
	}
	text := in.LifecyclePolicyText
	if text == "" {
		p, err := s.readPolicy(ctx, lifecycleKey(sc, rec.Name), rec)
		if err != nil {
			return nil, err
		}
		if p == nil {
			return nil, lifecyclePolicyNotFound(sc, rec.Name)
		}
		text = p.Text
	}
	if _, err := parseLifecycle(text); err != nil {
		return nil, err
	}
	if err := s.st.Put(ctx, previewKey(sc, rec.Name), policyRecord{Text: text, RepoCreatedAt: rec.CreatedAt}); err != nil {
		return nil, err
	}
	return struct {
		lifecycleOutput
		Status string `json:"status"`
	}{lifecycleOutput{RegistryID: sc.account, RepositoryName: rec.Name, LifecyclePolicyText: text}, "IN_PROGRESS"}, nil
}

type previewResult struct {
	ImageTags     []string `json:"imageTags,omitempty"`
	ImageDigest   string   `json:"imageDigest"`
	ImagePushedAt float64  `json:"imagePushedAt"`
	Action        struct {
		Type string `json:"type"`
	} `json:"action"`
	AppliedRulePriority int `json:"appliedRulePriority"`
}

func (s *Service) getLifecyclePolicyPreview(ctx context.Context, body []byte) (any, error) {
	sc, in, rec, err := s.openLifecycle(ctx, body)
	if err != nil {
		return nil, err
	}
	p, err := s.readPolicy(ctx, previewKey(sc, rec.Name), rec)
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, lifecyclePreviewNotFound(sc, rec.Name)
	}
	rules, err := parseLifecycle(p.Text)
	if err != nil {
		return nil, err
	}
	images, err := s.lifecycleImages(ctx, sc.storedName(rec.Name))
	if err != nil {
		return nil, err
	}
	results := []previewResult{}
	for _, e := range evaluate(rules, images, s.cfg.Now()) {
		r := previewResult{ImageTags: e.tags, ImageDigest: e.digest.String(), ImagePushedAt: epoch(e.pushedAt), AppliedRulePriority: e.rule}
		r.Action.Type = "EXPIRE"
		results = append(results, r)
	}
	sort.Slice(results, func(i, j int) bool { return results[i].ImageDigest < results[j].ImageDigest })
	pageResults, next, err := page(results, func(r previewResult) string { return r.ImageDigest }, in.NextToken, in.MaxResults)
	if err != nil {
		return nil, err
	}
	type summary struct {
		ExpiringImageTotalCount int `json:"expiringImageTotalCount"`
	}
	return struct {
		lifecycleOutput
		Status         string          `json:"status"`
		PreviewResults []previewResult `json:"previewResults"`
		Summary        summary         `json:"summary"`
		NextToken      string          `json:"nextToken,omitempty"`
	}{lifecycleOutput{RegistryID: sc.account, RepositoryName: rec.Name, LifecyclePolicyText: p.Text}, "COMPLETE",
		pageResults, summary{len(results)}, next}, nil
}
