package lbproxy

import (
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func TestWildcardMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, s string
		want       bool
	}{
		{"", "", true},
		{"", "a", false},
		{"*", "", true},
		{"*", "/anything/at/all", true},
		{"/api/*", "/api/", true},
		{"/api/*", "/api/v1/users", true},
		{"/api/*", "/api", false},
		{"/api/*", "/API/x", false},
		{"/img/*.png", "/img/a/b.png", true},
		{"/img/*.png", "/img/a/b.jpg", false},
		{"/a?c", "/abc", true},
		{"/a?c", "/ac", false},
		{"*.example.com", "www.example.com", true},
		{"*.example.com", "example.com", false},
		{"a*b*c", "aXbYbZc", true},
		{"a*b*c", "aXbYbZ", false},
		{"**", "x", true},
		{"?*", "", false},
	} {
		if got := wildcardMatch(tc.pattern, tc.s); got != tc.want {
			t.Errorf("wildcardMatch(%q, %q) = %v, want %v", tc.pattern, tc.s, got, tc.want)
		}
	}
}

// wildcardRef is the reference semantics: the pattern as an anchored regexp.
func wildcardRef(pattern, s string) bool {
	var b strings.Builder
	b.WriteString(`(?s)^`)
	for _, r := range []byte(pattern) {
		switch r {
		case '*':
			b.WriteString(`.*`)
		case '?':
			b.WriteString(`.`)
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString(`$`)
	return regexp.MustCompile(b.String()).MatchString(s)
}

func FuzzWildcard(f *testing.F) {
	for _, s := range [][2]string{{"/api/*", "/api/v1"}, {"*.example.com", "a.example.com"}, {"a?c*", "abcd"}, {"***", ""}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, s string) {
		// The reference works on bytes only for ASCII ('.' is one rune).
		for _, c := range []byte(pattern + s) {
			if c >= 0x80 {
				t.Skip()
			}
		}
		if len(pattern) > 64 || len(s) > 256 {
			t.Skip()
		}
		if got, want := wildcardMatch(pattern, s), wildcardRef(pattern, s); got != want {
			t.Fatalf("wildcardMatch(%q, %q) = %v, reference %v", pattern, s, got, want)
		}
		if got, want := wildcardMatchFold(pattern, s), wildcardRef(strings.ToLower(pattern), strings.ToLower(s)); got != want {
			t.Fatalf("wildcardMatchFold(%q, %q) = %v, reference %v", pattern, s, got, want)
		}
	})
}

func TestConditions(t *testing.T) {
	type req struct {
		method, target, host, src string
		hdr                       [][2]string
	}
	for _, tc := range []struct {
		name string
		cond Condition
		req  req
		want bool
	}{
		{"path match", Condition{Field: FieldPathPattern, Values: []string{"/api/*"}}, req{target: "/api/x"}, true},
		{"path OR", Condition{Field: FieldPathPattern, Values: []string{"/a", "/b*"}}, req{target: "/bz"}, true},
		{"path case-sensitive", Condition{Field: FieldPathPattern, Values: []string{"/api/*"}}, req{target: "/Api/x"}, false},
		{"path ignores query", Condition{Field: FieldPathPattern, Values: []string{"/x"}}, req{target: "/x?a=1"}, true},
		{"host case-insensitive", Condition{Field: FieldHostHeader, Values: []string{"*.Example.com"}}, req{host: "WWW.example.COM"}, true},
		{"host without port", Condition{Field: FieldHostHeader, Values: []string{"a.example.com"}}, req{host: "a.example.com:8080"}, true},
		{"host miss", Condition{Field: FieldHostHeader, Values: []string{"a.example.com"}}, req{host: "b.example.com"}, false},
		{"header", Condition{Field: FieldHTTPHeader, HTTPHeaderName: "x-env", Values: []string{"prod*"}}, req{hdr: [][2]string{{"X-Env", "PRODUCTION"}}}, true},
		{"header second value", Condition{Field: FieldHTTPHeader, HTTPHeaderName: "X-Env", Values: []string{"beta"}}, req{hdr: [][2]string{{"X-Env", "prod"}, {"X-Env", "beta"}}}, true},
		{"header absent", Condition{Field: FieldHTTPHeader, HTTPHeaderName: "X-Env", Values: []string{"*"}}, req{}, false},
		{"method", Condition{Field: FieldHTTPRequestMethod, Values: []string{"GET", "HEAD"}}, req{method: "HEAD"}, true},
		{"method exact", Condition{Field: FieldHTTPRequestMethod, Values: []string{"POST"}}, req{method: "GET"}, false},
		{"query key+value", Condition{Field: FieldQueryString, QueryString: []KeyValue{{Key: "version", Value: "v2*"}}}, req{target: "/?version=V2.1"}, true},
		{"query any key", Condition{Field: FieldQueryString, QueryString: []KeyValue{{Value: "blue"}}}, req{target: "/?color=blue"}, true},
		{"query miss", Condition{Field: FieldQueryString, QueryString: []KeyValue{{Key: "a", Value: "1"}}}, req{target: "/?a=2&b=1"}, false},
		{"source ip", Condition{Field: FieldSourceIP, SourceIP: []string{"10.0.0.0/8", "192.168.1.0/24"}}, req{src: "192.168.1.7:5555"}, true},
		{"source ip miss", Condition{Field: FieldSourceIP, SourceIP: []string{"10.0.0.0/8"}}, req{src: "11.0.0.1:5555"}, false},
		{"source ipv6", Condition{Field: FieldSourceIP, SourceIP: []string{"2001:db8::/32"}}, req{src: "[2001:db8::1]:5555"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := compileCondition(tc.cond)
			if err != nil {
				t.Fatal(err)
			}
			method, target := tc.req.method, tc.req.target
			if method == "" {
				method = "GET"
			}
			if target == "" {
				target = "/"
			}
			r := httptest.NewRequest(method, target, nil)
			if tc.req.host != "" {
				r.Host = tc.req.host
			}
			if tc.req.src != "" {
				r.RemoteAddr = tc.req.src
			}
			for _, h := range tc.req.hdr {
				r.Header.Add(h[0], h[1])
			}
			ri := &requestInfo{r: r, clientIP: remoteIP(r)}
			if got := m(ri); got != tc.want {
				t.Errorf("match = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestConditionErrors(t *testing.T) {
	for _, c := range []Condition{
		{Field: "cookie", Values: []string{"x"}},
		{Field: FieldPathPattern},
		{Field: FieldHTTPHeader, Values: []string{"x"}},
		{Field: FieldSourceIP, SourceIP: []string{"not-a-cidr"}},
		{Field: FieldQueryString},
	} {
		if _, err := compileCondition(c); err == nil {
			t.Errorf("compileCondition(%+v): no error", c)
		}
	}
}

func TestMatcher(t *testing.T) {
	for _, tc := range []struct {
		m    string
		code int
		want bool
	}{
		{"200", 200, true}, {"200", 201, false}, {"200-299", 204, true}, {"200-299", 302, false},
		{"200,302", 302, true}, {"200,302", 301, false},
	} {
		rs, err := parseMatcher(tc.m)
		if err != nil {
			t.Fatal(err)
		}
		if got := matchCode(rs, tc.code); got != tc.want {
			t.Errorf("matcher %q code %d = %v", tc.m, tc.code, got)
		}
	}
	for _, bad := range []string{"", "abc", "300-200", "99"} {
		if _, err := parseMatcher(bad); err == nil {
			t.Errorf("parseMatcher(%q): no error", bad)
		}
	}
}
