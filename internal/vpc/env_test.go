package vpc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/berthdev/berth/internal/protocol"
	"github.com/berthdev/berth/internal/store"
	"github.com/berthdev/berth/internal/store/storetest"
)

// One embedded etcd serves every test of the package; tests keep apart by
// using accounts of their own (newAccount) and public pools of their own.
var testStore *store.Store

func TestMain(m *testing.M) { os.Exit(storetest.Main(m, "vpc", &testStore)) }

var accountSeq atomic.Int64

// newAccount returns an account id no other test uses.
func newAccount() string {
	return fmt.Sprintf("%012d", 100000000000+accountSeq.Add(1))
}

var poolSeq atomic.Int64

// newPool returns a public pool no other test uses.
func newPool(bits int) netip.Prefix {
	n := poolSeq.Add(1)
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{127, byte(101 + n/250), byte(n % 250), 0}), bits)
}

type env struct {
	t    testing.TB
	s    *Service
	ctx  context.Context // the caller of account acct in us-east-1
	acct string
}

type testLogWriter struct{ t testing.TB }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func newEnv(t testing.TB) *env {
	t.Helper()
	return newEnvWith(t, Config{})
}

func newEnvWith(t testing.TB, cfg Config) *env {
	t.Helper()
	cfg.Store = testStore
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(testLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	if !cfg.PublicIPPool.IsValid() {
		cfg.PublicIPPool = newPool(24)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	acct := newAccount()
	return &env{t: t, s: s, acct: acct, ctx: callerCtx(acct, "us-east-1")}
}

func callerCtx(account, region string) context.Context {
	return protocol.WithIdentity(context.Background(), protocol.Identity{AccountID: account, AccessKeyID: "AKID" + account, Region: region})
}

// run starts the firewall reconciler for the test's lifetime.
func (e *env) run() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = e.s.Run(ctx) }()
	e.t.Cleanup(func() { cancel(); <-done })
}

// form builds request parameters from name, value pairs.
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

// callAs runs an EC2 action as the caller in ctx.
func (e *env) callAs(ctx context.Context, action string, kv ...string) (any, error) {
	h, ok := e.s.QueryService().Ops[action]
	if !ok {
		e.t.Fatalf("no action %s", action)
	}
	return h(ctx, form(action, kv...))
}

func (e *env) call(action string, kv ...string) (any, error) { return e.callAs(e.ctx, action, kv...) }

// ok runs an action that must succeed and returns its result as a T.
func ok[T any](e *env, action string, kv ...string) T {
	e.t.Helper()
	return okAs[T](e, e.ctx, action, kv...)
}

func okAs[T any](e *env, ctx context.Context, action string, kv ...string) T {
	e.t.Helper()
	res, err := e.callAs(ctx, action, kv...)
	if err != nil {
		e.t.Fatalf("%s %v: %v", action, kv, err)
	}
	v, isT := res.(T)
	if !isT {
		e.t.Fatalf("%s returned %T, want %T", action, res, v)
	}
	return v
}

// code returns the EC2 error code of err ("" for nil, "internal: …" for a
// non-API error).
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

// fails runs an action that must fail with the given code; it returns the
// error's message.
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

// Shortcuts for the resources most tests need.

func (e *env) createVpc(cidr string) string {
	e.t.Helper()
	return ok[*createVpcResult](e, "CreateVpc", "CidrBlock", cidr).Vpc.VpcID
}

func (e *env) createSubnet(vpcID, cidr, az string) string {
	e.t.Helper()
	kv := []string{"VpcId", vpcID, "CidrBlock", cidr}
	if az != "" {
		kv = append(kv, "AvailabilityZone", az)
	}
	return ok[*createSubnetResult](e, "CreateSubnet", kv...).Subnet.SubnetID
}

func (e *env) createGroup(vpcID, name string) string {
	e.t.Helper()
	return ok[*createSecurityGroupResult](e, "CreateSecurityGroup", "VpcId", vpcID, "GroupName", name,
		"GroupDescription", name+" group").GroupID
}

func (e *env) vpc(id string) vpcXML {
	e.t.Helper()
	r := ok[*describeVpcsResult](e, "DescribeVpcs", "VpcId.1", id)
	if len(r.Vpcs) != 1 {
		e.t.Fatalf("DescribeVpcs %s: %d vpcs", id, len(r.Vpcs))
	}
	return r.Vpcs[0]
}

func (e *env) subnet(id string) subnetXML {
	e.t.Helper()
	r := ok[*describeSubnetsResult](e, "DescribeSubnets", "SubnetId.1", id)
	if len(r.Subnets) != 1 {
		e.t.Fatalf("DescribeSubnets %s: %d subnets", id, len(r.Subnets))
	}
	return r.Subnets[0]
}

func (e *env) group(id string) groupXML {
	e.t.Helper()
	r := ok[*describeSecurityGroupsResult](e, "DescribeSecurityGroups", "GroupId.1", id)
	if len(r.SecurityGroups) != 1 {
		e.t.Fatalf("DescribeSecurityGroups %s: %d groups", id, len(r.SecurityGroups))
	}
	return r.SecurityGroups[0]
}

// defaultVpc returns the caller's default VPC and its default group.
func (e *env) defaultVpc() (vpcID, groupID string) {
	e.t.Helper()
	r := ok[*describeVpcsResult](e, "DescribeVpcs", "Filter.1.Name", "is-default", "Filter.1.Value.1", "true")
	if len(r.Vpcs) != 1 {
		e.t.Fatalf("default vpcs: %d", len(r.Vpcs))
	}
	return r.Vpcs[0].VpcID, e.defaultGroup(r.Vpcs[0].VpcID)
}

func (e *env) defaultGroup(vpcID string) string {
	e.t.Helper()
	r := ok[*describeSecurityGroupsResult](e, "DescribeSecurityGroups", "Filter.1.Name", "vpc-id",
		"Filter.1.Value.1", vpcID, "Filter.2.Name", "group-name", "Filter.2.Value.1", "default")
	if len(r.SecurityGroups) != 1 {
		e.t.Fatalf("default group of %s: %d groups", vpcID, len(r.SecurityGroups))
	}
	return r.SecurityGroups[0].GroupID
}
