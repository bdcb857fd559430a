package agent

import (
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
)

// berth's AWS API inside the VPC. A Fargate task calls AWS through the
// internet or a VPC endpoint; a berth task has neither route to the control
// plane (the host's loopback is not the task's), so the metadata server at
// 169.254.170.2 also passes every request that is not a metadata or
// credentials path to the control plane's API, and containers get
// AWS_ENDPOINT_URL=http://169.254.170.2: the AWS CLI and SDKs inside a task
// call berth with the task role's credentials and no configuration. The
// proxy only carries requests; the control plane authenticates them (SigV4
// signs the Host header, which is passed through unchanged).

// isMetadataPath reports whether path is one of the metadata or
// credentials endpoints' rather than the API's.
func isMetadataPath(path string) bool {
	return strings.HasPrefix(path, "/v4/") || strings.HasPrefix(path, "/v3/") || strings.HasPrefix(path, credentialsPath)
}

// apiProxy is the reverse proxy to the control plane's API, made once.
type apiProxy struct {
	once  sync.Once
	proxy *httputil.ReverseProxy
}

func (m *metadataService) serveAPI(w http.ResponseWriter, r *http.Request) {
	m.api.once.Do(func() {
		target, err := url.Parse(m.a.cfg.APIURL)
		if err != nil || m.a.cfg.APIURL == "" {
			return
		}
		m.api.proxy = &httputil.ReverseProxy{
			Rewrite: func(p *httputil.ProxyRequest) {
				p.Out.URL.Scheme, p.Out.URL.Host = target.Scheme, target.Host
				p.Out.Host = p.In.Host // signed by SigV4: unchanged
				p.SetXForwarded()
			},
		}
	})
	if m.api.proxy == nil {
		writeMetaError(w, http.StatusNotFound, "no such path")
		return
	}
	m.api.proxy.ServeHTTP(w, r)
}
