package agent

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestAPIProxy: a task's request to 169.254.170.2 that is not a metadata
// path reaches the control plane's API with its Host header (which SigV4
// signs) unchanged; a caller that is no task here is refused; metadata
// paths are still served locally.
func TestAPIProxy(t *testing.T) {
	var gotHost, gotTarget, gotBody string
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		gotHost, gotTarget, gotBody = r.Host, r.Header.Get("X-Amz-Target"), string(b)
		_, _ = io.WriteString(w, `{"clusterArns":[]}`)
	}))
	t.Cleanup(api.Close)
	m, _, _ := newMetaTestService(t)
	m.a.cfg.APIURL = api.URL
	m.mu.Lock()
	m.tasks["a"] = metaTestTask("1", "vpc-1", "172.31.0.4")
	m.mu.Unlock()
	h := m.handler("vpc-1")

	for _, tc := range []struct {
		name, from, method, path string
		status                   int
		reachesAPI               bool
	}{
		{"task's API call", "172.31.0.4", http.MethodPost, "/", 200, true},
		{"registry path", "172.31.0.4", http.MethodGet, "/v2/", 200, true},
		{"metadata stays local", "172.31.0.4", http.MethodGet, "/v4/task1-app", 200, false},
		{"not a task", "172.31.0.99", http.MethodPost, "/", 404, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gotHost, gotTarget = "", ""
			r := httptest.NewRequest(tc.method, "http://169.254.170.2"+tc.path, strings.NewReader(`{}`))
			r.Host = "169.254.170.2"
			r.Header.Set("X-Amz-Target", "AmazonEC2ContainerServiceV20141113.ListClusters")
			r.RemoteAddr = tc.from + ":40000"
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			if reached := gotTarget != ""; reached != tc.reachesAPI {
				t.Fatalf("reached the API: %v, want %v", reached, tc.reachesAPI)
			}
			if tc.reachesAPI && gotHost != "169.254.170.2" {
				t.Errorf("Host at the API %q, want the signed 169.254.170.2", gotHost)
			}
			if tc.reachesAPI && tc.method == http.MethodPost && gotBody != `{}` {
				t.Errorf("body at the API %q", gotBody)
			}
		})
	}
}
