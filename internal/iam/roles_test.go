package iam

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/berthdev/berth/internal/protocol"
)

const ecsTrust = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}`

func roleOf(t *testing.T, out any) roleXML {
	t.Helper()
	r, ok := out.(struct {
		Role roleXML `xml:"Role"`
	})
	if !ok {
		t.Fatalf("result %T is not a role", out)
	}
	return r.Role
}

func TestCreateGetDeleteRole(t *testing.T) {
	e := newEnv(t)
	r := roleOf(t, e.ok("CreateRole", "RoleName", "App", "AssumeRolePolicyDocument", ecsTrust, "Path", "/svc/",
		"Description", "the app", "MaxSessionDuration", "7200", "Tags.member.1.Key", "team", "Tags.member.1.Value", "core"))
	if r.RoleName != "App" || r.Path != "/svc/" || r.Arn != "arn:aws:iam::"+e.acct+":role/svc/App" ||
		!strings.HasPrefix(r.RoleID, "AROA") || len(r.RoleID) != 21 || r.MaxSessionDuration != 7200 ||
		r.Description == nil || *r.Description != "the app" || len(r.Tags) != 1 || r.CreateDate == "" {
		t.Errorf("CreateRole: %+v", r)
	}
	if dec, err := url.PathUnescape(r.AssumeRolePolicyDocument); err != nil || dec != ecsTrust || strings.ContainsAny(r.AssumeRolePolicyDocument, "{\":") {
		t.Errorf("AssumeRolePolicyDocument %q is not the URL-encoded document", r.AssumeRolePolicyDocument)
	}
	// Names are unique regardless of case, and found regardless of case.
	_, err := e.call("CreateRole", "RoleName", "app", "AssumeRolePolicyDocument", ecsTrust)
	if apiCode(err) != codeEntityExists || !strings.Contains(err.Error(), "Role with name app already exists.") {
		t.Errorf("duplicate: %v", err)
	}
	g := roleOf(t, e.ok("GetRole", "RoleName", "APP"))
	if g.RoleID != r.RoleID || g.RoleLastUsed == nil {
		t.Errorf("GetRole: %+v", g)
	}
	// Another account sees nothing of it.
	if _, err := e.callAs(newAccount(), "GetRole", "RoleName", "App"); apiCode(err) != codeNoSuchEntity {
		t.Errorf("GetRole from another account: %v", err)
	}
	e.ok("DeleteRole", "RoleName", "App")
	_, err = e.call("GetRole", "RoleName", "App")
	var pe *protocol.Error
	if !errors.As(err, &pe) || pe.Code != codeNoSuchEntity || pe.HTTPStatus() != http.StatusNotFound ||
		pe.Message != "The role with name App cannot be found." {
		t.Errorf("GetRole after delete: %v", err)
	}
	if _, err := e.call("DeleteRole", "RoleName", "App"); apiCode(err) != codeNoSuchEntity {
		t.Errorf("DeleteRole twice: %v", err)
	}
	// Defaults.
	d := roleOf(t, e.ok("CreateRole", "RoleName", "plain", "AssumeRolePolicyDocument", ecsTrust))
	if d.Path != "/" || d.Arn != "arn:aws:iam::"+e.acct+":role/plain" || d.MaxSessionDuration != 3600 || d.Description != nil {
		t.Errorf("defaults: %+v", d)
	}
}

func TestCreateRoleErrors(t *testing.T) {
	e := newEnv(t)
	long := strings.Repeat("a", 65)
	for _, tc := range []struct {
		name string
		kv   []string
		code string
		msg  string
	}{
		{"no name", []string{"AssumeRolePolicyDocument", ecsTrust}, codeValidation, "Value null at 'roleName'"},
		{"bad name", []string{"RoleName", "a/b", "AssumeRolePolicyDocument", ecsTrust}, codeValidation, "regular expression pattern"},
		{"long name", []string{"RoleName", long, "AssumeRolePolicyDocument", ecsTrust}, codeValidation, "length less than or equal to 64"},
		{"no policy", []string{"RoleName", "r"}, codeValidation, "'assumeRolePolicyDocument'"},
		{"not json", []string{"RoleName", "r", "AssumeRolePolicyDocument", "{nope"}, codeMalformedPolicy, "This policy contains invalid Json"},
		{"json array", []string{"RoleName", "r", "AssumeRolePolicyDocument", "[]"}, codeMalformedPolicy, "invalid Json"},
		{"bad version", []string{"RoleName", "r", "AssumeRolePolicyDocument",
			`{"Version":"2020-01-01","Statement":[{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole"}]}`}, codeMalformedPolicy, "valid version"},
		{"no statement", []string{"RoleName", "r", "AssumeRolePolicyDocument", `{"Version":"2012-10-17"}`}, codeMalformedPolicy, "Syntax errors"},
		{"bad effect", []string{"RoleName", "r", "AssumeRolePolicyDocument",
			`{"Statement":{"Effect":"Maybe","Principal":"*","Action":"sts:AssumeRole"}}`}, codeMalformedPolicy, "Invalid effect"},
		{"no principal", []string{"RoleName", "r", "AssumeRolePolicyDocument",
			`{"Statement":[{"Effect":"Allow","Action":"sts:AssumeRole"}]}`}, codeMalformedPolicy, "Missing required field Principal"},
		{"resource", []string{"RoleName", "r", "AssumeRolePolicyDocument",
			`{"Statement":[{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole","Resource":"*"}]}`}, codeMalformedPolicy, "prohibited field Resource"},
		{"no action", []string{"RoleName", "r", "AssumeRolePolicyDocument",
			`{"Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"}}]}`}, codeMalformedPolicy, "Missing required field Action"},
		{"bad principal", []string{"RoleName", "r", "AssumeRolePolicyDocument",
			`{"Statement":[{"Effect":"Allow","Principal":{"Robot":"x"},"Action":"sts:AssumeRole"}]}`}, codeMalformedPolicy, "Invalid principal"},
		{"huge policy", []string{"RoleName", "r", "AssumeRolePolicyDocument", `{"Id":"` + strings.Repeat("x", 2100) + `"}`}, codeLimitExceeded, "ACLSizePerRole"},
		{"bad path", []string{"RoleName", "r", "AssumeRolePolicyDocument", ecsTrust, "Path", "svc"}, codeValidation, "must begin and end with /"},
		{"short session", []string{"RoleName", "r", "AssumeRolePolicyDocument", ecsTrust, "MaxSessionDuration", "600"}, codeValidation, "greater than or equal to 3600"},
		{"long session", []string{"RoleName", "r", "AssumeRolePolicyDocument", ecsTrust, "MaxSessionDuration", "43201"}, codeValidation, "less than or equal to 43200"},
		{"session nan", []string{"RoleName", "r", "AssumeRolePolicyDocument", ecsTrust, "MaxSessionDuration", "1h"}, codeValidation, "maxSessionDuration"},
		{"dup tags", []string{"RoleName", "r", "AssumeRolePolicyDocument", ecsTrust, "Tags.member.1.Key", "a", "Tags.member.2.Key", "A"}, codeInvalidInput, "Duplicate tag keys"},
		{"long description", []string{"RoleName", "r", "AssumeRolePolicyDocument", ecsTrust, "Description", strings.Repeat("d", 1001)}, codeValidation, "'description'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.call("CreateRole", tc.kv...)
			if apiCode(err) != tc.code || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("got %v, want %s containing %q", err, tc.code, tc.msg)
			}
		})
	}
	// Nothing was created by a refused call.
	out := e.ok("ListRoles").(listRolesResult)
	if len(out.Roles) != 0 {
		t.Errorf("refused calls left roles: %+v", out.Roles)
	}
}

func TestListRolesPaging(t *testing.T) {
	e := newEnv(t)
	for i := 0; i < 7; i++ {
		path := "/"
		if i%2 == 1 {
			path = "/odd/"
		}
		e.ok("CreateRole", "RoleName", fmt.Sprintf("Role%d", i), "AssumeRolePolicyDocument", ecsTrust, "Path", path)
	}
	var names []string
	marker := ""
	for pages := 0; pages < 10; pages++ {
		kv := []string{"MaxItems", "3"}
		if marker != "" {
			kv = append(kv, "Marker", marker)
		}
		out := e.ok("ListRoles", kv...).(listRolesResult)
		for _, r := range out.Roles {
			names = append(names, r.RoleName)
			if r.Tags != nil || r.RoleLastUsed != nil {
				t.Errorf("ListRoles shows tags or last use: %+v", r)
			}
		}
		if !out.IsTruncated {
			if out.Marker != nil {
				t.Errorf("last page has a marker")
			}
			break
		}
		if out.Marker == nil || len(out.Roles) != 3 {
			t.Fatalf("truncated page: %+v", out)
		}
		marker = *out.Marker
	}
	if strings.Join(names, ",") != "Role0,Role1,Role2,Role3,Role4,Role5,Role6" {
		t.Errorf("paged through %v", names)
	}
	odd := e.ok("ListRoles", "PathPrefix", "/odd/").(listRolesResult)
	if len(odd.Roles) != 3 || odd.IsTruncated {
		t.Errorf("PathPrefix /odd/: %+v", odd)
	}
	for _, tc := range [][]string{{"MaxItems", "0"}, {"MaxItems", "1001"}, {"MaxItems", "x"}, {"Marker", "!!"}, {"PathPrefix", "odd"}} {
		if _, err := e.call("ListRoles", tc...); apiCode(err) != codeValidation {
			t.Errorf("ListRoles %v: %v, want ValidationError", tc, err)
		}
	}
}

func TestAssumableByTasks(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	cluster := "arn:aws:ecs:us-east-1:" + e.acct + ":cluster/default"
	mk := func(name, doc string, kv ...string) {
		e.ok("CreateRole", append([]string{"RoleName", name, "AssumeRolePolicyDocument", doc}, kv...)...)
	}
	mk("ok", ecsTrust)
	mk("pathed", ecsTrust, "Path", "/p/")
	mk("lambda", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":["lambda.amazonaws.com"]},"Action":"sts:AssumeRole"}]}`)
	mk("list", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":["lambda.amazonaws.com","ecs-tasks.amazonaws.com"]},"Action":["sts:TagSession","sts:*"]}]}`)
	mk("denied", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole"},{"Effect":"Deny","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}`)
	mk("cond", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole",
		"Condition":{"StringEquals":{"aws:SourceAccount":"`+e.acct+`"},"ArnLike":{"aws:SourceArn":"arn:aws:ecs:us-east-1:`+e.acct+`:*"}}}]}`)
	mk("condother", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole",
		"Condition":{"StringEquals":{"aws:SourceAccount":"999999999999"}}}]}`)
	mk("unknowncond", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole",
		"Condition":{"Bool":{"aws:MultiFactorAuthPresent":"true"}}}]}`)
	mk("wrongaction", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRoleWithSAML"}]}`)
	arn := func(name string) string { return "arn:aws:iam::" + e.acct + ":role/" + name }
	for _, tc := range []struct {
		ref  string
		want string // "" = not assumable
	}{
		{arn("ok"), arn("ok")},
		{"ok", arn("ok")},
		{"OK", arn("ok")},
		{"arn:aws:iam::" + e.acct + ":role/p/pathed", "arn:aws:iam::" + e.acct + ":role/p/pathed"},
		{arn("pathed"), ""}, // the role lives under /p/
		{arn("list"), arn("list")},
		{arn("cond"), arn("cond")},
		{arn("lambda"), ""},
		{arn("denied"), ""},
		{arn("condother"), ""},
		{arn("unknowncond"), ""},
		{arn("wrongaction"), ""},
		{arn("missing"), ""},
		{"arn:aws:iam::999999999999:role/ok", ""},
		{"arn:aws:s3:::bucket", ""},
		{"bad/name", ""},
	} {
		got, err := e.s.AssumableByTasks(ctx, e.acct, tc.ref, cluster)
		switch {
		case tc.want == "" && !errors.Is(err, ErrNotAssumable):
			t.Errorf("%s: got %q %v, want ErrNotAssumable", tc.ref, got, err)
		case tc.want != "" && (err != nil || got != tc.want):
			t.Errorf("%s: got %q %v, want %s", tc.ref, got, err, tc.want)
		}
	}
}

func TestWildcardMatch(t *testing.T) {
	for _, tc := range []struct {
		pat, val string
		want     bool
	}{
		{"sts:*", "sts:AssumeRole", true},
		{"*", "anything/with/slashes", true},
		{"arn:aws:ecs:*:123:*", "arn:aws:ecs:us-east-1:123:cluster/a/b", true},
		{"sts:Assume?ole", "sts:AssumeRole", true},
		{"sts:AssumeRole", "sts:AssumeRoleWithSAML", false},
		{"a[b]", "a[b]", true},
	} {
		if got := wildcardMatch(tc.pat, tc.val, false); got != tc.want {
			t.Errorf("wildcardMatch(%q, %q) = %v", tc.pat, tc.val, got)
		}
	}
}
