package iam

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/berthdev/berth/internal/accounts"
	"github.com/berthdev/berth/internal/protocol"
)

// The real AWS CLI against the IAM API through berth's protocol router: it
// must send what the handlers read and parse what they reply.

const awsCLI = "/usr/bin/aws"

type cliKeys map[string]string

func (k cliKeys) Lookup(_ context.Context, akid string) (string, string, error) {
	if acct, ok := k[akid]; ok {
		return "secret", acct, nil
	}
	return "", "", protocol.ErrUnknownKey
}

type cliEnv struct {
	*env
	endpoint, home string
}

func newCLIEnv(t *testing.T) *cliEnv {
	if testing.Short() {
		t.Skip("runs the AWS CLI")
	}
	if _, err := os.Stat(awsCLI); err != nil {
		t.Skipf("AWS CLI not installed at %s", awsCLI)
	}
	e := newEnv(t)
	router := protocol.NewRouter(cliKeys{"a": e.acct, "b": newAccount()}, slog.New(slog.DiscardHandler), protocol.WithRegisterer(nil))
	router.AddQueryService(e.s.QueryService())
	router.AddQueryService(e.s.STSQueryService())
	srv := httptest.NewServer(router)
	t.Cleanup(srv.Close)
	home := t.TempDir()
	if err := os.WriteFile(filepath.Join(home, "config"), []byte("[default]\nregion = us-east-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return &cliEnv{env: e, endpoint: srv.URL, home: home}
}

func (c *cliEnv) aws(key string, args ...string) (string, string, bool) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, awsCLI, append(args, "--endpoint-url", c.endpoint, "--output", "json")...)
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + c.home,
		"AWS_CONFIG_FILE=" + filepath.Join(c.home, "config"),
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(c.home, "credentials"),
		"AWS_ACCESS_KEY_ID=" + key, "AWS_SECRET_ACCESS_KEY=secret",
		"AWS_DEFAULT_REGION=us-east-1", "AWS_EC2_METADATA_DISABLED=true", "AWS_PAGER=",
	}
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err == nil
}

func (c *cliEnv) ok(v any, key string, args ...string) {
	c.t.Helper()
	out, errOut, ok := c.aws(key, args...)
	if !ok {
		c.t.Fatalf("aws %s: %s", strings.Join(args, " "), errOut)
	}
	if v != nil {
		if err := json.Unmarshal([]byte(out), v); err != nil {
			c.t.Fatalf("aws %s: output %q: %v", strings.Join(args, " "), out, err)
		}
	}
}

func (c *cliEnv) fails(key, code string, args ...string) string {
	c.t.Helper()
	_, errOut, ok := c.aws(key, args...)
	if ok || !strings.Contains(errOut, "("+code+")") {
		c.t.Fatalf("aws %s: want error %s, got ok=%v %s", strings.Join(args, " "), code, ok, errOut)
	}
	return errOut
}

type cliRole struct {
	Path, RoleName, RoleId, Arn, CreateDate, Description string
	MaxSessionDuration                                   int
	AssumeRolePolicyDocument                             struct {
		Version   string
		Statement []struct {
			Effect    string
			Principal struct{ Service string }
			Action    string
		}
	}
	Tags []struct{ Key, Value string }
}

func TestAWSCLI(t *testing.T) {
	c := newCLIEnv(t)
	policy := filepath.Join(c.home, "trust.json")
	trust := `{"Version": "2012-10-17", "Statement": [{"Sid": "ecs tasks", "Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}]}`
	if err := os.WriteFile(policy, []byte(trust), 0o600); err != nil {
		t.Fatal(err)
	}
	var created struct{ Role cliRole }
	c.ok(&created, "a", "iam", "create-role", "--role-name", "app", "--assume-role-policy-document", "file://"+policy,
		"--description", "the app's role", "--tags", "Key=team,Value=core")
	r := created.Role
	st := r.AssumeRolePolicyDocument.Statement
	if r.RoleName != "app" || r.Path != "/" || r.Arn != "arn:aws:iam::"+c.acct+":role/app" || !strings.HasPrefix(r.RoleId, "AROA") ||
		r.Description != "the app's role" || r.MaxSessionDuration != 3600 || r.CreateDate == "" || len(r.Tags) != 1 ||
		len(st) != 1 || st[0].Principal.Service != "ecs-tasks.amazonaws.com" || st[0].Action != "sts:AssumeRole" {
		t.Errorf("create-role: %+v", r)
	}
	var got struct {
		Role struct {
			cliRole
			RoleLastUsed map[string]any
		}
	}
	c.ok(&got, "a", "iam", "get-role", "--role-name", "app")
	if got.Role.RoleId != r.RoleId || got.Role.AssumeRolePolicyDocument.Version != "2012-10-17" || got.Role.RoleLastUsed == nil {
		t.Errorf("get-role: %+v", got.Role)
	}
	for i := 0; i < 4; i++ {
		c.ok(nil, "a", "iam", "create-role", "--role-name", "r"+string(rune('a'+i)), "--path", "/team/",
			"--assume-role-policy-document", trust)
	}
	var list struct{ Roles []cliRole }
	c.ok(&list, "a", "iam", "list-roles", "--page-size", "2") // three pages, followed by the CLI
	if len(list.Roles) != 5 || list.Roles[0].RoleName != "app" || list.Roles[4].RoleName != "rd" {
		t.Errorf("list-roles: %+v", list.Roles)
	}
	c.ok(&list, "a", "iam", "list-roles", "--path-prefix", "/team/")
	if len(list.Roles) != 4 || list.Roles[0].Arn != "arn:aws:iam::"+c.acct+":role/team/ra" {
		t.Errorf("list-roles --path-prefix: %+v", list.Roles)
	}
	c.ok(&list, "b", "iam", "list-roles")
	if len(list.Roles) != 0 {
		t.Errorf("another account lists %+v", list.Roles)
	}
	var ident struct{ Account, Arn, UserId string }
	c.ok(&ident, "a", "sts", "get-caller-identity")
	if ident.Account != c.acct || ident.Arn != "arn:aws:iam::"+c.acct+":root" {
		t.Errorf("get-caller-identity: %+v", ident)
	}

	// Errors, worded as IAM words them.
	errOut := c.fails("a", "EntityAlreadyExists", "iam", "create-role", "--role-name", "APP", "--assume-role-policy-document", trust)
	if !strings.Contains(errOut, "when calling the CreateRole operation: Role with name APP already exists.") {
		t.Errorf("stderr %q", errOut)
	}
	c.fails("a", "MalformedPolicyDocument", "iam", "create-role", "--role-name", "x", "--assume-role-policy-document", "{not json")
	c.fails("a", "ValidationError", "iam", "create-role", "--role-name", "x", "--assume-role-policy-document", trust, "--path", "nope")
	c.ok(nil, "a", "iam", "delete-role", "--role-name", "app")
	errOut = c.fails("a", "NoSuchEntity", "iam", "get-role", "--role-name", "app")
	if !strings.Contains(errOut, "The role with name app cannot be found.") {
		t.Errorf("stderr %q", errOut)
	}
	c.fails("b", "NoSuchEntity", "iam", "delete-role", "--role-name", "ra")
	c.fails("nokey", "InvalidClientTokenId", "iam", "list-roles")
}

// TestSTSWithTaskCredentials signs STS GetCallerIdentity (query protocol)
// with a task role's temporary credentials through the router with the real
// accounts authenticator: the caller is the assumed role; a wrong token,
// expired or revoked credentials get the query protocol's errors.
func TestSTSWithTaskCredentials(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	now := time.Now()
	accts := accounts.New(testStore)
	accts.Now = func() time.Time { return now }
	e.s.cfg.Sessions = accts
	router := protocol.NewRouter(accts, slog.New(slog.DiscardHandler), protocol.WithRegisterer(nil))
	router.AddQueryService(e.s.QueryService())
	router.AddQueryService(e.s.STSQueryService())
	srv := httptest.NewServer(router)
	defer srv.Close()
	role := roleOf(t, e.ok("CreateRole", "RoleName", "app", "AssumeRolePolicyDocument", ecsTrust))
	taskID := "0123456789abcdef0123456789abcdef"
	sess, err := accts.TaskSession(ctx, accounts.TaskSessionRequest{AccountID: e.acct, RoleArn: role.Arn,
		TaskArn: "arn:aws:ecs:us-east-1:" + e.acct + ":task/c/" + taskID, TaskID: taskID})
	if err != nil {
		t.Fatal(err)
	}
	client := func(token string) *sts.Client {
		return sts.NewFromConfig(aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL), RetryMaxAttempts: 1,
			Credentials: credentials.NewStaticCredentialsProvider(sess.AccessKeyID, sess.SecretAccessKey, token)})
	}
	out, err := client(sess.SessionToken).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.Account) != e.acct || aws.ToString(out.Arn) != "arn:aws:sts::"+e.acct+":assumed-role/app/"+taskID ||
		aws.ToString(out.UserId) != role.RoleID+":"+taskID {
		t.Errorf("GetCallerIdentity: %s %s %s", aws.ToString(out.Account), aws.ToString(out.Arn), aws.ToString(out.UserId))
	}
	wantCode := func(name, token, code string) {
		t.Helper()
		_, err := client(token).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != code {
			t.Errorf("%s: %v, want %s", name, err, code)
		}
	}
	wantCode("wrong token", "x"+sess.SessionToken, "InvalidClientTokenId")
	now = now.Add(6*time.Hour + time.Second)
	wantCode("expired", sess.SessionToken, "ExpiredToken")
	now = now.Add(-time.Hour)
	if err := accts.RevokeTask(ctx, taskID); err != nil {
		t.Fatal(err)
	}
	wantCode("revoked", sess.SessionToken, "InvalidClientTokenId")
}
