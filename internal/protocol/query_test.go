package protocol

import (
	"context"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/prometheus/client_golang/prometheus"
)

const ec2Decl = `<?xml version="1.0" encoding="UTF-8"?>` + "\n"

// ec2Err and stdErr are the exact error documents, with RID for the
// request id.
func ec2Err(code, msg string) string {
	return ec2Decl + `<Response><Errors><Error><Code>` + code + `</Code><Message>` + msg +
		`</Message></Error></Errors><RequestID>RID</RequestID></Response>`
}

func stdErr(ns, typ, code, msg string) string {
	open := `<ErrorResponse>`
	if ns != "" {
		open = `<ErrorResponse xmlns="` + ns + `">`
	}
	return open + `<Error><Type>` + typ + `</Type><Code>` + code + `</Code><Message>` + msg +
		`</Message></Error><RequestId>RID</RequestId></ErrorResponse>`
}

// TestQueryRequests drives the query protocol with hand-built, signed (and
// sometimes spoilt) requests and checks each reply byte for byte.
func TestQueryRequests(t *testing.T) {
	env := newQueryEnv(t, WithMaxBodyBytes(2048))
	now := time.Now()
	const (
		describeVpcs = "Action=DescribeVpcs&Version=" + ec2Version
		describeLBs  = "Action=DescribeLoadBalancers&Version=" + elbVersion
		vpc1         = `<item><vpcId>vpc-1</vpcId><ownerId>` + testAccount + `</ownerId><cidrBlock>10.0.0.0/16</cidrBlock>` +
			`<isDefault>true</isDefault><tagSet><item><key>Name</key><value>a&amp;b</value></item></tagSet></item>`
		lb1 = `<member><LoadBalancerArn>arn:aws:elasticloadbalancing:us-east-1:` + testAccount +
			`:loadbalancer/app/lb1/1</LoadBalancerArn><LoadBalancerName>lb1</LoadBalancerName>` +
			`<DNSName>lb1.elb.berth.test</DNSName><Type>application</Type><AvailabilityZones><member>` +
			`<ZoneName>us-east-1a</ZoneName><SubnetId>subnet-1</SubnetId></member></AvailabilityZones>` +
			`<SecurityGroups></SecurityGroups></member>`
	)
	type creds = struct{ key, secret, token string }
	tests := []struct {
		name     string
		method   string // POST if empty
		form     string
		ct       string // Content-Type; formCT if empty
		service  string // signing name; "-" = unsigned
		creds    *creds
		at       time.Duration
		mutate   func(*http.Request)
		status   int
		want     string // exact body, RID standing for the request id
		wantCode string // or: the error code
		wantMsg  string // and a part of the message
		wantCall bool   // a handler must have run
	}{
		// EC2 replies.
		{name: "ec2 describe", form: describeVpcs + "&VpcId.1=vpc-1", service: "ec2", status: 200, wantCall: true,
			want: ec2Decl + `<DescribeVpcsResponse xmlns="` + ec2NS + `"><requestId>RID</requestId><vpcSet>` + vpc1 +
				`</vpcSet></DescribeVpcsResponse>`},
		{name: "ec2 empty list is an empty element", form: describeVpcs, service: "ec2", status: 200, wantCall: true,
			want: ec2Decl + `<DescribeVpcsResponse xmlns="` + ec2NS + `"><requestId>RID</requestId><vpcSet></vpcSet></DescribeVpcsResponse>`},
		{name: "ec2 nested lists", form: describeVpcs + "&Filter.1.Name=cidr-block&Filter.1.Value.2=10.2.0.0%2F16&Filter.1.Value.1=10.1.0.0%2F16",
			service: "ec2", status: 200, wantCall: true,
			want: ec2Decl + `<DescribeVpcsResponse xmlns="` + ec2NS + `"><requestId>RID</requestId><vpcSet>` +
				`<item><vpcId>vpc-f1</vpcId><ownerId>` + testAccount + `</ownerId><cidrBlock>10.1.0.0/16</cidrBlock><isDefault>false</isDefault></item>` +
				`<item><vpcId>vpc-f2</vpcId><ownerId>` + testAccount + `</ownerId><cidrBlock>10.2.0.0/16</cidrBlock><isDefault>false</isDefault></item>` +
				`</vpcSet></DescribeVpcsResponse>`},
		{name: "ec2 GET", method: http.MethodGet, form: describeVpcs + "&VpcId.1=vpc-1", service: "ec2", status: 200, wantCall: true,
			want: ec2Decl + `<DescribeVpcsResponse xmlns="` + ec2NS + `"><requestId>RID</requestId><vpcSet>` + vpc1 +
				`</vpcSet></DescribeVpcsResponse>`},
		{name: "content type without charset", form: "Action=DeleteVpc&Version=" + ec2Version, service: "ec2",
			ct: "Application/X-WWW-Form-Urlencoded", status: 200, wantCall: true,
			want: ec2Decl + `<DeleteVpcResponse xmlns="` + ec2NS + `"><requestId>RID</requestId><return>true</return></DeleteVpcResponse>`},
		{name: "content type changed after signing", form: "Action=DeleteVpc&Version=" + ec2Version, service: "ec2",
			mutate: func(r *http.Request) { r.Header.Set("Content-Type", "application/x-www-form-urlencoded") },
			status: 401, want: ec2Err("AuthFailure", msgEC2AuthFailure)}, // content-type is signed
		{name: "ec2 service error", form: describeVpcs + "&VpcId.1=vpc-9", service: "ec2", status: 400, wantCall: true,
			want: ec2Err("InvalidVpcID.NotFound", "The vpc ID &#39;vpc-9&#39; does not exist")},
		{name: "ec2 bad list index", form: describeVpcs + "&VpcId.0=vpc-1", service: "ec2", status: 400, wantCall: true,
			want: ec2Err(CodeInvalidParameterValue, "Invalid parameter name &#39;VpcId.0&#39;: a list index must be an integer from 1 to 1000.")},
		{name: "ec2 bad integer", form: describeVpcs + "&MaxResults=lots", service: "ec2", status: 400, wantCall: true,
			want: ec2Err(CodeInvalidParameterValue, "Invalid value &#39;lots&#39; for MaxResults: it must be an integer from 5 to 1000.")},
		{name: "ec2 unknown action", form: "Action=LaunchRocket&Version=" + ec2Version, service: "ec2", status: 400,
			want: ec2Err(CodeInvalidAction, "The action LaunchRocket is not valid for this web service.")},
		{name: "ec2 internal error is opaque", form: describeVpcs + "&VpcId.1=boom", service: "ec2", status: 500, wantCall: true,
			want: ec2Err("InternalError", msgInternal)},
		{name: "ec2 panic is opaque", form: describeVpcs + "&VpcId.1=panic", service: "ec2", status: 500, wantCall: true,
			want: ec2Err("InternalError", msgInternal)},
		{name: "ec2 auth backend failure is opaque", form: describeVpcs, service: "ec2", creds: &creds{brokenKey, "x", ""},
			status: 500, want: ec2Err("InternalError", msgInternal)},

		// EC2 authentication: nothing runs, nothing is learnt.
		{name: "ec2 unsigned", form: "Action=LaunchRocket&Version=" + ec2Version, service: "-", status: 401,
			want: ec2Err(codeQueryMissingAuthToken, msgEC2MissingAuthToken)},
		{name: "ec2 wrong secret", form: describeVpcs, service: "ec2", creds: &creds{testKey, "wrong", ""}, status: 401,
			want: ec2Err(codeEC2AuthFailure, msgEC2AuthFailure)},
		{name: "ec2 unknown key", form: describeVpcs, service: "ec2", creds: &creds{"AKIDNOBODY", testSecret, ""}, status: 401,
			want: ec2Err(codeEC2AuthFailure, msgEC2AuthFailure)},
		{name: "ec2 expired session", form: describeVpcs, service: "ec2", creds: &creds{testKey, testSecret, "expired"}, status: 400,
			want: ec2Err(codeEC2RequestExpired, "Request has expired.")},
		{name: "ec2 signed 20 minutes ago", form: describeVpcs, service: "ec2", at: -20 * time.Minute, status: 400,
			wantCode: codeEC2RequestExpired, wantMsg: "Signature expired: "},
		{name: "ec2 scoped to another service", form: describeVpcs, service: "elasticloadbalancing", status: 401,
			want: ec2Err(codeEC2AuthFailure, "Credential should be scoped to correct service: &#39;ec2&#39;. ")},
		{name: "ec2 body changed after signing", form: describeVpcs, service: "ec2",
			mutate: func(r *http.Request) {
				b := describeVpcs + "&VpcId.1=vpc-1"
				r.Body, r.ContentLength = io.NopCloser(strings.NewReader(b)), int64(len(b))
			},
			status: 401, want: ec2Err(codeEC2AuthFailure, msgEC2AuthFailure)},

		// Standard (ELBv2) replies.
		{name: "elb describe", form: describeLBs, service: "elasticloadbalancing", status: 200, wantCall: true,
			want: `<DescribeLoadBalancersResponse xmlns="` + elbNS + `"><DescribeLoadBalancersResult><LoadBalancers>` + lb1 +
				`</LoadBalancers></DescribeLoadBalancersResult><ResponseMetadata><RequestId>RID</RequestId></ResponseMetadata></DescribeLoadBalancersResponse>`},
		{name: "elb empty list", form: describeLBs + "&Names.member.1=empty", service: "elasticloadbalancing", status: 200, wantCall: true,
			want: `<DescribeLoadBalancersResponse xmlns="` + elbNS + `"><DescribeLoadBalancersResult><LoadBalancers></LoadBalancers>` +
				`</DescribeLoadBalancersResult><ResponseMetadata><RequestId>RID</RequestId></ResponseMetadata></DescribeLoadBalancersResponse>`},
		{name: "elb nil result", form: "Action=DeleteLoadBalancer&Version=" + elbVersion + "&LoadBalancerArn=x",
			service: "elasticloadbalancing", status: 200, wantCall: true,
			want: `<DeleteLoadBalancerResponse xmlns="` + elbNS + `"><DeleteLoadBalancerResult></DeleteLoadBalancerResult>` +
				`<ResponseMetadata><RequestId>RID</RequestId></ResponseMetadata></DeleteLoadBalancerResponse>`},
		{name: "elb service error", form: describeLBs + "&Names.member.1=missing", service: "elasticloadbalancing", status: 400, wantCall: true,
			want: stdErr(elbNS, "Sender", "LoadBalancerNotFound", "One or more load balancers not found")},
		{name: "elb internal error", form: describeLBs + "&Names.member.1=boom", service: "elasticloadbalancing", status: 500, wantCall: true,
			want: stdErr(elbNS, "Receiver", CodeInternalFailure, msgInternal)},
		{name: "elb unknown action", form: "Action=Nope&Version=" + elbVersion, service: "elasticloadbalancing", status: 400,
			want: stdErr(elbNS, "Sender", CodeInvalidAction, "The action Nope is not valid for this web service.")},

		// Standard authentication.
		{name: "elb unsigned", form: describeLBs, service: "-", status: 403,
			want: stdErr(elbNS, "Sender", codeQueryMissingAuthToken, msgQueryMissingToken)},
		{name: "elb wrong secret", form: describeLBs, service: "elasticloadbalancing", creds: &creds{testKey, "wrong", ""}, status: 403,
			want: stdErr(elbNS, "Sender", codeSignatureDoesNotMatch, msgSignatureMismatch)},
		{name: "elb unknown key", form: describeLBs, service: "elasticloadbalancing", creds: &creds{"AKIDNOBODY", testSecret, ""}, status: 403,
			want: stdErr(elbNS, "Sender", codeInvalidClientTokenID, msgUnrecognizedClient)},
		{name: "elb expired session", form: describeLBs, service: "elasticloadbalancing", creds: &creds{testKey, testSecret, "expired"}, status: 403,
			want: stdErr(elbNS, "Sender", codeQueryExpiredToken, msgExpiredToken)},
		{name: "elb session ok", form: describeLBs + "&Names.member.1=empty", service: "elasticloadbalancing",
			creds: &creds{testKey, testSecret, testToken}, status: 200, wantCall: true},
		{name: "elb signed 20 minutes ahead", form: describeLBs, service: "elasticloadbalancing", at: 20 * time.Minute, status: 403,
			wantCode: codeSignatureDoesNotMatch, wantMsg: "Signature not yet current: "},
		{name: "elb garbage authorization", form: describeLBs, service: "-",
			mutate: func(r *http.Request) { r.Header.Set("Authorization", "Bearer abc") },
			status: 400, want: stdErr(elbNS, "Sender", codeQueryIncompleteSig, "Unsupported Authorization Type: only AWS4-HMAC-SHA256 is accepted")},

		// Requests no service owns.
		{name: "unknown version", form: "Action=DescribeVpcs&Version=2099-01-01", service: "ec2", status: 400,
			want: stdErr("", "Sender", CodeInvalidAction, "Could not find operation DescribeVpcs for version 2099-01-01")},
		{name: "unknown version unsigned", form: "Action=DescribeVpcs&Version=2099-01-01", service: "-", status: 403,
			want: stdErr("", "Sender", codeQueryMissingAuthToken, msgQueryMissingToken)},
		{name: "missing action", form: "Version=" + ec2Version, service: "ec2", status: 400,
			want: ec2Err(CodeMissingAction, "The request must contain the parameter Action.")},
		{name: "missing version", form: "Action=DescribeVpcs", service: "ec2", status: 400,
			want: stdErr("", "Sender", CodeMissingParameter, "The request must contain the parameter Version.")},
		{name: "malformed form", form: describeVpcs + "&VpcId.1=%zz", service: "ec2", status: 400,
			want: stdErr("", "Sender", CodeMalformedQueryString, "The query string contains a syntax error.")},
		{name: "malformed form unsigned", form: describeVpcs + "&VpcId.1=%zz", service: "-", status: 403,
			want: stdErr("", "Sender", codeQueryMissingAuthToken, msgQueryMissingToken)},
		{name: "body too large", form: describeVpcs + "&VpcId.1=" + strings.Repeat("a", 2100), service: "ec2", status: 413,
			want: stdErr("", "Sender", codeQueryEntityTooLarge, "Request body is larger than the limit of 2048 bytes")},
		{name: "escaping", form: "Action=DescribeVpcs&Version=" + ec2Version + "&VpcId.1=%3C%26%22%27%3E%01%FF", service: "ec2",
			status: 400, wantCall: true,
			want: ec2Err("InvalidVpcID.NotFound", "The vpc ID &#39;&lt;&amp;&#34;&#39;&gt;\uFFFD\uFFFD&#39; does not exist")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = http.MethodPost
			}
			service := tt.service
			if service == "-" {
				service = ""
			}
			req := queryRequest(t, method, env.srv.URL+"/", tt.form, tt.ct, service, tt.creds, now.Add(tt.at))
			if tt.mutate != nil {
				tt.mutate(req)
			}
			before := env.ec2Calls.Load() + env.elbCalls.Load()
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			rid := checkXMLReply(t, resp, body, tt.status)
			if tt.want != "" {
				if want := strings.ReplaceAll(tt.want, "RID", rid); string(body) != want {
					t.Errorf("body:\n got %s\nwant %s", body, want)
				}
			}
			if tt.wantCode != "" && !strings.Contains(string(body), "<Code>"+tt.wantCode+"</Code>") {
				t.Errorf("body %s, want code %s", body, tt.wantCode)
			}
			if !strings.Contains(string(body), tt.wantMsg) {
				t.Errorf("body %s, want message %q", body, tt.wantMsg)
			}
			if called := env.ec2Calls.Load()+env.elbCalls.Load() > before; called != tt.wantCall {
				t.Errorf("handler called = %v, want %v", called, tt.wantCall)
			}
			if strings.Contains(string(body), "hunter2") {
				t.Errorf("internal detail leaked: %s", body)
			}
		})
	}
	if !strings.Contains(env.logs.String(), "hunter2") {
		t.Errorf("internal error detail was not logged")
	}
}

// checkXMLReply checks what every query reply has: the status, the XML
// content type, a request id header, and a body that is well-formed XML
// naming that request id. It returns the id.
func checkXMLReply(t *testing.T, resp *http.Response, body []byte, status int) string {
	t.Helper()
	if resp.StatusCode != status {
		t.Errorf("status = %d, want %d; body %s", resp.StatusCode, status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != xmlContentType {
		t.Errorf("Content-Type = %q, want %q", ct, xmlContentType)
	}
	rid := resp.Header.Get("X-Amzn-Requestid")
	if len(rid) != 36 {
		t.Errorf("x-amzn-RequestId = %q", rid)
	}
	if err := wellFormed(body); err != nil {
		t.Errorf("reply is not well-formed XML (%v): %s", err, body)
	}
	if !strings.Contains(string(body), ">"+rid+"</") {
		t.Errorf("reply does not carry the request id %s: %s", rid, body)
	}
	return rid
}

// wellFormed reports whether b is one well-formed XML document.
func wellFormed(b []byte) error {
	d := xml.NewDecoder(strings.NewReader(string(b)))
	depth, roots := 0, 0
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			if roots != 1 {
				return errors.New("not exactly one root element")
			}
			return nil
		}
		if err != nil {
			return err
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				roots++
			}
			depth++
		case xml.EndElement:
			depth--
		case xml.CharData:
			if depth == 0 && strings.TrimSpace(string(tok)) != "" {
				return errors.New("text outside the root")
			}
		}
	}
}

// TestQueryPresignedGET: a presigned GET URL (the signature in the query
// string, next to the action's parameters) is a query request too.
func TestQueryPresignedGET(t *testing.T) {
	env := newQueryEnv(t)
	req, err := http.NewRequest(http.MethodGet, env.srv.URL+"/?Action=DescribeVpcs&Version="+ec2Version+"&VpcId.1=vpc-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	uri, _, err := v4.NewSigner().PresignHTTP(context.Background(), testCreds, req, emptyPayloadSHA256Hex, "ec2", "us-east-1", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(uri)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	checkXMLReply(t, resp, body, 200)
	if !strings.Contains(string(body), "<vpcId>vpc-1</vpcId>") {
		t.Errorf("body: %s", body)
	}
}

// TestQueryNotQuery: requests without X-Amz-Target that are not query
// requests keep getting the awsJson UnknownOperationException.
func TestQueryNotQuery(t *testing.T) {
	env := newQueryEnv(t)
	tests := []struct {
		name, method, url, ct, body string
	}{
		{"json body", http.MethodPost, "/", jsonContentType, "Action=DescribeVpcs&Version=" + ec2Version},
		{"no content type", http.MethodPost, "/", "", "Action=DescribeVpcs&Version=" + ec2Version},
		{"GET without Action", http.MethodGet, "/?Version=" + ec2Version, "", ""},
		{"PUT form", http.MethodPut, "/", formCT, "Action=DescribeVpcs&Version=" + ec2Version},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, env.srv.URL+tt.url, strings.NewReader(tt.body))
			if tt.ct != "" {
				req.Header.Set("Content-Type", tt.ct)
			}
			rec := httptest.NewRecorder()
			env.srv.Config.Handler.ServeHTTP(rec, req)
			if rec.Code != 400 || rawHeader(rec.Header(), "x-amzn-ErrorType")[0] != CodeUnknownOperation {
				t.Errorf("%d %v %s", rec.Code, rec.Header(), rec.Body)
			}
		})
	}
}

func TestQueryRegistrationPanics(t *testing.T) {
	ok := func(context.Context, url.Values) (any, error) { return nil, nil }
	var calls atomic.Int64
	tests := []struct {
		name string
		svc  QueryService
	}{
		{"duplicate version", fakeEC2(&calls)},
		{"empty version", QueryService{Style: StyleEC2, Ops: map[string]QueryHandler{"A": ok}}},
		{"nil handler", QueryService{Version: "v", Ops: map[string]QueryHandler{"A": nil}}},
		{"empty action", QueryService{Version: "v", Ops: map[string]QueryHandler{"": ok}}},
		{"action with a space", QueryService{Version: "v", Ops: map[string]QueryHandler{"Describe Vpcs": ok}}},
		{"action with markup", QueryService{Version: "v", Ops: map[string]QueryHandler{"A><B": ok}}},
		{"action starting with a digit", QueryService{Version: "v", Ops: map[string]QueryHandler{"1A": ok}}},
		{"unknown style", QueryService{Version: "v", Style: QueryStyle(7)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _, _ := newTestRouter(t)
			r.AddQueryService(fakeEC2(&calls))
			defer func() {
				if recover() == nil {
					t.Errorf("no panic")
				}
			}()
			r.AddQueryService(tt.svc)
		})
	}
}

func TestQueryInternalErrorCodeDefault(t *testing.T) {
	tests := []struct {
		style QueryStyle
		set   string
		want  string
	}{
		{StyleEC2, "", "InternalError"},
		{StyleStandard, "", CodeInternalFailure},
		{StyleEC2, "Oops", "Oops"},
	}
	for _, tt := range tests {
		r := NewRouter(fakeAuth{}, nil, WithRegisterer(nil))
		r.AddQueryService(QueryService{Version: "v", Style: tt.style, InternalErrorCode: tt.set})
		if got := r.query["v"].InternalErrorCode; got != tt.want {
			t.Errorf("style %d, set %q: code %q, want %q", tt.style, tt.set, got, tt.want)
		}
	}
}

func TestQueryMetrics(t *testing.T) {
	env := newQueryEnv(t)
	send := func(form, service string, creds *struct{ key, secret, token string }) {
		t.Helper()
		resp, err := http.DefaultClient.Do(queryRequest(t, http.MethodPost, env.srv.URL+"/", form, "", service, creds, time.Now()))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	describe := "Action=DescribeVpcs&Version=" + ec2Version
	send(describe, "ec2", nil)
	send(describe, "ec2", nil)
	send(describe+"&VpcId.1=vpc-9", "ec2", nil)
	send(describe, "ec2", &struct{ key, secret, token string }{testKey, "wrong", ""})
	send("Action=LaunchRocket&Version="+ec2Version, "ec2", nil)
	send("Action=DescribeLoadBalancers&Version="+elbVersion, "elasticloadbalancing", nil)
	send("Action=X&Version=1999-01-01", "ec2", nil)

	tests := []struct {
		service, op, code string
		want              float64
	}{
		{"ec2", "DescribeVpcs", "OK", 2},
		{"ec2", "DescribeVpcs", "InvalidVpcID.NotFound", 1},
		{"ec2", "DescribeVpcs", codeEC2AuthFailure, 1},
		{"ec2", labelUnknown, CodeInvalidAction, 1},
		{"elasticloadbalancing", "DescribeLoadBalancers", "OK", 1},
		{labelUnknown, labelUnknown, CodeInvalidAction, 1},
	}
	for _, tt := range tests {
		if got := counterValue(t, env.reg, tt.service, tt.op, tt.code); got != tt.want {
			t.Errorf("requests{%s,%s,%s} = %v, want %v", tt.service, tt.op, tt.code, got, tt.want)
		}
	}
}

// counterValue is berth_api_requests_total{service,operation,code}.
func counterValue(t *testing.T, reg *prometheus.Registry, service, op, code string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "berth_api_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, lp := range m.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			if l["service"] == service && l["operation"] == op && l["code"] == code {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
