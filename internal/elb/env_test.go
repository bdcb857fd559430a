package elb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/berthdev/berth/internal/protocol"
	"github.com/berthdev/berth/internal/store"
	"github.com/berthdev/berth/internal/store/storetest"
)

// One embedded etcd serves every test of the package; tests keep apart by
// using accounts of their own (newAccount).
var testStore *store.Store

func TestMain(m *testing.M) { os.Exit(storetest.Main(m, "elb", &testStore)) }

var accountSeq atomic.Int64

func newAccount() string { return fmt.Sprintf("%012d", 200000000000+accountSeq.Add(1)) }

// fakeNet is a fixed network, the same for every account:
//
//	vpc-a 10.0.0.0/16: subnet-a1 (us-east-1a), subnet-a2 (us-east-1b), subnet-a3 (us-east-1a); sg-adefault (default), sg-aweb
//	vpc-b 10.1.0.0/16: subnet-b1 (us-east-1a), subnet-b2 (us-east-1b); sg-bdefault (default)
type fakeNet struct{}

var (
	fakeSubnets = map[string][3]string{
		"subnet-a1": {"vpc-a", "us-east-1a", "10.0.1.0/24"}, "subnet-a2": {"vpc-a", "us-east-1b", "10.0.2.0/24"},
		"subnet-a3": {"vpc-a", "us-east-1a", "10.0.3.0/24"},
		"subnet-b1": {"vpc-b", "us-east-1a", "10.1.1.0/24"}, "subnet-b2": {"vpc-b", "us-east-1b", "10.1.2.0/24"},
	}
	fakeVpcs   = map[string]string{"vpc-a": "10.0.0.0/16", "vpc-b": "10.1.0.0/16"}
	fakeGroups = map[string]string{"sg-adefault": "vpc-a", "sg-aweb": "vpc-a", "sg-bdefault": "vpc-b"}
)

func (fakeNet) SubnetInfo(_ context.Context, _, _, id string) (string, string, string, error) {
	s := fakeSubnets[id]
	return s[0], s[1], s[2], nil
}

func (fakeNet) VpcCIDR(_ context.Context, _, _, id string) (string, error) { return fakeVpcs[id], nil }

func (fakeNet) SecurityGroupsIn(_ context.Context, _, _, vpcID string, ids []string) ([]string, error) {
	if len(ids) == 0 {
		if _, ok := fakeVpcs[vpcID]; !ok {
			return nil, nil
		}
		return []string{"sg-" + strings.TrimPrefix(vpcID, "vpc-") + "default"}, nil
	}
	var out []string
	for _, id := range ids {
		if fakeGroups[id] == vpcID {
			out = append(out, id)
		}
	}
	return out, nil
}

// clock is a settable test clock.
type clock struct{ ns atomic.Int64 }

func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }

type env struct {
	t     testing.TB
	s     *Service
	ctx   context.Context
	acct  string
	clock *clock
}

func newEnv(t testing.TB) *env {
	t.Helper()
	c := &clock{}
	c.ns.Store(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano())
	s, err := New(Config{Store: testStore, Networks: fakeNet{}, Now: c.now,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	acct := newAccount()
	return &env{t: t, s: s, acct: acct, ctx: callerCtx(acct, "us-east-1"), clock: c}
}

func callerCtx(account, region string) context.Context {
	return protocol.WithIdentity(context.Background(), protocol.Identity{AccountID: account, AccessKeyID: "AKID" + account, Region: region})
}

func form(action string, kv ...string) url.Values {
	if len(kv)%2 != 0 {
		panic("form: odd number of arguments")
	}
	p := url.Values{"Action": {action}, "Version": {APIVersion}}
	for i := 0; i < len(kv); i += 2 {
		p.Add(kv[i], kv[i+1])
	}
	return p
}

func (e *env) callAs(ctx context.Context, action string, kv ...string) (any, error) {
	h, ok := e.s.QueryService().Ops[action]
	if !ok {
		e.t.Fatalf("no action %s", action)
	}
	return h(ctx, form(action, kv...))
}

func ok[T any](e *env, action string, kv ...string) T {
	e.t.Helper()
	res, err := e.callAs(e.ctx, action, kv...)
	if err != nil {
		e.t.Fatalf("%s %v: %v", action, kv, err)
	}
	v, isT := res.(T)
	if !isT {
		e.t.Fatalf("%s returned %T, want %T", action, res, v)
	}
	return v
}

func code(err error) string {
	if err == nil {
		return ""
	}
	var pe *protocol.Error
	if errors.As(err, &pe) {
		return pe.Code
	}
	return "internal: " + err.Error()
}

// fails runs an action that must fail with wantCode; it returns the message.
func (e *env) fails(wantCode, action string, kv ...string) string {
	e.t.Helper()
	return e.failsAs(e.ctx, wantCode, action, kv...)
}

func (e *env) failsAs(ctx context.Context, wantCode, action string, kv ...string) string {
	e.t.Helper()
	_, err := e.callAs(ctx, action, kv...)
	if got := code(err); got != wantCode {
		e.t.Fatalf("%s %v: error %q (%v), want %s", action, kv, got, err, wantCode)
	}
	var pe *protocol.Error
	errors.As(err, &pe)
	return pe.Message
}

// Shortcuts.

func (e *env) createALB(name string) lbXML {
	e.t.Helper()
	return ok[*loadBalancersResult](e, "CreateLoadBalancer", "Name", name, "Subnets.member.1", "subnet-a1",
		"Subnets.member.2", "subnet-a2").LoadBalancers[0]
}

func (e *env) createTG(name, proto, vpc string, kv ...string) tgXML {
	e.t.Helper()
	args := append([]string{"Name", name, "Protocol", proto, "Port", "80", "VpcId", vpc, "TargetType", "ip"}, kv...)
	return ok[*targetGroupsResult](e, "CreateTargetGroup", args...).TargetGroups[0]
}

func (e *env) createListener(lbARN, proto, port, tgARN string) listenerXML {
	e.t.Helper()
	return ok[*listenersResult](e, "CreateListener", "LoadBalancerArn", lbARN, "Protocol", proto, "Port", port,
		"DefaultActions.member.1.Type", "forward", "DefaultActions.member.1.TargetGroupArn", tgARN).Listeners[0]
}

// snapshot returns the stored configuration of the caller's scope, to check
// that a failed call changed nothing.
func (e *env) snapshot() string {
	e.t.Helper()
	resp, err := testStore.C.Get(context.Background(), store.ScopedPrefix(e.acct, "us-east-1", "elb"), clientv3.WithPrefix())
	if err != nil {
		e.t.Fatal(err)
	}
	var b strings.Builder
	for _, kv := range resp.Kvs {
		fmt.Fprintf(&b, "%s=%s@%d\n", kv.Key, kv.Value, kv.ModRevision)
	}
	return b.String()
}

// do runs an action that must succeed and has no result fields.
func (e *env) do(action string, kv ...string) {
	e.t.Helper()
	if _, err := e.callAs(e.ctx, action, kv...); err != nil {
		e.t.Fatalf("%s %v: %v", action, kv, err)
	}
}
