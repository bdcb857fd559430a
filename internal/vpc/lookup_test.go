package vpc

import (
	"context"
	"testing"
)

func TestLookups(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	vpcID := e.createVpc("10.5.0.0/16")
	sn := e.createSubnet(vpcID, "10.5.1.0/24", "us-east-1b")
	web := e.createGroup(vpcID, "web")
	defVpc, defGroup := e.defaultVpc()

	gotVpc, zone, cidr, err := e.s.SubnetInfo(ctx, e.acct, "us-east-1", sn)
	if err != nil || gotVpc != vpcID || zone != "us-east-1b" || cidr != "10.5.1.0/24" {
		t.Errorf("SubnetInfo = %q %q %q %v", gotVpc, zone, cidr, err)
	}
	for _, id := range []string{"subnet-0123456789abcdef0", "bogus"} {
		if v, _, _, err := e.s.SubnetInfo(ctx, e.acct, "us-east-1", id); v != "" || err != nil {
			t.Errorf("SubnetInfo(%s) = %q %v, want absent", id, v, err)
		}
	}
	if v, _, _, _ := e.s.SubnetInfo(ctx, newAccount(), "us-east-1", sn); v != "" {
		t.Errorf("another account sees subnet %s", sn)
	}
	if c, err := e.s.VpcCIDR(ctx, e.acct, "us-east-1", vpcID); c != "10.5.0.0/16" || err != nil {
		t.Errorf("VpcCIDR = %q %v", c, err)
	}
	if c, err := e.s.VpcCIDR(ctx, e.acct, "us-east-1", "vpc-0123456789abcdef0"); c != "" || err != nil {
		t.Errorf("VpcCIDR(unknown) = %q %v", c, err)
	}
	if g, err := e.s.SecurityGroupsIn(ctx, e.acct, "us-east-1", vpcID, []string{web, defGroup, "sg-nope"}); err != nil || len(g) != 1 || g[0] != web {
		t.Errorf("SecurityGroupsIn = %v %v, want [%s]", g, err, web)
	}
	if g, err := e.s.SecurityGroupsIn(ctx, e.acct, "us-east-1", defVpc, nil); err != nil || len(g) != 1 || g[0] != defGroup {
		t.Errorf("SecurityGroupsIn(default) = %v %v, want [%s]", g, err, defGroup)
	}
}
