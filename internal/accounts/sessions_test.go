package accounts

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/smithy-go"

	"github.com/berthdev/berth/internal/protocol"
	"github.com/berthdev/berth/internal/store"
	"github.com/berthdev/berth/internal/store/storetest"
)

var testStore *store.Store

func TestMain(m *testing.M) { os.Exit(storetest.Main(m, "accounts", &testStore)) }

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var taskSeq atomic.Int64

func newTaskReq(account string) TaskSessionRequest {
	id := fmt.Sprintf("%032x", taskSeq.Add(1)+time.Now().UnixNano())
	return TaskSessionRequest{AccountID: account, RoleArn: "arn:aws:iam::" + account + ":role/app",
		TaskArn: "arn:aws:ecs:us-east-1:" + account + ":task/c/" + id, TaskID: id}
}

func newTestAccounts() (*Accounts, *clock) {
	c := &clock{t: time.Now()}
	a := New(testStore)
	a.Now = c.Now
	return a, c
}

func TestTaskSessionMintReuseRotateExpire(t *testing.T) {
	ctx := context.Background()
	a, c := newTestAccounts()
	req := newTaskReq("111111111111")
	s1, err := a.TaskSession(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s1.AccessKeyID, "ASIA") || len(s1.AccessKeyID) != 20 || len(s1.SecretAccessKey) != 40 || s1.SessionToken == "" {
		t.Fatalf("credentials %+v", s1)
	}
	if d := s1.Expiration.Sub(s1.IssuedAt); d != 6*time.Hour {
		t.Errorf("lifetime %v, want 6h", d)
	}
	secret, acct, err := a.LookupSession(ctx, s1.AccessKeyID, s1.SessionToken)
	if err != nil || secret != s1.SecretAccessKey || acct != "111111111111" {
		t.Fatalf("LookupSession = %q %q %v", secret, acct, err)
	}
	// Asking again returns the same set while it has time left.
	c.advance(5 * time.Hour)
	s2, err := a.TaskSession(ctx, req)
	if err != nil || s2.AccessKeyID != s1.AccessKeyID {
		t.Fatalf("second ask: %+v %v, want the same set", s2.AccessKeyID, err)
	}
	// Within 15 minutes of expiry: a new set; the old one stays valid.
	c.advance(46 * time.Minute)
	s3, err := a.TaskSession(ctx, req)
	if err != nil || s3.AccessKeyID == s1.AccessKeyID {
		t.Fatalf("rotation: %+v %v, want a new set", s3.AccessKeyID, err)
	}
	if _, _, err := a.LookupSession(ctx, s1.AccessKeyID, s1.SessionToken); err != nil {
		t.Errorf("old set before its expiry: %v", err)
	}
	s4, err := a.TaskSession(ctx, req)
	if err != nil || s4.AccessKeyID != s3.AccessKeyID {
		t.Errorf("after rotation: got %s, want the newest %s (%v)", s4.AccessKeyID, s3.AccessKeyID, err)
	}
	c.advance(15 * time.Minute)
	if _, _, err := a.LookupSession(ctx, s1.AccessKeyID, s1.SessionToken); !errors.Is(err, protocol.ErrExpiredToken) {
		t.Errorf("old set after its expiry: %v, want ErrExpiredToken", err)
	}
	if _, _, err := a.LookupSession(ctx, s3.AccessKeyID, s3.SessionToken); err != nil {
		t.Errorf("new set: %v", err)
	}
	role, session, err := a.SessionRole(ctx, s3.AccessKeyID)
	if err != nil || role != req.RoleArn || session != req.TaskID {
		t.Errorf("SessionRole = %q %q %v", role, session, err)
	}
}

func TestLookupSessionRefusals(t *testing.T) {
	ctx := context.Background()
	a, _ := newTestAccounts()
	s, err := a.TaskSession(ctx, newTaskReq("111111111111"))
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct{ akid, token string }{
		"wrong token":     {s.AccessKeyID, s.SessionToken + "x"},
		"empty token":     {s.AccessKeyID, ""},
		"unknown key":     {"ASIAAAAAAAAAAAAAAAAA", s.SessionToken},
		"not a session":   {"AKIAAAAAAAAAAAAAAAAA", s.SessionToken},
		"another's token": {s.AccessKeyID, newSessionToken()},
	} {
		if _, _, err := a.LookupSession(ctx, tc.akid, tc.token); !errors.Is(err, protocol.ErrUnknownKey) {
			t.Errorf("%s: %v, want ErrUnknownKey", name, err)
		}
	}
	// A session key is not a root key.
	if _, _, err := a.Lookup(ctx, s.AccessKeyID); !errors.Is(err, protocol.ErrUnknownKey) {
		t.Errorf("Lookup without a token: %v, want ErrUnknownKey", err)
	}
}

func TestRevokeTask(t *testing.T) {
	ctx := context.Background()
	a, c := newTestAccounts()
	req, other := newTaskReq("111111111111"), newTaskReq("111111111111")
	s1, err := a.TaskSession(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	c.advance(5*time.Hour + 50*time.Minute)
	s2, err := a.TaskSession(ctx, req)
	if err != nil || s2.AccessKeyID == s1.AccessKeyID {
		t.Fatal("no rotation", err)
	}
	o, err := a.TaskSession(ctx, other)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.RevokeTask(ctx, req.TaskID); err != nil {
		t.Fatal(err)
	}
	for _, s := range []Session{s1, s2} {
		if _, _, err := a.LookupSession(ctx, s.AccessKeyID, s.SessionToken); !errors.Is(err, protocol.ErrUnknownKey) {
			t.Errorf("revoked %s: %v, want ErrUnknownKey", s.AccessKeyID, err)
		}
	}
	if _, _, err := a.LookupSession(ctx, o.AccessKeyID, o.SessionToken); err != nil {
		t.Errorf("another task's set: %v", err)
	}
	if err := a.RevokeTask(ctx, req.TaskID); err != nil {
		t.Errorf("revoke twice: %v", err)
	}
}

// TestSigV4WithSessionToken signs with aws-sdk-go-v2 (static credentials
// with a session token) against the protocol router with Accounts as its
// authenticator: accepted as the session's account; a wrong token, an
// expired set and a revoked set are refused with AWS's errors.
func TestSigV4WithSessionToken(t *testing.T) {
	ctx := context.Background()
	a, c := newTestAccounts()
	router := protocol.NewRouter(a, slog.New(slog.DiscardHandler), protocol.WithRegisterer(nil))
	router.AddJSONService(protocol.JSONService{TargetPrefix: "AmazonEC2ContainerServiceV20141113", SigningName: "ecs",
		Ops: map[string]protocol.JSONHandler{"ListClusters": func(ctx context.Context, _ []byte) (any, error) {
			id, _ := protocol.IdentityFrom(ctx)
			return map[string]any{"clusterArns": []string{"arn:aws:ecs:" + id.Region + ":" + id.AccountID + ":cluster/default"}}, nil
		}}})
	srv := httptest.NewServer(router)
	defer srv.Close()
	client := func(akid, secret, token string) *ecs.Client {
		return ecs.NewFromConfig(aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL), RetryMaxAttempts: 1,
			Credentials: credentials.NewStaticCredentialsProvider(akid, secret, token)})
	}
	req := newTaskReq("222222222222")
	s, err := a.TaskSession(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	out, err := client(s.AccessKeyID, s.SecretAccessKey, s.SessionToken).ListClusters(ctx, &ecs.ListClustersInput{})
	if err != nil {
		t.Fatalf("signed with the session: %v", err)
	}
	if len(out.ClusterArns) != 1 || !strings.Contains(out.ClusterArns[0], ":222222222222:") {
		t.Errorf("acted as %v, want account 222222222222", out.ClusterArns)
	}
	wantCode := func(name string, cl *ecs.Client, code string) {
		t.Helper()
		_, err := cl.ListClusters(ctx, &ecs.ListClustersInput{})
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != code {
			t.Errorf("%s: %v, want %s", name, err, code)
		}
	}
	wantCode("wrong token", client(s.AccessKeyID, s.SecretAccessKey, "x"+s.SessionToken), "UnrecognizedClientException")
	wantCode("no token", client(s.AccessKeyID, s.SecretAccessKey, ""), "UnrecognizedClientException")
	wrong := "x"
	if s.SecretAccessKey[0] == 'x' { // a different first character, always
		wrong = "y"
	}
	wantCode("wrong secret", client(s.AccessKeyID, wrong+s.SecretAccessKey[1:], s.SessionToken), "InvalidSignatureException")
	c.advance(6 * time.Hour)
	wantCode("expired", client(s.AccessKeyID, s.SecretAccessKey, s.SessionToken), "ExpiredTokenException")
	s2, err := a.TaskSession(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client(s2.AccessKeyID, s2.SecretAccessKey, s2.SessionToken).ListClusters(ctx, &ecs.ListClustersInput{}); err != nil {
		t.Fatalf("rotated set: %v", err)
	}
	if err := a.RevokeTask(ctx, req.TaskID); err != nil {
		t.Fatal(err)
	}
	wantCode("revoked", client(s2.AccessKeyID, s2.SecretAccessKey, s2.SessionToken), "UnrecognizedClientException")
}
