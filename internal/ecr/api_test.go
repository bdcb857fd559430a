package ecr_test

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/smithy-go"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	becr "github.com/berthdev/berth/internal/ecr"
	"github.com/berthdev/berth/internal/protocol"
	"github.com/berthdev/berth/internal/store"
)

const (
	accountA = "111111111111"
	accountB = "222222222222"
	devAcct  = "000000000000"
)

// testKeys: key "a" is account A, "b" account B, "test" the dev account.
type testKeys struct{}

func (testKeys) Lookup(_ context.Context, akid string) (string, string, error) {
	switch akid {
	case "a":
		return "a", accountA, nil
	case "b":
		return "b", accountB, nil
	case "test":
		return "test", devAcct, nil
	}
	return "", "", protocol.ErrUnknownKey
}

// env is the ECR API and registry in process on an embedded etcd behind
// the real router, with SDK clients for accounts A and B.
type env struct {
	url, host string
	a, b, dev *ecr.Client
	skew      *atomic.Int64 // added to the service's clock, in seconds
}

func newEnv(t *testing.T, anonymous bool) *env {
	t.Helper()
	e, _ := startEnv(t, becr.Config{Anonymous: anonymous})
	return e
}

// startEnv starts the service with cfg (its store, storage, logger and
// clock filled in) and returns the env and the service.
func startEnv(t *testing.T, cfg becr.Config) (*env, *becr.Service) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	e, err := store.StartEmbedded(ctx, t.TempDir(), logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	skew := &atomic.Int64{}
	cfg.Store, cfg.RootDir, cfg.Logger = store.New(e.Client), t.TempDir(), logger
	cfg.Now = func() time.Time { return time.Now().Add(time.Duration(skew.Load()) * time.Second) }
	svc, err := becr.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Close() })
	router := protocol.NewRouter(testKeys{}, logger, protocol.WithRegisterer(nil))
	router.AddJSONService(svc.JSONService())
	router.Handle("/v2/", svc.Handler())
	srv := httptest.NewServer(router)
	t.Cleanup(srv.Close)
	client := func(key string) *ecr.Client {
		return ecr.NewFromConfig(aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL),
			Credentials: credentials.NewStaticCredentialsProvider(key, key, "")})
	}
	return &env{url: srv.URL, host: strings.TrimPrefix(srv.URL, "http://"), a: client("a"), b: client("b"), dev: client("test"), skew: skew}, svc
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// password is the registry password GetAuthorizationToken gives c.
func (e *env) password(t *testing.T, c *ecr.Client) string {
	t.Helper()
	out, err := c.GetAuthorizationToken(ctxT(t), &ecr.GetAuthorizationTokenInput{})
	if err != nil || len(out.AuthorizationData) != 1 {
		t.Fatalf("GetAuthorizationToken: %v %+v", err, out)
	}
	d := out.AuthorizationData[0]
	raw, err := base64.StdEncoding.DecodeString(aws.ToString(d.AuthorizationToken))
	if err != nil {
		t.Fatal(err)
	}
	pw, ok := strings.CutPrefix(string(raw), "AWS:")
	if !ok {
		t.Fatalf("token %q does not start with AWS:", raw)
	}
	if got := aws.ToString(d.ProxyEndpoint); got != e.url {
		t.Errorf("proxyEndpoint %q, want %q", got, e.url)
	}
	skew := time.Duration(e.skew.Load()) * time.Second
	if exp := time.Until(aws.ToTime(d.ExpiresAt)) - skew; exp < 11*time.Hour || exp > 13*time.Hour {
		t.Errorf("expiresAt in %v, want 12h", exp)
	}
	return pw
}

func (e *env) ref(t *testing.T, s string) name.Reference {
	t.Helper()
	ref, err := name.ParseReference(e.host+"/"+s, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

func basic(pw string) remote.Option {
	return remote.WithAuth(&authn.Basic{Username: "AWS", Password: pw})
}

func push(t *testing.T, ref name.Reference, opts ...remote.Option) (v1.Image, error) {
	t.Helper()
	img, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	return img, remote.Write(ref, img, append(opts, remote.WithContext(ctxT(t)), remote.WithRetryStatusCodes())...)
}

func mustPush(t *testing.T, ref name.Reference, opts ...remote.Option) v1.Image {
	t.Helper()
	img, err := push(t, ref, opts...)
	if err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	return img
}

// registryCode is the first OCI error code of a go-containerregistry error.
func registryCode(err error) (int, string) {
	var te *transport.Error
	if !errors.As(err, &te) {
		return 0, ""
	}
	if len(te.Errors) == 0 {
		return te.StatusCode, ""
	}
	return te.StatusCode, string(te.Errors[0].Code)
}

func (e *env) create(t *testing.T, c *ecr.Client, name string, mut types.ImageTagMutability) *types.Repository {
	t.Helper()
	out, err := c.CreateRepository(ctxT(t), &ecr.CreateRepositoryInput{RepositoryName: aws.String(name), ImageTagMutability: mut})
	if err != nil {
		t.Fatalf("CreateRepository %s: %v", name, err)
	}
	return out.Repository
}

func TestRepositories(t *testing.T) {
	e := newEnv(t, false)
	ctx := ctxT(t)
	repo := e.create(t, e.a, "team/web", "")
	want := types.Repository{
		RepositoryArn:      aws.String("arn:aws:ecr:us-east-1:" + accountA + ":repository/team/web"),
		RegistryId:         aws.String(accountA),
		RepositoryName:     aws.String("team/web"),
		RepositoryUri:      aws.String(e.host + "/team/web"),
		ImageTagMutability: types.ImageTagMutabilityMutable,
	}
	if aws.ToString(repo.RepositoryArn) != *want.RepositoryArn || aws.ToString(repo.RegistryId) != *want.RegistryId ||
		aws.ToString(repo.RepositoryUri) != *want.RepositoryUri || repo.ImageTagMutability != want.ImageTagMutability {
		t.Errorf("repository %+v, want %+v", repo, want)
	}
	if repo.CreatedAt == nil || time.Since(*repo.CreatedAt) > time.Minute {
		t.Errorf("createdAt %v", repo.CreatedAt)
	}
	if repo.EncryptionConfiguration == nil || repo.EncryptionConfiguration.EncryptionType != types.EncryptionTypeAes256 {
		t.Errorf("encryptionConfiguration %+v", repo.EncryptionConfiguration)
	}

	errTests := []struct {
		name string
		in   ecr.CreateRepositoryInput
		code string
	}{
		{"exists", ecr.CreateRepositoryInput{RepositoryName: aws.String("team/web")}, "RepositoryAlreadyExistsException"},
		{"upper case", ecr.CreateRepositoryInput{RepositoryName: aws.String("Web")}, "InvalidParameterException"},
		{"too short", ecr.CreateRepositoryInput{RepositoryName: aws.String("w")}, "InvalidParameterException"},
		{"double slash", ecr.CreateRepositoryInput{RepositoryName: aws.String("a//b")}, "InvalidParameterException"},
		{"trailing dash", ecr.CreateRepositoryInput{RepositoryName: aws.String("web-")}, "InvalidParameterException"},
		{"too long", ecr.CreateRepositoryInput{RepositoryName: aws.String(strings.Repeat("a", 250))}, "InvalidParameterException"},
		{"bad mutability", ecr.CreateRepositoryInput{RepositoryName: aws.String("x1"), ImageTagMutability: "SOMETIMES"}, "InvalidParameterException"},
		{"aws: tag", ecr.CreateRepositoryInput{RepositoryName: aws.String("x2"), Tags: []types.Tag{{Key: aws.String("aws:x"), Value: aws.String("")}}}, "InvalidTagParameterException"},
		{"other registry", ecr.CreateRepositoryInput{RepositoryName: aws.String("x3"), RegistryId: aws.String(accountB)}, "InvalidParameterException"},
	}
	for _, tt := range errTests {
		t.Run("create "+tt.name, func(t *testing.T) {
			_, err := e.a.CreateRepository(ctx, &tt.in)
			if got := apiCode(err); got != tt.code {
				t.Errorf("error %v (%s), want %s", err, got, tt.code)
			}
		})
	}

	// Account B has a namespace of its own: the same name is free there.
	e.create(t, e.b, "team/web", types.ImageTagMutabilityImmutable)
	for _, n := range []string{"a1", "a2", "a3"} {
		e.create(t, e.a, n, "")
	}
	var names []string
	var token *string
	for pages := 0; ; pages++ {
		out, err := e.a.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{MaxResults: aws.Int32(2), NextToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range out.Repositories {
			names = append(names, aws.ToString(r.RepositoryName))
		}
		if token = out.NextToken; token == nil {
			break
		}
		if pages > 5 {
			t.Fatal("paging does not end")
		}
	}
	if want := []string{"a1", "a2", "a3", "team/web"}; !slices.Equal(names, want) {
		t.Errorf("paged repositories %v, want %v", names, want)
	}
	if _, err := e.a.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{"a1", "nope"}}); apiCode(err) != "RepositoryNotFoundException" {
		t.Errorf("describe missing: %v", err)
	}
	if out, err := e.b.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{}); err != nil || len(out.Repositories) != 1 ||
		out.Repositories[0].ImageTagMutability != types.ImageTagMutabilityImmutable {
		t.Errorf("account B sees %+v %v", out, err)
	}

	// Tags.
	arn := repo.RepositoryArn
	if _, err := e.a.TagResource(ctx, &ecr.TagResourceInput{ResourceArn: arn, Tags: []types.Tag{
		{Key: aws.String("team"), Value: aws.String("x")}, {Key: aws.String("env"), Value: aws.String("dev")}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.a.UntagResource(ctx, &ecr.UntagResourceInput{ResourceArn: arn, TagKeys: []string{"env"}}); err != nil {
		t.Fatal(err)
	}
	tags, err := e.a.ListTagsForResource(ctx, &ecr.ListTagsForResourceInput{ResourceArn: arn})
	if err != nil || len(tags.Tags) != 1 || aws.ToString(tags.Tags[0].Key) != "team" {
		t.Errorf("tags %+v %v", tags, err)
	}
	// B cannot name A's repository by ARN.
	if _, err := e.b.ListTagsForResource(ctx, &ecr.ListTagsForResourceInput{ResourceArn: arn}); apiCode(err) != "InvalidParameterException" {
		t.Errorf("B lists A's tags: %v", err)
	}

	if out, err := e.a.PutImageTagMutability(ctx, &ecr.PutImageTagMutabilityInput{RepositoryName: aws.String("a1"),
		ImageTagMutability: types.ImageTagMutabilityImmutable}); err != nil || out.ImageTagMutability != types.ImageTagMutabilityImmutable {
		t.Errorf("PutImageTagMutability: %+v %v", out, err)
	}
	if _, err := e.a.DeleteRepository(ctx, &ecr.DeleteRepositoryInput{RepositoryName: aws.String("a1")}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.a.DeleteRepository(ctx, &ecr.DeleteRepositoryInput{RepositoryName: aws.String("a1")}); apiCode(err) != "RepositoryNotFoundException" {
		t.Errorf("second delete: %v", err)
	}
}

func TestImages(t *testing.T) {
	e := newEnv(t, false)
	ctx := ctxT(t)
	e.create(t, e.a, "web", "")
	pw := e.password(t, e.a)
	img := mustPush(t, e.ref(t, "web:v1"), basic(pw))
	dgst, _ := img.Digest()
	mustPush(t, e.ref(t, "web:old"), basic(pw))
	// Move "old" away: its first image stays, untagged.
	other := mustPush(t, e.ref(t, "web:old"), basic(pw))
	otherDigest, _ := other.Digest()

	layers, _ := img.Layers()
	var size int64
	for _, l := range layers {
		n, _ := l.Size()
		size += n
	}
	mt, _ := img.MediaType()
	cfg, _ := img.Manifest()

	out, err := e.a.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: aws.String("web"),
		ImageIds: []types.ImageIdentifier{{ImageTag: aws.String("v1")}}})
	if err != nil || len(out.ImageDetails) != 1 {
		t.Fatalf("DescribeImages: %v %+v", err, out)
	}
	d := out.ImageDetails[0]
	if aws.ToString(d.ImageDigest) != dgst.String() || !slices.Equal(d.ImageTags, []string{"v1"}) ||
		aws.ToInt64(d.ImageSizeInBytes) != size || aws.ToString(d.ImageManifestMediaType) != string(mt) ||
		aws.ToString(d.ArtifactMediaType) != string(cfg.Config.MediaType) || aws.ToString(d.RegistryId) != accountA {
		t.Errorf("image detail %+v, want digest %s size %d type %s", d, dgst, size, mt)
	}
	if d.ImagePushedAt == nil || time.Since(*d.ImagePushedAt) > time.Minute {
		t.Errorf("imagePushedAt %v", d.ImagePushedAt)
	}

	count := func(status types.TagStatus) int {
		t.Helper()
		out, err := e.a.ListImages(ctx, &ecr.ListImagesInput{RepositoryName: aws.String("web"), Filter: &types.ListImagesFilter{TagStatus: status}})
		if err != nil {
			t.Fatal(err)
		}
		return len(out.ImageIds)
	}
	for _, tt := range []struct {
		status types.TagStatus
		want   int
	}{{types.TagStatusTagged, 2}, {types.TagStatusUntagged, 1}, {types.TagStatusAny, 3}, {"", 3}} {
		if got := count(tt.status); got != tt.want {
			t.Errorf("ListImages %q: %d images, want %d", tt.status, got, tt.want)
		}
	}
	page1, err := e.a.ListImages(ctx, &ecr.ListImagesInput{RepositoryName: aws.String("web"), MaxResults: aws.Int32(2)})
	if err != nil || len(page1.ImageIds) != 2 || page1.NextToken == nil {
		t.Fatalf("ListImages page 1: %+v %v", page1, err)
	}
	page2, err := e.a.ListImages(ctx, &ecr.ListImagesInput{RepositoryName: aws.String("web"), MaxResults: aws.Int32(2), NextToken: page1.NextToken})
	if err != nil || len(page2.ImageIds) != 1 || page2.NextToken != nil {
		t.Fatalf("ListImages page 2: %+v %v", page2, err)
	}

	got, err := e.a.BatchGetImage(ctx, &ecr.BatchGetImageInput{RepositoryName: aws.String("web"), ImageIds: []types.ImageIdentifier{
		{ImageTag: aws.String("v1")}, {ImageTag: aws.String("nope")}, {ImageDigest: aws.String(dgst.String()), ImageTag: aws.String("old")}}})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := img.RawManifest()
	if len(got.Images) != 1 || aws.ToString(got.Images[0].ImageManifest) != string(raw) {
		t.Errorf("BatchGetImage images %+v", got.Images)
	}
	var codes []types.ImageFailureCode
	for _, f := range got.Failures {
		codes = append(codes, f.FailureCode)
	}
	if want := []types.ImageFailureCode{types.ImageFailureCodeImageNotFound, types.ImageFailureCodeImageTagDoesNotMatchDigest}; !slices.Equal(codes, want) {
		t.Errorf("BatchGetImage failures %v, want %v", codes, want)
	}
	if _, err := e.a.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: aws.String("web"),
		ImageIds: []types.ImageIdentifier{{ImageTag: aws.String("nope")}}}); apiCode(err) != "ImageNotFoundException" {
		t.Errorf("describe missing image: %v", err)
	}

	if _, err := e.a.DeleteRepository(ctx, &ecr.DeleteRepositoryInput{RepositoryName: aws.String("web")}); apiCode(err) != "RepositoryNotEmptyException" {
		t.Errorf("delete non-empty: %v", err)
	}

	// Delete by tag: v1 was the image's only tag, so the image goes.
	del, err := e.a.BatchDeleteImage(ctx, &ecr.BatchDeleteImageInput{RepositoryName: aws.String("web"),
		ImageIds: []types.ImageIdentifier{{ImageTag: aws.String("v1")}, {ImageTag: aws.String("v1")}}})
	if err != nil || len(del.ImageIds) != 1 || len(del.Failures) != 1 {
		t.Fatalf("BatchDeleteImage: %+v %v", del, err)
	}
	if _, err := remote.Head(e.ref(t, "web:v1"), basic(pw), remote.WithContext(ctx)); err == nil {
		t.Error("tag v1 still resolves after BatchDeleteImage")
	}
	if _, err := remote.Head(e.ref(t, "web@"+dgst.String()), basic(pw), remote.WithContext(ctx)); err == nil {
		t.Error("the image of v1 is still there after its last tag was deleted")
	}
	// By digest: the image and its tags go.
	if _, err := e.a.BatchDeleteImage(ctx, &ecr.BatchDeleteImageInput{RepositoryName: aws.String("web"),
		ImageIds: []types.ImageIdentifier{{ImageDigest: aws.String(otherDigest.String())}}}); err != nil {
		t.Fatal(err)
	}
	if n := count(types.TagStatusTagged); n != 0 {
		t.Errorf("%d tagged images left", n)
	}
	if _, err := e.a.DeleteRepository(ctx, &ecr.DeleteRepositoryInput{RepositoryName: aws.String("web"), Force: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := remote.List(e.ref(t, "web:x").Context(), basic(pw), remote.WithContext(ctx)); err == nil {
		t.Error("tags of a deleted repository listed")
	} else if _, code := registryCode(err); code != "NAME_UNKNOWN" {
		t.Errorf("tags of a deleted repository: %v", err)
	}
}

func TestRegistryAuth(t *testing.T) {
	e := newEnv(t, false)
	e.create(t, e.a, "web", "")
	e.create(t, e.a, "lib/tools", "")
	pwA, pwB := e.password(t, e.a), e.password(t, e.b)
	mustPush(t, e.ref(t, "web:v1"), basic(pwA))

	e.skew.Store(-13 * 3600)
	old := e.password(t, e.a) // minted 13 hours ago: expired
	e.skew.Store(0)

	tampered := []byte(pwA)
	tampered[len(tampered)-3] ^= 1
	tests := []struct {
		name   string
		ref    string
		opts   []remote.Option
		status int
		code   string
	}{
		{"anonymous", "web:v1", nil, 401, "UNAUTHORIZED"},
		{"wrong user", "web:v1", []remote.Option{remote.WithAuth(&authn.Basic{Username: "root", Password: pwA})}, 401, "UNAUTHORIZED"},
		{"garbage", "web:v1", []remote.Option{basic("hunter2")}, 401, "UNAUTHORIZED"},
		{"tampered", "web:v1", []remote.Option{basic(string(tampered))}, 401, "UNAUTHORIZED"},
		{"expired", "web:v1", []remote.Option{basic(old)}, 401, "UNAUTHORIZED"},
		{"other account", "web:v1", []remote.Option{basic(pwB)}, 404, "NAME_UNKNOWN"},
		{"missing repository", "nope:v1", []remote.Option{basic(pwA)}, 404, "NAME_UNKNOWN"},
	}
	for _, tt := range tests {
		t.Run("pull "+tt.name, func(t *testing.T) {
			_, err := remote.Image(e.ref(t, tt.ref), append(tt.opts, remote.WithContext(ctxT(t)), remote.WithRetryStatusCodes())...)
			if status, code := registryCode(err); status != tt.status || code != tt.code {
				t.Errorf("pull: %v, want %d %s", err, tt.status, tt.code)
			}
		})
		t.Run("push "+tt.name, func(t *testing.T) {
			_, err := push(t, e.ref(t, tt.ref), tt.opts...)
			// A refused HEAD has no body, so no code.
			if status, code := registryCode(err); status != tt.status || (code != "" && code != tt.code) {
				t.Errorf("push: %v, want %d %s", err, tt.status, tt.code)
			}
		})
	}

	// The challenge a client without credentials gets.
	resp, err := http.Get(e.url + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic ") {
		t.Errorf("GET /v2/: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}

	reg, _ := name.NewRegistry(e.host, name.Insecure)
	catalog := func(pw string) []string {
		t.Helper()
		repos, err := remote.Catalog(ctxT(t), reg, basic(pw))
		if err != nil {
			t.Fatalf("catalog: %v", err)
		}
		return repos
	}
	if got, want := catalog(pwA), []string{"lib/tools", "web"}; !slices.Equal(got, want) {
		t.Errorf("A's catalog %v, want %v", got, want)
	}
	if got := catalog(pwB); len(got) != 0 {
		t.Errorf("B's catalog %v, want none", got)
	}
	// B's own "web" is another repository.
	e.create(t, e.b, "web", "")
	if _, err := remote.Image(e.ref(t, "web:v1"), basic(pwB), remote.WithContext(ctxT(t))); err == nil {
		t.Error("B pulled A's web:v1 from its own web")
	}
	tags, err := remote.List(e.ref(t, "web:v1").Context(), basic(pwA), remote.WithContext(ctxT(t)))
	if err != nil || !slices.Equal(tags, []string{"v1"}) {
		t.Errorf("A's tags %v %v", tags, err)
	}
}

func TestImmutableTags(t *testing.T) {
	e := newEnv(t, false)
	ctx := ctxT(t)
	e.create(t, e.a, "frozen", types.ImageTagMutabilityImmutable)
	pw := e.password(t, e.a)
	img := mustPush(t, e.ref(t, "frozen:v1"), basic(pw))
	// The same image again is no change.
	if err := remote.Write(e.ref(t, "frozen:v1"), img, basic(pw), remote.WithContext(ctx)); err != nil {
		t.Errorf("re-push of the same image: %v", err)
	}
	_, err := push(t, e.ref(t, "frozen:v1"), basic(pw))
	if status, code := registryCode(err); status != 400 || code != "TAG_INVALID" ||
		!strings.Contains(err.Error(), "cannot be overwritten because the repository is immutable") {
		t.Errorf("overwrite of an immutable tag: %v", err)
	}
	mustPush(t, e.ref(t, "frozen:v2"), basic(pw))
	if _, err := e.a.PutImageTagMutability(ctx, &ecr.PutImageTagMutabilityInput{RepositoryName: aws.String("frozen"),
		ImageTagMutability: types.ImageTagMutabilityMutable}); err != nil {
		t.Fatal(err)
	}
	mustPush(t, e.ref(t, "frozen:v1"), basic(pw))
}

func TestAnonymousDev(t *testing.T) {
	e := newEnv(t, true)
	ctx := ctxT(t)
	// Anonymous: the dev account, and a push creates the repository.
	img := mustPush(t, e.ref(t, "busybox:latest"))
	out, err := e.dev.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: aws.String("busybox")})
	want, _ := img.Digest()
	if err != nil || len(out.ImageDetails) != 1 || aws.ToString(out.ImageDetails[0].ImageDigest) != want.String() {
		t.Fatalf("dev account's images: %+v %v", out, err)
	}
	if _, err := remote.Image(e.ref(t, "busybox:latest"), remote.WithContext(ctx)); err != nil {
		t.Errorf("anonymous pull: %v", err)
	}
	// With a token, ECR's rule holds: no repository, no push.
	_, err = push(t, e.ref(t, "other:v1"), basic(e.password(t, e.dev)))
	if status, code := registryCode(err); status != 404 || code != "NAME_UNKNOWN" {
		t.Errorf("token push to a missing repository in dev: %v", err)
	}
	// A bad token is not downgraded to anonymous.
	if _, err := remote.Image(e.ref(t, "busybox:latest"), basic("bad"), remote.WithContext(ctx)); err == nil {
		t.Error("pull with a bad token succeeded")
	}
	if _, err := e.a.DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{RepositoryNames: []string{"busybox"}}); apiCode(err) != "RepositoryNotFoundException" {
		t.Errorf("account A sees the dev account's repository: %v", err)
	}
}

// TestPagingNamesTheClientsRepository: the Link headers of tag and catalog
// pages, and the tags list's name, use the client's names, never the
// account namespace they are stored under.
func TestPagingNamesTheClientsRepository(t *testing.T) {
	e := newEnv(t, false)
	e.create(t, e.a, "team/web", "")
	e.create(t, e.a, "zeta", "")
	pw := e.password(t, e.a)
	img := mustPush(t, e.ref(t, "team/web:v1"), basic(pw))
	if err := remote.Tag(e.ref(t, "team/web:v2").(name.Tag), img, basic(pw), remote.WithContext(ctxT(t))); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path     string
		wantLink string
		wantBody string
	}{
		{"/v2/team/web/tags/list?n=1", `</v2/team/web/tags/list?last=v1&n=1>; rel="next"`, `{"name":"team/web","tags":["v1"]}`},
		{"/v2/_catalog?n=1", `</v2/_catalog?last=team%2Fweb&n=1>; rel="next"`, `{"repositories":["team/web"]}`},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(ctxT(t), http.MethodGet, e.url+tt.path, nil)
			req.SetBasicAuth("AWS", pw)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body strings.Builder
			if _, err := io.Copy(&body, resp.Body); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != 200 || resp.Header.Get("Link") != tt.wantLink || strings.TrimSpace(body.String()) != tt.wantBody {
				t.Errorf("%d Link %q body %s, want Link %q body %s", resp.StatusCode, resp.Header.Get("Link"), body.String(), tt.wantLink, tt.wantBody)
			}
		})
	}
}
