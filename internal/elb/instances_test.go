package elb

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/berthdev/berth/internal/lbproxy"
	"github.com/berthdev/berth/internal/store"
)

// fakeInstances are container instances by account and id.
type fakeInstances map[string]string // account/id → address

func (f fakeInstances) InstanceAddress(_ context.Context, account, _, id string) (string, error) {
	if a, ok := f[account+"/"+id]; ok {
		return a, nil
	}
	return "", store.ErrNotFound
}

func TestInstanceTargets(t *testing.T) {
	e := newEnv(t)
	inst := fakeInstances{e.acct + "/i-0123456789abcdef0": "127.104.0.1", "999999999999/i-0aaaaaaaaaaaaaaaa": "127.104.0.2"}
	s, err := New(Config{Store: testStore, Networks: fakeNet{}, Now: e.clock.now, Instances: inst,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	e.s = s
	tg := ok[*targetGroupsResult](e, "CreateTargetGroup", "Name", "inst", "Protocol", "HTTP", "Port", "80", "VpcId", "vpc-a",
		"TargetType", "instance").TargetGroups[0]
	e.do("RegisterTargets", "TargetGroupArn", tg.TargetGroupArn, "Targets.member.1.Id", "i-0123456789abcdef0", "Targets.member.1.Port", "49153")
	// Another account's instance, an unknown one and an address are refused.
	for _, id := range []string{"i-0aaaaaaaaaaaaaaaa", "i-0bbbbbbbbbbbbbbbb", "10.0.0.5"} {
		e.fails(codeInvalidTarget, "RegisterTargets", "TargetGroupArn", tg.TargetGroupArn, "Targets.member.1.Id", id)
	}
	// The data plane's spec dials the instance's address; a target whose
	// instance has gone is left out.
	cfg := LoadBalancerConfig{TargetGroups: map[string]TargetGroupConfig{tg.TargetGroupArn: {ARN: tg.TargetGroupArn, TargetType: "instance"}}}
	p := lbproxy.LoadBalancer{TargetGroups: []lbproxy.TargetGroup{{ARN: tg.TargetGroupArn, Targets: []lbproxy.Target{
		{ID: "i-0123456789abcdef0", Port: 49153}, {ID: "i-0cccccccccccccccc", Port: 49154}}}}}
	s.instanceAddresses(context.Background(), scope{account: e.acct, region: "us-east-1"}, cfg, &p)
	got := p.TargetGroups[0].Targets
	if len(got) != 1 || got[0].Address != "127.104.0.1" || got[0].ID != "i-0123456789abcdef0" {
		t.Fatalf("spec targets %+v", got)
	}
}
