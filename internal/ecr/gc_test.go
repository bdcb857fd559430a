package ecr_test

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// TestGarbageCollection: deleting an image frees its blobs once the grace
// period has passed, and never touches blobs another image still uses.
func TestGarbageCollection(t *testing.T) {
	e, svc := newSvcEnv(t, -1)
	ctx := ctxT(t)
	e.create(t, e.a, "gc", types.ImageTagMutabilityMutable)
	pw := e.password(t, e.a)
	gone := mustPush(t, e.ref(t, "gc:gone"), basic(pw))
	kept := mustPush(t, e.ref(t, "gc:kept"), basic(pw))

	if _, err := e.a.BatchDeleteImage(ctx, &ecr.BatchDeleteImageInput{RepositoryName: aws.String("gc"),
		ImageIds: []types.ImageIdentifier{{ImageTag: aws.String("gone")}}}); err != nil {
		t.Fatal(err)
	}
	// Within the grace period nothing goes: a push may still need its blobs.
	res, err := svc.CollectGarbage(ctx, time.Hour)
	if err != nil || res.Blobs != 0 {
		t.Fatalf("sweep within grace: %+v %v", res, err)
	}
	res, err = svc.CollectGarbage(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	goneLayers, _ := gone.Layers()
	// The deleted image's manifest, config and layers are freed.
	if want := 2 + len(goneLayers); res.Blobs != want || res.Bytes <= 0 {
		t.Fatalf("swept %+v, want %d blobs", res, want)
	}
	// The other image is whole: pull every byte of it.
	img, err := remote.Image(e.ref(t, "gc:kept"), basic(pw))
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatalf("layer of the kept image: %v", err)
		}
		rc.Close()
	}
	if d1, _ := img.Digest(); func() bool { d2, _ := kept.Digest(); return d1 != d2 }() {
		t.Fatal("kept image changed")
	}
	// A second sweep finds nothing more.
	if res, err := svc.CollectGarbage(ctx, 0); err != nil || res.Blobs != 0 {
		t.Fatalf("second sweep: %+v %v", res, err)
	}
}
