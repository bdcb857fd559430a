package ecr_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

func (e *env) setPolicy(t *testing.T, c *ecr.Client, repo, text string) {
	t.Helper()
	if _, err := c.SetRepositoryPolicy(ctxT(t), &ecr.SetRepositoryPolicyInput{RepositoryName: aws.String(repo), PolicyText: aws.String(text)}); err != nil {
		t.Fatalf("SetRepositoryPolicy: %v", err)
	}
}

// pull fetches an image with its config and layers.
func (e *env) pull(t *testing.T, pw, ref string) error {
	t.Helper()
	img, err := remote.Image(e.ref(t, ref), basic(pw), remote.WithContext(ctxT(t)), remote.WithRetryStatusCodes())
	if err != nil {
		return err
	}
	return validate.Image(img)
}

const allowBPull = `{"Version":"2012-10-17","Statement":[{"Sid":"pull","Effect":"Allow",
  "Principal":{"AWS":"arn:aws:iam::222222222222:root"},
  "Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer","ecr:BatchCheckLayerAvailability"]}]}`

func TestCrossAccountPull(t *testing.T) {
	e, _ := newSvcEnv(t, -1)
	e.create(t, e.a, "web", "")
	pwA, pwB, pwDev := e.password(t, e.a), e.password(t, e.b), e.password(t, e.dev)
	img := mustPush(t, e.ref(t, "web:v1"), basic(pwA))
	want, _ := img.Digest()

	// Before any policy: B cannot pull, list or push, and a repository
	// that does not exist answers the same.
	for _, ref := range []string{accountA + "/web:v1", accountA + "/nope:v1"} {
		if status, code := registryCode(e.pull(t, pwB, ref)); status != 403 || code != "DENIED" {
			t.Errorf("B pulls %s without a policy: %d %s", ref, status, code)
		}
	}
	if _, err := remote.List(e.ref(t, accountA+"/web:v1").Context(), basic(pwB), remote.WithContext(ctxT(t))); err == nil {
		t.Error("B listed A's tags without a policy")
	} else if status, code := registryCode(err); status != 403 || code != "DENIED" {
		t.Errorf("B lists A's tags: %v", err)
	}
	// A names its own repository either way.
	if err := e.pull(t, pwA, accountA+"/web:v1"); err != nil {
		t.Errorf("A pulls its own web by account: %v", err)
	}

	e.setPolicy(t, e.a, "web", allowBPull)
	if err := e.pull(t, pwB, accountA+"/web:v1"); err != nil {
		t.Fatalf("B pulls with a policy allowing it: %v", err)
	}
	d, err := remote.Head(e.ref(t, accountA+"/web:v1"), basic(pwB), remote.WithContext(ctxT(t)))
	if err != nil || d.Digest != want {
		t.Errorf("B's HEAD of A's web:v1: %v %v", d, err)
	}
	// Pull only: no push, no tag listing (ecr:ListImages), and nobody else.
	if _, err := push(t, e.ref(t, accountA+"/web:v2"), basic(pwB)); err == nil {
		t.Error("B pushed to A's repository with a pull-only policy")
	} else if status, _ := registryCode(err); status != 403 {
		t.Errorf("B pushes: %v", err)
	}
	if _, err := remote.List(e.ref(t, accountA+"/web:v1").Context(), basic(pwB), remote.WithContext(ctxT(t))); err == nil {
		t.Error("B listed A's tags with a pull-only policy")
	}
	if status, code := registryCode(e.pull(t, pwDev, accountA+"/web:v1")); status != 403 || code != "DENIED" {
		t.Errorf("a third account pulls: %d %s", status, code)
	}
	// B's own "web" is still its own.
	if status, code := registryCode(e.pull(t, pwB, "web:v1")); status != 404 || code != "NAME_UNKNOWN" {
		t.Errorf("B pulls its own (missing) web: %d %s", status, code)
	}

	// Deny wins over Allow.
	e.setPolicy(t, e.a, "web", `{"Version":"2012-10-17","Statement":[
	  {"Effect":"Allow","Principal":"*","Action":"ecr:*"},
	  {"Effect":"Deny","Principal":{"AWS":["222222222222"]},"Action":"ecr:BatchGet*"}]}`)
	if status, code := registryCode(e.pull(t, pwB, accountA+"/web:v1")); status != 403 || code != "DENIED" {
		t.Errorf("B pulls despite a Deny: %d %s", status, code)
	}
	if err := e.pull(t, pwDev, accountA+"/web:v1"); err != nil {
		t.Errorf("a third account pulls with Principal *: %v", err)
	}
	// ecr:* allows the dev account to push and list too.
	mustPush(t, e.ref(t, accountA+"/web:dev"), basic(pwDev))
	tags, err := remote.List(e.ref(t, accountA+"/web:v1").Context(), basic(pwDev), remote.WithContext(ctxT(t)))
	if err != nil || len(tags) != 2 {
		t.Errorf("dev lists A's tags: %v %v", tags, err)
	}

	// Without the policy, access ends.
	if _, err := e.a.DeleteRepositoryPolicy(ctxT(t), &ecr.DeleteRepositoryPolicyInput{RepositoryName: aws.String("web")}); err != nil {
		t.Fatal(err)
	}
	if status, code := registryCode(e.pull(t, pwDev, accountA+"/web:v1")); status != 403 || code != "DENIED" {
		t.Errorf("dev pulls after the policy is deleted: %d %s", status, code)
	}
}

func TestRepositoryPolicyAPI(t *testing.T) {
	e, _ := newSvcEnv(t, -1)
	ctx := ctxT(t)
	e.create(t, e.a, "web", "")
	repo := aws.String("web")
	if _, err := e.a.GetRepositoryPolicy(ctx, &ecr.GetRepositoryPolicyInput{RepositoryName: repo}); apiCode(err) != "RepositoryPolicyNotFoundException" {
		t.Errorf("Get without a policy: %v", err)
	}
	if _, err := e.a.DeleteRepositoryPolicy(ctx, &ecr.DeleteRepositoryPolicyInput{RepositoryName: repo}); apiCode(err) != "RepositoryPolicyNotFoundException" {
		t.Errorf("Delete without a policy: %v", err)
	}
	if _, err := e.a.SetRepositoryPolicy(ctx, &ecr.SetRepositoryPolicyInput{RepositoryName: aws.String("nope"), PolicyText: aws.String(allowBPull)}); apiCode(err) != "RepositoryNotFoundException" {
		t.Errorf("Set on a missing repository: %v", err)
	}
	out, err := e.a.SetRepositoryPolicy(ctx, &ecr.SetRepositoryPolicyInput{RepositoryName: repo, PolicyText: aws.String(allowBPull)})
	if err != nil || aws.ToString(out.PolicyText) != allowBPull || aws.ToString(out.RegistryId) != accountA {
		t.Fatalf("Set: %+v %v", out, err)
	}
	got, err := e.a.GetRepositoryPolicy(ctx, &ecr.GetRepositoryPolicyInput{RepositoryName: repo})
	if err != nil || aws.ToString(got.PolicyText) != allowBPull || aws.ToString(got.RepositoryName) != "web" {
		t.Errorf("Get: %+v %v", got, err)
	}
	// Only the owner manages the policy.
	if _, err := e.b.GetRepositoryPolicy(ctx, &ecr.GetRepositoryPolicyInput{RegistryId: aws.String(accountA), RepositoryName: repo}); apiCode(err) != "InvalidParameterException" {
		t.Errorf("B reads A's policy: %v", err)
	}
	del, err := e.a.DeleteRepositoryPolicy(ctx, &ecr.DeleteRepositoryPolicyInput{RepositoryName: repo})
	if err != nil || aws.ToString(del.PolicyText) != allowBPull {
		t.Errorf("Delete: %+v %v", del, err)
	}
	if _, err := e.a.GetRepositoryPolicy(ctx, &ecr.GetRepositoryPolicyInput{RepositoryName: repo}); apiCode(err) != "RepositoryPolicyNotFoundException" {
		t.Errorf("Get after Delete: %v", err)
	}
	// A policy does not survive its repository.
	e.setPolicy(t, e.a, "web", allowBPull)
	if _, err := e.a.DeleteRepository(ctx, &ecr.DeleteRepositoryInput{RepositoryName: repo}); err != nil {
		t.Fatal(err)
	}
	e.create(t, e.a, "web", "")
	if _, err := e.a.GetRepositoryPolicy(ctx, &ecr.GetRepositoryPolicyInput{RepositoryName: repo}); apiCode(err) != "RepositoryPolicyNotFoundException" {
		t.Errorf("a recreated repository has the old policy: %v", err)
	}
	// Names in the cross-account form cannot be created.
	if _, err := e.a.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("123456789012/web")}); apiCode(err) != "InvalidParameterException" {
		t.Errorf("CreateRepository 123456789012/web: %v", err)
	}
	e.create(t, e.a, "12345/web", "") // not 12 digits: an ordinary name

	stmt := func(s string) string { return `{"Version":"2012-10-17","Statement":[` + s + `]}` }
	bad := map[string]string{
		"not json":          `{"Statement":[`,
		"empty":             `{}`,
		"unknown key":       `{"Version":"2012-10-17","Statement":[],"Extra":1}`,
		"bad version":       `{"Version":"2020-01-01","Statement":[{"Effect":"Allow","Principal":"*","Action":"ecr:*"}]}`,
		"bad effect":        stmt(`{"Effect":"Maybe","Principal":"*","Action":"ecr:*"}`),
		"no principal":      stmt(`{"Effect":"Allow","Action":"ecr:*"}`),
		"bad principal":     stmt(`{"Effect":"Allow","Principal":{"AWS":"bob"},"Action":"ecr:*"}`),
		"principal type":    stmt(`{"Effect":"Allow","Principal":{"Wizard":"x"},"Action":"ecr:*"}`),
		"no action":         stmt(`{"Effect":"Allow","Principal":"*"}`),
		"non-ecr action":    stmt(`{"Effect":"Allow","Principal":"*","Action":"s3:GetObject"}`),
		"condition":         stmt(`{"Effect":"Allow","Principal":"*","Action":"ecr:*","Condition":{"StringEquals":{"aws:x":"y"}}}`),
		"not action":        stmt(`{"Effect":"Allow","Principal":"*","NotAction":"ecr:*"}`),
		"statement garbage": `{"Version":"2012-10-17","Statement":"yes"}`,
		"trailing data":     allowBPull + "{}",
	}
	for name, text := range bad {
		t.Run(name, func(t *testing.T) {
			_, err := e.a.SetRepositoryPolicy(ctx, &ecr.SetRepositoryPolicyInput{RepositoryName: repo, PolicyText: aws.String(text)})
			if apiCode(err) != "InvalidParameterException" {
				t.Errorf("Set: %v, want InvalidParameterException", err)
			}
		})
	}
	// Accepted forms: one statement object, a bare account, a role (which
	// matches no caller), Resource.
	for _, text := range []string{
		`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"222222222222"},"Action":"ecr:BatchGetImage"}}`,
		stmt(`{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::222222222222:role/ci","*"]},"Action":"*","Resource":"*"}`),
		stmt(`{"Sid":"svc","Effect":"Allow","Principal":{"Service":"codebuild.amazonaws.com"},"Action":["ecr:BatchGetImage"]}`),
	} {
		if _, err := e.a.SetRepositoryPolicy(ctx, &ecr.SetRepositoryPolicyInput{RepositoryName: repo, PolicyText: aws.String(text)}); err != nil {
			t.Errorf("Set %s: %v", text, err)
		}
	}
}

// TestCrossAccountAPI: registryId names another account's repository in the
// image operations, as its policy allows.
func TestCrossAccountAPI(t *testing.T) {
	e, _ := newSvcEnv(t, -1)
	ctx := ctxT(t)
	e.create(t, e.a, "web", "")
	pwA := e.password(t, e.a)
	img := mustPush(t, e.ref(t, "web:v1"), basic(pwA))
	want, _ := img.Digest()
	other := func() *ecr.DescribeImagesInput {
		return &ecr.DescribeImagesInput{RegistryId: aws.String(accountA), RepositoryName: aws.String("web")}
	}
	if _, err := e.b.DescribeImages(ctx, other()); apiCode(err) != "AccessDeniedException" {
		t.Errorf("B describes A's images without a policy: %v", err)
	}
	if _, err := e.b.DescribeImages(ctx, &ecr.DescribeImagesInput{RegistryId: aws.String(accountA), RepositoryName: aws.String("nope")}); apiCode(err) != "AccessDeniedException" {
		t.Errorf("B describes A's missing repository: %v", err)
	}
	e.setPolicy(t, e.a, "web", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"222222222222"},
	  "Action":["ecr:DescribeImages","ecr:BatchGetImage"]}]}`)
	out, err := e.b.DescribeImages(ctx, other())
	if err != nil || len(out.ImageDetails) != 1 || aws.ToString(out.ImageDetails[0].ImageDigest) != want.String() ||
		aws.ToString(out.ImageDetails[0].RegistryId) != accountA {
		t.Errorf("B describes A's images with a policy: %+v %v", out, err)
	}
	got, err := e.b.BatchGetImage(ctx, &ecr.BatchGetImageInput{RegistryId: aws.String(accountA), RepositoryName: aws.String("web"),
		ImageIds: []types.ImageIdentifier{{ImageTag: aws.String("v1")}}})
	if err != nil || len(got.Images) != 1 {
		t.Errorf("B gets A's image: %+v %v", got, err)
	}
	if _, err := e.b.ListImages(ctx, &ecr.ListImagesInput{RegistryId: aws.String(accountA), RepositoryName: aws.String("web")}); apiCode(err) != "AccessDeniedException" {
		t.Errorf("B lists A's images without ecr:ListImages: %v", err)
	}
	if _, err := e.b.BatchDeleteImage(ctx, &ecr.BatchDeleteImageInput{RegistryId: aws.String(accountA), RepositoryName: aws.String("web"),
		ImageIds: []types.ImageIdentifier{{ImageTag: aws.String("v1")}}}); apiCode(err) != "AccessDeniedException" {
		t.Errorf("B deletes A's image: %v", err)
	}
	if _, err := e.b.DescribeImages(ctx, &ecr.DescribeImagesInput{RegistryId: aws.String("12"), RepositoryName: aws.String("web")}); apiCode(err) != "InvalidParameterException" {
		t.Errorf("a malformed registryId: %v", err)
	}
}
