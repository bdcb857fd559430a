package lbproxy

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// wildcardMatch reports whether s matches pattern, where '*' matches any run
// of bytes (including none) and '?' exactly one byte. It runs in
// O(len(s)·len(pattern)) at worst, without recursion.
func wildcardMatch(pattern, s string) bool {
	p, i := 0, 0
	starP, starI := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == s[i]):
			p++
			i++
		case p < len(pattern) && pattern[p] == '*':
			starP, starI = p, i
			p++
		case starP >= 0:
			starI++
			p, i = starP+1, starI
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// wildcardMatchFold is wildcardMatch ignoring ASCII case.
func wildcardMatchFold(pattern, s string) bool {
	return wildcardMatch(strings.ToLower(pattern), strings.ToLower(s))
}

// requestInfo is what conditions look at.
type requestInfo struct {
	r        *http.Request
	clientIP netip.Addr
	query    url.Values // parsed lazily
}

func (ri *requestInfo) queryValues() url.Values {
	if ri.query == nil {
		ri.query, _ = url.ParseQuery(ri.r.URL.RawQuery)
		if ri.query == nil {
			ri.query = url.Values{}
		}
	}
	return ri.query
}

// matcher is one compiled condition.
type matcher func(ri *requestInfo) bool

// hostOnly strips the port from a Host header.
func hostOnly(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		return h
	}
	return host
}

// compileConditions turns a rule's conditions into matchers (all must match).
func compileConditions(conds []Condition) ([]matcher, error) {
	var out []matcher
	for _, c := range conds {
		m, err := compileCondition(c)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

func compileCondition(c Condition) (matcher, error) {
	values := c.Values
	needValues := func() error {
		if len(values) == 0 {
			return fmt.Errorf("condition %s: no values", c.Field)
		}
		return nil
	}
	switch c.Field {
	case FieldPathPattern:
		if err := needValues(); err != nil {
			return nil, err
		}
		return func(ri *requestInfo) bool {
			path := ri.r.URL.Path
			if path == "" {
				path = "/"
			}
			for _, v := range values {
				if wildcardMatch(v, path) {
					return true
				}
			}
			return false
		}, nil
	case FieldHostHeader:
		if err := needValues(); err != nil {
			return nil, err
		}
		lower := make([]string, len(values))
		for i, v := range values {
			lower[i] = strings.ToLower(v)
		}
		return func(ri *requestInfo) bool {
			host := strings.ToLower(hostOnly(ri.r.Host))
			for _, v := range lower {
				if wildcardMatch(v, host) {
					return true
				}
			}
			return false
		}, nil
	case FieldHTTPHeader:
		if c.HTTPHeaderName == "" {
			return nil, fmt.Errorf("condition http-header: no header name")
		}
		if err := needValues(); err != nil {
			return nil, err
		}
		name := http.CanonicalHeaderKey(c.HTTPHeaderName)
		return func(ri *requestInfo) bool {
			var hv []string
			if name == "Host" {
				hv = []string{ri.r.Host}
			} else {
				hv = ri.r.Header[name]
			}
			for _, h := range hv {
				for _, v := range values {
					if wildcardMatchFold(v, h) {
						return true
					}
				}
			}
			return false
		}, nil
	case FieldHTTPRequestMethod:
		if err := needValues(); err != nil {
			return nil, err
		}
		return func(ri *requestInfo) bool {
			for _, v := range values {
				if ri.r.Method == v {
					return true
				}
			}
			return false
		}, nil
	case FieldQueryString:
		if len(c.QueryString) == 0 {
			return nil, fmt.Errorf("condition query-string: no key/value pairs")
		}
		pairs := c.QueryString
		return func(ri *requestInfo) bool {
			q := ri.queryValues()
			for _, kv := range pairs {
				for k, vs := range q {
					if kv.Key != "" && !wildcardMatchFold(kv.Key, k) {
						continue
					}
					for _, v := range vs {
						if wildcardMatchFold(kv.Value, v) {
							return true
						}
					}
				}
			}
			return false
		}, nil
	case FieldSourceIP:
		if len(c.SourceIP) == 0 {
			return nil, fmt.Errorf("condition source-ip: no CIDRs")
		}
		var prefixes []netip.Prefix
		for _, s := range c.SourceIP {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, fmt.Errorf("condition source-ip: %w", err)
			}
			prefixes = append(prefixes, p.Masked())
		}
		return func(ri *requestInfo) bool {
			for _, p := range prefixes {
				if p.Contains(ri.clientIP) {
					return true
				}
			}
			return false
		}, nil
	default:
		return nil, fmt.Errorf("unsupported condition field %q", c.Field)
	}
}
