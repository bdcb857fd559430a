package vpc

import (
	"strings"
	"testing"
)

func TestCreateSecurityGroup(t *testing.T) {
	e := newEnv(t)
	v := e.createVpc("10.0.0.0/16")
	r := ok[*createSecurityGroupResult](e, "CreateSecurityGroup", "VpcId", v, "GroupName", "web", "GroupDescription", "web servers",
		"TagSpecification.1.ResourceType", "security-group", "TagSpecification.1.Tag.1.Key", "team", "TagSpecification.1.Tag.1.Value", "a")
	if !validID(r.GroupID, "sg") || len(r.TagSet) != 1 {
		t.Errorf("created %+v", r)
	}
	g := e.group(r.GroupID)
	if g.GroupName != "web" || g.GroupDescription != "web servers" || g.VpcID != v || g.OwnerID != e.acct ||
		len(g.IPPermissions) != 0 || len(g.IPPermissionsEgress) != 1 || g.IPPermissionsEgress[0].IPRanges[0].CidrIP != "0.0.0.0/0" {
		t.Errorf("described %+v", g)
	}
	// Without VpcId: the default VPC. The same name in another VPC is fine.
	d := ok[*createSecurityGroupResult](e, "CreateSecurityGroup", "GroupName", "web", "GroupDescription", "x").GroupID
	defVpc, _ := e.defaultVpc()
	if e.group(d).VpcID != defVpc {
		t.Errorf("group without VpcId is in %s, not the default VPC %s", e.group(d).VpcID, defVpc)
	}
	for _, tt := range []struct {
		name string
		kv   []string
		code string
	}{
		{"duplicate", []string{"VpcId", v, "GroupName", "web", "GroupDescription", "again"}, codeGroupDuplicate},
		{"reserved", []string{"VpcId", v, "GroupName", "default", "GroupDescription", "x"}, codeGroupReserved},
		{"sg- name", []string{"VpcId", v, "GroupName", "sg-123", "GroupDescription", "x"}, codeInvalidParameterValue},
		{"no name", []string{"VpcId", v, "GroupDescription", "x"}, codeMissingParameter},
		{"no description", []string{"VpcId", v, "GroupName", "x"}, codeMissingParameter},
		{"bad chars", []string{"VpcId", v, "GroupName", "wéb", "GroupDescription", "x"}, codeInvalidParameterValue},
		{"long name", []string{"VpcId", v, "GroupName", strings.Repeat("a", 256), "GroupDescription", "x"}, codeInvalidParameterValue},
		{"unknown vpc", []string{"VpcId", "vpc-0123456789abcdef0", "GroupName", "x", "GroupDescription", "x"}, codeVpcNotFound},
	} {
		t.Run(tt.name, func(t *testing.T) {
			msg := e.fails(tt.code, "CreateSecurityGroup", tt.kv...)
			if tt.code == codeGroupDuplicate && msg != "The security group 'web' already exists for VPC '"+v+"'" {
				t.Errorf("message %q", msg)
			}
		})
	}
}

func TestDescribeSecurityGroups(t *testing.T) {
	e := newEnv(t)
	v := e.createVpc("10.0.0.0/16")
	web := e.createGroup(v, "web")
	db := e.createGroup(v, "db")
	ok[*authorizeResult](e, "AuthorizeSecurityGroupIngress", "GroupId", db,
		"IpPermissions.1.IpProtocol", "tcp", "IpPermissions.1.FromPort", "5432", "IpPermissions.1.ToPort", "5432",
		"IpPermissions.1.Groups.1.GroupId", web)
	defWeb := ok[*createSecurityGroupResult](e, "CreateSecurityGroup", "GroupName", "web", "GroupDescription", "x").GroupID
	names := func(kv ...string) string {
		var out []string
		for _, g := range ok[*describeSecurityGroupsResult](e, "DescribeSecurityGroups", kv...).SecurityGroups {
			out = append(out, g.GroupName)
		}
		return strings.Join(sortedBy(out, func(s *string) string { return *s }), ",")
	}
	for _, tt := range []struct {
		name string
		kv   []string
		want string
	}{
		{"ids", []string{"GroupId.1", web, "GroupId.2", db}, "db,web"},
		{"vpc", []string{"Filter.1.Name", "vpc-id", "Filter.1.Value.1", v}, "db,default,web"},
		{"group-name", []string{"Filter.1.Name", "vpc-id", "Filter.1.Value.1", v, "Filter.2.Name", "group-name", "Filter.2.Value.1", "w*"}, "web"},
		{"group-id", []string{"Filter.1.Name", "group-id", "Filter.1.Value.1", db}, "db"},
		{"ip-permission.group-id", []string{"Filter.1.Name", "ip-permission.group-id", "Filter.1.Value.1", web}, "db"},
		{"ip-permission.from-port", []string{"Filter.1.Name", "ip-permission.from-port", "Filter.1.Value.1", "5432"}, "db"},
		{"egress cidr", []string{"Filter.1.Name", "vpc-id", "Filter.1.Value.1", v, "Filter.2.Name", "egress.ip-permission.cidr", "Filter.2.Value.1", "0.0.0.0/0"}, "db,default,web"},
		{"description", []string{"Filter.1.Name", "description", "Filter.1.Value.1", "db group"}, "db"},
		{"names: default vpc", []string{"GroupName.1", "web"}, "web"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := names(tt.kv...); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	if g := ok[*describeSecurityGroupsResult](e, "DescribeSecurityGroups", "GroupName.1", "web").SecurityGroups[0]; g.GroupID != defWeb {
		t.Errorf("GroupName looks in the default VPC: got %s, want %s", g.GroupID, defWeb)
	}
	perm := e.group(db).IPPermissions
	if len(perm) != 1 || perm[0].IPProtocol != "tcp" || *perm[0].FromPort != 5432 || *perm[0].ToPort != 5432 ||
		len(perm[0].Groups) != 1 || perm[0].Groups[0].GroupID != web || perm[0].Groups[0].UserID != e.acct {
		t.Errorf("db ingress %+v", perm)
	}
	e.fails(codeGroupNotFound, "DescribeSecurityGroups", "GroupId.1", "sg-0123456789abcdef0")
	e.fails(codeGroupMalformed, "DescribeSecurityGroups", "GroupId.1", "web")
	e.fails(codeGroupNotFound, "DescribeSecurityGroups", "GroupName.1", "nope")
	e.fails(codeInvalidParameterValue, "DescribeSecurityGroups", "Filter.1.Name", "ip-permission.colour", "Filter.1.Value.1", "x")
}

func TestDeleteSecurityGroup(t *testing.T) {
	e := newEnv(t)
	v := e.createVpc("10.0.0.0/16")
	web := e.createGroup(v, "web")
	db := e.createGroup(v, "db")
	ok[*authorizeResult](e, "AuthorizeSecurityGroupIngress", "GroupId", db,
		"IpPermissions.1.IpProtocol", "-1", "IpPermissions.1.Groups.1.GroupId", web)
	// A self reference does not hold a group.
	ok[*authorizeResult](e, "AuthorizeSecurityGroupIngress", "GroupId", web,
		"IpPermissions.1.IpProtocol", "-1", "IpPermissions.1.Groups.1.GroupId", web)
	msg := e.fails(codeDependencyViolation, "DeleteSecurityGroup", "GroupId", web)
	if msg != "resource "+web+" has a dependent object" {
		t.Errorf("message %q", msg)
	}
	def := e.defaultGroup(v)
	msg = e.fails(codeCannotDelete, "DeleteSecurityGroup", "GroupId", def)
	if !strings.Contains(msg, def) {
		t.Errorf("message %q", msg)
	}
	ok[*returnXML](e, "RevokeSecurityGroupIngress", "GroupId", db,
		"IpPermissions.1.IpProtocol", "-1", "IpPermissions.1.Groups.1.GroupId", web)
	ok[*returnXML](e, "DeleteSecurityGroup", "GroupId", web)
	e.fails(codeGroupNotFound, "DeleteSecurityGroup", "GroupId", web)
	// By name: in the default VPC.
	ok[*createSecurityGroupResult](e, "CreateSecurityGroup", "GroupName", "tmp", "GroupDescription", "x")
	ok[*returnXML](e, "DeleteSecurityGroup", "GroupName", "tmp")
	e.fails(codeGroupNotFound, "DeleteSecurityGroup", "GroupName", "db") // db is not in the default VPC
	e.fails(codeMissingParameter, "DeleteSecurityGroup")
	_, defGroup := e.defaultVpc()
	e.fails(codeCannotDelete, "DeleteSecurityGroup", "GroupName", "default")
	_ = defGroup
}

func TestAuthorizeRevoke(t *testing.T) {
	e := newEnv(t)
	v := e.createVpc("10.0.0.0/16")
	web := e.createGroup(v, "web")
	client := e.createGroup(v, "client")
	other := e.createVpc("10.1.0.0/16")
	foreign := e.createGroup(other, "foreign")

	// The SDK form, several permissions and peers at once.
	r := ok[*authorizeResult](e, "AuthorizeSecurityGroupIngress", "GroupId", web,
		"IpPermissions.1.IpProtocol", "tcp", "IpPermissions.1.FromPort", "80", "IpPermissions.1.ToPort", "81",
		"IpPermissions.1.IpRanges.1.CidrIp", "10.0.0.0/8", "IpPermissions.1.IpRanges.1.Description", "office",
		"IpPermissions.1.IpRanges.2.CidrIp", "192.168.1.7/32",
		"IpPermissions.2.IpProtocol", "udp", "IpPermissions.2.FromPort", "53", "IpPermissions.2.ToPort", "53",
		"IpPermissions.2.Groups.1.GroupId", client,
		"IpPermissions.3.IpProtocol", "icmp", "IpPermissions.3.FromPort", "8", "IpPermissions.3.ToPort", "-1",
		"IpPermissions.3.IpRanges.1.CidrIp", "0.0.0.0/0")
	if !r.Return || len(r.SecurityGroupRules) != 4 {
		t.Fatalf("authorize: %+v", r)
	}
	for _, rule := range r.SecurityGroupRules {
		if !validID(rule.SecurityGroupRuleID, "sgr") || rule.GroupID != web || rule.IsEgress || rule.GroupOwnerID != e.acct {
			t.Errorf("rule %+v", rule)
		}
	}
	if r.SecurityGroupRules[2].ReferencedGroupInfo == nil || r.SecurityGroupRules[2].ReferencedGroupInfo.GroupID != client {
		t.Errorf("group rule %+v", r.SecurityGroupRules[2])
	}
	// The flat form the CLI's --protocol/--port/--cidr shorthand may use.
	ok[*authorizeResult](e, "AuthorizeSecurityGroupIngress", "GroupId", web, "IpProtocol", "tcp", "FromPort", "8080", "ToPort", "8080", "CidrIp", "172.16.0.0/12")
	// The flat form with a source group by name (all traffic).
	ok[*authorizeResult](e, "AuthorizeSecurityGroupIngress", "GroupId", web, "SourceSecurityGroupName", "client")
	// Protocols by number and "all".
	ok[*authorizeResult](e, "AuthorizeSecurityGroupIngress", "GroupId", web, "IpPermissions.1.IpProtocol", "6",
		"IpPermissions.1.FromPort", "22", "IpPermissions.1.ToPort", "22", "IpPermissions.1.IpRanges.1.CidrIp", "1.2.3.4/32")
	ok[*authorizeResult](e, "AuthorizeSecurityGroupIngress", "GroupId", web, "IpPermissions.1.IpProtocol", "50",
		"IpPermissions.1.FromPort", "1", "IpPermissions.1.ToPort", "2", "IpPermissions.1.IpRanges.1.CidrIp", "1.2.3.4/32")
	// Egress.
	ok[*authorizeResult](e, "AuthorizeSecurityGroupEgress", "GroupId", web, "IpPermissions.1.IpProtocol", "tcp",
		"IpPermissions.1.FromPort", "443", "IpPermissions.1.ToPort", "443", "IpPermissions.1.Groups.1.GroupId", client)

	g := e.group(web)
	perms := map[string]ipPermissionXML{}
	for _, p := range g.IPPermissions {
		k := p.IPProtocol
		if p.FromPort != nil {
			k += ":" + strings.Join(intVal(*p.FromPort), "") + "-" + strings.Join(intVal(*p.ToPort), "")
		}
		perms[k] = p
	}
	if p := perms["tcp:80-81"]; len(p.IPRanges) != 2 || p.IPRanges[0].Description != "office" {
		t.Errorf("tcp 80-81: %+v", p)
	}
	if p := perms["tcp:22-22"]; len(p.IPRanges) != 1 {
		t.Errorf("protocol 6 stored as tcp: %+v", perms)
	}
	if p, found := perms["50"]; !found || p.FromPort != nil {
		t.Errorf("protocol 50 has no ports: %+v", perms)
	}
	if p := perms["icmp:8--1"]; len(p.IPRanges) != 1 {
		t.Errorf("icmp: %+v", perms)
	}
	if p := perms["-1"]; len(p.Groups) != 1 || p.Groups[0].GroupID != client {
		t.Errorf("source group by name: %+v", perms)
	}
	if len(g.IPPermissionsEgress) != 2 {
		t.Errorf("egress %+v", g.IPPermissionsEgress)
	}

	for _, tt := range []struct {
		name string
		kv   []string
		code string
	}{
		{"duplicate", []string{"IpPermissions.1.IpProtocol", "tcp", "IpPermissions.1.FromPort", "80", "IpPermissions.1.ToPort", "81",
			"IpPermissions.1.IpRanges.1.CidrIp", "10.0.0.0/8"}, codePermissionDuplicate},
		{"duplicate by number", []string{"IpProtocol", "17", "FromPort", "53", "ToPort", "53", "SourceSecurityGroupName", "client"}, codePermissionDuplicate},
		{"duplicate in request", []string{"IpPermissions.1.IpProtocol", "tcp", "IpPermissions.1.FromPort", "9", "IpPermissions.1.ToPort", "9",
			"IpPermissions.1.IpRanges.1.CidrIp", "9.9.9.9/32", "IpPermissions.1.IpRanges.2.CidrIp", "9.9.9.9/32"}, codePermissionDuplicate},
		{"unknown protocol", []string{"IpProtocol", "tcpp", "FromPort", "1", "ToPort", "1", "CidrIp", "1.0.0.0/8"}, codeInvalidParameterValue},
		{"protocol 256", []string{"IpProtocol", "256", "CidrIp", "1.0.0.0/8"}, codeInvalidParameterValue},
		{"tcp without ports", []string{"IpProtocol", "tcp", "CidrIp", "1.0.0.0/8"}, codeInvalidParameterValue},
		{"ports reversed", []string{"IpProtocol", "tcp", "FromPort", "90", "ToPort", "80", "CidrIp", "1.0.0.0/8"}, codeInvalidParameterValue},
		{"port too big", []string{"IpProtocol", "udp", "FromPort", "1", "ToPort", "65536", "CidrIp", "1.0.0.0/8"}, codeInvalidParameterValue},
		{"bad cidr", []string{"IpProtocol", "tcp", "FromPort", "1", "ToPort", "1", "CidrIp", "1.0.0.1/8"}, codeInvalidParameterValue},
		{"ipv6 cidr", []string{"IpProtocol", "tcp", "FromPort", "1", "ToPort", "1", "CidrIp", "::/0"}, codeInvalidParameterValue},
		{"no peer", []string{"IpPermissions.1.IpProtocol", "tcp", "IpPermissions.1.FromPort", "1", "IpPermissions.1.ToPort", "1"}, codeMissingParameter},
		{"no permissions", nil, codeMissingParameter},
		{"both forms", []string{"IpProtocol", "tcp", "IpPermissions.1.IpProtocol", "tcp"}, codeInvalidParameterCombo},
		{"unknown peer", []string{"IpPermissions.1.IpProtocol", "-1", "IpPermissions.1.Groups.1.GroupId", "sg-0123456789abcdef0"}, codeGroupNotFound},
		{"malformed peer", []string{"IpPermissions.1.IpProtocol", "-1", "IpPermissions.1.Groups.1.GroupId", "client"}, codeGroupMalformed},
		{"peer in other vpc", []string{"IpPermissions.1.IpProtocol", "-1", "IpPermissions.1.Groups.1.GroupId", foreign}, codeGroupNotFound},
		{"peer of other account", []string{"IpPermissions.1.IpProtocol", "-1", "IpPermissions.1.Groups.1.GroupId", client,
			"IpPermissions.1.Groups.1.UserId", "999999999999"}, codeInvalidParameterValue},
		{"ipv6 ranges", []string{"IpPermissions.1.IpProtocol", "-1", "IpPermissions.1.Ipv6Ranges.1.CidrIpv6", "::/0"}, codeInvalidParameterValue},
	} {
		t.Run(tt.name, func(t *testing.T) {
			msg := e.fails(tt.code, "AuthorizeSecurityGroupIngress", append([]string{"GroupId", web}, tt.kv...)...)
			if tt.name == "duplicate" && msg != `the specified rule "peer: 10.0.0.0/8, TCP, from port: 80, to port: 81, ALLOW" already exists` {
				t.Errorf("message %q", msg)
			}
		})
	}
	before := e.group(web)
	e.fails(codeGroupNotFound, "AuthorizeSecurityGroupIngress", "GroupId", "sg-0123456789abcdef0", "IpProtocol", "-1", "CidrIp", "1.0.0.0/8")
	e.fails(codeMissingParameter, "AuthorizeSecurityGroupEgress", "GroupName", "web", "IpProtocol", "-1", "CidrIp", "1.0.0.0/8")

	// Revoke: a rule that is not there changes nothing.
	msg := e.fails(codePermissionNotFound, "RevokeSecurityGroupIngress", "GroupId", web,
		"IpPermissions.1.IpProtocol", "tcp", "IpPermissions.1.FromPort", "80", "IpPermissions.1.ToPort", "81",
		"IpPermissions.1.IpRanges.1.CidrIp", "10.0.0.0/8", "IpPermissions.1.IpRanges.2.CidrIp", "10.0.0.0/9")
	if msg != "The specified rule does not exist in this security group." {
		t.Errorf("message %q", msg)
	}
	if after := e.group(web); len(after.IPPermissions) != len(before.IPPermissions) {
		t.Error("a failed revoke changed the group")
	}
	ok[*returnXML](e, "RevokeSecurityGroupIngress", "GroupId", web, "IpProtocol", "tcp", "FromPort", "8080", "ToPort", "8080", "CidrIp", "172.16.0.0/12")
	ok[*returnXML](e, "RevokeSecurityGroupIngress", "GroupId", web, "IpPermissions.1.IpProtocol", "all",
		"IpPermissions.1.Groups.1.GroupId", client)
	ok[*returnXML](e, "RevokeSecurityGroupIngress", "GroupId", web, "SecurityGroupRuleId.1", r.SecurityGroupRules[0].SecurityGroupRuleID)
	e.fails(codeRuleNotFound, "RevokeSecurityGroupIngress", "GroupId", web, "SecurityGroupRuleId.1", r.SecurityGroupRules[0].SecurityGroupRuleID)
	e.fails(codePermissionNotFound, "RevokeSecurityGroupEgress", "GroupId", web, "IpPermissions.1.IpProtocol", "tcp",
		"IpPermissions.1.FromPort", "80", "IpPermissions.1.ToPort", "81", "IpPermissions.1.IpRanges.1.CidrIp", "10.0.0.0/8")
	ok[*returnXML](e, "RevokeSecurityGroupEgress", "GroupId", web, "IpPermissions.1.IpProtocol", "-1",
		"IpPermissions.1.IpRanges.1.CidrIp", "0.0.0.0/0")
	if got := e.group(web).IPPermissionsEgress; len(got) != 1 || got[0].IPProtocol != "tcp" {
		t.Errorf("egress after revoke: %+v", got)
	}

	// DescribeSecurityGroupRules.
	rules := ok[*describeRulesResult](e, "DescribeSecurityGroupRules", "Filter.1.Name", "group-id", "Filter.1.Value.1", web).SecurityGroupRules
	n := 0
	for _, p := range e.group(web).IPPermissions {
		n += len(p.IPRanges) + len(p.Groups)
	}
	for _, p := range e.group(web).IPPermissionsEgress {
		n += len(p.IPRanges) + len(p.Groups)
	}
	if len(rules) != n {
		t.Errorf("%d rules described, the group has %d", len(rules), n)
	}
}

func TestRulesLimit(t *testing.T) {
	e := newEnv(t)
	v := e.createVpc("10.0.0.0/16")
	g := e.createGroup(v, "big")
	kv := []string{"GroupId", g, "IpPermissions.1.IpProtocol", "tcp", "IpPermissions.1.FromPort", "1", "IpPermissions.1.ToPort", "1"}
	for i := 1; i <= maxRulesPerDirection; i++ {
		kv = append(kv, "IpPermissions.1.IpRanges."+strings.Join(intVal(i), "")+".CidrIp", "10.0.0."+strings.Join(intVal(i), "")+"/32")
	}
	ok[*authorizeResult](e, "AuthorizeSecurityGroupIngress", kv...)
	e.fails(codeRulesLimitExceeded, "AuthorizeSecurityGroupIngress", "GroupId", g, "IpProtocol", "-1", "CidrIp", "11.0.0.0/8")
}
