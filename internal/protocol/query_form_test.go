package protocol

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func mustQuery(t testing.TB, s string) url.Values {
	t.Helper()
	v, err := url.ParseQuery(s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestQueryList(t *testing.T) {
	tests := []struct {
		name, form, prefix string
		member             bool
		want               []string
		wantErr            string
	}{
		{name: "absent", form: "Action=X", prefix: "SubnetId", want: nil},
		{name: "ordered by index", form: "SubnetId.2=b&SubnetId.10=c&SubnetId.1=a", prefix: "SubnetId", want: []string{"a", "b", "c"}},
		{name: "gaps", form: "SubnetId.7=b&SubnetId.3=a", prefix: "SubnetId", want: []string{"a", "b"}},
		{name: "bare prefix is an empty list", form: "SubnetId=", prefix: "SubnetId", want: []string{}},
		{name: "repeated index keeps the first", form: "SubnetId.1=a&SubnetId.1=b", prefix: "SubnetId", want: []string{"a"}},
		{name: "other names ignored", form: "SubnetIds.1=x&Subnet.1=y&SubnetId.1=a", prefix: "SubnetId", want: []string{"a"}},
		{name: "struct keys ignored", form: "Filter.1.Name=n&Filter.1.Value.1=v", prefix: "Filter", want: nil},
		{name: "nested", form: "Filter.1.Value.2=b&Filter.1.Value.1=a&Filter.2.Value.1=c", prefix: "Filter.1.Value", want: []string{"a", "b"}},
		{name: "largest index", form: "SubnetId.1000=z", prefix: "SubnetId", want: []string{"z"}},
		{name: "index 0", form: "SubnetId.0=a", prefix: "SubnetId", wantErr: "'SubnetId.0'"},
		{name: "index too large", form: "SubnetId.1001=a", prefix: "SubnetId", wantErr: "'SubnetId.1001'"},
		{name: "huge index", form: "SubnetId.99999999999999999999=a", prefix: "SubnetId", wantErr: "integer from 1 to 1000"},
		{name: "leading zero", form: "SubnetId.01=a", prefix: "SubnetId", wantErr: "'SubnetId.01'"},
		{name: "sign", form: "SubnetId.%2B1=a", prefix: "SubnetId", wantErr: "'SubnetId.+1'"},
		{name: "not a number", form: "SubnetId.x=a&SubnetId.1=b", prefix: "SubnetId", wantErr: "'SubnetId.x'"},
		{name: "empty index", form: "SubnetId.=a", prefix: "SubnetId", wantErr: "'SubnetId.'"},
		{name: "least bad key is reported", form: "SubnetId.z=a&SubnetId.b=b&SubnetId.y=c", prefix: "SubnetId", wantErr: "'SubnetId.b'"},
		{name: "member list", form: "Subnets.member.2=b&Subnets.member.1=a", prefix: "Subnets", member: true, want: []string{"a", "b"}},
		{name: "member list empty", form: "Subnets=", prefix: "Subnets", member: true, want: []string{}},
		{name: "member list absent", form: "Other.member.1=a", prefix: "Subnets", member: true, want: nil},
		{name: "member list bad index", form: "Subnets.member.0=a", prefix: "Subnets", member: true, wantErr: "'Subnets.member.0'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			params := mustQuery(t, tt.form)
			var got []string
			var err error
			if tt.member {
				got, err = QueryMemberList(params, tt.prefix)
			} else {
				got, err = QueryList(params, tt.prefix)
			}
			checkQueryErr(t, err, tt.wantErr)
			if tt.wantErr != "" {
				return
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

func checkQueryErr(t *testing.T, err error, want string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeInvalidParameterValue || e.HTTPStatus() != http.StatusBadRequest {
		t.Fatalf("error %v, want an InvalidParameterValue *Error", err)
	}
	if !strings.Contains(e.Message, want) {
		t.Errorf("message %q, want it to contain %q", e.Message, want)
	}
}

func TestQueryStructs(t *testing.T) {
	// Captured from the AWS CLI (WIRE.md), plus a second element out of order.
	form := "Action=AuthorizeSecurityGroupIngress&Version=2016-11-15&GroupId=sg-1" +
		"&IpPermissions.2.IpProtocol=udp&IpPermissions.2.IpRanges.1.CidrIp=10.0.0.0%2F8" +
		"&IpPermissions.1.IpProtocol=tcp&IpPermissions.1.FromPort=8080&IpPermissions.1.ToPort=8080" +
		"&IpPermissions.1.Groups.1.GroupId=sg-2&IpPermissions.1.Groups.2.GroupId=sg-3"
	got, err := QueryStructs(mustQuery(t, form), "IpPermissions")
	if err != nil {
		t.Fatal(err)
	}
	want := []url.Values{
		{"IpProtocol": {"tcp"}, "FromPort": {"8080"}, "ToPort": {"8080"}, "Groups.1.GroupId": {"sg-2"}, "Groups.2.GroupId": {"sg-3"}},
		{"IpProtocol": {"udp"}, "IpRanges.1.CidrIp": {"10.0.0.0/8"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
	groups, err := QueryStructs(got[0], "Groups")
	if err != nil || len(groups) != 2 || groups[1].Get("GroupId") != "sg-3" {
		t.Errorf("nested Groups = %v, %v", groups, err)
	}
	if port, ok, err := QueryInt(got[0], "FromPort", -1, 65535); port != 8080 || !ok || err != nil {
		t.Errorf("FromPort = %d %v %v", port, ok, err)
	}

	tests := []struct {
		name, form, prefix string
		member             bool
		want               []url.Values
		wantErr            string
	}{
		{name: "absent", form: "A=1", prefix: "Tag", want: nil},
		{name: "bare prefix", form: "Tag=", prefix: "Tag", want: []url.Values{}},
		{name: "tags", form: "Tag.2.Key=b&Tag.1.Key=a&Tag.1.Value=1", prefix: "Tag",
			want: []url.Values{{"Key": {"a"}, "Value": {"1"}}, {"Key": {"b"}}}},
		{name: "filters", form: "Filter.1.Name=vpc-id&Filter.1.Value.1=vpc-1&Filter.1.Value.2=vpc-2", prefix: "Filter",
			want: []url.Values{{"Name": {"vpc-id"}, "Value.1": {"vpc-1"}, "Value.2": {"vpc-2"}}}},
		{name: "bare element keys ignored", form: "Tag.1=x&Tag.2.Key=k", prefix: "Tag", want: []url.Values{{"Key": {"k"}}}},
		{name: "empty sub-key", form: "Tag.1.=x", prefix: "Tag", want: []url.Values{{"": {"x"}}}},
		{name: "repeated key keeps all values", form: "Tag.1.Key=a&Tag.1.Key=b", prefix: "Tag", want: []url.Values{{"Key": {"a", "b"}}}},
		{name: "bad index", form: "Tag.1.Key=a&Tag.one.Key=b", prefix: "Tag", wantErr: "'Tag.one.Key'"},
		{name: "member structs", form: "Tags.member.1.Key=k&Tags.member.1.Value=v", prefix: "Tags", member: true,
			want: []url.Values{{"Key": {"k"}, "Value": {"v"}}}},
		{name: "member structs empty", form: "Tags=", prefix: "Tags", member: true, want: []url.Values{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			params := mustQuery(t, tt.form)
			var got []url.Values
			var err error
			if tt.member {
				got, err = QueryMemberStructs(params, tt.prefix)
			} else {
				got, err = QueryStructs(params, tt.prefix)
			}
			checkQueryErr(t, err, tt.wantErr)
			if tt.wantErr == "" && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

// TestQueryStructsCopies: an element's values are its own.
func TestQueryStructsCopies(t *testing.T) {
	params := mustQuery(t, "Tag.1.Key=a")
	got, err := QueryStructs(params, "Tag")
	if err != nil {
		t.Fatal(err)
	}
	got[0]["Key"][0] = "changed"
	if params.Get("Tag.1.Key") != "a" {
		t.Errorf("the request's params were changed through an element")
	}
}

func TestQueryScalars(t *testing.T) {
	ints := []struct {
		form     string
		want     int64
		wantOK   bool
		wantErr  string
		min, max int64
	}{
		{form: "", min: 0, max: 10},
		{form: "N=", min: 0, max: 10},
		{form: "N=7", want: 7, wantOK: true, min: 0, max: 10},
		{form: "N=-1", want: -1, wantOK: true, min: -1, max: 65535},
		{form: "N=-2", wantErr: "from -1 to 65535", min: -1, max: 65535},
		{form: "N=11", wantErr: "'11' for N", min: 0, max: 10},
		{form: "N=1.5", wantErr: "'1.5'", min: 0, max: 10},
		{form: "N=0x10", wantErr: "'0x10'", min: 0, max: 100},
		{form: "N=99999999999999999999", wantErr: "integer", min: 0, max: 10},
	}
	for _, tt := range ints {
		n, ok, err := QueryInt(mustQuery(t, tt.form), "N", tt.min, tt.max)
		checkQueryErr(t, err, tt.wantErr)
		if n != tt.want || ok != tt.wantOK {
			t.Errorf("QueryInt(%q) = %d, %v; want %d, %v", tt.form, n, ok, tt.want, tt.wantOK)
		}
	}
	bools := []struct {
		form         string
		want, wantOK bool
		wantErr      string
	}{
		{form: ""},
		{form: "B=true", want: true, wantOK: true},
		{form: "B=False", wantOK: true},
		{form: "B=TRUE", want: true, wantOK: true},
		{form: "B=1", wantErr: "'1' for B"},
		{form: "B=tRUE", wantErr: "'tRUE' for B"},
	}
	for _, tt := range bools {
		b, ok, err := QueryBool(mustQuery(t, tt.form), "B")
		checkQueryErr(t, err, tt.wantErr)
		if b != tt.want || ok != tt.wantOK {
			t.Errorf("QueryBool(%q) = %v, %v; want %v, %v", tt.form, b, ok, tt.want, tt.wantOK)
		}
	}
}

// refList is QueryList/QueryStructs the slow, obvious way, for the fuzzer
// to compare against: try every index in turn.
func refList(params url.Values, prefix string) (values []string, structs []url.Values, bad bool) {
	for key := range params {
		after, ok := strings.CutPrefix(key, prefix+".")
		if !ok {
			continue
		}
		num, _, _ := strings.Cut(after, ".")
		n, err := strconv.Atoi(num)
		if err != nil || n < 1 || n > MaxQueryListIndex || strconv.Itoa(n) != num {
			bad = true
		}
	}
	if params.Has(prefix) {
		values, structs = []string{}, []url.Values{}
	}
	for i := 1; i <= MaxQueryListIndex; i++ {
		p := prefix + "." + strconv.Itoa(i)
		if vs := params[p]; len(vs) > 0 {
			values = append(values, vs[0])
		}
		var el url.Values
		for key, vs := range params {
			if rest, ok := strings.CutPrefix(key, p+"."); ok {
				if el == nil {
					el = url.Values{}
				}
				el[rest] = vs
			}
		}
		if el != nil {
			structs = append(structs, el)
		}
	}
	return values, structs, bad
}

// FuzzQueryList checks the list helpers against refList on arbitrary forms:
// same result or, exactly when some key has a malformed index, a clean
// InvalidParameterValue.
func FuzzQueryList(f *testing.F) {
	f.Add("SubnetId.1=a&SubnetId.2=b", "SubnetId")
	f.Add("Filter.1.Name=vpc-id&Filter.1.Value.1=vpc-1&Filter.2.Name=x", "Filter")
	f.Add("Subnets.member.1=a&Subnets=", "Subnets.member")
	f.Add("Tag.0.Key=a&Tag.01.Key=b&Tag.1001.Key=c", "Tag")
	f.Add("a..1=x&a.=y&a=z", "a")
	f.Add("%zz&x.1=1", "x")
	f.Fuzz(func(t *testing.T, form, prefix string) {
		params, _ := url.ParseQuery(form) // a malformed form still yields what parsed
		values, structs, bad := refList(params, prefix)
		gotValues, errL := QueryList(params, prefix)
		gotStructs, errS := QueryStructs(params, prefix)
		for _, err := range []error{errL, errS} {
			if bad != (err != nil) {
				t.Fatalf("form %q prefix %q: error %v, malformed index %v", form, prefix, err, bad)
			}
			var e *Error
			if err != nil && (!errors.As(err, &e) || e.Code != CodeInvalidParameterValue) {
				t.Fatalf("error %v is not an InvalidParameterValue *Error", err)
			}
		}
		if bad {
			return
		}
		if !reflect.DeepEqual(gotValues, values) {
			t.Fatalf("QueryList(%q, %q) = %#v, want %#v", form, prefix, gotValues, values)
		}
		if !reflect.DeepEqual(gotStructs, structs) {
			t.Fatalf("QueryStructs(%q, %q) = %#v, want %#v", form, prefix, gotStructs, structs)
		}
		// The member variants are the same lists one level down.
		mv, err := QueryMemberList(params, prefix)
		if err == nil && len(mv) > MaxQueryListIndex {
			t.Fatalf("QueryMemberList returned %d entries", len(mv))
		}
		if _, err := QueryMemberStructs(params, prefix); err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Code != CodeInvalidParameterValue {
				t.Fatalf("QueryMemberStructs error %v", err)
			}
		}
	})
}

// FuzzQueryScalars checks QueryInt and QueryBool against strconv.
func FuzzQueryScalars(f *testing.F) {
	f.Add("7", int64(0), int64(10))
	f.Add("-1", int64(-1), int64(65535))
	f.Add("0x10", int64(0), int64(100))
	f.Add("TRUE", int64(5), int64(1))
	f.Fuzz(func(t *testing.T, s string, min, max int64) {
		params := url.Values{"N": {s}}
		n, ok, err := QueryInt(params, "N", min, max)
		want, perr := strconv.ParseInt(s, 10, 64)
		switch {
		case s == "":
			if ok || err != nil {
				t.Fatalf("empty: %d %v %v", n, ok, err)
			}
		case perr != nil || want < min || want > max:
			var e *Error
			if ok || !errors.As(err, &e) || e.Code != CodeInvalidParameterValue {
				t.Fatalf("QueryInt(%q, %d, %d) = %d %v %v, want an error", s, min, max, n, ok, err)
			}
		default:
			if !ok || err != nil || n != want {
				t.Fatalf("QueryInt(%q) = %d %v %v, want %d", s, n, ok, err, want)
			}
		}
		b, ok, err := QueryBool(params, "N")
		switch s {
		case "":
			if ok || err != nil {
				t.Fatalf("empty bool: %v %v", ok, err)
			}
		case "true", "True", "TRUE", "false", "False", "FALSE":
			if !ok || err != nil || b != strings.EqualFold(s, "true") {
				t.Fatalf("QueryBool(%q) = %v %v %v", s, b, ok, err)
			}
		default:
			if ok || err == nil {
				t.Fatalf("QueryBool(%q) = %v %v %v, want an error", s, b, ok, err)
			}
		}
	})
}

// FuzzQueryRequest throws arbitrary forms at the Router as query requests,
// half of them signed correctly so the fuzzer reaches the handlers. Whatever
// comes in, the reply is one well-formed XML document in the service's
// shape, and nothing internal leaks.
func FuzzQueryRequest(f *testing.F) {
	f.Add("Action=DescribeVpcs&Version=2016-11-15&VpcId.1=vpc-1", true, false)
	f.Add("Action=DescribeVpcs&Version=2016-11-15&VpcId.1=boom&Filter.1.Name=cidr-block&Filter.1.Value.1=x", true, false)
	f.Add("Action=DescribeVpcs&Version=2016-11-15&VpcId.1=%3C%00", true, true)
	f.Add("Action=DescribeLoadBalancers&Version=2015-12-01&Names.member.1=missing", true, false)
	f.Add("Action=CreateLoadBalancer&Version=2015-12-01&Subnets.member.1=a&Tags.member.1.Key=k", true, false)
	f.Add("Action=Nope&Version=2099-01-01", true, false)
	f.Add("Action=DescribeVpcs&Version=2016-11-15&VpcId.0=x", false, false)
	f.Add("%zz", true, false)
	r := NewRouter(fakeAuth{}, nil, WithRegisterer(nil), WithMaxBodyBytes(4096))
	var ec2Calls, elbCalls atomic.Int64
	r.AddQueryService(fakeEC2(&ec2Calls))
	r.AddQueryService(fakeELB(&elbCalls))
	f.Fuzz(func(t *testing.T, form string, sign, get bool) {
		method := http.MethodPost
		if get {
			method = http.MethodGet
			form = url.Values{"Action": {"DescribeVpcs"}, "Version": {ec2Version}, "VpcId.1": {form}}.Encode()
		}
		service := ""
		if sign {
			service = "ec2"
			if strings.Contains(form, elbVersion) {
				service = "elasticloadbalancing"
			}
		}
		req := queryRequest(t, method, "http://berth.test/", form, "", service, nil, time.Now())
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, req)
		body := rec.Body.Bytes()
		if rec.Header().Get("Content-Type") != xmlContentType {
			t.Fatalf("Content-Type %q: %s", rec.Header().Get("Content-Type"), body)
		}
		if err := wellFormed(body); err != nil {
			t.Fatalf("not well-formed (%v): %q", err, body)
		}
		if strings.Contains(string(body), "hunter2") {
			t.Fatalf("leak: %s", body)
		}
		switch {
		case rec.Code == 200:
			if !strings.Contains(string(body), "Response xmlns=") {
				t.Fatalf("success without a response element: %s", body)
			}
		case rec.Code >= 400 && rec.Code < 600:
			if !strings.Contains(string(body), "<Code>") {
				t.Fatalf("error without a code: %s", body)
			}
		default:
			t.Fatalf("status %d", rec.Code)
		}
	})
}
