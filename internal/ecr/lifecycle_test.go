package ecr_test

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	becr "github.com/berthdev/berth/internal/ecr"
	"github.com/berthdev/berth/internal/protocol"
	"github.com/berthdev/berth/internal/store"
)

// newSvcEnv is newEnv with the service at hand and the lifecycle
// reconciler's interval set (negative: only RunLifecycle).
func newSvcEnv(t *testing.T, interval time.Duration) (*env, *becr.Service) {
	t.Helper()
	return startEnv(t, becr.Config{LifecycleInterval: interval})
}

// imageSet is a repository's images as "digest=tag,tag" strings, sorted.
func imageSet(t *testing.T, c *ecr.Client, repo string) []string {
	t.Helper()
	out, err := c.DescribeImages(ctxT(t), &ecr.DescribeImagesInput{RepositoryName: aws.String(repo)})
	if err != nil {
		t.Fatalf("DescribeImages %s: %v", repo, err)
	}
	var s []string
	for _, d := range out.ImageDetails {
		tags := slices.Clone(d.ImageTags)
		sort.Strings(tags)
		s = append(s, aws.ToString(d.ImageDigest)+"="+strings.Join(tags, ","))
	}
	sort.Strings(s)
	return s
}

// pushed pushes a random image as repo:tag and returns its digest.
func (e *env) pushed(t *testing.T, pw, repoTag string) string {
	t.Helper()
	img := mustPush(t, e.ref(t, repoTag), basic(pw))
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond) // distinct push times
	return d.String()
}

func want(pairs ...string) []string {
	s := slices.Clone(pairs)
	sort.Strings(s)
	return s
}

func (e *env) putLifecycle(t *testing.T, c *ecr.Client, repo, text string) {
	t.Helper()
	if _, err := c.PutLifecyclePolicy(ctxT(t), &ecr.PutLifecyclePolicyInput{RepositoryName: aws.String(repo),
		LifecyclePolicyText: aws.String(text)}); err != nil {
		t.Fatalf("PutLifecyclePolicy: %v", err)
	}
}

func runLifecycle(t *testing.T, svc *becr.Service) {
	t.Helper()
	if err := svc.RunLifecycle(ctxT(t)); err != nil {
		t.Fatalf("RunLifecycle: %v", err)
	}
}

const untaggedMoreThan1 = `{"rules":[{"rulePriority":1,"description":"keep one untagged",
  "selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`

func TestLifecycleUntagged(t *testing.T) {
	e, svc := newSvcEnv(t, -1)
	e.create(t, e.a, "app", "")
	pw := e.password(t, e.a)
	d1 := e.pushed(t, pw, "app:latest")
	d2 := e.pushed(t, pw, "app:latest") // d1 untagged
	d3 := e.pushed(t, pw, "app:latest") // d2 untagged
	d4 := e.pushed(t, pw, "app:v1")
	e.putLifecycle(t, e.a, "app", untaggedMoreThan1)
	// Fresh untagged images are left alone (a multi-arch push may be
	// under way); an hour later they go.
	runLifecycle(t, svc)
	if got := imageSet(t, e.a, "app"); len(got) != 4 {
		t.Errorf("right after the pushes: %v", got)
	}
	e.skew.Store(3600)
	runLifecycle(t, svc)
	if got, w := imageSet(t, e.a, "app"), want(d2+"=", d3+"=latest", d4+"=v1"); !slices.Equal(got, w) {
		t.Errorf("after the lifecycle run\n got %v\nwant %v (%s expired)", got, w, d1)
	}
	// Idempotent: nothing more to do.
	runLifecycle(t, svc)
	if got := imageSet(t, e.a, "app"); len(got) != 3 {
		t.Errorf("second run changed the images: %v", got)
	}
	// The expired image cannot be pulled any more; the others can.
	if _, err := e.a.BatchGetImage(ctxT(t), &ecr.BatchGetImageInput{RepositoryName: aws.String("app"),
		ImageIds: []types.ImageIdentifier{{ImageDigest: aws.String(d1)}, {ImageTag: aws.String("latest")}}}); err != nil {
		t.Fatal(err)
	}
}

func TestLifecycleTagPrefixAndPriority(t *testing.T) {
	e, svc := newSvcEnv(t, -1)
	e.create(t, e.a, "svc", "")
	pw := e.password(t, e.a)
	dev := e.pushed(t, pw, "svc:dev-1")
	p1 := e.pushed(t, pw, "svc:prod-1")
	p2 := e.pushed(t, pw, "svc:prod-2")
	p3 := e.pushed(t, pw, "svc:prod-3")
	pat := e.pushed(t, pw, "svc:release-2024-x")
	// Rule 1 claims the prod images (keeping two); rule 2 sees only what is
	// left, so the old dev image (the only unclaimed one besides the
	// release) is kept by "any more than 2" although it is the oldest of all.
	e.putLifecycle(t, e.a, "svc", `{"rules":[
	  {"rulePriority":1,"selection":{"tagStatus":"tagged","tagPrefixList":["prod"],"countType":"imageCountMoreThan","countNumber":2},"action":{"type":"expire"}},
	  {"rulePriority":5,"selection":{"tagStatus":"tagged","tagPatternList":["release-*-y"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}},
	  {"rulePriority":9,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":2},"action":{"type":"expire"}}]}`)

	// The preview shows what the run will do.
	ctx := ctxT(t)
	if _, err := e.a.StartLifecyclePolicyPreview(ctx, &ecr.StartLifecyclePolicyPreviewInput{RepositoryName: aws.String("svc")}); err != nil {
		t.Fatal(err)
	}
	prev, err := e.a.GetLifecyclePolicyPreview(ctx, &ecr.GetLifecyclePolicyPreviewInput{RepositoryName: aws.String("svc")})
	if err != nil {
		t.Fatal(err)
	}
	if prev.Status != types.LifecyclePolicyPreviewStatusComplete || len(prev.PreviewResults) != 1 ||
		aws.ToString(prev.PreviewResults[0].ImageDigest) != p1 || aws.ToInt32(prev.PreviewResults[0].AppliedRulePriority) != 1 ||
		prev.PreviewResults[0].Action.Type != types.ImageActionTypeExpire || aws.ToInt32(prev.Summary.ExpiringImageTotalCount) != 1 {
		t.Errorf("preview %+v", prev)
	}

	runLifecycle(t, svc)
	if got, w := imageSet(t, e.a, "svc"), want(dev+"=dev-1", p2+"=prod-2", p3+"=prod-3", pat+"=release-2024-x"); !slices.Equal(got, w) {
		t.Errorf("after the lifecycle run\n got %v\nwant %v", got, w)
	}
	// A pattern rule: release-*-x now keeps one of two.
	pat2 := e.pushed(t, pw, "svc:release-2025-x")
	e.putLifecycle(t, e.a, "svc", `{"rules":[
	  {"rulePriority":1,"selection":{"tagStatus":"tagged","tagPatternList":["release-*-x"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`)
	runLifecycle(t, svc)
	got := imageSet(t, e.a, "svc")
	if slices.Contains(got, pat+"=release-2024-x") || !slices.Contains(got, pat2+"=release-2025-x") || len(got) != 4 {
		t.Errorf("after the pattern rule: %v", got)
	}
}

func TestLifecycleSinceImagePushed(t *testing.T) {
	e, svc := newSvcEnv(t, -1)
	e.create(t, e.a, "old", "")
	pw := e.password(t, e.a)
	d := e.pushed(t, pw, "old:v1")
	e.putLifecycle(t, e.a, "old", `{"rules":[{"rulePriority":1,
	  "selection":{"tagStatus":"any","countType":"sinceImagePushed","countUnit":"days","countNumber":3},"action":{"type":"expire"}}]}`)
	e.skew.Store(2 * 24 * 3600)
	runLifecycle(t, svc)
	if got := imageSet(t, e.a, "old"); !slices.Equal(got, []string{d + "=v1"}) {
		t.Errorf("two days after the push: %v", got)
	}
	e.skew.Store(3*24*3600 + 60)
	runLifecycle(t, svc)
	if got := imageSet(t, e.a, "old"); len(got) != 0 {
		t.Errorf("three days after the push: %v", got)
	}
}

// TestLifecycleReconciler: the background loop applies policies by itself.
func TestLifecycleReconciler(t *testing.T) {
	e, _ := newSvcEnv(t, 50*time.Millisecond)
	e.create(t, e.a, "bg", "")
	pw := e.password(t, e.a)
	e.pushed(t, pw, "bg:latest")
	e.pushed(t, pw, "bg:latest")
	e.pushed(t, pw, "bg:latest")
	e.skew.Store(3600)
	e.putLifecycle(t, e.a, "bg", untaggedMoreThan1)
	deadline := time.Now().Add(10 * time.Second)
	for len(imageSet(t, e.a, "bg")) != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the reconciler did not expire the untagged image: %v", imageSet(t, e.a, "bg"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestLifecyclePolicyAPI(t *testing.T) {
	e, _ := newSvcEnv(t, -1)
	ctx := ctxT(t)
	e.create(t, e.a, "app", "")
	repo := aws.String("app")
	if _, err := e.a.GetLifecyclePolicy(ctx, &ecr.GetLifecyclePolicyInput{RepositoryName: repo}); apiCode(err) != "LifecyclePolicyNotFoundException" {
		t.Errorf("Get without a policy: %v", err)
	}
	if _, err := e.a.DeleteLifecyclePolicy(ctx, &ecr.DeleteLifecyclePolicyInput{RepositoryName: repo}); apiCode(err) != "LifecyclePolicyNotFoundException" {
		t.Errorf("Delete without a policy: %v", err)
	}
	if _, err := e.a.GetLifecyclePolicyPreview(ctx, &ecr.GetLifecyclePolicyPreviewInput{RepositoryName: repo}); apiCode(err) != "LifecyclePolicyPreviewNotFoundException" {
		t.Errorf("GetLifecyclePolicyPreview without a preview: %v", err)
	}
	if _, err := e.a.StartLifecyclePolicyPreview(ctx, &ecr.StartLifecyclePolicyPreviewInput{RepositoryName: repo}); apiCode(err) != "LifecyclePolicyNotFoundException" {
		t.Errorf("StartLifecyclePolicyPreview without a policy: %v", err)
	}
	if _, err := e.a.GetLifecyclePolicy(ctx, &ecr.GetLifecyclePolicyInput{RepositoryName: aws.String("nope")}); apiCode(err) != "RepositoryNotFoundException" {
		t.Errorf("Get of a missing repository: %v", err)
	}
	out, err := e.a.PutLifecyclePolicy(ctx, &ecr.PutLifecyclePolicyInput{RepositoryName: repo, LifecyclePolicyText: aws.String(untaggedMoreThan1)})
	if err != nil || aws.ToString(out.RegistryId) != accountA || aws.ToString(out.LifecyclePolicyText) != untaggedMoreThan1 {
		t.Fatalf("Put: %+v %v", out, err)
	}
	got, err := e.a.GetLifecyclePolicy(ctx, &ecr.GetLifecyclePolicyInput{RepositoryName: repo})
	if err != nil || aws.ToString(got.LifecyclePolicyText) != untaggedMoreThan1 || aws.ToString(got.RepositoryName) != "app" {
		t.Errorf("Get: %+v %v", got, err)
	}
	// Another account's repository of the same name has no policy.
	e.create(t, e.b, "app", "")
	if _, err := e.b.GetLifecyclePolicy(ctx, &ecr.GetLifecyclePolicyInput{RepositoryName: repo}); apiCode(err) != "LifecyclePolicyNotFoundException" {
		t.Errorf("B's app has A's policy: %v", err)
	}
	del, err := e.a.DeleteLifecyclePolicy(ctx, &ecr.DeleteLifecyclePolicyInput{RepositoryName: repo})
	if err != nil || aws.ToString(del.LifecyclePolicyText) != untaggedMoreThan1 {
		t.Errorf("Delete: %+v %v", del, err)
	}
	if _, err := e.a.GetLifecyclePolicy(ctx, &ecr.GetLifecyclePolicyInput{RepositoryName: repo}); apiCode(err) != "LifecyclePolicyNotFoundException" {
		t.Errorf("Get after Delete: %v", err)
	}
	// A policy does not survive its repository.
	e.putLifecycle(t, e.a, "app", untaggedMoreThan1)
	if _, err := e.a.DeleteRepository(ctx, &ecr.DeleteRepositoryInput{RepositoryName: repo, Force: true}); err != nil {
		t.Fatal(err)
	}
	e.create(t, e.a, "app", "")
	if _, err := e.a.GetLifecyclePolicy(ctx, &ecr.GetLifecyclePolicyInput{RepositoryName: repo}); apiCode(err) != "LifecyclePolicyNotFoundException" {
		t.Errorf("a recreated repository has the old policy: %v", err)
	}

	sel := func(s string) string {
		return `{"rules":[{"rulePriority":1,"selection":` + s + `,"action":{"type":"expire"}}]}`
	}
	bad := map[string]string{
		"not json":           `{"rules":[`,
		"no rules":           `{"rules":[]}`,
		"unknown field":      `{"rules":[],"extra":1}`,
		"bad tagStatus":      sel(`{"tagStatus":"sometimes","countType":"imageCountMoreThan","countNumber":1}`),
		"tagged no prefixes": sel(`{"tagStatus":"tagged","countType":"imageCountMoreThan","countNumber":1}`),
		"untagged prefixes":  sel(`{"tagStatus":"untagged","tagPrefixList":["a"],"countType":"imageCountMoreThan","countNumber":1}`),
		"bad countType":      sel(`{"tagStatus":"untagged","countType":"often","countNumber":1}`),
		"zero count":         sel(`{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":0}`),
		"since without unit": sel(`{"tagStatus":"untagged","countType":"sinceImagePushed","countNumber":1}`),
		"count with unit":    sel(`{"tagStatus":"untagged","countType":"imageCountMoreThan","countUnit":"days","countNumber":1}`),
		"bad action": `{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1},
		  "action":{"type":"archive"}}]}`,
		"duplicate priority": `{"rules":[
		  {"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}},
		  {"rulePriority":1,"selection":{"tagStatus":"tagged","tagPrefixList":["v"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`,
		"any not last": `{"rules":[
		  {"rulePriority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}},
		  {"rulePriority":2,"selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`,
	}
	bad["too short"] = `{"rules":[]}`
	bad["trailing data"] = untaggedMoreThan1 + "{}"
	for name, text := range bad {
		if name != "too short" && len(text) < 100 {
			text += strings.Repeat(" ", 100) // past ECR's minimum length, so the content is what fails
		}
		t.Run(name, func(t *testing.T) {
			_, err := e.a.PutLifecyclePolicy(ctx, &ecr.PutLifecyclePolicyInput{RepositoryName: repo, LifecyclePolicyText: aws.String(text)})
			if apiCode(err) != "InvalidParameterException" {
				t.Errorf("Put: %v, want InvalidParameterException", err)
			}
		})
	}
}

// TestLifecycleKeepsIndexChildren: the untagged manifests of a tagged
// index are not expired on their own.
func TestLifecycleKeepsIndexChildren(t *testing.T) {
	e, svc := newSvcEnv(t, -1)
	e.create(t, e.a, "multi", "")
	pw := e.password(t, e.a)
	idx, err := random.Index(512, 1, 3)
	if err != nil {
		t.Fatal(err)
	}
	ref := e.ref(t, "multi:v1")
	if err := remote.WriteIndex(ref, idx, basic(pw), remote.WithContext(ctxT(t))); err != nil {
		t.Fatal(err)
	}
	e.putLifecycle(t, e.a, "multi", untaggedMoreThan1)
	e.skew.Store(3600)
	runLifecycle(t, svc)
	if got := imageSet(t, e.a, "multi"); len(got) != 4 {
		t.Errorf("images after the run: %v, want the index and its 3 children", got)
	}
	if _, err := remote.Index(ref, basic(pw), remote.WithContext(ctxT(t))); err != nil {
		t.Fatal(err)
	}
}

// TestLifecycleReplicas: two servers on one etcd and one storage apply the
// same policy at the same time without errors, with the same result.
func TestLifecycleReplicas(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	etcd, err := store.StartEmbedded(ctx, t.TempDir(), logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(etcd.Close)
	root := t.TempDir()
	var svcs []*becr.Service
	for range 2 {
		svc, err := becr.New(ctx, becr.Config{Store: store.New(etcd.Client), RootDir: root, Logger: logger, LifecycleInterval: -1,
			Now: func() time.Time { return time.Now().Add(time.Hour) }})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = svc.Close() })
		svcs = append(svcs, svc)
	}
	router := protocol.NewRouter(testKeys{}, logger, protocol.WithRegisterer(nil))
	router.AddJSONService(svcs[0].JSONService())
	router.Handle("/v2/", svcs[0].Handler())
	srv := httptest.NewServer(router)
	t.Cleanup(srv.Close)
	e := &env{url: srv.URL, host: strings.TrimPrefix(srv.URL, "http://"), skew: &atomic.Int64{},
		a: ecr.NewFromConfig(aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL),
			Credentials: credentials.NewStaticCredentialsProvider("a", "a", "")})}
	e.create(t, e.a, "app", "")
	pw := e.password(t, e.a)
	var keep string
	for range 6 {
		keep = e.pushed(t, pw, "app:latest")
	}
	e.putLifecycle(t, e.a, "app", `{"rules":[{"rulePriority":1,
	  "selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}`)
	errs := make(chan error, len(svcs))
	for _, svc := range svcs {
		go func() { errs <- svc.RunLifecycle(ctxT(t)) }()
	}
	for range svcs {
		if err := <-errs; err != nil {
			t.Errorf("RunLifecycle: %v", err)
		}
	}
	if got := imageSet(t, e.a, "app"); len(got) != 2 || !slices.Contains(got, keep+"=latest") {
		t.Errorf("images after two replicas ran: %v", got)
	}
}
