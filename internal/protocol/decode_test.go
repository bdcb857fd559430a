package protocol

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// runTaskInput is shaped like ECS RunTask's input: nested structures, lists,
// integers, booleans, maps.
type runTaskInput struct {
	Cluster              string            `json:"cluster"`
	Count                *int32            `json:"count"`
	EnableExecuteCommand bool              `json:"enableExecuteCommand"`
	Tags                 []tag             `json:"tags"`
	Overrides            map[string]string `json:"overrides"`
	NetworkConfiguration *struct {
		AwsvpcConfiguration struct {
			Subnets        []string `json:"subnets"`
			AssignPublicIP string   `json:"assignPublicIp"`
		} `json:"awsvpcConfiguration"`
	} `json:"networkConfiguration"`
	StartedAt *epochSeconds `json:"startedAt"`
}

type tag struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// epochSeconds rejects negative timestamps with an *Error of its own, to show
// that a field's own error passes through Decode.
type epochSeconds time.Time

func (e *epochSeconds) UnmarshalJSON(b []byte) error {
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	if f < 0 {
		return NewError("InvalidParameterException", 400, "startedAt must not be negative")
	}
	*e = epochSeconds(time.Unix(int64(f), 0))
	return nil
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		wantCode string // "" = decodes
		wantMsg  string
		check    func(*testing.T, runTaskInput)
	}{
		{name: "empty body", body: ""},
		{name: "whitespace body", body: " \n\t"},
		{name: "empty object", body: "{}"},
		{name: "full", body: `{"cluster":"c","count":2,"enableExecuteCommand":true,"tags":[{"key":"k","value":"v"}],` +
			`"networkConfiguration":{"awsvpcConfiguration":{"subnets":["subnet-1"],"assignPublicIp":"ENABLED"}},"startedAt":1700000000.5}`,
			check: func(t *testing.T, in runTaskInput) {
				if in.Cluster != "c" || *in.Count != 2 || !in.EnableExecuteCommand || in.Tags[0].Value != "v" ||
					in.NetworkConfiguration.AwsvpcConfiguration.Subnets[0] != "subnet-1" {
					t.Errorf("decoded %+v", in)
				}
			}},
		{name: "unknown fields ignored", body: `{"cluster":"c","clientToken":"x","future":{"a":[1,2]}}`},
		{name: "null is nothing", body: `null`},
		{name: "malformed", body: `{"cluster":`, wantCode: CodeSerialization, wantMsg: "Malformed JSON"},
		{name: "trailing garbage", body: `{} x`, wantCode: CodeSerialization},
		{name: "two documents", body: `{}{}`, wantCode: CodeSerialization},
		{name: "top-level array", body: `[]`, wantCode: CodeSerialization, wantMsg: "expected structure, got array"},
		{name: "string for integer", body: `{"count":"2"}`, wantCode: CodeSerialization,
			wantMsg: "Cannot deserialize field 'count': expected integer, got string"},
		{name: "fraction for integer", body: `{"count":1.5}`, wantCode: CodeSerialization, wantMsg: "'count'"},
		{name: "integer overflow", body: `{"count":99999999999}`, wantCode: CodeSerialization, wantMsg: "'count'"},
		{name: "string for boolean", body: `{"enableExecuteCommand":"true"}`, wantCode: CodeSerialization,
			wantMsg: "expected boolean"},
		{name: "object for list", body: `{"tags":{}}`, wantCode: CodeSerialization, wantMsg: "expected list, got object"},
		{name: "nested field named by path", body: `{"networkConfiguration":{"awsvpcConfiguration":{"subnets":"subnet-1"}}}`,
			wantCode: CodeSerialization, wantMsg: "'networkConfiguration.awsvpcConfiguration.subnets'"},
		{name: "number for map value", body: `{"overrides":{"a":1}}`, wantCode: CodeSerialization, wantMsg: "expected string"},
		{name: "field's own *Error passes through", body: `{"startedAt":-1}`, wantCode: "InvalidParameterException"},
		{name: "field's own plain error", body: `{"startedAt":"yesterday"}`, wantCode: CodeSerialization},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var in runTaskInput
			err := Decode([]byte(tt.body), &in)
			if tt.wantCode == "" {
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				if tt.check != nil {
					tt.check(t, in)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v (%T), want *Error", err, err)
			}
			if e.Code != tt.wantCode || e.HTTPStatus() != 400 || !strings.Contains(e.Message, tt.wantMsg) {
				t.Errorf("err = %+v, want %s containing %q", e, tt.wantCode, tt.wantMsg)
			}
		})
	}
}

func TestDecodeMisuseIsInternal(t *testing.T) {
	var in runTaskInput
	err := Decode([]byte(`{}`), in) // not a pointer
	if err == nil || asAPIError(err) != nil {
		t.Fatalf("misuse must be an internal error, got %v", err)
	}
}

// FuzzDecode: Decode never panics, fails only with SerializationException
// (or the field's own *Error), and accepts only valid JSON.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		``, `{}`, `null`, `[]`, `{"cluster":"c","count":1}`, `{"count":"x"}`, `{"tags":[{"key":1}]}`,
		`{"networkConfiguration":{"awsvpcConfiguration":{"subnets":["a"]}}}`, `{"startedAt":-5}`,
		`{"cluster":"\ud800"}`, `{"a":` + strings.Repeat("[", 100), "\xff",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var in runTaskInput
		err := Decode(body, &in)
		if err == nil {
			if len(strings.TrimSpace(string(body))) > 0 && !json.Valid(body) {
				t.Fatalf("accepted invalid JSON %q", body)
			}
			return
		}
		var e *Error
		if !errors.As(err, &e) || (e.Code != CodeSerialization && e.Code != "InvalidParameterException") {
			t.Fatalf("Decode(%q) = %v", body, err)
		}
	})
}
