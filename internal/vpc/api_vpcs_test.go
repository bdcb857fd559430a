package vpc

import (
	"context"
	"strings"
	"sync"
	"testing"
)

func TestDefaultVpc(t *testing.T) {
	e := newEnv(t)
	vpcs := ok[*describeVpcsResult](e, "DescribeVpcs").Vpcs
	if len(vpcs) != 1 {
		t.Fatalf("a new account has %d vpcs, want its default one", len(vpcs))
	}
	v := vpcs[0]
	if !v.IsDefault || v.CidrBlock != "172.31.0.0/16" || v.State != "available" || v.OwnerID != e.acct || !validID(v.VpcID, "vpc") {
		t.Errorf("default vpc = %+v", v)
	}
	subnets := ok[*describeSubnetsResult](e, "DescribeSubnets").Subnets
	want := map[string]string{"us-east-1a": "172.31.0.0/20", "us-east-1b": "172.31.16.0/20", "us-east-1c": "172.31.32.0/20"}
	if len(subnets) != 3 {
		t.Fatalf("%d default subnets", len(subnets))
	}
	for _, sn := range subnets {
		if want[sn.AvailabilityZone] != sn.CidrBlock || !sn.DefaultForAz || !sn.MapPublicIPOnLaunch || sn.VpcID != v.VpcID ||
			sn.AvailableIPAddressCount != 4096-5 || sn.SubnetArn != "arn:aws:ec2:us-east-1:"+e.acct+":subnet/"+sn.SubnetID {
			t.Errorf("default subnet %+v", sn)
		}
	}
	groups := ok[*describeSecurityGroupsResult](e, "DescribeSecurityGroups").SecurityGroups
	if len(groups) != 1 {
		t.Fatalf("%d groups", len(groups))
	}
	g := groups[0]
	if g.GroupName != "default" || g.GroupDescription != "default VPC security group" || g.VpcID != v.VpcID {
		t.Errorf("default group %+v", g)
	}
	if len(g.IPPermissions) != 1 || g.IPPermissions[0].IPProtocol != "-1" || len(g.IPPermissions[0].Groups) != 1 ||
		g.IPPermissions[0].Groups[0].GroupID != g.GroupID || len(g.IPPermissions[0].IPRanges) != 0 {
		t.Errorf("default group ingress %+v", g.IPPermissions)
	}
	if len(g.IPPermissionsEgress) != 1 || g.IPPermissionsEgress[0].IPProtocol != "-1" ||
		len(g.IPPermissionsEgress[0].IPRanges) != 1 || g.IPPermissionsEgress[0].IPRanges[0].CidrIP != "0.0.0.0/0" {
		t.Errorf("default group egress %+v", g.IPPermissionsEgress)
	}
}

// TestDefaultVpcOnce races many first calls of one account: exactly one
// default VPC comes of it.
func TestDefaultVpcOnce(t *testing.T) {
	acct := newAccount()
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := newEnv(t) // a replica of its own: no shared cache
			if _, err := e.callAs(callerCtx(acct, "eu-west-1"), "DescribeSubnets"); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	e := newEnv(t)
	ctx := callerCtx(acct, "eu-west-1")
	if n := len(okAs[*describeVpcsResult](e, ctx, "DescribeVpcs").Vpcs); n != 1 {
		t.Errorf("%d vpcs after concurrent first calls", n)
	}
	subnets := okAs[*describeSubnetsResult](e, ctx, "DescribeSubnets").Subnets
	if len(subnets) != 3 {
		t.Errorf("%d subnets after concurrent first calls", len(subnets))
	}
	for _, sn := range subnets {
		if !strings.HasPrefix(sn.AvailabilityZone, "eu-west-1") || !strings.HasPrefix(sn.AvailabilityZoneID, "euw1-az") {
			t.Errorf("zone %s (%s)", sn.AvailabilityZone, sn.AvailabilityZoneID)
		}
	}
	if n := len(okAs[*describeSecurityGroupsResult](e, ctx, "DescribeSecurityGroups").SecurityGroups); n != 1 {
		t.Errorf("%d groups", n)
	}
}

func TestCreateVpc(t *testing.T) {
	e := newEnv(t)
	r := ok[*createVpcResult](e, "CreateVpc", "CidrBlock", "10.0.0.0/16",
		"TagSpecification.1.ResourceType", "vpc", "TagSpecification.1.Tag.1.Key", "Name", "TagSpecification.1.Tag.1.Value", "main")
	v := r.Vpc
	if v.CidrBlock != "10.0.0.0/16" || v.IsDefault || v.State != "available" || len(v.TagSet) != 1 || v.TagSet[0] != (tagXML{"Name", "main"}) ||
		len(v.CidrBlockAssociationSet) != 1 || v.CidrBlockAssociationSet[0].CidrBlockState.State != "associated" {
		t.Errorf("created %+v", v)
	}
	if got := e.vpc(v.VpcID); got.CidrBlock != "10.0.0.0/16" {
		t.Errorf("described %+v", got)
	}
	// Its own default group.
	g := e.group(e.defaultGroup(v.VpcID))
	if g.IPPermissions[0].Groups[0].GroupID != g.GroupID {
		t.Errorf("new vpc's default group %+v", g)
	}
	// Overlapping VPCs are fine: each is its own network.
	e.createVpc("10.0.0.0/16")

	for _, tt := range []struct{ cidr, code string }{
		{"", codeMissingParameter},
		{"banana", codeInvalidParameterValue},
		{"10.0.0.0/8", codeVpcRange},
		{"10.0.0.0/29", codeVpcRange},
		{"10.0.0.1/16", codeVpcRange},
		{"127.0.0.0/16", codeVpcRange},
		{"fd00::/48", codeInvalidParameterValue},
	} {
		var kv []string
		if tt.cidr != "" {
			kv = []string{"CidrBlock", tt.cidr}
		}
		msg := e.fails(tt.code, "CreateVpc", kv...)
		if tt.code == codeVpcRange && msg != "The CIDR '"+tt.cidr+"' is invalid." {
			t.Errorf("message %q", msg)
		}
	}
	e.fails(codeInvalidParameterValue, "CreateVpc", "CidrBlock", "10.1.0.0/16",
		"TagSpecification.1.ResourceType", "subnet", "TagSpecification.1.Tag.1.Key", "a")
	e.fails(codeInvalidParameterValue, "CreateVpc", "CidrBlock", "10.1.0.0/16",
		"TagSpecification.1.ResourceType", "vpc", "TagSpecification.1.Tag.1.Key", "aws:x")
	e.fails(codeDryRun, "CreateVpc", "CidrBlock", "10.1.0.0/16", "DryRun", "true")
	if n := len(ok[*describeVpcsResult](e, "DescribeVpcs").Vpcs); n != 3 {
		t.Errorf("%d vpcs: failed calls changed state", n)
	}
}

func TestDescribeVpcs(t *testing.T) {
	e := newEnv(t)
	a := e.createVpc("10.0.0.0/16")
	b := e.createVpc("10.1.0.0/16")
	ok[*returnXML](e, "CreateTags", "ResourceId.1", b, "Tag.1.Key", "env", "Tag.1.Value", "prod-eu")
	def, _ := e.defaultVpc()
	ids := func(r *describeVpcsResult) string {
		var out []string
		for _, v := range r.Vpcs {
			out = append(out, v.VpcID)
		}
		return strings.Join(out, ",")
	}
	for _, tt := range []struct {
		name string
		kv   []string
		want []string
	}{
		{"by id", []string{"VpcId.1", a}, []string{a}},
		{"by ids", []string{"VpcId.1", b, "VpcId.2", a}, []string{a, b}},
		{"cidr", []string{"Filter.1.Name", "cidr", "Filter.1.Value.1", "10.1.0.0/16"}, []string{b}},
		{"cidr-block wildcard", []string{"Filter.1.Name", "cidr-block", "Filter.1.Value.1", "10.*"}, []string{a, b}},
		{"isDefault", []string{"Filter.1.Name", "isDefault", "Filter.1.Value.1", "false"}, []string{a, b}},
		{"is-default", []string{"Filter.1.Name", "is-default", "Filter.1.Value.1", "true"}, []string{def}},
		{"tag", []string{"Filter.1.Name", "tag:env", "Filter.1.Value.1", "prod-??"}, []string{b}},
		{"tag-key", []string{"Filter.1.Name", "tag-key", "Filter.1.Value.1", "env"}, []string{b}},
		{"two filters", []string{"Filter.1.Name", "state", "Filter.1.Value.1", "available",
			"Filter.2.Name", "vpc-id", "Filter.2.Value.1", a, "Filter.2.Value.2", def}, []string{a, def}},
		{"id and filter", []string{"VpcId.1", a, "Filter.1.Name", "is-default", "Filter.1.Value.1", "true"}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := ids(ok[*describeVpcsResult](e, "DescribeVpcs", tt.kv...))
			want := sortedBy(append([]string(nil), tt.want...), func(s *string) string { return *s })
			if got != strings.Join(want, ",") {
				t.Errorf("got %s, want %v", got, want)
			}
		})
	}
	msg := e.fails(codeVpcNotFound, "DescribeVpcs", "VpcId.1", a, "VpcId.2", "vpc-0123456789abcdef0")
	if msg != "The vpc ID 'vpc-0123456789abcdef0' does not exist" {
		t.Errorf("message %q", msg)
	}
	e.fails(codeVpcMalformed, "DescribeVpcs", "VpcId.1", "vpc-xyz")
	e.fails(codeInvalidParameterValue, "DescribeVpcs", "Filter.1.Name", "colour", "Filter.1.Value.1", "x")
	e.fails(codeInvalidParameterValue, "DescribeVpcs", "VpcId.0", a)

	// Paging.
	var seen []string
	tok := ""
	for {
		kv := []string{"MaxResults", "5"}
		if tok != "" {
			kv = append(kv, "NextToken", tok)
		}
		for i := 0; i < 4 && tok == ""; i++ {
			e.createVpc("10.9.0.0/16") // 3 + 4 = 7 vpcs: two pages
		}
		r := ok[*describeVpcsResult](e, "DescribeVpcs", kv...)
		for _, v := range r.Vpcs {
			seen = append(seen, v.VpcID)
		}
		if tok = r.NextToken; tok == "" {
			break
		}
	}
	if len(seen) != 7 {
		t.Errorf("paged through %d vpcs, want 7", len(seen))
	}
	e.fails(codeInvalidParameterValue, "DescribeVpcs", "MaxResults", "2")
	e.fails(codeInvalidParameterCombo, "DescribeVpcs", "MaxResults", "5", "VpcId.1", a)
}

func TestDeleteVpc(t *testing.T) {
	e := newEnv(t)
	v := e.createVpc("10.0.0.0/16")
	sn := e.createSubnet(v, "10.0.1.0/24", "")
	g := e.createGroup(v, "web")
	msg := e.fails(codeDependencyViolation, "DeleteVpc", "VpcId", v)
	if msg != "The vpc '"+v+"' has dependencies and cannot be deleted." {
		t.Errorf("message %q", msg)
	}
	ok[*returnXML](e, "DeleteSubnet", "SubnetId", sn)
	e.fails(codeDependencyViolation, "DeleteVpc", "VpcId", v) // the group
	ok[*returnXML](e, "DeleteSecurityGroup", "GroupId", g)
	def := e.defaultGroup(v)
	if r := ok[*returnXML](e, "DeleteVpc", "VpcId", v); !r.Return {
		t.Error("return false")
	}
	e.fails(codeVpcNotFound, "DeleteVpc", "VpcId", v)
	e.fails(codeGroupNotFound, "DescribeSecurityGroups", "GroupId.1", def)
	e.fails(codeMissingParameter, "DeleteVpc")
	e.fails(codeVpcMalformed, "DeleteVpc", "VpcId", "nope")
}

// TestAccountIsolation: nothing of one account is visible to, or usable
// by, another.
func TestAccountIsolation(t *testing.T) {
	e := newEnv(t)
	v := e.createVpc("10.0.0.0/16")
	sn := e.createSubnet(v, "10.0.0.0/24", "")
	g := e.createGroup(v, "web")
	other := callerCtx(newAccount(), "us-east-1")
	if r := okAs[*describeVpcsResult](e, other, "DescribeVpcs"); len(r.Vpcs) != 1 || r.Vpcs[0].VpcID == v || !r.Vpcs[0].IsDefault {
		t.Errorf("other account sees %+v", r.Vpcs)
	}
	e.failsAs(other, codeVpcNotFound, "DescribeVpcs", "VpcId.1", v)
	e.failsAs(other, codeSubnetNotFound, "DescribeSubnets", "SubnetId.1", sn)
	e.failsAs(other, codeGroupNotFound, "DescribeSecurityGroups", "GroupId.1", g)
	e.failsAs(other, codeVpcNotFound, "CreateSubnet", "VpcId", v, "CidrBlock", "10.0.1.0/24")
	e.failsAs(other, codeVpcNotFound, "DeleteVpc", "VpcId", v)
	e.failsAs(other, codeSubnetNotFound, "DeleteSubnet", "SubnetId", sn)
	e.failsAs(other, codeGroupNotFound, "DeleteSecurityGroup", "GroupId", g)
	e.failsAs(other, codeGroupNotFound, "AuthorizeSecurityGroupIngress", "GroupId", g,
		"IpPermissions.1.IpProtocol", "tcp", "IpPermissions.1.FromPort", "80", "IpPermissions.1.ToPort", "80",
		"IpPermissions.1.IpRanges.1.CidrIp", "0.0.0.0/0")
	e.failsAs(other, codeVpcNotFound, "CreateTags", "ResourceId.1", v, "Tag.1.Key", "k")
	otherVpc := okAs[*createVpcResult](e, other, "CreateVpc", "CidrBlock", "10.0.0.0/16").Vpc.VpcID
	otherGroup := okAs[*createSecurityGroupResult](e, other, "CreateSecurityGroup", "VpcId", otherVpc,
		"GroupName", "x", "GroupDescription", "x").GroupID
	e.fails(codeGroupNotFound, "AuthorizeSecurityGroupIngress", "GroupId", g,
		"IpPermissions.1.IpProtocol", "-1", "IpPermissions.1.Groups.1.GroupId", otherGroup)
	if _, _, _, err := e.s.ResolveAwsvpc(context.Background(), newAccount(), "us-east-1", []string{sn}, nil); code(err) != codeECSInvalidParameter {
		t.Errorf("another account resolves our subnet: %v", err)
	}
	// Regions are apart too.
	eu := callerCtx(e.acct, "eu-west-1")
	e.failsAs(eu, codeVpcNotFound, "DescribeVpcs", "VpcId.1", v)
}
