package protocol

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Published AWS SigV4 test-suite vectors (aws-sig-v4-test-suite): key
// AKIDEXAMPLE, secret wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY, 2015-08-30
// 12:36:00 UTC, us-east-1, service "service", signed headers host;x-amz-date.
type exampleAuth struct{}

func (exampleAuth) Lookup(_ context.Context, akid string) (string, string, error) {
	if akid == "AKIDEXAMPLE" {
		return "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "111122223333", nil
	}
	return "", "", ErrUnknownKey
}

func TestVerifyAWSTestSuite(t *testing.T) {
	at := time.Date(2015, 8, 30, 12, 36, 0, 0, time.UTC)
	v := verifier{auth: exampleAuth{}, now: func() time.Time { return at.Add(time.Minute) }}
	tests := []struct {
		name, method, target, sig string
	}{
		{"get-vanilla", "GET", "/", "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
		{"get-vanilla-query-order-key-case", "GET", "/?Param2=value2&Param1=value1", "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"},
		{"post-vanilla", "POST", "/", "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"},
		{"post-vanilla-query", "POST", "/?Param1=value1", "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, "http://example.amazonaws.com"+tt.target, nil)
			req.Header.Set("X-Amz-Date", "20150830T123600Z")
			req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature="+tt.sig)
			id, canonical, err := v.verify(context.Background(), req, nil, "service")
			if err != nil {
				t.Fatalf("verify: %v\ncanonical request:\n%s", err, canonical)
			}
			want := Identity{AccountID: "111122223333", AccessKeyID: "AKIDEXAMPLE", Region: "us-east-1"}
			if id != want {
				t.Errorf("identity = %+v, want %+v", id, want)
			}
		})
	}
}

// TestVerifyAgainstSDKSigner sends requests the Go SDK's signer signed over a
// real connection: paths, queries and headers that exercise each
// canonicalisation rule must all verify.
func TestVerifyAgainstSDKSigner(t *testing.T) {
	type result struct {
		id  Identity
		err error
	}
	results := make(chan result, 1)
	v := verifier{auth: fakeAuth{}, now: time.Now}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		id, canonical, err := v.verify(r.Context(), r, body, "")
		if err != nil && canonical != "" {
			t.Logf("server canonical request:\n%s", canonical)
		}
		results <- result{id, err}
	}))
	defer srv.Close()

	tests := []struct {
		name    string
		method  string
		path    string // with query
		body    string
		headers http.Header
		creds   aws.Credentials
		service string
		region  string
	}{
		{name: "ecs json", method: "POST", path: "/", body: `{"cluster":"c"}`,
			headers: http.Header{"X-Amz-Target": {ecsPrefix + ".RunTask"}, "Content-Type": {jsonContentType}}},
		{name: "get without body", method: "GET", path: "/v1/x"},
		{name: "escaped path", method: "GET", path: "/a%20b/c%2Fd/%E1%88%B4/~x"},
		{name: "query sorting and escaping", method: "GET",
			path: "/?b=2&a=a%2Fb&a=a-b&c=&sp=x%20y&plus=1%2B1&u=%C3%A9&empty&Z=upper"},
		{name: "space runs in headers", method: "POST", path: "/", body: "x",
			headers: http.Header{"X-Amz-Meta-Note": {"  a   b  c "}, "Content-Type": {"text/plain;   charset=utf-8"}}},
		{name: "repeated header", method: "POST", path: "/", body: "x",
			headers: http.Header{"X-Amz-Meta-Multi": {"one", "two  three"}}},
		{name: "declared content sha256", method: "POST", path: "/", body: `{"a":1}`,
			headers: http.Header{"X-Amz-Content-Sha256": {sha256Hex([]byte(`{"a":1}`))}}},
		{name: "session token", method: "POST", path: "/", body: `{}`,
			creds: aws.Credentials{AccessKeyID: testKey, SecretAccessKey: testSecret, SessionToken: testToken}},
		{name: "other region and service", method: "POST", path: "/", body: `{}`, service: "logs", region: "eu-central-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, srv.URL+tt.path, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if tt.body == "" {
				req.Body, req.ContentLength = nil, 0
			}
			for k, vs := range tt.headers {
				req.Header[k] = vs
			}
			creds, service, region := tt.creds, tt.service, tt.region
			if creds.AccessKeyID == "" {
				creds = testCreds
			}
			if service == "" {
				service = "ecs"
			}
			if region == "" {
				region = "us-east-1"
			}
			signRequest(t, req, []byte(tt.body), creds, service, region, time.Now())
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			res := <-results
			if res.err != nil {
				t.Fatalf("verify: %v (Authorization: %s)", res.err, req.Header.Get("Authorization"))
			}
			want := Identity{AccountID: testAccount, AccessKeyID: testKey, Region: region}
			if res.id != want {
				t.Errorf("identity = %+v, want %+v", res.id, want)
			}
		})
	}
}

// TestVerifyDateHeader: without X-Amz-Date the HTTP Date header dates the
// signature (SigV4 allows either).
func TestVerifyDateHeader(t *testing.T) {
	at := time.Date(2026, 11, 25, 19, 25, 41, 0, time.UTC)
	tests := []struct {
		name     string
		date     string
		now      time.Time
		wantCode string
	}{
		{name: "current", date: at.Format(http.TimeFormat), now: at},
		{name: "stale", date: at.Format(http.TimeFormat), now: at.Add(time.Hour), wantCode: CodeInvalidSignature},
		{name: "unparseable", date: "yesterday", now: at, wantCode: CodeIncompleteSignature},
		{name: "absent", date: "", now: at, wantCode: CodeIncompleteSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "http://berth.test/", strings.NewReader("{}"))
			if tt.date != "" {
				req.Header.Set("Date", tt.date)
			}
			sig := sigV4{AccessKeyID: testKey, ScopeDate: "20261125", Region: "us-east-1", Service: "ecs",
				SignedHeaders: []string{"date", "host"}}
			canonical := canonicalRequest(req, sig.SignedHeaders, sha256Hex([]byte("{}")), false)
			sig.Signature = signatureFor(testSecret, sig, at.Format(amzDateLayout), canonical)
			req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+testKey+"/"+sig.scope()+
				", SignedHeaders=date;host, Signature="+sig.Signature)
			v := verifier{auth: fakeAuth{}, now: func() time.Time { return tt.now }}
			_, _, err := v.verify(context.Background(), req, []byte("{}"), "ecs")
			if tt.wantCode == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Code != tt.wantCode {
				t.Errorf("err = %v, want %s", err, tt.wantCode)
			}
		})
	}
}

func TestParseAuthorization(t *testing.T) {
	const good = "AWS4-HMAC-SHA256 Credential=AKID/20261125/us-east-1/ecs/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=abcd"
	tests := []struct {
		name     string
		in       string
		wantCode string // "" = parses
		wantMsg  string
	}{
		{name: "sdk form", in: good},
		{name: "no spaces after commas", in: strings.ReplaceAll(good, ", ", ",")},
		{name: "extra spaces", in: "  AWS4-HMAC-SHA256   Credential=AKID/20261125/us-east-1/ecs/aws4_request ,  SignedHeaders=host , Signature=ab  "},
		{name: "other algorithm", in: "AWS4-ECDSA-P256-SHA256 Credential=x", wantCode: CodeIncompleteSignature},
		{name: "bearer", in: "Bearer token", wantCode: CodeIncompleteSignature},
		{name: "empty", in: "", wantCode: CodeIncompleteSignature},
		{name: "no parameters", in: "AWS4-HMAC-SHA256", wantCode: CodeIncompleteSignature, wantMsg: "requires 'Credential'"},
		{name: "missing signature", in: "AWS4-HMAC-SHA256 Credential=AKID/20261125/us-east-1/ecs/aws4_request, SignedHeaders=host",
			wantCode: CodeIncompleteSignature, wantMsg: "requires 'Signature'"},
		{name: "not key=value", in: "AWS4-HMAC-SHA256 Credential", wantCode: CodeIncompleteSignature},
		{name: "short credential", in: "AWS4-HMAC-SHA256 Credential=AKID/20261125/us-east-1/ecs, SignedHeaders=host, Signature=ab",
			wantCode: CodeIncompleteSignature, wantMsg: "5 slash-delimited"},
		{name: "bad terminator", in: "AWS4-HMAC-SHA256 Credential=AKID/20261125/us-east-1/ecs/aws5_request, SignedHeaders=host, Signature=ab",
			wantCode: CodeInvalidSignature, wantMsg: "terminator"},
		{name: "bad date", in: "AWS4-HMAC-SHA256 Credential=AKID/2026-11-25/us-east-1/ecs/aws4_request, SignedHeaders=host, Signature=ab",
			wantCode: CodeInvalidSignature, wantMsg: "date"},
		{name: "odd region", in: "AWS4-HMAC-SHA256 Credential=AKID/20261125/US East/ecs/aws4_request, SignedHeaders=host, Signature=ab",
			wantCode: CodeInvalidSignature, wantMsg: "region"},
		{name: "host not signed", in: "AWS4-HMAC-SHA256 Credential=AKID/20261125/us-east-1/ecs/aws4_request, SignedHeaders=x-amz-date, Signature=ab",
			wantCode: CodeInvalidSignature, wantMsg: "'Host'"},
		{name: "empty signed header", in: "AWS4-HMAC-SHA256 Credential=AKID/20261125/us-east-1/ecs/aws4_request, SignedHeaders=host;;x, Signature=ab",
			wantCode: CodeIncompleteSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := parseAuthorization(tt.in)
			if tt.wantCode == "" {
				if err != nil {
					t.Fatalf("parse: %v", err)
				}
				if s.AccessKeyID != "AKID" || s.Region != "us-east-1" || s.Service != "ecs" || s.ScopeDate != "20261125" || s.Signature == "" {
					t.Errorf("parsed %+v", s)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Code != tt.wantCode || !strings.Contains(e.Message, tt.wantMsg) {
				t.Errorf("err = %v, want %s containing %q", err, tt.wantCode, tt.wantMsg)
			}
		})
	}
}

func TestCanonicalQuery(t *testing.T) {
	tests := []struct {
		raw, want string
		presigned bool
	}{
		{raw: "", want: ""},
		{raw: "b=2&a=1", want: "a=1&b=2"},
		{raw: "a=a-b&a=a%2Fb", want: "a=a%2Fb&a=a-b"}, // sorted after encoding
		{raw: "x=a+b&y=a%20b", want: "x=a%20b&y=a%20b"},
		{raw: "flag&e=", want: "e=&flag="},
		{raw: "u=%C3%A9&t=~._-", want: "t=~._-&u=%C3%A9"},
		{raw: "bad=%zz", want: "bad=%25zz"},
		{raw: "X-Amz-Signature=ab&X-Amz-Date=1", presigned: true, want: "X-Amz-Date=1"},
		{raw: "X-Amz-Signature=ab", presigned: false, want: "X-Amz-Signature=ab"},
	}
	for _, tt := range tests {
		if got := canonicalQuery(tt.raw, tt.presigned); got != tt.want {
			t.Errorf("canonicalQuery(%q) = %q, want %q", tt.raw, got, tt.want)
		}
	}
}

func TestCollapseSpaces(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"a", "a"},
		{"  a  ", "a"},
		{"a   b    c", "a b c"},
		{"\ta b\t", "a b"},
	}
	for _, tt := range tests {
		if got := collapseSpaces(tt.in); got != tt.want {
			t.Errorf("collapseSpaces(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzAuthorizationHeader: parsing never panics; what parses is well-formed
// and round-trips; what does not is a signature error for the client.
func FuzzAuthorizationHeader(f *testing.F) {
	f.Add("AWS4-HMAC-SHA256 Credential=AKID/20261125/us-east-1/ecs/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=0123abcd")
	f.Add("AWS4-HMAC-SHA256 Credential=AKID/20261125/us-east-1/ecs/aws4_request,SignedHeaders=host,Signature=00")
	f.Add("AWS4-HMAC-SHA256 Credential=a/b/c/d/e/f, SignedHeaders=host, Signature=00")
	f.Add("AWS4-HMAC-SHA256 ,,,=,==, Credential==")
	f.Add("AWS4-HMAC-SHA256 Credential=AKID/20261125/us-east-1/ecs/aws4_request, SignedHeaders=, Signature=")
	f.Add("Bearer x")
	f.Add("")
	f.Fuzz(func(t *testing.T, in string) {
		s, err := parseAuthorization(in)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || (e.Code != CodeIncompleteSignature && e.Code != CodeInvalidSignature) {
				t.Fatalf("parse error is not a signature *Error: %v", err)
			}
			return
		}
		if s.AccessKeyID == "" || !isScopeToken(s.Region) || !isScopeToken(s.Service) || len(s.ScopeDate) != 8 || s.Signature == "" {
			t.Fatalf("accepted a malformed signature: %+v", s)
		}
		again := sigV4Algorithm + " Credential=" + s.AccessKeyID + "/" + s.scope() +
			", SignedHeaders=" + strings.Join(s.SignedHeaders, ";") + ", Signature=" + s.Signature
		s2, err := parseAuthorization(again)
		if err != nil || s2.scope() != s.scope() || s2.Signature != s.Signature || s2.AccessKeyID != s.AccessKeyID ||
			strings.Join(s2.SignedHeaders, ";") != strings.Join(s.SignedHeaders, ";") {
			t.Fatalf("round trip: %+v -> %q -> %+v, %v", s, again, s2, err)
		}
	})
}
