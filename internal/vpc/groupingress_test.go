package vpc

import (
	"testing"
)

// TestGroupIngress: a load balancer's groups resolve to ingress rules with
// source groups as their members' addresses, and its interfaces describe
// themselves as ELB's.
func TestGroupIngress(t *testing.T) {
	e := newEnv(t)
	v := e.createVpc("10.0.0.0/16")
	sn := e.createSubnet(v, "10.0.1.0/24", "us-east-1a")
	lbg := e.createGroup(v, "lb")
	client := e.createGroup(v, "client")
	c := e.mustAttach("client-1", []string{sn}, []string{client}, false)
	ok[*authorizeResult](e, "AuthorizeSecurityGroupIngress", "GroupId", lbg, "IpPermissions.1.IpProtocol", "tcp",
		"IpPermissions.1.FromPort", "80", "IpPermissions.1.ToPort", "80", "IpPermissions.1.IpRanges.1.CidrIp", "0.0.0.0/0",
		"IpPermissions.2.IpProtocol", "tcp", "IpPermissions.2.FromPort", "8080", "IpPermissions.2.ToPort", "8080",
		"IpPermissions.2.Groups.1.GroupId", client)
	rules, err := e.s.GroupIngress(bg, e.acct, "us-east-1", []string{lbg})
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) != 2 || rules[0].FromPort != 80 || len(rules[0].CIDRs) != 1 || rules[0].CIDRs[0] != "0.0.0.0/0" ||
		rules[1].FromPort != 8080 || len(rules[1].CIDRs) != 1 || rules[1].CIDRs[0] != c.PrivateIP+"/32" {
		t.Errorf("ingress %+v", rules)
	}
	if rules, err := e.s.GroupIngress(bg, e.acct, "us-east-1", []string{client}); err != nil || len(rules) != 0 {
		t.Errorf("client ingress %+v, %v", rules, err)
	}

	lbENI := e.mustAttach("elb-0123456789abcdef-"+sn, []string{sn}, []string{lbg}, false)
	res := ok[*describeENIsResult](e, "DescribeNetworkInterfaces", "NetworkInterfaceId.1", lbENI.ID)
	if len(res.NetworkInterfaces) != 1 {
		t.Fatalf("describe %+v", res)
	}
	x := res.NetworkInterfaces[0]
	if x.Description != "ELB 0123456789abcdef" || x.RequesterID != "amazon-elb" || x.InterfaceType != "interface" {
		t.Errorf("elb eni %+v", x)
	}
	for i := 0; i < 2; i++ { // idempotent
		if err := e.s.SetENIDescription(bg, e.acct, "us-east-1", lbENI.AttachmentID, "ELB app/web/0123456789abcdef"); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.s.SetENIDescription(bg, e.acct, "us-east-1", "elb-gone", "x"); err != nil {
		t.Errorf("absent eni: %v", err)
	}
	res = ok[*describeENIsResult](e, "DescribeNetworkInterfaces", "NetworkInterfaceId.1", lbENI.ID)
	if d := res.NetworkInterfaces[0].Description; d != "ELB app/web/0123456789abcdef" {
		t.Errorf("description %q", d)
	}
}
