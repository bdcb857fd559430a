package ecr_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"

	becr "github.com/berthdev/berth/internal/ecr"
	"github.com/berthdev/berth/internal/protocol"
	"github.com/berthdev/berth/internal/store"
)

const (
	mib          = 1 << 20
	ociManifest  = "application/vnd.oci.image.manifest.v1+json"
	ociIndex     = "application/vnd.oci.image.index.v1+json"
	ociConfig    = "application/vnd.oci.image.config.v1+json"
	ociLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip"
)

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// initiate starts a layer upload and returns its id.
func initiate(t *testing.T, c *ecr.Client, repo string) string {
	t.Helper()
	out, err := c.InitiateLayerUpload(ctxT(t), &ecr.InitiateLayerUploadInput{RepositoryName: aws.String(repo)})
	if err != nil {
		t.Fatalf("InitiateLayerUpload: %v", err)
	}
	if aws.ToInt64(out.PartSize) < 5*mib {
		t.Errorf("partSize %d, want at least 5 MiB", aws.ToInt64(out.PartSize))
	}
	return aws.ToString(out.UploadId)
}

func uploadPart(ctx context.Context, c *ecr.Client, repo, id string, first int64, part []byte) (*ecr.UploadLayerPartOutput, error) {
	return c.UploadLayerPart(ctx, &ecr.UploadLayerPartInput{RepositoryName: aws.String(repo), UploadId: aws.String(id),
		PartFirstByte: aws.Int64(first), PartLastByte: aws.Int64(first + int64(len(part)) - 1), LayerPartBlob: part})
}

// sendParts uploads data in parts of partSize bytes.
func sendParts(t *testing.T, c *ecr.Client, repo, id string, data []byte, partSize int) {
	t.Helper()
	for off := 0; off < len(data); off += partSize {
		part := data[off:min(off+partSize, len(data))]
		out, err := uploadPart(ctxT(t), c, repo, id, int64(off), part)
		if err != nil {
			t.Fatalf("UploadLayerPart at %d: %v", off, err)
		}
		if got, want := aws.ToInt64(out.LastByteReceived), int64(off+len(part)-1); got != want {
			t.Fatalf("lastByteReceived %d, want %d", got, want)
		}
	}
}

func complete(ctx context.Context, c *ecr.Client, repo, id string, d digest.Digest) (*ecr.CompleteLayerUploadOutput, error) {
	return c.CompleteLayerUpload(ctx, &ecr.CompleteLayerUploadInput{RepositoryName: aws.String(repo), UploadId: aws.String(id),
		LayerDigests: []string{d.String()}})
}

// uploadLayer pushes data as a layer through the API, in parts of 5 MiB.
func uploadLayer(t *testing.T, c *ecr.Client, repo string, data []byte) digest.Digest {
	t.Helper()
	id := initiate(t, c, repo)
	sendParts(t, c, repo, id, data, 5*mib)
	d := digest.FromBytes(data)
	out, err := complete(ctxT(t), c, repo, id, d)
	if err != nil {
		t.Fatalf("CompleteLayerUpload: %v", err)
	}
	if aws.ToString(out.LayerDigest) != d.String() || aws.ToString(out.UploadId) != id {
		t.Errorf("CompleteLayerUpload = %+v", out)
	}
	return d
}

type descriptor struct {
	MediaType string        `json:"mediaType"`
	Digest    digest.Digest `json:"digest"`
	Size      int64         `json:"size"`
}

func manifestOf(config []byte, layers ...[]byte) string {
	m := struct {
		SchemaVersion int          `json:"schemaVersion"`
		MediaType     string       `json:"mediaType"`
		Config        descriptor   `json:"config"`
		Layers        []descriptor `json:"layers"`
	}{2, ociManifest, descriptor{ociConfig, digest.FromBytes(config), int64(len(config))}, []descriptor{}}
	for _, l := range layers {
		m.Layers = append(m.Layers, descriptor{ociLayerGzip, digest.FromBytes(l), int64(len(l))})
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func checkLayers(t *testing.T, c *ecr.Client, repo string, ds ...digest.Digest) *ecr.BatchCheckLayerAvailabilityOutput {
	t.Helper()
	in := &ecr.BatchCheckLayerAvailabilityInput{RepositoryName: aws.String(repo)}
	for _, d := range ds {
		in.LayerDigests = append(in.LayerDigests, d.String())
	}
	out, err := c.BatchCheckLayerAvailability(ctxT(t), in)
	if err != nil {
		t.Fatalf("BatchCheckLayerAvailability: %v", err)
	}
	return out
}

func TestLayerUploadPushAndPull(t *testing.T) {
	e := newEnv(t, false)
	ctx := ctxT(t)
	e.create(t, e.a, "api/push", "")
	config := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	big, small := randomBytes(t, 12*mib+12345), randomBytes(t, 3000)
	want := []digest.Digest{digest.FromBytes(big), digest.FromBytes(small), digest.FromBytes(config)}

	before := checkLayers(t, e.a, "api/push", append(want, "sha256:nothex")...)
	if len(before.Layers) != 0 || len(before.Failures) != 4 {
		t.Fatalf("before the upload: %+v", before)
	}
	for i, f := range before.Failures {
		code := types.LayerFailureCodeMissingLayerDigest
		if i == 3 {
			code = types.LayerFailureCodeInvalidLayerDigest
		}
		if f.FailureCode != code {
			t.Errorf("failure %d: %s %s, want %s", i, f.FailureCode, aws.ToString(f.FailureReason), code)
		}
	}

	for i, data := range [][]byte{big, small, config} {
		if d := uploadLayer(t, e.a, "api/push", data); d != want[i] {
			t.Fatalf("layer %d: digest %s, want %s", i, d, want[i])
		}
	}
	after := checkLayers(t, e.a, "api/push", want...)
	if len(after.Failures) != 0 || len(after.Layers) != 3 {
		t.Fatalf("after the upload: %+v", after)
	}
	for i, l := range after.Layers {
		size := []int{len(big), len(small), len(config)}[i]
		if aws.ToString(l.LayerDigest) != want[i].String() || l.LayerAvailability != types.LayerAvailabilityAvailable ||
			aws.ToInt64(l.LayerSize) != int64(size) {
			t.Errorf("layer %d: %s %s %d", i, aws.ToString(l.LayerDigest), l.LayerAvailability, aws.ToInt64(l.LayerSize))
		}
	}
	// Account B's repository of the same name holds none of them.
	e.create(t, e.b, "api/push", "")
	if out := checkLayers(t, e.b, "api/push", want...); len(out.Layers) != 0 {
		t.Errorf("account B sees account A's layers: %+v", out.Layers)
	}

	manifest := manifestOf(config, big, small)
	md := digest.FromString(manifest)
	out, err := e.a.PutImage(ctx, &ecr.PutImageInput{RepositoryName: aws.String("api/push"), ImageManifest: aws.String(manifest),
		ImageTag: aws.String("v1"), ImageDigest: aws.String(md.String())})
	if err != nil {
		t.Fatalf("PutImage: %v", err)
	}
	if img := out.Image; aws.ToString(img.ImageId.ImageDigest) != md.String() || aws.ToString(img.ImageId.ImageTag) != "v1" ||
		aws.ToString(img.ImageManifestMediaType) != ociManifest || aws.ToString(img.ImageManifest) != manifest {
		t.Errorf("PutImage = %+v", img)
	}
	after = checkLayers(t, e.a, "api/push", want[0])
	if len(after.Layers) != 1 || aws.ToString(after.Layers[0].MediaType) != ociLayerGzip {
		t.Errorf("layer media type after PutImage: %+v", after.Layers)
	}

	// The image pulls through /v2/ with a registry password, byte for byte.
	pw := e.password(t, e.a)
	img, err := remote.Image(e.ref(t, "api/push:v1"), basic(pw), remote.WithContext(ctx))
	if err != nil {
		t.Fatalf("pull: %v", err)
	}
	if d, err := img.Digest(); err != nil || d.String() != md.String() {
		t.Errorf("pulled digest %v (%v), want %s", d, err, md)
	}
	if raw, err := img.RawConfigFile(); err != nil || !bytes.Equal(raw, config) {
		t.Errorf("pulled config %q (%v)", raw, err)
	}
	for i, data := range [][]byte{big, small} {
		h, _ := v1.NewHash(want[i].String())
		l, err := img.LayerByDigest(h)
		if err != nil {
			t.Fatal(err)
		}
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		_ = rc.Close()
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("layer %d pulled: %d bytes (%v), want %d", i, len(got), err, len(data))
		}
	}
	desc, err := e.a.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: aws.String("api/push")})
	if err != nil || len(desc.ImageDetails) != 1 || aws.ToInt64(desc.ImageDetails[0].ImageSizeInBytes) != int64(len(big)+len(small)) {
		t.Errorf("DescribeImages: %v %+v", err, desc)
	}

	// The same manifest and tag again is no change; another tag is.
	_, err = e.a.PutImage(ctx, &ecr.PutImageInput{RepositoryName: aws.String("api/push"), ImageManifest: aws.String(manifest), ImageTag: aws.String("v1")})
	if apiCode(err) != "ImageAlreadyExistsException" {
		t.Errorf("PutImage again: %v", err)
	}
	if _, err = e.a.PutImage(ctx, &ecr.PutImageInput{RepositoryName: aws.String("api/push"), ImageManifest: aws.String(manifest),
		ImageTag: aws.String("latest")}); err != nil {
		t.Errorf("PutImage with another tag: %v", err)
	}

	// GetDownloadUrlForLayer: the registry's blob URL, fetched with Basic auth.
	dl, err := e.a.GetDownloadUrlForLayer(ctx, &ecr.GetDownloadUrlForLayerInput{RepositoryName: aws.String("api/push"), LayerDigest: aws.String(want[1].String())})
	if err != nil {
		t.Fatalf("GetDownloadUrlForLayer: %v", err)
	}
	if u := aws.ToString(dl.DownloadUrl); u != e.url+"/v2/api/push/blobs/"+want[1].String() || aws.ToString(dl.LayerDigest) != want[1].String() {
		t.Errorf("GetDownloadUrlForLayer = %s %s", u, aws.ToString(dl.LayerDigest))
	}
	if status, body := fetch(t, aws.ToString(dl.DownloadUrl), pw); status != 200 || !bytes.Equal(body, small) {
		t.Errorf("download: %d, %d bytes", status, len(body))
	}
	if status, _ := fetch(t, aws.ToString(dl.DownloadUrl), ""); status != http.StatusUnauthorized {
		t.Errorf("download without auth: %d", status)
	}
	if status, _ := fetch(t, aws.ToString(dl.DownloadUrl), e.password(t, e.b)); status == 200 {
		t.Errorf("account B downloaded account A's layer")
	}
	// A layer nobody uploaded, and one no image references.
	_, err = e.a.GetDownloadUrlForLayer(ctx, &ecr.GetDownloadUrlForLayerInput{RepositoryName: aws.String("api/push"),
		LayerDigest: aws.String(digest.FromString("absent").String())})
	if apiCode(err) != "LayersNotFoundException" {
		t.Errorf("GetDownloadUrlForLayer of an absent layer: %v", err)
	}
	loose := uploadLayer(t, e.a, "api/push", []byte("loose layer"))
	_, err = e.a.GetDownloadUrlForLayer(ctx, &ecr.GetDownloadUrlForLayerInput{RepositoryName: aws.String("api/push"), LayerDigest: aws.String(loose.String())})
	if apiCode(err) != "LayerInaccessibleException" {
		t.Errorf("GetDownloadUrlForLayer of an unreferenced layer: %v", err)
	}
}

// fetch GETs url with Basic AWS:pw (none when pw is "").
func fetch(t *testing.T, url, pw string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctxT(t), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if pw != "" {
		req.SetBasicAuth("AWS", pw)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

func TestCompleteLayerUploadVerifiesDigest(t *testing.T) {
	e := newEnv(t, false)
	ctx := ctxT(t)
	e.create(t, e.a, "verify", "")
	data := randomBytes(t, 4096)
	id := initiate(t, e.a, "verify")
	sendParts(t, e.a, "verify", id, data, len(data))
	claimed := digest.FromString("something else")
	_, err := complete(ctx, e.a, "verify", id, claimed)
	if apiCode(err) != "InvalidLayerException" {
		t.Fatalf("complete with the wrong digest: %v", err)
	}
	out := checkLayers(t, e.a, "verify", claimed, digest.FromBytes(data))
	if len(out.Layers) != 0 {
		t.Errorf("refused content is available: %+v", out.Layers)
	}
	pw := e.password(t, e.a)
	for _, d := range []digest.Digest{claimed, digest.FromBytes(data)} {
		if status, _ := fetch(t, e.url+"/v2/verify/blobs/"+d.String(), pw); status != http.StatusNotFound {
			t.Errorf("refused content under %s through /v2/: %d", d, status)
		}
	}
	// The refused upload is gone.
	if _, err := complete(ctx, e.a, "verify", id, digest.FromBytes(data)); apiCode(err) != "UploadNotFoundException" {
		t.Errorf("complete after the refusal: %v", err)
	}
	// A malformed digest is refused too, and a second upload of a layer the
	// repository has is LayerAlreadyExistsException.
	d := uploadLayer(t, e.a, "verify", data)
	id = initiate(t, e.a, "verify")
	sendParts(t, e.a, "verify", id, data, len(data))
	if _, err := e.a.CompleteLayerUpload(ctx, &ecr.CompleteLayerUploadInput{RepositoryName: aws.String("verify"), UploadId: aws.String(id),
		LayerDigests: []string{"sha256:abc"}}); apiCode(err) != "InvalidLayerException" {
		t.Errorf("complete with a malformed digest: %v", err)
	}
	id = initiate(t, e.a, "verify")
	sendParts(t, e.a, "verify", id, data, len(data))
	if _, err := complete(ctx, e.a, "verify", id, d); apiCode(err) != "LayerAlreadyExistsException" {
		t.Errorf("complete of a layer the repository has: %v", err)
	}
	// Nothing uploaded: EmptyUploadException.
	id = initiate(t, e.a, "verify")
	if _, err := complete(ctx, e.a, "verify", id, d); apiCode(err) != "EmptyUploadException" {
		t.Errorf("complete of an empty upload: %v", err)
	}
}

func TestUploadLayerPartOrder(t *testing.T) {
	e := newEnv(t, false)
	ctx := ctxT(t)
	e.create(t, e.a, "parts", "")
	e.create(t, e.b, "parts", "")
	data := randomBytes(t, 11*mib)
	id := initiate(t, e.a, "parts")
	lastValid := func(err error, want int64) {
		t.Helper()
		var ipe *types.InvalidLayerPartException
		if !errors.As(err, &ipe) {
			t.Fatalf("want InvalidLayerPartException, got %v", err)
		}
		if got := aws.ToInt64(ipe.LastValidByteReceived); got != want || aws.ToString(ipe.UploadId) != id ||
			aws.ToString(ipe.RepositoryName) != "parts" || aws.ToString(ipe.RegistryId) != accountA {
			t.Errorf("InvalidLayerPartException %+v (lastValidByteReceived %d), want %d", ipe, got, want)
		}
	}
	_, err := uploadPart(ctx, e.a, "parts", id, 100, data[100:200])
	lastValid(err, -1)
	if _, err := uploadPart(ctx, e.a, "parts", id, 0, data[:5*mib]); err != nil {
		t.Fatal(err)
	}
	_, err = uploadPart(ctx, e.a, "parts", id, 0, data[:5*mib]) // the same part again
	lastValid(err, 5*mib-1)
	_, err = uploadPart(ctx, e.a, "parts", id, 5*mib+1, data[5*mib+1:6*mib]) // a gap
	lastValid(err, 5*mib-1)
	_, err = e.a.UploadLayerPart(ctx, &ecr.UploadLayerPartInput{RepositoryName: aws.String("parts"), UploadId: aws.String(id),
		PartFirstByte: aws.Int64(5 * mib), PartLastByte: aws.Int64(6*mib + 10), LayerPartBlob: data[5*mib : 6*mib]}) // wrong length
	lastValid(err, 5*mib-1)
	// A part shorter than 5 MiB must be the last one.
	if _, err := uploadPart(ctx, e.a, "parts", id, 5*mib, data[5*mib:6*mib]); err != nil {
		t.Fatal(err)
	}
	if _, err := uploadPart(ctx, e.a, "parts", id, 6*mib, data[6*mib:]); apiCode(err) != "LayerPartTooSmallException" {
		t.Errorf("part after a short one: %v", err)
	}
	// The upload is account A's: account B's repository of the same name
	// does not know it; an id of the wrong shape is no upload.
	if _, err := uploadPart(ctx, e.b, "parts", id, 6*mib, data[6*mib:]); apiCode(err) != "UploadNotFoundException" {
		t.Errorf("account B continuing account A's upload: %v", err)
	}
	if _, err := uploadPart(ctx, e.a, "parts", "../../../x", 0, data[:10]); apiCode(err) != "UploadNotFoundException" {
		t.Errorf("a made-up upload id: %v", err)
	}
	// What was accepted is intact: 6 MiB, completed under its digest.
	if _, err := complete(ctx, e.a, "parts", id, digest.FromBytes(data[:6*mib])); err != nil {
		t.Errorf("complete: %v", err)
	}
}

func TestPutImageRefusals(t *testing.T) {
	e := newEnv(t, false)
	ctx := ctxT(t)
	e.create(t, e.a, "refuse", "")
	config, layer := []byte(`{"os":"linux"}`), randomBytes(t, 100)
	uploadLayer(t, e.a, "refuse", config)
	put := func(manifest, tag string) error {
		in := &ecr.PutImageInput{RepositoryName: aws.String("refuse"), ImageManifest: aws.String(manifest)}
		if tag != "" {
			in.ImageTag = aws.String(tag)
		}
		_, err := e.a.PutImage(ctx, in)
		return err
	}
	manifest := manifestOf(config, layer)
	err := put(manifest, "v1")
	if apiCode(err) != "LayersNotFoundException" || !strings.Contains(err.Error(), digest.FromBytes(layer).String()) {
		t.Errorf("PutImage with a missing layer: %v", err)
	}
	if images, _ := e.a.ListImages(ctx, &ecr.ListImagesInput{RepositoryName: aws.String("refuse")}); len(images.ImageIds) != 0 {
		t.Errorf("a refused manifest is listed: %+v", images.ImageIds)
	}
	index := `{"schemaVersion":2,"mediaType":"` + ociIndex + `","manifests":[{"mediaType":"` + ociManifest + `","digest":"` +
		digest.FromString(manifest).String() + `","size":` + jsonInt(len(manifest)) + `}]}`
	if err := put(index, "multi"); apiCode(err) != "ReferencedImagesNotFoundException" {
		t.Errorf("PutImage of an index with a missing image: %v", err)
	}
	_, err = e.a.PutImage(ctx, &ecr.PutImageInput{RepositoryName: aws.String("refuse"), ImageManifest: aws.String(manifest),
		ImageDigest: aws.String(digest.FromString("other").String())})
	if apiCode(err) != "ImageDigestDoesNotMatchException" {
		t.Errorf("PutImage with another digest: %v", err)
	}
	if err := put("{not json", "v1"); apiCode(err) != "InvalidParameterException" {
		t.Errorf("PutImage of malformed JSON: %v", err)
	}
	_, err = e.a.PutImage(ctx, &ecr.PutImageInput{RepositoryName: aws.String("refuse"), ImageManifest: aws.String(manifest),
		ImageManifestMediaType: aws.String(ociIndex)})
	if apiCode(err) != "InvalidParameterException" {
		t.Errorf("PutImage with a media type the manifest contradicts: %v", err)
	}
	if _, err := e.a.PutImage(ctx, &ecr.PutImageInput{RepositoryName: aws.String("absent"), ImageManifest: aws.String(manifest)}); apiCode(err) != "RepositoryNotFoundException" {
		t.Errorf("PutImage to a missing repository: %v", err)
	}
	// With the layer the manifest goes in, and then the index.
	uploadLayer(t, e.a, "refuse", layer)
	if err := put(manifest, ""); err != nil {
		t.Fatalf("PutImage: %v", err)
	}
	if err := put(manifest, ""); apiCode(err) != "ImageAlreadyExistsException" {
		t.Errorf("PutImage of the same untagged manifest: %v", err)
	}
	if err := put(index, "multi"); err != nil {
		t.Errorf("PutImage of the index: %v", err)
	}
}

func jsonInt(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestPutImageImmutableTag(t *testing.T) {
	e := newEnv(t, false)
	ctx := ctxT(t)
	for _, repo := range []string{"frozen", "fluid"} {
		mut := types.ImageTagMutabilityMutable
		if repo == "frozen" {
			mut = types.ImageTagMutabilityImmutable
		}
		e.create(t, e.a, repo, mut)
		config1, config2 := []byte(`{"n":1}`), []byte(`{"n":2}`)
		uploadLayer(t, e.a, repo, config1)
		uploadLayer(t, e.a, repo, config2)
		put := func(config []byte, tag string) error {
			_, err := e.a.PutImage(ctx, &ecr.PutImageInput{RepositoryName: aws.String(repo), ImageManifest: aws.String(manifestOf(config)),
				ImageTag: aws.String(tag)})
			return err
		}
		if err := put(config1, "v1"); err != nil {
			t.Fatalf("%s: PutImage: %v", repo, err)
		}
		err := put(config2, "v1")
		if repo == "frozen" && (apiCode(err) != "ImageTagAlreadyExistsException" || !strings.Contains(err.Error(), "immutable")) {
			t.Errorf("%s: moving an immutable tag: %v", repo, err)
		}
		if repo == "fluid" && err != nil {
			t.Errorf("%s: moving a mutable tag: %v", repo, err)
		}
		want := digest.FromString(manifestOf(config1))
		if repo == "fluid" {
			want = digest.FromString(manifestOf(config2))
		}
		out, err := e.a.BatchGetImage(ctx, &ecr.BatchGetImageInput{RepositoryName: aws.String(repo), ImageIds: []types.ImageIdentifier{{ImageTag: aws.String("v1")}}})
		if err != nil || len(out.Images) != 1 || aws.ToString(out.Images[0].ImageId.ImageDigest) != want.String() {
			t.Errorf("%s: v1 after the second push: %v %+v", repo, err, out)
		}
	}
}

// TestLayerUploadAcrossReplicas runs an upload over two servers sharing the
// registry's storage and etcd: parts go to one, the rest and the completion
// to the other, after the first has stopped.
func TestLayerUploadAcrossReplicas(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	etcd, err := store.StartEmbedded(ctx, t.TempDir(), logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(etcd.Close)
	root := t.TempDir()
	replica := func() (*ecr.Client, func()) {
		svc, err := becr.New(ctx, becr.Config{Store: store.New(etcd.Client), RootDir: root, Logger: logger})
		if err != nil {
			t.Fatal(err)
		}
		router := protocol.NewRouter(testKeys{}, logger, protocol.WithRegisterer(nil))
		router.AddJSONService(svc.JSONService())
		router.Handle("/v2/", svc.Handler())
		srv := httptest.NewServer(router)
		c := ecr.NewFromConfig(aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL),
			Credentials: credentials.NewStaticCredentialsProvider("a", "a", "")})
		return c, func() { srv.Close(); _ = svc.Close() }
	}
	one, stopOne := replica()
	two, stopTwo := replica()
	t.Cleanup(stopTwo)
	if _, err := one.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("shared")}); err != nil {
		t.Fatal(err)
	}
	data := randomBytes(t, 7*mib)
	id := initiate(t, one, "shared")
	if _, err := uploadPart(ctx, one, "shared", id, 0, data[:5*mib]); err != nil {
		t.Fatal(err)
	}
	stopOne()
	if _, err := uploadPart(ctx, two, "shared", id, 0, data[:5*mib]); apiCode(err) != "InvalidLayerPartException" {
		t.Errorf("replica two repeating the first part: %v", err)
	}
	if _, err := uploadPart(ctx, two, "shared", id, 5*mib, data[5*mib:]); err != nil {
		t.Fatal(err)
	}
	if _, err := complete(ctx, two, "shared", id, digest.FromBytes(data)); err != nil {
		t.Fatalf("complete on replica two: %v", err)
	}
	if out := checkLayers(t, two, "shared", digest.FromBytes(data)); len(out.Layers) != 1 || aws.ToInt64(out.Layers[0].LayerSize) != int64(len(data)) {
		t.Errorf("layer on replica two: %+v", out)
	}
}

// TestLayerAPICrossAccount: another account's repository is reachable
// through the layer operations (registryId) only as far as its repository
// policy allows, and the download URL names it in the registry's
// cross-account form.
func TestLayerAPICrossAccount(t *testing.T) {
	e := newEnv(t, false)
	ctx := ctxT(t)
	e.create(t, e.a, "shared/web", "")
	config := []byte(`{"os":"linux"}`)
	d := uploadLayer(t, e.a, "shared/web", config)
	if _, err := e.a.PutImage(ctx, &ecr.PutImageInput{RepositoryName: aws.String("shared/web"), ImageManifest: aws.String(manifestOf(config)),
		ImageTag: aws.String("v1")}); err != nil {
		t.Fatal(err)
	}
	checkB := func() error {
		_, err := e.b.BatchCheckLayerAvailability(ctx, &ecr.BatchCheckLayerAvailabilityInput{RegistryId: aws.String(accountA),
			RepositoryName: aws.String("shared/web"), LayerDigests: []string{d.String()}})
		return err
	}
	if err := checkB(); err == nil {
		t.Fatal("account B checked account A's layers without a policy")
	}
	const pullPolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
  "Principal":{"AWS":"arn:aws:iam::222222222222:root"},
  "Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer","ecr:BatchCheckLayerAvailability"]}]}`
	if _, err := e.a.SetRepositoryPolicy(ctx, &ecr.SetRepositoryPolicyInput{RepositoryName: aws.String("shared/web"),
		PolicyText: aws.String(pullPolicy)}); err != nil {
		t.Fatal(err)
	}
	if err := checkB(); err != nil {
		t.Errorf("account B checking layers the policy allows: %v", err)
	}
	dl, err := e.b.GetDownloadUrlForLayer(ctx, &ecr.GetDownloadUrlForLayerInput{RegistryId: aws.String(accountA),
		RepositoryName: aws.String("shared/web"), LayerDigest: aws.String(d.String())})
	if err != nil {
		t.Fatalf("GetDownloadUrlForLayer by B: %v", err)
	}
	if u := aws.ToString(dl.DownloadUrl); u != e.url+"/v2/"+accountA+"/shared/web/blobs/"+d.String() {
		t.Errorf("cross-account download URL %s", u)
	}
	if status, body := fetch(t, aws.ToString(dl.DownloadUrl), e.password(t, e.b)); status != 200 || !bytes.Equal(body, config) {
		t.Errorf("B downloads: %d %q", status, body)
	}
	// Pulling is not pushing.
	if _, err := e.b.InitiateLayerUpload(ctx, &ecr.InitiateLayerUploadInput{RegistryId: aws.String(accountA),
		RepositoryName: aws.String("shared/web")}); err == nil {
		t.Error("account B started an upload into account A's repository with a pull-only policy")
	}
}
