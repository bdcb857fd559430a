package registry

import (
	"archive/tar"
	"bytes"
	"io"
	"testing"
	"time"
)

func TestStats(t *testing.T) {
	if m := median([]float64{3, 1, 2}); m != 2 {
		t.Errorf("median odd = %v", m)
	}
	if m := median([]float64{4, 1, 3, 2}); m != 2.5 {
		t.Errorf("median even = %v", m)
	}
	if lo, hi := minMax([]float64{2, 5, 1}); lo != 1 || hi != 5 {
		t.Errorf("minMax = %v %v", lo, hi)
	}
	if r := mbps(100e6, 2*time.Second); r != 50 {
		t.Errorf("mbps = %v", r)
	}
	ts := []trial{{push: time.Second, pull: 500 * time.Millisecond, bytes: 10e6}}
	if p, l := rates(ts, false), rates(ts, true); p[0] != 10 || l[0] != 20 {
		t.Errorf("rates = %v %v", p, l)
	}
}

func TestThroughputImage(t *testing.T) {
	a, size, err := throughputImage(3, 1000)
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := throughputImage(3, 1000)
	if err != nil {
		t.Fatal(err)
	}
	da, _ := a.Digest()
	db, _ := b.Digest()
	if da == db {
		t.Fatal("two images have the same digest: layers are not fresh")
	}
	layers, err := a.Layers()
	if err != nil || len(layers) != 3 {
		t.Fatalf("layers %d, %v", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	raw, _ := io.ReadAll(rc)
	tr := tar.NewReader(bytes.NewReader(raw))
	h, err := tr.Next()
	if err != nil || h.Size != 1000 {
		t.Fatalf("layer tar: %v %v", h, err)
	}
	m, _ := a.Manifest()
	raw2, _ := a.RawManifest()
	want := m.Config.Size + int64(len(raw2))
	for _, l := range m.Layers {
		want += l.Size
	}
	if size != want || size < 3000 {
		t.Fatalf("size %d, want %d", size, want)
	}
}
