package iam

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"sync/atomic"
	"testing"

	"github.com/berthdev/berth/internal/protocol"
	"github.com/berthdev/berth/internal/store"
	"github.com/berthdev/berth/internal/store/storetest"
)

// One embedded etcd serves every test of the package; tests keep apart by
// using accounts of their own (newAccount).
var testStore *store.Store

func TestMain(m *testing.M) { os.Exit(storetest.Main(m, "iam", &testStore)) }

var accountSeq atomic.Int64

func newAccount() string { return fmt.Sprintf("%012d", 300000000000+accountSeq.Add(1)) }

type env struct {
	t    *testing.T
	s    *Service
	acct string
}

func newEnv(t *testing.T) *env {
	s, err := New(Config{Store: testStore})
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, s: s, acct: newAccount()}
}

// call runs an IAM action as the env's account.
func (e *env) call(action string, kv ...string) (any, error) {
	e.t.Helper()
	return e.callAs(e.acct, action, kv...)
}

func (e *env) callAs(acct, action string, kv ...string) (any, error) {
	e.t.Helper()
	p := url.Values{"Action": {action}, "Version": {APIVersion}}
	for i := 0; i+1 < len(kv); i += 2 {
		p.Add(kv[i], kv[i+1])
	}
	ctx := protocol.WithIdentity(context.Background(), protocol.Identity{AccountID: acct, AccessKeyID: "AKIATEST", Region: "us-east-1"})
	h := e.s.QueryService().Ops[action]
	if h == nil {
		e.t.Fatalf("no action %s", action)
	}
	return h(ctx, p)
}

func (e *env) ok(action string, kv ...string) any {
	e.t.Helper()
	out, err := e.call(action, kv...)
	if err != nil {
		e.t.Fatalf("%s %v: %v", action, kv, err)
	}
	return out
}

func apiCode(err error) string {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}
