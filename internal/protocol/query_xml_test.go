package protocol

import (
	"encoding/xml"
	"strings"
	"testing"
)

// ownElement marshals itself as an element of its own choosing.
type ownElement struct{}

func (ownElement) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	return e.EncodeElement("x", xml.StartElement{Name: xml.Name{Local: "other"}})
}

func TestEncodeFields(t *testing.T) {
	type item struct {
		ID string `xml:"id"`
	}
	type attr struct {
		A string `xml:"a,attr"`
	}
	s := "s"
	tests := []struct {
		name    string
		result  any
		want    string
		wantErr bool
	}{
		{name: "nil", result: nil, want: ""},
		{name: "nil pointer", result: (*item)(nil), want: ""},
		{name: "empty struct", result: struct{}{}, want: ""},
		{name: "pointer", result: &item{ID: "i-1"}, want: "<id>i-1</id>"},
		{name: "XMLName is ignored", result: struct {
			XMLName xml.Name `xml:"Whatever"`
			ID      string   `xml:"id"`
		}{ID: "a"}, want: "<id>a</id>"},
		{name: "plain slice, nil, still writes its parent", result: struct {
			Items []item `xml:"itemSet>item,omitempty"`
		}{}, want: "<itemSet></itemSet>"},
		{name: "plain slice", result: struct {
			Items []item `xml:"itemSet>item"`
		}{Items: []item{{"a"}, {"b"}}}, want: "<itemSet><item><id>a</id></item><item><id>b</id></item></itemSet>"},
		{name: "ItemList, empty, is written", result: struct {
			Items ItemList[item] `xml:"itemSet"`
		}{}, want: "<itemSet></itemSet>"},
		{name: "ItemList omitempty", result: struct {
			Items ItemList[item] `xml:"itemSet,omitempty"`
		}{}, want: ""},
		{name: "ItemList of strings", result: struct {
			Groups ItemList[string] `xml:"groupSet"`
		}{Groups: ItemList[string]{"sg-1", "a<b"}}, want: "<groupSet><item>sg-1</item><item>a&lt;b</item></groupSet>"},
		{name: "MemberList", result: struct {
			Subnets MemberList[string] `xml:"Subnets"`
			Empty   MemberList[string] `xml:"Empty"`
		}{Subnets: MemberList[string]{"subnet-1"}}, want: "<Subnets><member>subnet-1</member></Subnets><Empty></Empty>"},
		{name: "MemberList of structs in a path", result: struct {
			Items MemberList[item] `xml:"Outer>Items"`
		}{Items: MemberList[item]{{"a"}}}, want: "<Outer><Items><member><id>a</id></member></Items></Outer>"},
		{name: "nil pointers are left out", result: struct {
			A *string `xml:"a"`
			B *string `xml:"b"`
		}{B: &s}, want: "<b>s</b>"},
		{name: "not a struct", result: "text", wantErr: true},
		{name: "map", result: map[string]string{}, wantErr: true},
		{name: "attribute", result: attr{A: "x"}, wantErr: true},
		{name: "own element", result: ownElement{}, wantErr: true},
		{name: "unsupported field", result: struct {
			F func() `xml:"f"`
		}{F: func() {}}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := encodeFields(tt.result)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("no error; got %s", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestQueryErrorDoc(t *testing.T) {
	msg := "bad <value> & \"quotes\" \x00 \xff"
	tests := []struct {
		name  string
		shape queryShape
		err   *Error
		want  string
	}{
		{"ec2", queryShape{style: StyleEC2, xmlns: ec2NS}, &Error{Code: "C.Sub", Message: msg},
			ec2Decl + `<Response><Errors><Error><Code>C.Sub</Code><Message>bad &lt;value&gt; &amp; &#34;quotes&#34; ` +
				"\uFFFD \uFFFD" + `</Message></Error></Errors><RequestID>r&amp;1</RequestID></Response>`},
		{"standard sender", queryShape{style: StyleStandard, xmlns: `ns"x`}, &Error{Code: "C", Status: 409},
			`<ErrorResponse xmlns="ns&#34;x"><Error><Type>Sender</Type><Code>C</Code><Message></Message></Error>` +
				`<RequestId>r&amp;1</RequestId></ErrorResponse>`},
		{"standard receiver", queryShape{style: StyleStandard}, &Error{Code: "C", Message: "m", Status: 503},
			`<ErrorResponse><Error><Type>Receiver</Type><Code>C</Code><Message>m</Message></Error>` +
				`<RequestId>r&amp;1</RequestId></ErrorResponse>`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := queryErrorDoc(&tt.shape, tt.err, "r&1")
			if string(got) != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
			if err := wellFormed(got); err != nil {
				t.Errorf("not well-formed: %v", err)
			}
		})
	}
}

// TestQueryAuthErrorMapping: every verifier code has its query names, and a
// service's own codes pass unchanged.
func TestQueryAuthErrorMapping(t *testing.T) {
	mismatch := &authError{err: invalidSignature("%s", msgSignatureMismatch), kind: authSignatureMismatch}
	skew := &authError{err: invalidSignature("Signature expired: x"), kind: authRequestTime}
	scope := invalidSignature("Credential should be scoped to a valid region.")
	tests := []struct {
		name              string
		err               error
		ec2Code, stdCode  string
		ec2Status, stdSts int
	}{
		{"missing", NewError(CodeMissingAuthenticationToken, 400, ""), codeQueryMissingAuthToken, codeQueryMissingAuthToken, 401, 403},
		{"unknown key", NewError(CodeUnrecognizedClient, 400, msgUnrecognizedClient), codeEC2AuthFailure, codeInvalidClientTokenID, 401, 403},
		{"mismatch", mismatch, codeEC2AuthFailure, codeSignatureDoesNotMatch, 401, 403},
		{"skew", skew, codeEC2RequestExpired, codeSignatureDoesNotMatch, 400, 403},
		{"scope", scope, codeEC2AuthFailure, codeSignatureDoesNotMatch, 401, 403},
		{"expired token", NewError(CodeExpiredToken, 400, msgExpiredToken), codeEC2RequestExpired, codeQueryExpiredToken, 400, 403},
		{"incomplete", NewError(CodeIncompleteSignature, 400, "x"), codeQueryIncompleteSig, codeQueryIncompleteSig, 400, 400},
		{"too large", NewError(CodeRequestEntityTooLarge, 413, "x"), codeQueryEntityTooLarge, codeQueryEntityTooLarge, 413, 413},
		{"unreadable", NewError(CodeSerialization, 400, "x"), CodeMalformedQueryString, CodeMalformedQueryString, 400, 400},
		{"service code", NewError("InvalidVpcID.NotFound", 0, "x"), "InvalidVpcID.NotFound", "InvalidVpcID.NotFound", 400, 400},
		{"internal", internalError("InternalError"), "InternalError", "InternalError", 500, 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := asAPIError(tt.err)
			for _, c := range []struct {
				style  QueryStyle
				code   string
				status int
			}{{StyleEC2, tt.ec2Code, tt.ec2Status}, {StyleStandard, tt.stdCode, tt.stdSts}} {
				got := queryAuthError(c.style, tt.err, e)
				if got.Code != c.code || got.HTTPStatus() != c.status {
					t.Errorf("style %d: %s %d, want %s %d", c.style, got.Code, got.HTTPStatus(), c.code, c.status)
				}
				if strings.HasSuffix(got.Code, "Exception") {
					t.Errorf("style %d: awsJson code %s leaked", c.style, got.Code)
				}
			}
		})
	}
}
