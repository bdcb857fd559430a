package ecr_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
)

// rawRegistry speaks the OCI distribution API by hand, so that tests can send
// what no well-behaved client would.
type rawRegistry struct {
	t    *testing.T
	base string // http://host/v2/NAME
	pw   string
}

func (r rawRegistry) do(method, path string, body io.Reader, header map[string]string) (*http.Response, []byte) {
	r.t.Helper()
	url := path
	if !strings.HasPrefix(path, "http") {
		url = r.base + path
	}
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		r.t.Fatal(err)
	}
	req.SetBasicAuth("AWS", r.pw)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// upload starts a blob upload and returns its absolute location.
func (r rawRegistry) upload() string {
	r.t.Helper()
	resp, b := r.do(http.MethodPost, "/blobs/uploads/", nil, nil)
	if resp.StatusCode != http.StatusAccepted {
		r.t.Fatalf("start upload: %s %s", resp.Status, b)
	}
	loc := resp.Header.Get("Location")
	if strings.HasPrefix(loc, "/") {
		loc = r.base[:strings.Index(r.base, "/v2/")] + loc
	}
	return loc
}

func withQuery(loc, q string) string {
	if strings.Contains(loc, "?") {
		return loc + "&" + q
	}
	return loc + "?" + q
}

func errCode(b []byte) string {
	var e struct {
		Errors []struct {
			Code string `json:"code"`
		} `json:"errors"`
	}
	if json.Unmarshal(b, &e) != nil || len(e.Errors) == 0 {
		return ""
	}
	return e.Errors[0].Code
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// TestRegistryBadInput: content that does not match its digest, truncated
// uploads and malformed manifests are answered with the OCI error codes, and
// nothing half-written ever becomes visible.
func TestRegistryBadInput(t *testing.T) {
	e := newEnv(t, false)
	e.create(t, e.a, "bad", types.ImageTagMutabilityMutable)
	r := rawRegistry{t: t, base: e.url + "/v2/bad", pw: e.password(t, e.a)}

	blob := make([]byte, 4096)
	_, _ = rand.Read(blob)
	good := sha(blob)
	wrong := sha(append([]byte("x"), blob...))

	t.Run("digest does not match the content", func(t *testing.T) {
		resp, b := r.do(http.MethodPut, withQuery(r.upload(), "digest="+wrong), bytes.NewReader(blob), map[string]string{"Content-Type": "application/octet-stream"})
		if resp.StatusCode != http.StatusBadRequest || errCode(b) != "DIGEST_INVALID" {
			t.Fatalf("got %s %s, want 400 DIGEST_INVALID", resp.Status, b)
		}
		for _, d := range []string{wrong, good} {
			if resp, _ := r.do(http.MethodHead, "/blobs/"+d, nil, nil); resp.StatusCode != http.StatusNotFound {
				t.Fatalf("blob %s is visible after a failed upload: %s", d, resp.Status)
			}
		}
	})

	t.Run("truncated upload", func(t *testing.T) {
		// The client says the blob is its digest but sends only half of it.
		resp, b := r.do(http.MethodPut, withQuery(r.upload(), "digest="+good), bytes.NewReader(blob[:len(blob)/2]), nil)
		if resp.StatusCode != http.StatusBadRequest || errCode(b) != "DIGEST_INVALID" {
			t.Fatalf("got %s %s, want 400 DIGEST_INVALID", resp.Status, b)
		}
		if resp, _ := r.do(http.MethodHead, "/blobs/"+good, nil, nil); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("a truncated blob is visible: %s", resp.Status)
		}
	})

	t.Run("malformed manifests", func(t *testing.T) {
		const oci = "application/vnd.oci.image.manifest.v1+json"
		cases := []struct{ name, body string }{
			{"not JSON", "{this is not json"},
			{"wrong schema version", `{"schemaVersion":1,"mediaType":"` + oci + `","config":{},"layers":[]}`},
			{"config blob missing", fmt.Sprintf(`{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":10},"layers":[]}`, oci, wrong)},
		}
		for _, c := range cases {
			resp, b := r.do(http.MethodPut, "/manifests/broken", strings.NewReader(c.body), map[string]string{"Content-Type": oci})
			code := errCode(b)
			if resp.StatusCode != http.StatusBadRequest || (code != "MANIFEST_INVALID" && code != "MANIFEST_BLOB_UNKNOWN" && code != "BLOB_UNKNOWN") {
				t.Errorf("%s: got %s %s, want 400 MANIFEST_INVALID or MANIFEST_BLOB_UNKNOWN", c.name, resp.Status, b)
			}
		}
		if resp, _ := r.do(http.MethodGet, "/manifests/broken", nil, map[string]string{"Accept": oci}); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("a refused manifest is visible: %s", resp.Status)
		}
	})

	t.Run("manifest digest does not match", func(t *testing.T) {
		resp, b := r.do(http.MethodPut, "/manifests/"+wrong, strings.NewReader(`{"schemaVersion":2}`),
			map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
		if resp.StatusCode < 400 || resp.StatusCode >= 500 {
			t.Fatalf("got %s %s, want a 4xx", resp.Status, b)
		}
	})

	t.Run("oversized manifest", func(t *testing.T) {
		big := `{"schemaVersion":2,"annotations":{"x":"` + strings.Repeat("a", 5<<20) + `"}}`
		resp, b := r.do(http.MethodPut, "/manifests/big", strings.NewReader(big),
			map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
		if resp.StatusCode < 400 || resp.StatusCode >= 500 {
			t.Fatalf("got %s %.200s, want a 4xx", resp.Status, b)
		}
	})

	t.Run("tampered token", func(t *testing.T) {
		bad := rawRegistry{t: t, base: r.base, pw: r.pw[:len(r.pw)-2] + "xx"}
		resp, b := bad.do(http.MethodGet, "/tags/list", nil, nil)
		if resp.StatusCode != http.StatusUnauthorized || errCode(b) != "UNAUTHORIZED" {
			t.Fatalf("got %s %s, want 401 UNAUTHORIZED", resp.Status, b)
		}
	})

	// After all that, a correct upload still works.
	resp, b := r.do(http.MethodPut, withQuery(r.upload(), "digest="+good), bytes.NewReader(blob), nil)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("good upload: %s %s", resp.Status, b)
	}
	if resp, _ := r.do(http.MethodHead, "/blobs/"+good, nil, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("good blob: %s", resp.Status)
	}
}
